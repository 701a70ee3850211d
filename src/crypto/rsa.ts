/**
 * RSA identity keys: validation of a peer's public key, RSA-PSS signatures and RSA-OAEP key transport
 * (spec/PROTOCOL.md §8.1), all through node:crypto (OpenSSL), synchronously. Node only (the relay, the
 * keystore and the node:crypto backend of src/crypto/node.ts); the core goes through src/crypto/backend.ts.
 */
import { constants, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, sign, verify, type KeyObject } from 'node:crypto';
import { ProtocolError } from '../protocol/errors.js';
import { identityModulus } from './identity.js';
import { PSS_SALT_BYTES, RSA_MODULUS_BITS } from './backend.js';
export { PSS_SALT_BYTES, RSA_MODULUS_BITS } from './backend.js';

/** An identity public key that has passed `parsePublicKey`: only that function makes one. */
export interface PublicIdentity {
  readonly spki: Uint8Array;
  readonly key: KeyObject;
  readonly __verified: unique symbol;
}

/**
 * Parses a peer's identity key (DER SubjectPublicKeyInfo). Throws ProtocolError BAD_PUBLIC_KEY unless it
 * is a canonical RSA key with a 2048-bit modulus and exponent 65537 (spec §8.1; the check is on the bytes,
 * src/crypto/identity.ts). The key is imported from its modulus as a JWK, which skips OpenSSL's DER decoder.
 */
export function parsePublicKey(spki: Uint8Array): PublicIdentity {
  return { spki: Uint8Array.from(spki), key: publicKeyObject(spki) } as unknown as PublicIdentity;
}

/** The KeyObject of an identity key that passes §8.1; ProtocolError BAD_PUBLIC_KEY otherwise. */
export function publicKeyObject(spki: Uint8Array): KeyObject {
  const n = Buffer.from(identityModulus(spki)).toString('base64url');
  try {
    return createPublicKey({ key: { kty: 'RSA', n, e: 'AQAB' }, format: 'jwk' });
  } catch {
    throw new ProtocolError('BAD_PUBLIC_KEY', 'OpenSSL refused the RSA key');
  }
}

/** Generates a fresh identity key pair (RSA-2048, e = 65537). */
export function generateIdentity(): { privateKey: KeyObject; publicKey: KeyObject; spki: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: RSA_MODULUS_BITS, publicExponent: 65537 });
  return { privateKey, publicKey, spki: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })) };
}

const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_BYTES } as const;

/** RSA-PSS-SHA-256 (MGF1-SHA-256, 32-byte salt) signature of `message`: 256 bytes. */
export function pssSign(privateKey: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign('sha256', message, { key: privateKey, ...PSS }));
}

/**
 * The same signature computed in libuv's thread pool (node:crypto's asynchronous `sign`), so the event
 * loop is free meanwhile and a caller can run another operation beside it (the responder's OAEP
 * decryption, src/handshake/session.ts). Rejects where `pssSign` throws.
 */
export function pssSignAsync(privateKey: KeyObject, message: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    sign('sha256', message, { key: privateKey, ...PSS }, (err, sig) => (err === null ? resolve(new Uint8Array(sig)) : reject(err)));
  });
}

/** Verifies an RSA-PSS-SHA-256 signature (salt length exactly 32). Never throws. */
export function pssVerify(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify('sha256', message, { key: publicKey, ...PSS }, signature);
  } catch {
    return false;
  }
}

const OAEP = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' } as const;

/** RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) encryption: 256 bytes. */
export function oaepEncrypt(publicKey: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(publicEncrypt({ key: publicKey, ...OAEP }, message));
}

/**
 * RSA-OAEP decryption; throws ProtocolError OAEP_FAILED on any failure. The protocol uses the empty
 * label (§8.1); `label` exists for the Wycheproof suites, whose cases carry labels.
 */
export function oaepDecrypt(privateKey: KeyObject, ciphertext: Uint8Array, label?: Uint8Array): Uint8Array {
  try {
    const opts = label === undefined || label.length === 0 ? { key: privateKey, ...OAEP } : { key: privateKey, ...OAEP, oaepLabel: label };
    return new Uint8Array(privateDecrypt(opts, ciphertext));
  } catch {
    throw new ProtocolError('OAEP_FAILED', 'RSA-OAEP decryption failed');
  }
}

export { lp } from './bytes.js';
export { authMessage } from './identity.js';
