/**
 * Identity keys at rest (issue 3 "Keys at rest", SECURITY.md). A key file holds the RSA private key as
 * PKCS#8 DER, either in the clear (PEM "PRIVATE KEY", for users who chose no passphrase) or sealed under
 * a passphrase: scrypt (N = 2^17, r = 8, p = 1, 128 MiB) derives an AES-256-GCM key, and the JSON
 * container's header (format and scrypt parameters) is the associated data, so a file whose work
 * factor was lowered does not open. Files are written with mode 0600 (atomically, via a temporary file
 * and rename) and a file that group or others may read or write is refused with INSECURE_PERMISSIONS.
 *
 * Node's own encrypted-PKCS#8 export uses PBKDF2 with OpenSSL's default 2048 iterations and cannot be
 * told otherwise; that is why the passphrase layer is our container around PKCS#8 rather than PKCS#8's
 * EncryptedPrivateKeyInfo.
 */
import { createPrivateKey, createPublicKey, randomBytes, scrypt as scryptCb, type KeyObject, type ScryptOptions } from 'node:crypto';
import { PrivateFileError, readPrivateFile, writePrivateFile } from '../files/private.js';
import { BACKUP_KDF, BackupError, openBackup, sealBackup } from './backup.js';
import { aeadOpen, aeadSeal } from './primitives.js';
import { parsePublicKey } from './rsa.js';

export type KeystoreErrorCode = 'INSECURE_PERMISSIONS' | 'BAD_PASSPHRASE' | 'PASSPHRASE_REQUIRED' | 'CORRUPT' | 'NOT_FOUND';

/** A key file could not be used; `code` says why (stable, for programs), the message is for people. */
export class KeystoreError extends Error {
  readonly code: KeystoreErrorCode;
  constructor(code: KeystoreErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'KeystoreError';
    this.code = code;
  }
}

export const KEYFILE_FORMAT = 'e2ee-chat identity key v1';
/** scrypt work factor written into new files: N = 2^17, r = 8, p = 1 (128 MiB, RFC 7914 / OWASP). */
export const SCRYPT_PARAMS = { N: 2 ** 17, r: 8, p: 1 } as const;
/** The weakest and strongest work factors a file may declare; outside them the file is CORRUPT. */
const MIN_LOG_N = 15;
const MAX_LOG_N = 20;
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
/** The largest key file read: an RSA-2048 PKCS#8 is about 1.2 KiB, sealed and hex-encoded about 3 KiB. */
const MAX_FILE_BYTES = 16384;
const PEM_HEADER = '-----BEGIN PRIVATE KEY-----';

interface SealedFile {
  format: typeof KEYFILE_FORMAT;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  cipher: { name: 'aes-256-gcm'; nonce: string };
  ct: string;
}

function scrypt(passphrase: string, salt: Uint8Array, p: { N: number; r: number; p: number }): Promise<Buffer> {
  const opts: ScryptOptions = { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.r * p.N * p.p + 64 * 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scryptCb(Buffer.from(passphrase.normalize('NFC'), 'utf8'), salt, 32, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** The associated data: the header of the file, so that its parameters cannot be changed unnoticed. */
function headerAd(f: Pick<SealedFile, 'format' | 'kdf' | 'cipher'>): Buffer {
  const { kdf: k, cipher: c } = f;
  const canonical = { format: f.format, kdf: { name: k.name, N: k.N, r: k.r, p: k.p, salt: k.salt }, cipher: { name: c.name, nonce: c.nonce } };
  return Buffer.from(JSON.stringify(canonical), 'utf8');
}

/** The KDF of a sealed key file: scrypt (the default), or PBKDF2 for a backup a browser can open (src/crypto/backup.ts). */
export type KeyfileKdf = 'scrypt' | 'pbkdf2';

/**
 * Writes `privateKey` (an RSA-2048 identity) to `path` with mode 0600, sealed under `passphrase` with
 * scrypt + AES-256-GCM (or with `kdf` 'pbkdf2' the backup format of src/crypto/backup.ts, which needs a
 * passphrase of MIN_BACKUP_PASSPHRASE characters: BAD_PASSPHRASE otherwise), or as clear PKCS#8 PEM when
 * `passphrase` is null. An empty passphrase is refused (BAD_PASSPHRASE). Replaces an existing file atomically.
 */
export async function saveIdentity(path: string, privateKey: KeyObject, passphrase: string | null, kdf: KeyfileKdf = 'scrypt'): Promise<void> {
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  let text: string;
  try {
    if (passphrase !== null && kdf === 'pbkdf2') {
      try {
        text = await sealBackup(pkcs8, passphrase);
      } catch (e) {
        if (e instanceof BackupError) throw new KeystoreError('BAD_PASSPHRASE', e.message);
        throw e;
      }
    } else if (passphrase === null) {
      text = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    } else {
      if (passphrase.length === 0) throw new KeystoreError('BAD_PASSPHRASE', 'an empty passphrase protects nothing; use none instead');
      const salt = randomBytes(SALT_BYTES);
      const nonce = randomBytes(NONCE_BYTES);
      const header = {
        format: KEYFILE_FORMAT,
        kdf: { name: 'scrypt', ...SCRYPT_PARAMS, salt: salt.toString('hex') },
        cipher: { name: 'aes-256-gcm', nonce: nonce.toString('hex') },
      } as const;
      const key = await scrypt(passphrase, salt, SCRYPT_PARAMS);
      const ct = aeadSeal(key, nonce, pkcs8, headerAd(header));
      key.fill(0);
      text = JSON.stringify({ ...header, ct: ct.toString('hex') } satisfies SealedFile, null, 2) + '\n';
    }
  } finally {
    pkcs8.fill(0);
  }
  await writePrivateFile(path, text);
}

/** True when `text` declares the PBKDF2 backup KDF (its strict checks are src/crypto/backup.ts parseBackup's). */
function isPbkdf2(text: string): boolean {
  try {
    const j = JSON.parse(text) as { kdf?: { name?: unknown } } | null;
    return j !== null && typeof j === 'object' && j.kdf?.name === BACKUP_KDF;
  } catch {
    return false;
  }
}

/** Reads a key file, refusing missing, oversized or insecure files (src/files/private.ts rules). */
async function readKeyFile(path: string): Promise<string> {
  try {
    return (await readPrivateFile(path, MAX_FILE_BYTES)).toString('utf8');
  } catch (e) {
    if (!(e instanceof PrivateFileError) || e.code === 'IO') throw e;
    const code = e.code === 'NOT_FOUND' || e.code === 'INSECURE_PERMISSIONS' ? e.code : 'CORRUPT';
    throw new KeystoreError(code, e.message.slice(e.code.length + 2));
  }
}

const isHex = (s: unknown, bytes?: number): s is string =>
  typeof s === 'string' && /^(?:[0-9a-f]{2})*$/.test(s) && (bytes === undefined || s.length === bytes * 2);

function parseSealed(text: string): SealedFile {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new KeystoreError('CORRUPT', 'not a key file (neither PEM nor JSON)');
  }
  const f = j as Partial<SealedFile> | null;
  const k = f?.kdf;
  const c = f?.cipher;
  const ok =
    f !== null &&
    typeof f === 'object' &&
    f.format === KEYFILE_FORMAT &&
    k?.name === 'scrypt' &&
    Number.isInteger(k.N) &&
    k.N >= 2 ** MIN_LOG_N &&
    k.N <= 2 ** MAX_LOG_N &&
    (k.N & (k.N - 1)) === 0 &&
    k.r === 8 &&
    k.p === 1 &&
    isHex(k.salt, SALT_BYTES) &&
    c?.name === 'aes-256-gcm' &&
    isHex(c.nonce, NONCE_BYTES) &&
    isHex(f.ct) &&
    f.ct.length > 32;
  if (!ok) throw new KeystoreError('CORRUPT', 'unknown format or parameters out of bounds');
  return f as SealedFile;
}

function toIdentity(key: KeyObject): { privateKey: KeyObject; publicKey: KeyObject; spki: Uint8Array } {
  const publicKey = createPublicKey(key);
  const spki = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));
  try {
    parsePublicKey(spki);
  } catch {
    throw new KeystoreError('CORRUPT', 'the key is not an RSA-2048 identity with exponent 65537');
  }
  return { privateKey: key, publicKey, spki };
}

/**
 * Loads an identity saved by `saveIdentity`. Errors (KeystoreError): NOT_FOUND; INSECURE_PERMISSIONS
 * (mode grants anything to group or others, another owner, a symlink); PASSPHRASE_REQUIRED (sealed file,
 * null passphrase); BAD_PASSPHRASE (wrong passphrase, or a sealed file altered); CORRUPT (anything else).
 * A passphrase given for a clear file is ignored.
 */
export async function loadIdentity(path: string, passphrase: string | null): Promise<{ privateKey: KeyObject; publicKey: KeyObject; spki: Uint8Array }> {
  const text = await readKeyFile(path);
  if (text.trimStart().startsWith(PEM_HEADER)) {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: text, format: 'pem' });
    } catch {
      throw new KeystoreError('CORRUPT', 'unreadable PEM private key');
    }
    return toIdentity(key);
  }
  if (isPbkdf2(text)) {
    if (passphrase === null) throw new KeystoreError('PASSPHRASE_REQUIRED', 'this key file is encrypted');
    let der: Uint8Array;
    try {
      der = await openBackup(text, passphrase);
    } catch (e) {
      if (e instanceof BackupError) throw new KeystoreError(e.code === 'BAD_PASSPHRASE' ? 'BAD_PASSPHRASE' : 'CORRUPT', e.message);
      throw e;
    }
    try {
      return toIdentity(createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }));
    } catch (e) {
      if (e instanceof KeystoreError) throw e;
      throw new KeystoreError('CORRUPT', 'unreadable PKCS#8 private key');
    } finally {
      der.fill(0);
    }
  }
  const f = parseSealed(text);
  if (passphrase === null) throw new KeystoreError('PASSPHRASE_REQUIRED', 'this key file is encrypted');
  const key = await scrypt(passphrase, Buffer.from(f.kdf.salt, 'hex'), f.kdf);
  let pkcs8: Buffer;
  try {
    // GCM cannot tell a wrong passphrase from an altered file; both mean the passphrase did not open it.
    pkcs8 = aeadOpen(key, Buffer.from(f.cipher.nonce, 'hex'), Buffer.from(f.ct, 'hex'), headerAd(f));
  } catch {
    throw new KeystoreError('BAD_PASSPHRASE', 'wrong passphrase (or the file was altered)');
  } finally {
    key.fill(0);
  }
  try {
    return toIdentity(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
  } catch (e) {
    if (e instanceof KeystoreError) throw e;
    throw new KeystoreError('CORRUPT', 'unreadable PKCS#8 private key');
  } finally {
    pkcs8.fill(0);
  }
}

/** True when the key file at `path` is sealed under a passphrase (same file checks as `loadIdentity`). */
export async function identityIsEncrypted(path: string): Promise<boolean> {
  const text = await readKeyFile(path);
  if (text.trimStart().startsWith(PEM_HEADER)) return false;
  if (!isPbkdf2(text)) parseSealed(text);
  return true;
}
