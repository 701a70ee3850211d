/**
 * RSA identity keys: validation of a peer's public key, RSA-PSS signatures and RSA-OAEP key transport
 * (spec/PROTOCOL.md §8.1), all through node:crypto (OpenSSL).
 */
import { constants, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, sign, verify, type KeyObject } from 'node:crypto';
import { ProtocolError } from '../protocol/errors.js';

export const RSA_MODULUS_BITS = 2048;
export const RSA_PUBLIC_EXPONENT = 65537n;
export const PSS_SALT_BYTES = 32;

/** An identity public key that has passed `parsePublicKey`: only that function makes one. */
export interface PublicIdentity {
  readonly spki: Uint8Array;
  readonly key: KeyObject;
  readonly __verified: unique symbol;
}

/**
 * Parses a peer's identity key (DER SubjectPublicKeyInfo). Throws ProtocolError BAD_PUBLIC_KEY unless it
 * is a canonical RSA key with a 2048-bit modulus and exponent 65537 (spec §8.1).
 */
export function parsePublicKey(spki: Uint8Array): PublicIdentity {
  // Validation costs more than the RSA operations of a handshake (OpenSSL 3's DER decoder and encoder);
  // a key's bytes decide its result, so accepted keys are remembered, in a bounded map.
  const id = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength).toString('base64');
  const hit = ACCEPTED.get(id);
  // A fresh object and a fresh copy of the bytes each time: no caller can alter what another receives.
  if (hit !== undefined) return { spki: Uint8Array.from(spki), key: hit } as unknown as PublicIdentity;
  const parsed = parseUncached(spki);
  if (ACCEPTED.size >= ACCEPTED_MAX) ACCEPTED.delete(ACCEPTED.keys().next().value as string);
  ACCEPTED.set(id, parsed.key);
  return parsed;
}

const ACCEPTED = new Map<string, KeyObject>();
const ACCEPTED_MAX = 1024;

function parseUncached(spki: Uint8Array): PublicIdentity {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    throw new ProtocolError('BAD_PUBLIC_KEY', 'not a DER SubjectPublicKeyInfo');
  }
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType !== 'rsa') throw new ProtocolError('BAD_PUBLIC_KEY', `key type ${String(key.asymmetricKeyType)}, expected rsa`);
  if (d?.modulusLength !== RSA_MODULUS_BITS) throw new ProtocolError('BAD_PUBLIC_KEY', `modulus of ${String(d?.modulusLength)} bits, expected 2048`);
  if (d.publicExponent !== RSA_PUBLIC_EXPONENT) throw new ProtocolError('BAD_PUBLIC_KEY', 'public exponent is not 65537');
  const again = key.export({ format: 'der', type: 'spki' });
  if (!again.equals(Buffer.from(spki))) throw new ProtocolError('BAD_PUBLIC_KEY', 'non-canonical DER encoding');
  return { spki: Uint8Array.from(spki), key } as unknown as PublicIdentity;
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

/** `lp(x)` of spec §1: a 4-byte big-endian length, then the bytes (strings as UTF-8). */
export function lp(x: Uint8Array | string): Buffer {
  const b = typeof x === 'string' ? Buffer.from(x, 'utf8') : Buffer.from(x.buffer, x.byteOffset, x.length);
  const out = Buffer.allocUnsafe(4 + b.length);
  out.writeUInt32BE(b.length, 0);
  b.copy(out, 4);
  return out;
}

/** The message a client signs to authenticate to the relay (spec §7.3). */
export function authMessage(nonce: Uint8Array, nick: string, spki: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from('e2ee-chat/1 auth', 'ascii'), lp(nonce), lp(nick), lp(spki)]);
}
