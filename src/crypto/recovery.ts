/**
 * Recovery codes (spec/PROTOCOL.md §7.5): a 16-byte secret the client draws at random, shows its user
 * once, and registers with the relay only as a commitment; presented in RECOVER, it moves the nickname
 * to a new key. This module is the core's part, for every platform: the commitment's input, the text
 * form a person writes down and types back, and its strict parser. The hash itself is the platform's
 * (CryptoBackend.sha256, or node:crypto at the relay).
 */
import { concatBytes, lp, utf8 } from './bytes.js';
import { LIMITS } from '../protocol/limits.js';
import type { CryptoBackend } from './backend.js';

/** The label of the commitment's input (§7.5). */
export const RECOVERY_LABEL = 'e2ee-chat/2 recovery';

/** Crockford's base 32 alphabet (no I, L, O, U): digits then letters. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Symbols in the text form: 128 bits in 5-bit symbols, the last one padded with two zero bits. */
export const RECOVERY_CODE_SYMBOLS = 26;
/** The text form groups its symbols by 4, with a hyphen between groups. */
const GROUP = 4;

/** The bytes hashed into a commitment: "e2ee-chat/2 recovery" || lp(nick) || lp(code) (§7.5). */
export function recoveryCommitInput(nick: string, code: Uint8Array): Uint8Array {
  if (code.length !== LIMITS.RECOVERY_CODE_BYTES) throw new RangeError(`recovery code: expected ${LIMITS.RECOVERY_CODE_BYTES} bytes, got ${code.length}`);
  return concatBytes(utf8(RECOVERY_LABEL), lp(utf8(nick)), lp(code));
}

/** The commitment of §7.5: SHA-256 of recoveryCommitInput, 32 bytes. */
export function recoveryCommit(c: CryptoBackend, nick: string, code: Uint8Array): Promise<Uint8Array> {
  return c.sha256(recoveryCommitInput(nick, code));
}

/** A fresh recovery code: RECOVERY_CODE_BYTES from the platform's CSPRNG. */
export function newRecoveryCode(c: CryptoBackend): Uint8Array {
  return c.randomBytes(LIMITS.RECOVERY_CODE_BYTES);
}

/**
 * The text form of a code (§7.5): 26 symbols of Crockford's base 32, most significant bit first, the
 * last symbol carrying the code's last 3 bits and two zero bits, in groups of four joined by hyphens:
 * `XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XX`.
 */
export function formatRecoveryCode(code: Uint8Array): string {
  if (code.length !== LIMITS.RECOVERY_CODE_BYTES) throw new RangeError(`recovery code: expected ${LIMITS.RECOVERY_CODE_BYTES} bytes, got ${code.length}`);
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of code) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  out += ALPHABET[(acc << (5 - bits)) & 31];
  const groups: string[] = [];
  for (let i = 0; i < out.length; i += GROUP) groups.push(out.slice(i, i + GROUP));
  return groups.join('-');
}

/**
 * Parses the text form back to 16 bytes (§7.5). Accepted: the symbols in either case, with hyphens and
 * spaces anywhere (they are ignored), and Crockford's aliases O for 0 and I or L for 1. Refused
 * (RangeError): any other character, a count of symbols other than 26, and a last symbol whose two pad
 * bits are not zero (each code has one text form, up to case, aliases and separators).
 */
export function parseRecoveryCode(text: string): Uint8Array {
  const symbols: number[] = [];
  for (const ch of text.toUpperCase()) {
    if (ch === '-' || ch === ' ') continue;
    const c = ch === 'O' ? '0' : ch === 'I' || ch === 'L' ? '1' : ch;
    const v = ALPHABET.indexOf(c);
    if (v < 0) throw new RangeError('recovery code: not a symbol of the code alphabet');
    symbols.push(v);
  }
  if (symbols.length !== RECOVERY_CODE_SYMBOLS) throw new RangeError(`recovery code: expected ${RECOVERY_CODE_SYMBOLS} symbols, got ${symbols.length}`);
  if ((symbols[RECOVERY_CODE_SYMBOLS - 1]! & 3) !== 0) throw new RangeError('recovery code: the last symbol is not canonical');
  const out = new Uint8Array(LIMITS.RECOVERY_CODE_BYTES);
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const v of symbols) {
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8 && at < out.length) {
      out[at++] = (acc >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}
