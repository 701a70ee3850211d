/**
 * Text handling at the edge between peers and a terminal.
 *
 * A peer controls every character of a TEXT frame (spec §6, TEXT.text is any valid UTF-8). Printed raw, a
 * newline would forge a second line (a fake `* ` event or a fake `NICK: ` message in the scriptable
 * contract), and escape sequences or bidirectional overrides would rewrite what the terminal shows. So
 * everything a peer sent is passed through `printable` before it reaches a screen or a pipe.
 */
import { LIMITS } from '../protocol/limits.js';

// C0 controls, DEL, C1 controls, line/paragraph separators, bidi embeddings/overrides/isolates,
// zero-width joiners and marks that hide text, and the BOM.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/gu;

/**
 * Returns `s` with every control, separator or bidi-control code point replaced by a visible escape
 * (`\n`, `\t`, `\u{202e}`, ...). Printable text, including any non-ASCII script, is unchanged.
 */
export function printable(s: string): string {
  return s.replace(UNSAFE, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u{${c.codePointAt(0)!.toString(16)}}`;
  });
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
    const n = Buffer.byteLength(cp, 'utf8');
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
