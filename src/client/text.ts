/**
 * Text handling at the edge between peers and a terminal.
 *
 * A peer controls every character of a TEXT frame (spec §6, TEXT.text is any valid UTF-8). Printed raw, a
 * newline would forge a second line (a fake `* ` event or a fake `NICK: ` message in the scriptable
 * contract), escape sequences or bidirectional overrides would rewrite what the terminal shows, and
 * invisible characters would hide text. So everything a peer sent is passed through `printable` before it
 * reaches a screen or a pipe. Issue 14 point 4: what is escaped is every code point of \p{Cc}, \p{Cf},
 * \p{Zl}, \p{Zp} and Default_Ignorable_Code_Point (which covers the tag characters U+E0000-U+E007F, the
 * Hangul fillers U+115F, U+1160, U+3164, U+FFA0 and U+206A-U+206F), except where Unicode gives it a
 * meaning that the text needs:
 * - ZWJ inside an emoji ZWJ sequence (UTS #51 ED-16: pictograph, ZWJ, pictograph), so 👨‍👩‍👧‍👦 and 🏳️‍🌈 stay whole;
 * - ZWNJ or ZWJ between two letters of a script that joins or forms conjuncts (UTS #39 and the IDNA
 *   CONTEXTJ rules allow them there), so Persian می‌خواهم keeps its non-joiner;
 * - tag characters inside a valid emoji tag sequence (UTS #51 ED-14a: an emoji, tag letters or digits,
 *   CANCEL TAG), so 🏴󠁧󠁢󠁳󠁣󠁴󠁿 stays a flag;
 * - a variation selector right after a visible character (VS16 makes 🏳️ an emoji).
 * For a terminal, `displayText` also collapses long runs of spaces, `wrapRows` wraps with indented
 * continuation rows (no row of a message can start where a sender's line starts) and `preview` cuts on
 * grapheme boundaries (Intl.Segmenter).
 */
import { LIMITS } from '../protocol/limits.js';

const ALWAYS_ESCAPED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u;
const ZWNJ = 0x200c;
const ZWJ = 0x200d;
const CANCEL_TAG = 0xe007f;
const PICTOGRAPH = /\p{Extended_Pictographic}/u;
/** What may stand between a pictograph and a ZWJ: VS16 and the skin-tone modifiers (UTS #51 ED-17). */
const EMOJI_TRAIL = /[\ufe0f\p{Emoji_Modifier}]/u;
const EMOJI = /\p{Emoji}/u;
const VARIATION_SELECTOR = /[\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/u;
const VISIBLE = /[\p{L}\p{N}\p{P}\p{S}\p{M}]/u;
const LETTER_OR_MARK = /[\p{L}\p{M}]/u;
const MARK = /\p{M}/u;
/** Scripts whose letters join (cursive) or form conjuncts, where ZWNJ/ZWJ between letters carry meaning. */
const JOINING_SCRIPT =
  /[\p{Script=Arabic}\p{Script=Syriac}\p{Script=Nko}\p{Script=Mongolian}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}\p{Script=Manichaean}\p{Script=Psalter_Pahlavi}\p{Script=Sogdian}\p{Script=Devanagari}\p{Script=Bengali}\p{Script=Gurmukhi}\p{Script=Gujarati}\p{Script=Oriya}\p{Script=Tamil}\p{Script=Telugu}\p{Script=Kannada}\p{Script=Malayalam}\p{Script=Sinhala}\p{Script=Khmer}\p{Script=Myanmar}\p{Script=Tibetan}]/u;
/** Tag characters a valid tag spec is made of: tag digits and tag small letters (UTS #51 ED-14c). */
const isTagSpec = (cp: number) => (cp >= 0xe0030 && cp <= 0xe0039) || (cp >= 0xe0061 && cp <= 0xe007a);
const MAX_TAG_SPEC = 32;

function escapeCp(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  return `\\u{${c.codePointAt(0)!.toString(16)}}`;
}

/** Index of the code point before `i` that is not a mark (for "between letters"), or -1. */
function letterBefore(cps: string[], i: number): number {
  let j = i - 1;
  while (j >= 0 && MARK.test(cps[j]!)) j--;
  return j;
}

/** True when the ZWJ or ZWNJ at `i` joins two letters of one joining script. */
function joinsLetters(cps: string[], i: number): boolean {
  const prev = cps[i - 1];
  const next = cps[i + 1];
  if (prev === undefined || next === undefined || !LETTER_OR_MARK.test(prev) || !LETTER_OR_MARK.test(next)) return false;
  const base = letterBefore(cps, i);
  const a = cps[base];
  if (a === undefined || !JOINING_SCRIPT.test(a) || !JOINING_SCRIPT.test(next)) return false;
  // Same script on both sides (Script_Extensions would also do; the common case is one script).
  return sameScript(a, next);
}

const SCRIPT_TESTS = JOINING_SCRIPT.source
  .slice(1, -1)
  .split('\\p')
  .filter((x) => x !== '')
  .map((x) => new RegExp(`\\p${x}`, 'u'));

function sameScript(a: string, b: string): boolean {
  return SCRIPT_TESTS.some((re) => re.test(a) && re.test(b));
}

/** True when the ZWJ at `i` is inside an emoji ZWJ sequence. */
function inEmojiZwj(cps: string[], i: number): boolean {
  let j = i - 1;
  while (j >= 0 && EMOJI_TRAIL.test(cps[j]!)) j--;
  const prev = cps[j];
  const next = cps[i + 1];
  return prev !== undefined && next !== undefined && PICTOGRAPH.test(prev) && PICTOGRAPH.test(next);
}

/** The end (exclusive) of a valid emoji tag sequence's tags starting at `i`, or -1. */
function tagSequenceEnd(cps: string[], i: number): number {
  let j = i;
  while (j < cps.length && j - i < MAX_TAG_SPEC && isTagSpec(cps[j]!.codePointAt(0)!)) j++;
  if (j === i || cps[j]?.codePointAt(0) !== CANCEL_TAG) return -1;
  let b = i - 1;
  while (b >= 0 && EMOJI_TRAIL.test(cps[b]!)) b--;
  const base = cps[b];
  return base !== undefined && EMOJI.test(base) && PICTOGRAPH.test(base) ? j + 1 : -1;
}

/**
 * Returns `s` with every control, format, separator or default-ignorable code point replaced by a visible
 * escape (`\n`, `\t`, `\u{202e}`, ...), except the joiners, tags and variation selectors that Unicode
 * gives a meaning in place (see the module comment). Printable text of any script is unchanged.
 */
export function printable(s: string): string {
  const cps = [...s];
  let out = '';
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (!ALWAYS_ESCAPED.test(c)) {
      out += c;
      continue;
    }
    const cp = c.codePointAt(0)!;
    if ((cp === ZWJ && (inEmojiZwj(cps, i) || joinsLetters(cps, i))) || (cp === ZWNJ && joinsLetters(cps, i))) {
      out += c;
      continue;
    }
    if (VARIATION_SELECTOR.test(c) && i > 0 && VISIBLE.test(cps[i - 1]!)) {
      out += c;
      continue;
    }
    if (isTagSpec(cp)) {
      const end = tagSequenceEnd(cps, i);
      if (end > 0) {
        out += cps.slice(i, end).join('');
        i = end - 1;
        continue;
      }
    }
    out += escapeCp(c);
  }
  return out;
}

/** Runs of spaces longer than this are shown collapsed (a wide gap can push text to look like a new row). */
export const MAX_SPACE_RUN = 4;
const SPACE_RUN = new RegExp(`\\p{Zs}{${MAX_SPACE_RUN + 1},}`, 'gu');

/** `printable`, then every run of more than MAX_SPACE_RUN spaces shown as ` ⟨N spaces⟩ ` (for a terminal). */
export function displayText(s: string): string {
  return printable(s).replace(SPACE_RUN, (run) => ` ⟨${[...run].length} spaces⟩ `);
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** The graphemes of `s` (user-perceived characters, UAX #29). */
export function graphemesOf(s: string): string[] {
  return Array.from(graphemes.segment(s), (g) => g.segment);
}

const WIDE =
  /[\u{1100}-\u{115f}\u{2e80}-\u{303e}\u{3041}-\u{33ff}\u{3400}-\u{4dbf}\u{4e00}-\u{9fff}\u{a000}-\u{a4cf}\u{ac00}-\u{d7a3}\u{f900}-\u{faff}\u{fe30}-\u{fe4f}\u{ff00}-\u{ff60}\u{ffe0}-\u{ffe6}\u{20000}-\u{3fffd}]/u;
const EMOJI_PRESENTATION = /\p{Emoji_Presentation}|\ufe0f/u;

/** Terminal columns of one grapheme: 2 for wide (East Asian, emoji presentation), 0 for a lone mark, else 1. */
export function graphemeWidth(g: string): number {
  if (WIDE.test(g) || (PICTOGRAPH.test(g) && EMOJI_PRESENTATION.test(g))) return 2;
  if ([...g].every((c) => MARK.test(c))) return 0;
  return 1;
}

/** Terminal columns of `s`. */
export function displayWidth(s: string): number {
  let w = 0;
  for (const g of graphemesOf(s)) w += graphemeWidth(g);
  return w;
}

/**
 * Splits already escaped `text` into terminal rows: the first row follows `prefixWidth` columns of header
 * (`[12:00:00] bob: `), every further row starts with `indent` spaces (at most half the width), and no row
 * is wider than `cols` (but for a grapheme wider than a whole row). So no row of a message starts at
 * column 0, where a sender's line starts. Breaks between graphemes, after a space in the second half of a
 * row when there is one.
 */
export function wrapRows(text: string, prefixWidth: number, cols: number, indent: number): string[] {
  const ind = Math.max(1, Math.min(indent, Math.floor(cols / 2)));
  const rows: string[][] = [];
  let cur: string[] = [];
  let width = prefixWidth;
  for (const g of graphemesOf(text)) {
    const w = graphemeWidth(g);
    if (width + w > cols && cur.length > 0) {
      const sp = cur.lastIndexOf(' ');
      let carry: string[] = [];
      if (sp > 0 && sp >= cur.length / 2) {
        carry = cur.slice(sp + 1);
        cur = cur.slice(0, sp);
      }
      rows.push(cur);
      cur = carry;
      width = ind + carry.reduce((a, x) => a + graphemeWidth(x), 0);
    }
    cur.push(g);
    width += w;
  }
  rows.push(cur);
  return rows.map((r, i) => (i === 0 ? '' : ' '.repeat(ind)) + r.join(''));
}

/** The first `max` graphemes of `printable(text)`, with `…` when it was longer; never half a grapheme. */
export function preview(text: string, max = 40): string {
  const g = graphemesOf(displayText(text));
  return g.length > max ? g.slice(0, max).join('') + '…' : g.join('');
}

/**
 * Splits `text` into pieces of at most `maxBytes` UTF-8 bytes (default MAX_TEXT_BYTES, the TEXT.text
 * bound of spec §6), never inside a code point. Returns [] for the empty string.
 */
export function splitText(text: string, maxBytes: number = LIMITS.MAX_TEXT_BYTES): string[] {
  if (maxBytes < 4) throw new RangeError('maxBytes must be at least 4 (one code point)');
  const out: string[] = [];
  let cur = '';
  let curBytes = 0;
  for (const cp of text) {
    // UTF-8 length of one code point (a lone surrogate is encoded as U+FFFD: 3 bytes), without Buffer so
    // the page can use it too.
    const c = cp.codePointAt(0)!;
    const n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (curBytes + n > maxBytes) {
      out.push(cur);
      cur = '';
      curBytes = 0;
    }
    cur += cp;
    curBytes += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
