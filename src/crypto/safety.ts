/**
 * Safety numbers and fingerprints (spec/PROTOCOL.md §8.4), after Signal's numeric fingerprints:
 * iterated SHA-512 over the identity key and the nickname, so that both clients of a pair show the
 * same 60 digits and a relay that substituted a key cannot make the two numbers agree.
 */
import { createHash } from 'node:crypto';
import { sha256 } from './primitives.js';

/** Iterations of SHA-512 in total (the first over version || key || nick, then 5199 over h || key). */
export const SAFETY_ITERATIONS = 5200;
const VERSION = Uint8Array.of(0x00, 0x00);

/**
 * The 30 digits of one party (§8.4): h = SHA-512(0x0000 || key || nick), then h = SHA-512(h || key)
 * 5199 times; each of the first six 5-byte chunks of h, as a big-endian integer mod 100000, gives 5 digits.
 */
export function partyDigits(nick: string, spki: Uint8Array): string {
  let h = createHash('sha512').update(VERSION).update(spki).update(Buffer.from(nick, 'utf8')).digest();
  for (let i = 1; i < SAFETY_ITERATIONS; i++) h = createHash('sha512').update(h).update(spki).digest();
  let out = '';
  for (let c = 0; c < 6; c++) {
    const v = h.readUIntBE(c * 5, 5) % 100000;
    out += v.toString().padStart(5, '0');
  }
  return out;
}

/**
 * The safety number of two parties (§8.4): both 30-digit strings in ascending order, concatenated, shown
 * as 12 groups of 5 digits separated by single spaces (71 characters). Symmetric in its two parties.
 */
export function safetyNumber(nickA: string, spkiA: Uint8Array, nickB: string, spkiB: Uint8Array): string {
  const a = partyDigits(nickA, spkiA);
  const b = partyDigits(nickB, spkiB);
  const all = a <= b ? a + b : b + a;
  return all.match(/\d{5}/g)!.join(' ');
}

/** The fingerprint of one identity key (§8.4): the first 16 bytes of SHA-256(SPKI DER), hex, 8 groups of 4 joined by ':'. */
export function fingerprint(spki: Uint8Array): string {
  const hex = sha256(spki).subarray(0, 16).toString('hex');
  return hex.match(/[0-9a-f]{4}/g)!.join(':');
}
