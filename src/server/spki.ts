/**
 * The relay's check of a HELLO key (spec §8.1: a canonical RSA-2048 SPKI with exponent 65537) by byte
 * comparison with the one template such a key has, and the import of its modulus only once AUTH is to be
 * verified. Parsing DER with OpenSSL costs about 0.7 ms for a key not seen before (issue 12: a stranger
 * with random moduli made the relay parse at that price); the template comparison costs next to nothing,
 * and a JWK import of a template-checked modulus about 40 us, paid only by a client that sent an AUTH.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';

/** SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { SEQUENCE { INTEGER (257 bytes: 00 || n) ... */
const HEAD = Buffer.from('30820122300d06092a864886f70d01010105000382010f003082010a0282010100', 'hex');
/** ... INTEGER 65537 } } }. */
const TAIL = Buffer.from('0203010001', 'hex');
const MODULUS_BYTES = 256;
export const SPKI_BYTES = HEAD.length + MODULUS_BYTES + TAIL.length; // 294

/**
 * True when `spki` is byte for byte the canonical DER SPKI of an RSA key with a 2048-bit modulus and
 * exponent 65537: the fixed head, 256 modulus bytes whose first has its top bit set, the fixed tail.
 * Every other encoding (another length, type, exponent, a non-minimal length or integer) differs in a byte.
 */
export function isTemplateSpki(spki: Uint8Array): boolean {
  if (spki.length !== SPKI_BYTES) return false;
  const b = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength);
  return b.subarray(0, HEAD.length).equals(HEAD) && b[HEAD.length]! >= 0x80 && b.subarray(HEAD.length + MODULUS_BYTES).equals(TAIL);
}

/** The public key of a template-checked SPKI (`isTemplateSpki` must hold), imported from its modulus. */
export function importTemplateSpki(spki: Uint8Array): KeyObject {
  const n = Buffer.from(spki.buffer, spki.byteOffset + HEAD.length, MODULUS_BYTES);
  return createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: 'AQAB' }, format: 'jwk' });
}

/** Keys kept imported by a `KeyCache`: a few hundred KB of OpenSSL key objects at most, whatever the load. */
export const KEY_CACHE_ENTRIES = 256;

/**
 * The imported keys of recently proven identities, by their SPKI (base64), least recently used dropped
 * first: a returning key is verified without importing it again (the import costs about as much as the
 * PSS verification itself). Only a key whose signature verified is put in (`remember`), so a stranger's
 * random moduli can push out at most the keys it proves it holds.
 */
export class KeyCache {
  private readonly keys = new Map<string, KeyObject>();

  constructor(private readonly max: number = KEY_CACHE_ENTRIES) {}

  /** The key of `spki` (template-checked), from the cache or imported now; `id` is its base64. */
  get(id: string, spki: Uint8Array): KeyObject {
    const k = this.keys.get(id);
    if (k === undefined) return importTemplateSpki(spki);
    this.keys.delete(id);
    this.keys.set(id, k);
    return k;
  }

  /** Keeps `key` (whose signature just verified) under `id`. */
  remember(id: string, key: KeyObject): void {
    if (this.keys.has(id)) return;
    if (this.keys.size >= this.max) this.keys.delete(this.keys.keys().next().value!);
    this.keys.set(id, key);
  }

  get size(): number {
    return this.keys.size;
  }
}
