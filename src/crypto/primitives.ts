/**
 * The symmetric and Diffie-Hellman primitives of spec/PROTOCOL.md §8.1, as thin synchronous wrappers over
 * node:crypto (OpenSSL), for Node callers (the keystore, the node:crypto backend of src/crypto/node.ts). Nothing here implements a primitive; these functions fix the parameters the protocol uses,
 * check lengths, and map every failure a peer can cause onto a ProtocolError code.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { ProtocolError } from '../protocol/errors.js';

import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, X25519_KEY_BYTES, expectLength } from './backend.js';
export { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, HASH_BYTES, X25519_KEY_BYTES } from './backend.js';

/** SHA-256 of the concatenation of `parts`: 32 bytes. */
export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HMAC-SHA-256(key, concatenation of `parts`): 32 bytes. */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HMAC-SHA-512(key, concatenation of `parts`): 64 bytes (the message chain of §8.3). */
export function hmac512(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha512', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * HKDF-SHA-256 (RFC 5869): Expand(Extract(salt, ikm), info, length), `length` bytes (1..8160).
 * An empty salt is the RFC's "not provided" (HMAC pads keys with zeros, so it equals 32 zero bytes).
 * Throws RangeError for a length HKDF cannot produce.
 */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Buffer {
  if (Number.isInteger(length) && length >= 1 && length <= HKDF_BLOCK) {
    // One block (every key of the §8.2 schedule): RFC 5869's Extract then the first Expand block,
    // T(1) = HMAC(PRK, info || 0x01), as two HMACs; half the CPU of hkdfSync, which fetches OpenSSL's KDF
    // each call (issue 16: session setup). An empty salt is a zero-length HMAC key, which HMAC pads with
    // zeros, as the RFC's default salt of HashLen zeros.
    const prk = hmac(salt, ikm);
    const t = hmac(prk, info, ONE);
    prk.fill(0);
    if (length === HKDF_BLOCK) return t;
    const out = Buffer.from(t.subarray(0, length));
    t.fill(0);
    return out;
  }
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
}

/** SHA-256's output length: what one HKDF-Expand block gives. */
const HKDF_BLOCK = 32;
const ONE = Uint8Array.of(1);

/** HKDF-Extract(salt, ikm) = HMAC-SHA-256(salt, ikm) (RFC 5869 §2.2): 32 bytes. For vectors and tests. */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  return hmac(salt, ikm);
}

/** Constant-time equality of two byte strings; false (not a throw) when the lengths differ. */
export function equalSecret(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

// DER prefixes that wrap a raw 32-byte X25519 key (RFC 8410): SubjectPublicKeyInfo and PKCS#8.
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** An X25519 key pair: the private KeyObject and the raw 32-byte public key. */
export interface X25519KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: Uint8Array;
}

/**
 * An X25519 key pair (RFC 7748). With `privateBytes` (32 bytes, tests and vectors only) the key is that
 * scalar (clamped by X25519 itself); without, a fresh key from OpenSSL's CSPRNG.
 */
export function x25519KeyPair(privateBytes?: Uint8Array): X25519KeyPair {
  if (privateBytes === undefined) {
    // JWK export hands back the raw public key without OpenSSL's (slow) DER encoder.
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    const x = publicKey.export({ format: 'jwk' }).x;
    if (typeof x !== 'string') throw new Error('X25519 JWK export without x');
    return { privateKey, publicKey: new Uint8Array(Buffer.from(x, 'base64url')) };
  }
  expectLength('X25519 private key', privateBytes, X25519_KEY_BYTES);
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, privateBytes]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: new Uint8Array(spki.subarray(X25519_SPKI_PREFIX.length)) };
}

/**
 * X25519(private, peer public): the 32-byte shared secret. Throws ProtocolError BAD_EPHEMERAL_KEY when
 * the peer's key is not 32 bytes or the result is all zero (a low-order point, spec §8.2, RFC 7748 §6.1).
 */
export function x25519(privateKey: KeyObject, peerPublic: Uint8Array): Buffer {
  if (peerPublic.length !== X25519_KEY_BYTES) throw new ProtocolError('BAD_EPHEMERAL_KEY', `X25519 key of ${peerPublic.length} bytes`);
  let shared: Buffer;
  try {
    // A raw key imported as JWK: the same key as the RFC 8410 SPKI, without OpenSSL's slow DER decoder.
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(peerPublic).toString('base64url') }, format: 'jwk' });
    shared = diffieHellman({ privateKey, publicKey });
  } catch {
    // OpenSSL refuses an all-zero result itself; either way the peer sent a low-order point.
    throw new ProtocolError('BAD_EPHEMERAL_KEY', 'X25519 failed');
  }
  if (equalSecret(shared, Buffer.alloc(X25519_KEY_BYTES))) throw new ProtocolError('BAD_EPHEMERAL_KEY', 'all-zero X25519 shared secret');
  return shared;
}

const GCM_OPTIONS = { authTagLength: AEAD_TAG_BYTES } as const;

/**
 * AES-256-GCM seal (spec §8.1): key 32 bytes, nonce 12 bytes; returns ciphertext || 16-byte tag.
 * Throws RangeError for wrong key or nonce lengths (a local error, never peer input).
 */
export function aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  expectLength('AES-256-GCM key', key, AEAD_KEY_BYTES);
  expectLength('AES-256-GCM nonce', nonce, AEAD_NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', key, nonce, GCM_OPTIONS);
  c.setAAD(ad);
  const ct = c.update(plaintext);
  // GCM is a stream mode: final() returns no bytes (only the tag is left), so it is not concatenated.
  const rest = c.final();
  return Buffer.concat(rest.length === 0 ? [ct, c.getAuthTag()] : [ct, rest, c.getAuthTag()]);
}

/**
 * AES-256-GCM open: `sealed` is ciphertext || 16-byte tag. Returns the plaintext only after the tag
 * verified. Throws ProtocolError DECRYPT_FAILED on any failure (short input, wrong tag, wrong key/AD).
 */
export function aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Buffer {
  expectLength('AES-256-GCM key', key, AEAD_KEY_BYTES);
  expectLength('AES-256-GCM nonce', nonce, AEAD_NONCE_BYTES);
  if (sealed.length < AEAD_TAG_BYTES) throw new ProtocolError('DECRYPT_FAILED', 'ciphertext shorter than the tag');
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce, GCM_OPTIONS);
    d.setAAD(ad);
    d.setAuthTag(sealed.subarray(sealed.length - AEAD_TAG_BYTES));
    const out = d.update(sealed.subarray(0, sealed.length - AEAD_TAG_BYTES));
    // final() checks the tag and, GCM being a stream mode, returns no bytes: no copy of the plaintext.
    const rest = d.final();
    return rest.length === 0 ? out : Buffer.concat([out, rest]);
  } catch {
    throw new ProtocolError('DECRYPT_FAILED', 'AES-256-GCM authentication failed');
  }
}
