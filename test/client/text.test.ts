/**
 * Peer text at the terminal edge (src/client/text.ts, issue 14 point 4): nothing hidden (controls, format
 * characters, separators, default-ignorables, tags escaped), nothing broken (emoji ZWJ sequences, joiners
 * between letters of joining scripts, emoji tag sequences kept), long space runs collapsed, wrapped rows
 * indented, previews cut between graphemes; long texts split for sending.
 */
import t from 'tap';
import fc from 'fast-check';
import { displayText, displayWidth, graphemesOf, MAX_SPACE_RUN, preview, printable, splitText, wrapRows } from '../../src/client/text.js';

/** What may never reach a terminal raw: controls, separators, bidi controls, invisible formatting. */
const NEVER = /[\p{Cc}\p{Zl}\p{Zp}\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u206f\ufeff\u00ad\u3164\u115f\u1160\uffa0]/u;
/** Format / default-ignorable code points that may remain, each only where Unicode gives it meaning. */
const CONTEXTUAL = /[\u200c\u200d\ufe00-\ufe0f\u{e0020}-\u{e007f}\u{e0100}-\u{e01ef}]/u;
const HIDDEN = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u;

t.test('printable leaves no control, separator, bidi or invisible character, whatever the peer sent', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
      const p = printable(s);
      return !NEVER.test(p) && !p.includes('\n') && [...p].every((c) => !HIDDEN.test(c) || CONTEXTUAL.test(c));
    }),
  );
  t.equal(printable('a\nb'), 'a\\nb', 'a newline cannot start a forged line');
  t.equal(printable('\x1b[2Jx'), '\\u{1b}[2Jx', 'an escape sequence is shown, not run');
  t.equal(printable('abc\u202edcba'), 'abc\\u{202e}dcba', 'a right-to-left override is shown');
});

t.test('the characters of issue 14 that reached the terminal raw are escaped', async (t) => {
  t.equal(printable('pay\u{e0041}\u{e0042}me'), 'pay\\u{e0041}\\u{e0042}me', 'tag characters outside a tag sequence');
  t.equal(printable('\u{e0001}x'), '\\u{e0001}x', 'LANGUAGE TAG');
  t.equal(printable('a\u3164b'), 'a\\u{3164}b', 'HANGUL FILLER');
  t.equal(printable('\u115f\u1160'), '\\u{115f}\\u{1160}', 'Hangul choseong and jungseong fillers');
  for (let cp = 0x206a; cp <= 0x206f; cp++) t.equal(printable(`x${String.fromCodePoint(cp)}y`), `x\\u{${cp.toString(16)}}y`, `U+${cp.toString(16)}`);
  t.equal(printable('a\u200db'), 'a\\u{200d}b', 'a ZWJ between Latin letters carries nothing: shown');
  t.equal(printable('a\u200cb'), 'a\\u{200c}b', 'so does a ZWNJ');
  t.equal(printable('\u200d\u{1f308}'), '\\u{200d}\u{1f308}', 'a ZWJ with no pictograph before it');
  t.equal(printable('\u00ad'), '\\u{ad}', 'soft hyphen');
  t.equal(printable('\u{1f3f4}\u{e0067}\u{e0062}'), '\u{1f3f4}\\u{e0067}\\u{e0062}', 'a tag sequence without CANCEL TAG');
  t.equal(printable('x\u{e0067}\u{e007f}'), 'x\\u{e0067}\\u{e007f}', 'a tag sequence on a letter, not an emoji');
});

t.test('the legitimate text of issue 14 is shown unchanged', async (t) => {
  for (const [name, s] of [
    ['family ZWJ sequence', '👨‍👩‍👧‍👦'],
    ['rainbow flag (VS16 + ZWJ)', '🏳️‍🌈'],
    ['Persian with ZWNJ', 'می‌خواهم'],
    ['Scotland flag (emoji tag sequence)', '🏴󠁧󠁢󠁳󠁣󠁴󠁿'],
    ['Devanagari half form with ZWJ', 'क्‍ष'],
    ['skin tone in a ZWJ sequence', '👩🏽‍💻'],
    ['keycap', '1️⃣'],
    ['flags', '🇺🇸🇯🇵'],
    ['mixed scripts', 'Grüße 你好 🙂 Ελληνικά'],
  ] as const) {
    t.equal(printable(s), s, name);
  }
});

t.test('printable keeps printable text of any script unchanged', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 100 }), (s) => {
      fc.pre(![...s].some((c) => HIDDEN.test(c) || NEVER.test(c)));
      return printable(s) === s;
    }),
  );
});

t.test('a long run of spaces is collapsed, so text cannot push a fake sender line to a new row', async (t) => {
  const attack = 'ok' + ' '.repeat(69) + 'bob✓: the meeting moved to room 4';
  const shown = displayText(attack);
  t.equal(shown, 'ok ⟨69 spaces⟩ bob✓: the meeting moved to room 4');
  t.equal(displayText('a' + ' '.repeat(MAX_SPACE_RUN) + 'b'), 'a' + ' '.repeat(MAX_SPACE_RUN) + 'b', `up to ${MAX_SPACE_RUN} spaces are kept`);
  t.equal(displayText('a\u3000\u3000\u00a0\u2003 \u2002b'), 'a ⟨6 spaces⟩ b', 'other space characters count too');
  // At every width, only the first row starts at column 0; the header occupies 20 columns.
  for (const cols of [20, 30, 40, 60, 80, 120]) {
    const rows = wrapRows(displayText(attack), 20, cols, 20);
    rows.slice(1).forEach((r, i) => t.match(r, /^ +\S/, `cols ${cols}: row ${i + 2} is indented`));
  }
});

t.test('wrapRows: every continuation row indented, no row wider than the terminal, nothing lost', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), fc.integer({ min: 10, max: 120 }), fc.integer({ min: 0, max: 30 }), (raw, cols, head) => {
      const text = displayText(raw);
      const prefix = Math.min(head, cols - 2);
      const indent = Math.max(1, Math.min(prefix, Math.floor(cols / 2)));
      const rows = wrapRows(text, prefix, cols, prefix);
      const okWidth = rows.every((r, i) => (i === 0 ? prefix : 0) + displayWidth(r) <= cols || graphemesOf(r.trim()).length <= 1);
      const indented = rows.slice(1).every((r) => r.startsWith(' '.repeat(indent)));
      const back = rows.map((r, i) => (i === 0 ? r : r.slice(indent))).join('');
      return okWidth && indented && back.replace(/ /g, '') === text.replace(/ /g, '');
    }),
  );
});

t.test('previews are cut between graphemes, never inside a flag or a ZWJ sequence', async (t) => {
  const flags = '🇺🇸'.repeat(50);
  const p = preview(flags);
  t.equal(p, '🇺🇸'.repeat(40) + '…');
  t.equal(preview('ab🇺🇸cd', 3), 'ab🇺🇸…', 'the third grapheme is the whole flag');
  t.equal(preview('👨‍👩‍👧‍👦x', 1), '👨‍👩‍👧‍👦…');
  t.equal(preview('short'), 'short', 'no ellipsis when nothing was cut');
  t.equal(preview('a\nb'), 'a\\nb', 'escaped like any other display');
});

t.test('splitText: pieces within the byte bound, never inside a code point, joined back exactly', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.integer({ min: 4, max: 40 }), (s, max) => {
      const parts = splitText(s, max);
      return parts.join('') === s && parts.every((p) => Buffer.byteLength(p) <= max && p.length > 0);
    }),
  );
  t.same(splitText(''), [], 'nothing to send');
  const big = '€'.repeat(6000); // 18000 bytes
  const parts = splitText(big);
  t.equal(parts.length, 2);
  t.equal(Buffer.byteLength(parts[0]!), 16383, 'the first piece stops before a code point would cross 16384 bytes');
  t.throws(() => splitText('x', 3), RangeError);
});
