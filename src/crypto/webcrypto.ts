/**
 * The WebCrypto implementation of CryptoBackend (`crypto.subtle`, as browsers have it, and as Node has it
 * since version 20): RSA-OAEP, RSA-PSS, HKDF, HMAC, AES-GCM, X25519, SHA-256/512. Part of the core: it
 * uses only web globals, so the browser client runs the protocol with it, and `e2ee-chat vectors verify
 * --crypto webcrypto` runs every vector through it in Node.
 *
 * WebCrypto binds a key to one algorithm, so an identity key is imported twice (OAEP and PSS), once per
 * peer, and kept behind the handle. Every failure a peer can cause maps onto the ProtocolError code the
 * node:crypto backend gives for it.
 */
import { ProtocolError } from '../protocol/errors.js';
import {
  AEAD_KEY_BYTES,
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
  HandleTable,
  PSS_SALT_BYTES,
  RSA_MODULUS_BITS,
  X25519_KEY_BYTES,
  expectLength,
  type CryptoBackend,
  type RsaPrivateKey,
  type RsaPublicKey,
  type X25519KeyPair,
  type X25519PrivateKey,
} from './backend.js';
import { concatBytes, isAllZero } from './bytes.js';
import { identityModulus } from './identity.js';

type WebCrypto = typeof globalThis.crypto;
type Subtle = WebCrypto['subtle'];
type Key = Awaited<ReturnType<Subtle['importKey']>>;

const NAME = 'webcrypto';
const OAEP = { name: 'RSA-OAEP', hash: 'SHA-256' } as const;
const PSS = { name: 'RSA-PSS', hash: 'SHA-256' } as const;
const X25519 = { name: 'X25519' } as const;
/** RFC 8410 PKCS#8 prefix of a raw 32-byte X25519 private key. */
const X25519_PKCS8_PREFIX = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20);
/** The X25519 base point, u = 9 (RFC 7748 §4.1): X25519(k, 9) is the public key of k. */
const BASE_POINT = Uint8Array.of(9, ...new Uint8Array(31));
/** getRandomValues fills at most 65 536 bytes per call. */
const RANDOM_CHUNK = 65536;
const HKDF_MAX_BYTES = 255 * 32;

/**
 * WebCrypto takes views of an ArrayBuffer (lib.dom's BufferSource excludes SharedArrayBuffer): a view of
 * one is passed as it is, anything else (a view of a SharedArrayBuffer) as a copy.
 */
function view(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b.buffer instanceof ArrayBuffer ? (b as Uint8Array<ArrayBuffer>) : Uint8Array.from(b);
}

interface RsaPair {
  readonly oaep: Key;
  readonly pss: Key;
}

/** The WebCrypto backend, with a way in for keys that already are CryptoKeys. */
export interface WebCryptoBackend extends CryptoBackend {
  /**
   * Our identity key from the two CryptoKeys a page keeps (for example non-extractable, in IndexedDB):
   * RSA-OAEP-SHA-256 with usage decrypt and RSA-PSS-SHA-256 with usage sign, both 2048 bits. RangeError
   * for any other pair.
   */
  privateKeyFromCryptoKeys(oaep: Key, pss: Key): RsaPrivateKey;
}

/** A CryptoBackend over `webcrypto` (default: the platform's `globalThis.crypto`). */
export function webCryptoBackend(webcrypto: WebCrypto = globalThis.crypto): WebCryptoBackend {
  const subtle: Subtle = webcrypto.subtle;
  const publics = new HandleTable<RsaPublicKey, RsaPair>(NAME);
  const privates = new HandleTable<RsaPrivateKey, RsaPair>(NAME);
  const ephemerals = new HandleTable<X25519PrivateKey, Key>(NAME);
  const bytes = (b: ArrayBuffer): Uint8Array => new Uint8Array(b);

  const hmac = async (hash: 'SHA-256' | 'SHA-512', key: Uint8Array, data: Uint8Array): Promise<Uint8Array> => {
    // WebCrypto refuses a zero-length HMAC key; HMAC pads every key with zeros to the block size, so
    // the empty key and the one-byte key 0x00 are the same key (RFC 2104 §2).
    const k = await subtle.importKey('raw', key.length === 0 ? new Uint8Array(1) : view(key), { name: 'HMAC', hash }, false, ['sign']);
    return bytes(await subtle.sign('HMAC', k, view(data)));
  };

  const derive = async (privateKey: Key, peer: Uint8Array): Promise<Uint8Array> => {
    const pub = await subtle.importKey('raw', view(peer), X25519, false, []);
    return bytes(await subtle.deriveBits({ name: 'X25519', public: pub }, privateKey, 8 * X25519_KEY_BYTES));
  };

  return {
    name: NAME,
    privateKeyFromCryptoKeys(oaep, pss) {
      const fits = (k: Key, name: string, usage: 'decrypt' | 'sign') => {
        const a = k.algorithm as { name?: string; modulusLength?: number; hash?: { name?: string } };
        return k.type === 'private' && a.name === name && a.hash?.name === 'SHA-256' && a.modulusLength === RSA_MODULUS_BITS && k.usages.includes(usage);
      };
      if (!fits(oaep, 'RSA-OAEP', 'decrypt') || !fits(pss, 'RSA-PSS', 'sign')) throw new RangeError('expected RSA-2048 private CryptoKeys: RSA-OAEP-SHA-256 (decrypt) and RSA-PSS-SHA-256 (sign)');
      return privates.make({ backend: NAME }, { oaep, pss });
    },
    randomBytes(n) {
      const out = new Uint8Array(n);
      for (let at = 0; at < n; at += RANDOM_CHUNK) webcrypto.getRandomValues(out.subarray(at, Math.min(n, at + RANDOM_CHUNK)));
      return out;
    },
    sha256: async (data) => bytes(await subtle.digest('SHA-256', view(data))),
    sha512: async (data) => bytes(await subtle.digest('SHA-512', view(data))),
    hmacSha256: (key, data) => hmac('SHA-256', key, data),
    hmacSha512: (key, data) => hmac('SHA-512', key, data),
    async hkdfSha256(ikm, salt, info, length) {
      if (!Number.isInteger(length) || length < 1 || length > HKDF_MAX_BYTES) throw new RangeError(`HKDF-SHA-256 length ${length}, expected 1..${HKDF_MAX_BYTES}`);
      const k = await subtle.importKey('raw', view(ikm), 'HKDF', false, ['deriveBits']);
      return bytes(await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: view(salt), info: view(info) }, k, 8 * length));
    },
    async aesGcmSeal(key, nonce, plaintext, ad) {
      expectLength('AES-256-GCM key', key, AEAD_KEY_BYTES);
      expectLength('AES-256-GCM nonce', nonce, AEAD_NONCE_BYTES);
      const k = await subtle.importKey('raw', view(key), 'AES-GCM', false, ['encrypt']);
      return bytes(await subtle.encrypt({ name: 'AES-GCM', iv: view(nonce), additionalData: view(ad), tagLength: 8 * AEAD_TAG_BYTES }, k, view(plaintext)));
    },
    async aesGcmOpen(key, nonce, sealed, ad) {
      expectLength('AES-256-GCM key', key, AEAD_KEY_BYTES);
      expectLength('AES-256-GCM nonce', nonce, AEAD_NONCE_BYTES);
      if (sealed.length < AEAD_TAG_BYTES) throw new ProtocolError('DECRYPT_FAILED', 'ciphertext shorter than the tag');
      const k = await subtle.importKey('raw', view(key), 'AES-GCM', false, ['decrypt']);
      try {
        return bytes(await subtle.decrypt({ name: 'AES-GCM', iv: view(nonce), additionalData: view(ad), tagLength: 8 * AEAD_TAG_BYTES }, k, view(sealed)));
      } catch {
        throw new ProtocolError('DECRYPT_FAILED', 'AES-256-GCM authentication failed');
      }
    },
    async x25519KeyPair(scalar): Promise<X25519KeyPair> {
      if (scalar === undefined) {
        const kp = (await subtle.generateKey(X25519, true, ['deriveBits'])) as { privateKey: Key; publicKey: Key };
        return { privateKey: ephemerals.make({ backend: NAME }, kp.privateKey), publicKey: bytes(await subtle.exportKey('raw', kp.publicKey)) };
      }
      expectLength('X25519 private key', scalar, X25519_KEY_BYTES);
      const privateKey = await subtle.importKey('pkcs8', view(concatBytes(X25519_PKCS8_PREFIX, scalar)), X25519, false, ['deriveBits']);
      return { privateKey: ephemerals.make({ backend: NAME }, privateKey), publicKey: await derive(privateKey, BASE_POINT) };
    },
    async x25519(privateKey, peerPublic) {
      const priv = ephemerals.get(privateKey, 'X25519 key');
      if (peerPublic.length !== X25519_KEY_BYTES) throw new ProtocolError('BAD_EPHEMERAL_KEY', `X25519 key of ${peerPublic.length} bytes`);
      let shared: Uint8Array;
      try {
        shared = await derive(priv, peerPublic);
      } catch {
        // The platform refuses an all-zero result itself; either way the peer sent a low-order point.
        throw new ProtocolError('BAD_EPHEMERAL_KEY', 'X25519 failed');
      }
      if (isAllZero(shared)) throw new ProtocolError('BAD_EPHEMERAL_KEY', 'all-zero X25519 shared secret');
      return shared;
    },
    async importPublicKey(spki) {
      identityModulus(spki);
      const own = Uint8Array.from(spki);
      let pair: RsaPair;
      try {
        const [oaep, pss] = await Promise.all([subtle.importKey('spki', own, OAEP, false, ['encrypt']), subtle.importKey('spki', own, PSS, false, ['verify'])]);
        pair = { oaep, pss };
      } catch {
        throw new ProtocolError('BAD_PUBLIC_KEY', 'WebCrypto refused the RSA key');
      }
      return publics.make({ spki: own, backend: NAME }, pair);
    },
    async importPrivateKey(pkcs8) {
      let pair: RsaPair;
      try {
        const [oaep, pss] = await Promise.all([subtle.importKey('pkcs8', view(pkcs8), OAEP, false, ['decrypt']), subtle.importKey('pkcs8', view(pkcs8), PSS, false, ['sign'])]);
        pair = { oaep, pss };
      } catch {
        throw new RangeError('not a PKCS#8 RSA private key');
      }
      const bits = (pair.pss.algorithm as { modulusLength?: number }).modulusLength;
      if (bits !== RSA_MODULUS_BITS) throw new RangeError(`RSA private key of ${String(bits)} bits, expected ${RSA_MODULUS_BITS}`);
      return privates.make({ backend: NAME }, pair);
    },
    oaepEncrypt: async (publicKey, message) => bytes(await subtle.encrypt({ name: 'RSA-OAEP' }, publics.get(publicKey, 'public key').oaep, view(message))),
    async oaepDecrypt(privateKey, ciphertext, label) {
      const key = privates.get(privateKey, 'private key').oaep;
      try {
        return bytes(await subtle.decrypt(label === undefined || label.length === 0 ? { name: 'RSA-OAEP' } : { name: 'RSA-OAEP', label: view(label) }, key, view(ciphertext)));
      } catch {
        throw new ProtocolError('OAEP_FAILED', 'RSA-OAEP decryption failed');
      }
    },
    pssSign: async (privateKey, message) => bytes(await subtle.sign({ name: 'RSA-PSS', saltLength: PSS_SALT_BYTES }, privates.get(privateKey, 'private key').pss, view(message))),
    async pssVerify(publicKey, message, signature) {
      const key = publics.get(publicKey, 'public key').pss;
      try {
        return await subtle.verify({ name: 'RSA-PSS', saltLength: PSS_SALT_BYTES }, key, view(signature), view(message));
      } catch {
        return false;
      }
    },
  };
}
