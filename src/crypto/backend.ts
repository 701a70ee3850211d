/**
 * The cryptography the protocol needs (spec/PROTOCOL.md §8.1), as one interface with one implementation
 * per platform: node:crypto (src/crypto/node.ts, the default in Node) and WebCrypto
 * (src/crypto/webcrypto.ts, `globalThis.crypto.subtle` as browsers have it). The core (handshake,
 * session, key schedule, client core) calls only this interface, so it runs unchanged on either.
 *
 * Every operation that WebCrypto makes asynchronous is asynchronous here; callers await them in order
 * (src/handshake/session.ts runs one operation at a time per peer). Keys are imported once and handed
 * around as opaque handles: only the backend that made a handle can use it (a handle of another backend
 * is a local programming error, a TypeError, never peer input).
 */

export const X25519_KEY_BYTES = 32;
export const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 12;
export const AEAD_TAG_BYTES = 16;
export const HASH_BYTES = 32;
export const RSA_MODULUS_BITS = 2048;
export const PSS_SALT_BYTES = 32;

declare const publicBrand: unique symbol;
declare const privateBrand: unique symbol;
declare const x25519Brand: unique symbol;

/**
 * A peer's RSA identity key after the checks of §8.1 (canonical DER SubjectPublicKeyInfo, RSA, 2048-bit
 * modulus, e = 65537), imported for RSA-OAEP encryption and RSA-PSS verification. Only a backend's
 * `importPublicKey` makes one; `spki` is a private copy of the bytes it was made from.
 */
export interface RsaPublicKey {
  readonly spki: Uint8Array;
  readonly backend: string;
  readonly [publicBrand]: true;
}

/** Our own RSA identity key, imported for RSA-OAEP decryption and RSA-PSS signing. */
export interface RsaPrivateKey {
  readonly backend: string;
  readonly [privateBrand]: true;
}

/** The private half of an X25519 key pair (RFC 7748), opaque. */
export interface X25519PrivateKey {
  readonly backend: string;
  readonly [x25519Brand]: true;
}

/** An X25519 key pair: the private handle and the raw 32-byte public key. */
export interface X25519KeyPair {
  readonly privateKey: X25519PrivateKey;
  readonly publicKey: Uint8Array;
}

/**
 * The per-message primitives of §8.3 (the chain step and the AEAD), synchronously: what a backend whose
 * operations are synchronous underneath (node:crypto) offers beside its promises. Same results and the
 * same errors as the asynchronous methods of the same names. Where a backend has them, the session seals
 * and opens a message with no promise per primitive (issue 16: a lone message leaves in the turn it is
 * sealed, with the fewest steps); WebCrypto has none, and the session then awaits the methods below.
 */
export interface SyncMessagePrimitives {
  hmacSha512(key: Uint8Array, data: Uint8Array): Uint8Array;
  aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array;
  aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array;
}

export interface CryptoBackend {
  /** 'node' or 'webcrypto'. */
  readonly name: string;
  /** The per-message primitives synchronously, where the platform has them (see SyncMessagePrimitives). */
  readonly sync?: SyncMessagePrimitives;

  /** `n` bytes from the platform's CSPRNG (synchronous on every platform). */
  randomBytes(n: number): Uint8Array;

  /** SHA-256: 32 bytes. */
  sha256(data: Uint8Array): Promise<Uint8Array>;
  /** SHA-512: 64 bytes. */
  sha512(data: Uint8Array): Promise<Uint8Array>;
  /** HMAC-SHA-256(key, data): 32 bytes. `key` may be empty (HMAC pads it with zeros). */
  hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array>;
  /** HMAC-SHA-512(key, data): 64 bytes. */
  hmacSha512(key: Uint8Array, data: Uint8Array): Promise<Uint8Array>;
  /**
   * HKDF-SHA-256 (RFC 5869) Expand(Extract(salt, ikm), info, length): `length` bytes (1..8160). An empty
   * salt is RFC 5869's "not provided". RangeError for a length HKDF cannot produce.
   */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array>;

  /** AES-256-GCM seal: key 32 bytes, nonce 12; ciphertext || 16-byte tag. RangeError for wrong lengths. */
  aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Promise<Uint8Array>;
  /** AES-256-GCM open of ciphertext || tag; ProtocolError DECRYPT_FAILED on any failure. */
  aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Promise<Uint8Array>;

  /** A fresh X25519 key pair, or with `scalar` (32 bytes, tests and vectors only) the pair of that scalar. */
  x25519KeyPair(scalar?: Uint8Array): Promise<X25519KeyPair>;
  /**
   * X25519(private, peer public): 32 bytes. ProtocolError BAD_EPHEMERAL_KEY when the peer key is not
   * 32 bytes or the result is all zero (a low-order point, §8.2, RFC 7748 §6.1).
   */
  x25519(privateKey: X25519PrivateKey, peerPublic: Uint8Array): Promise<Uint8Array>;

  /** Checks and imports a peer's identity key (§8.1); ProtocolError BAD_PUBLIC_KEY when it is refused. */
  importPublicKey(spki: Uint8Array): Promise<RsaPublicKey>;
  /** Imports our own RSA-2048 private key from PKCS#8 DER (a local key: errors are RangeError). */
  importPrivateKey(pkcs8: Uint8Array): Promise<RsaPrivateKey>;
  /** RSA-OAEP-SHA-256 (MGF1-SHA-256, empty label): 256 bytes. */
  oaepEncrypt(publicKey: RsaPublicKey, message: Uint8Array): Promise<Uint8Array>;
  /**
   * RSA-OAEP-SHA-256 decryption; ProtocolError OAEP_FAILED on any failure. The protocol uses the empty
   * label; `label` exists for the Wycheproof suites.
   */
  oaepDecrypt(privateKey: RsaPrivateKey, ciphertext: Uint8Array, label?: Uint8Array): Promise<Uint8Array>;
  /** RSA-PSS-SHA-256 (MGF1-SHA-256, 32-byte salt): 256 bytes. */
  pssSign(privateKey: RsaPrivateKey, message: Uint8Array): Promise<Uint8Array>;
  /** Verifies an RSA-PSS-SHA-256 signature with salt length 32. Never throws for peer input. */
  pssVerify(publicKey: RsaPublicKey, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

/** RangeError unless `x` has exactly `n` bytes (a local error: callers check peer input first). */
export function expectLength(what: string, x: Uint8Array, n: number): void {
  if (x.length !== n) throw new RangeError(`${what}: expected Uint8Array of length ${n}, got length=${x.length}`);
}

/**
 * Handles of one backend: a handle is a frozen object the backend registered, and `get` finds what the
 * backend keeps behind it. A handle made anywhere else (another backend, a forged object) is refused.
 */
export class HandleTable<H extends object, V> {
  readonly #map = new WeakMap<H, V>();
  constructor(readonly backend: string) {}

  make(fields: Omit<H, typeof publicBrand | typeof privateBrand | typeof x25519Brand>, value: V): H {
    const h = Object.freeze({ ...fields }) as unknown as H;
    this.#map.set(h, value);
    return h;
  }

  get(h: H, what: string): V {
    const v = this.#map.get(h);
    if (v === undefined) throw new TypeError(`${what}: not a key of the ${this.backend} backend`);
    return v;
  }
}
