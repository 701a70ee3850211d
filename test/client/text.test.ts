/** Peer text at the terminal edge (src/client/text.ts): no forged lines, no escapes; long texts split. */
import t from 'tap';
import fc from 'fast-check';
import { printable, splitText } from '../../src/client/text.js';

const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;

t.test('printable leaves no control, separator or bidi character, whatever the peer sent', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
      const p = printable(s);
      return !UNSAFE.test(p) && !p.includes('\n');
    }),
  );
  t.equal(printable('a\nb'), 'a\\nb', 'a newline cannot start a forged line');
  t.equal(printable('\x1b[2Jx'), '\\u{1b}[2Jx', 'an escape sequence is shown, not run');
  t.equal(printable('abc\u202edcba'), 'abc\\u{202e}dcba', 'a right-to-left override is shown');
});

t.test('printable keeps printable text of any script unchanged', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 100 }), (s) => {
      fc.pre(!UNSAFE.test(s));
      return printable(s) === s;
    }),
  );
  t.equal(printable('Grüße 你好 🙂'), 'Grüße 你好 🙂');
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
