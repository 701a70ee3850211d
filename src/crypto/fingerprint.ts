/**
 * Safety numbers and fingerprints (spec/PROTOCOL.md §8.4) through a CryptoBackend, for the core (every
 * platform). After Signal's numeric fingerprints: iterated SHA-512 over the identity key and the
 * nickname, so that both clients of a pair show the same 60 digits and a relay that substituted a key
 * cannot make the two numbers agree. src/crypto/safety.ts computes the same synchronously on node:crypto.
 */
import type { CryptoBackend } from './backend.js';
import { bytesToHex, concatBytes, utf8 } from './bytes.js';

/** Iterations of SHA-512 in total (the first over version || key || nick, then 5199 over h || key). */
export const SAFETY_ITERATIONS = 5200;
export const SAFETY_VERSION = Uint8Array.of(0x00, 0x00);

/** The 30 digits of a final hash h (§8.4): each of its first six 5-byte chunks, big-endian, mod 100000. */
export function digitsOf(h: Uint8Array): string {
  let out = '';
  for (let c = 0; c < 6; c++) {
    let v = 0;
    for (let i = 0; i < 5; i++) v = v * 256 + (h[c * 5 + i] as number);
    out += (v % 100000).toString().padStart(5, '0');
  }
  return out;
}

/** Both parties' 30 digits in ascending order as 12 groups of 5 digits separated by single spaces (71 characters). */
export function joinDigits(a: string, b: string): string {
  const all = a <= b ? a + b : b + a;
  return all.match(/\d{5}/g)!.join(' ');
}

/** The fingerprint shown for SHA-256(SPKI DER): its first 16 bytes, hex, 8 groups of 4 joined by ':'. */
export function fingerprintOfHash(sha256: Uint8Array): string {
  return bytesToHex(sha256.subarray(0, 16)).match(/[0-9a-f]{4}/g)!.join(':');
}

/** The 30 digits of one party (§8.4): h = SHA-512(0x0000 || key || nick), then h = SHA-512(h || key) 5199 times. */
export async function partyDigitsOf(c: CryptoBackend, nick: string, spki: Uint8Array): Promise<string> {
  let h = await c.sha512(concatBytes(SAFETY_VERSION, spki, utf8(nick)));
  const buf = new Uint8Array(h.length + spki.length);
  buf.set(spki, h.length);
  for (let i = 1; i < SAFETY_ITERATIONS; i++) {
    buf.set(h, 0);
    h = await c.sha512(buf);
  }
  return digitsOf(h);
}

/** The safety number of two parties (§8.4); symmetric in its two parties. */
export async function safetyNumberOf(c: CryptoBackend, nickA: string, spkiA: Uint8Array, nickB: string, spkiB: Uint8Array): Promise<string> {
  const [a, b] = await Promise.all([partyDigitsOf(c, nickA, spkiA), partyDigitsOf(c, nickB, spkiB)]);
  return joinDigits(a, b);
}

/** The fingerprint of one identity key (§8.4). */
export async function fingerprintOf(c: CryptoBackend, spki: Uint8Array): Promise<string> {
  return fingerprintOfHash(await c.sha256(spki));
}
