/**
 * The node:crypto (OpenSSL) implementation of CryptoBackend: the default in Node. It sits at the edge:
 * only Node entry points (the CLI, the relay, the vectors runner, tests, benchmarks) import it; the core
 * receives it as a CryptoBackend. The operations are OpenSSL's synchronous calls (src/crypto/primitives.ts,
 * src/crypto/rsa.ts) behind the interface's promises, except the PSS signature, which runs in libuv's
 * thread pool (`pssSignAsync`).
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { HandleTable, type CryptoBackend, type SyncMessagePrimitives, type RsaPrivateKey, type RsaPublicKey, type X25519KeyPair, type X25519PrivateKey } from './backend.js';
import { aeadOpen, aeadSeal, hkdf, hmac, hmac512, x25519, x25519KeyPair } from './primitives.js';
import { oaepDecrypt, oaepEncrypt, pssSignAsync, pssVerify, publicKeyObject } from './rsa.js';

const NAME = 'node';
const publics = new HandleTable<RsaPublicKey, KeyObject>(NAME);
const privates = new HandleTable<RsaPrivateKey, KeyObject>(NAME);
const ephemerals = new HandleTable<X25519PrivateKey, KeyObject>(NAME);

const u8 = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/**
 * Our own identity key as a handle of this backend, from a KeyObject (the keystore's form). Synchronous:
 * Node callers that hold a KeyObject need no await. RangeError unless it is an RSA private key.
 */
export function nodePrivateKey(key: KeyObject): RsaPrivateKey {
  if (key.type !== 'private' || key.asymmetricKeyType !== 'rsa') throw new RangeError('expected an RSA private KeyObject');
  return privates.make({ backend: NAME }, key);
}

/** A peer's identity key as a handle of this backend, synchronously; ProtocolError BAD_PUBLIC_KEY as importPublicKey. */
export function nodePublicKey(spki: Uint8Array): RsaPublicKey {
  return publics.make({ spki: Uint8Array.from(spki), backend: NAME }, publicKeyObject(spki));
}

/** The KeyObject behind a public-key handle of this backend (for Node code that calls OpenSSL directly). */
export function nodeKeyObject(key: RsaPublicKey): KeyObject {
  return publics.get(key, 'public key');
}

/** OpenSSL's per-message primitives are synchronous: offered as such (SyncMessagePrimitives). */
const sync: SyncMessagePrimitives = {
  hmacSha512: (key, data) => u8(hmac512(key, data)),
  aesGcmSeal: (key, nonce, plaintext, ad) => u8(aeadSeal(key, nonce, plaintext, ad)),
  aesGcmOpen: (key, nonce, sealed, ad) => u8(aeadOpen(key, nonce, sealed, ad)),
};

export const nodeBackend: CryptoBackend = {
  name: NAME,
  sync,
  randomBytes: (n) => u8(randomBytes(n)),
  sha256: async (data) => u8(createHash('sha256').update(data).digest()),
  sha512: async (data) => u8(createHash('sha512').update(data).digest()),
  hmacSha256: async (key, data) => u8(hmac(key, data)),
  hmacSha512: async (key, data) => sync.hmacSha512(key, data),
  hkdfSha256: async (ikm, salt, info, length) => u8(hkdf(ikm, salt, info, length)),
  aesGcmSeal: async (key, nonce, plaintext, ad) => sync.aesGcmSeal(key, nonce, plaintext, ad),
  aesGcmOpen: async (key, nonce, sealed, ad) => sync.aesGcmOpen(key, nonce, sealed, ad),
  async x25519KeyPair(scalar): Promise<X25519KeyPair> {
    const kp = x25519KeyPair(scalar);
    return { privateKey: ephemerals.make({ backend: NAME }, kp.privateKey), publicKey: kp.publicKey };
  },
  x25519: async (privateKey, peerPublic) => u8(x25519(ephemerals.get(privateKey, 'X25519 key'), peerPublic)),
  importPublicKey: async (spki) => nodePublicKey(spki),
  async importPrivateKey(pkcs8) {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
    } catch {
      throw new RangeError('not a PKCS#8 private key');
    }
    return nodePrivateKey(key);
  },
  oaepEncrypt: async (publicKey, message) => oaepEncrypt(publics.get(publicKey, 'public key'), message),
  oaepDecrypt: async (privateKey, ciphertext, label) => oaepDecrypt(privates.get(privateKey, 'private key'), ciphertext, label),
  // In the thread pool: a handshake step signs beside its OAEP decryption, off the event loop.
  pssSign: async (privateKey, message) => pssSignAsync(privates.get(privateKey, 'private key'), message),
  pssVerify: async (publicKey, message, signature) => pssVerify(publics.get(publicKey, 'public key'), message, signature),
};

/** The public key of a private KeyObject as SPKI DER (294 bytes for an identity key). */
export function spkiOf(key: KeyObject): Uint8Array {
  return u8(createPublicKey(key).export({ format: 'der', type: 'spki' }));
}
