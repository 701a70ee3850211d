/**
 * Safety numbers and fingerprints (spec/PROTOCOL.md §8.4), synchronously on node:crypto, for Node callers
 * that need them at once (the pin store, the CLI). The formatting is src/crypto/fingerprint.ts's, which
 * also computes the same through any CryptoBackend for the core.
 */
import { createHash } from 'node:crypto';
import { SAFETY_ITERATIONS, SAFETY_VERSION, digitsOf, fingerprintOfHash, joinDigits } from './fingerprint.js';

export { SAFETY_ITERATIONS } from './fingerprint.js';

/**
 * The 30 digits of one party (§8.4): h = SHA-512(0x0000 || key || nick), then h = SHA-512(h || key)
 * 5199 times; each of the first six 5-byte chunks of h, as a big-endian integer mod 100000, gives 5 digits.
 */
export function partyDigits(nick: string, spki: Uint8Array): string {
  let h = createHash('sha512').update(SAFETY_VERSION).update(spki).update(Buffer.from(nick, 'utf8')).digest();
  for (let i = 1; i < SAFETY_ITERATIONS; i++) h = createHash('sha512').update(h).update(spki).digest();
  return digitsOf(h);
}

/**
 * The safety number of two parties (§8.4): both 30-digit strings in ascending order, concatenated, shown
 * as 12 groups of 5 digits separated by single spaces (71 characters). Symmetric in its two parties.
 */
export function safetyNumber(nickA: string, spkiA: Uint8Array, nickB: string, spkiB: Uint8Array): string {
  return joinDigits(partyDigits(nickA, spkiA), partyDigits(nickB, spkiB));
}

/** The fingerprint of one identity key (§8.4): the first 16 bytes of SHA-256(SPKI DER), hex, 8 groups of 4 joined by ':'. */
export function fingerprint(spki: Uint8Array): string {
  return fingerprintOfHash(createHash('sha256').update(spki).digest());
}
