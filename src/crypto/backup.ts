/**
 * Identity backups that both the browser and the CLI can open (README "Moving one key between the page
 * and the CLI"): the key file container of src/crypto/keystore.ts (format `e2ee-chat identity key v1`,
 * AES-256-GCM over the PKCS#8 DER, the canonical JSON header as associated data) with PBKDF2-HMAC-SHA-256
 * as its KDF instead of scrypt, because WebCrypto has PBKDF2 and no scrypt (and a browser must never run
 * a hand-written KDF). 600 000 iterations is OWASP's 2023 figure for PBKDF2-HMAC-SHA-256; PBKDF2 is not
 * memory-hard, so a backup's passphrase must stand on its length (MIN_BACKUP_PASSPHRASE).
 *
 * Core code: only WebCrypto (`crypto.subtle`, in the page and in Node 20), no Node built-in.
 */
import { bytesToHex, utf8 } from './bytes.js';

export const BACKUP_FORMAT = 'e2ee-chat identity key v1';
export const BACKUP_KDF = 'pbkdf2-sha256';
/** Iterations written into new backups. */
export const BACKUP_ITERATIONS = 600_000;
/** The range a backup may declare; outside it the file is CORRUPT (a lowered work factor never opens). */
export const MIN_BACKUP_ITERATIONS = 100_000;
export const MAX_BACKUP_ITERATIONS = 10_000_000;
/** Shortest backup passphrase: a backup leaves the machine, so it must stand an offline guess alone. */
export const MIN_BACKUP_PASSPHRASE = 12;
/** The largest backup text read (an RSA-2048 PKCS#8 is about 1.2 KiB, sealed and hex-encoded about 3 KiB). */
export const MAX_BACKUP_BYTES = 16384;
const SALT_BYTES = 16;
type Subtle = typeof globalThis.crypto.subtle;
type Key = Awaited<ReturnType<Subtle['importKey']>>;
const NONCE_BYTES = 12;

export type BackupErrorCode = 'CORRUPT' | 'BAD_PASSPHRASE' | 'WEAK_PASSPHRASE' | 'SCRYPT';

/** A backup could not be made or opened; `code` says why (for programs and tests). */
export class BackupError extends Error {
  constructor(
    readonly code: BackupErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'BackupError';
  }
}

export interface BackupFile {
  format: typeof BACKUP_FORMAT;
  kdf: { name: typeof BACKUP_KDF; iterations: number; salt: string };
  cipher: { name: 'aes-256-gcm'; nonce: string };
  ct: string;
}

const isHex = (s: unknown, bytes?: number): s is string =>
  typeof s === 'string' && /^(?:[0-9a-f]{2})*$/.test(s) && (bytes === undefined || s.length === bytes * 2);

function hexToBytes(s: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The associated data: the header in one canonical order, so no parameter changes unnoticed. */
function headerAd(f: Pick<BackupFile, 'format' | 'kdf' | 'cipher'>): Uint8Array<ArrayBuffer> {
  const canonical = { format: f.format, kdf: { name: f.kdf.name, iterations: f.kdf.iterations, salt: f.kdf.salt }, cipher: { name: f.cipher.name, nonce: f.cipher.nonce } };
  return Uint8Array.from(utf8(JSON.stringify(canonical)));
}

async function deriveKey(subtle: Subtle, passphrase: string, salt: Uint8Array<ArrayBuffer>, iterations: number, usage: 'encrypt' | 'decrypt'): Promise<Key> {
  const pass = Uint8Array.from(utf8(passphrase.normalize('NFC')));
  try {
    const base = await subtle.importKey('raw', pass, 'PBKDF2', false, ['deriveKey']);
    return await subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base, { name: 'AES-GCM', length: 256 }, false, [usage]);
  } finally {
    pass.fill(0);
  }
}

/** True when `passphrase` is long enough for a backup. */
export function backupPassphraseOk(passphrase: string): boolean {
  return [...passphrase].length >= MIN_BACKUP_PASSPHRASE;
}

/** Seals PKCS#8 DER under `passphrase` (WEAK_PASSPHRASE below MIN_BACKUP_PASSPHRASE characters): the backup's text. */
export async function sealBackup(pkcs8: Uint8Array, passphrase: string, subtle: Subtle = globalThis.crypto.subtle, iterations = BACKUP_ITERATIONS): Promise<string> {
  if (!backupPassphraseOk(passphrase)) throw new BackupError('WEAK_PASSPHRASE', `a backup passphrase needs at least ${MIN_BACKUP_PASSPHRASE} characters`);
  const salt = globalThis.crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const header = {
    format: BACKUP_FORMAT,
    kdf: { name: BACKUP_KDF, iterations, salt: bytesToHex(salt) },
    cipher: { name: 'aes-256-gcm', nonce: bytesToHex(nonce) },
  } as const;
  const key = await deriveKey(subtle, passphrase, salt, iterations, 'encrypt');
  const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: headerAd(header) }, key, Uint8Array.from(pkcs8)));
  return JSON.stringify({ ...header, ct: bytesToHex(ct) } satisfies BackupFile, null, 2) + '\n';
}

/**
 * The header of a backup, checked strictly: CORRUPT for anything but this format with parameters in
 * bounds, SCRYPT for a key file sealed with scrypt (which only the CLI can open).
 */
export function parseBackup(text: string): BackupFile {
  if (text.length > MAX_BACKUP_BYTES) throw new BackupError('CORRUPT', 'too large for a backup');
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new BackupError('CORRUPT', 'not a backup (not JSON)');
  }
  const f = j as Partial<BackupFile> | null;
  if (f !== null && typeof f === 'object' && f.format === BACKUP_FORMAT && (f.kdf as { name?: unknown } | undefined)?.name === 'scrypt') {
    throw new BackupError('SCRYPT', 'this key file is sealed with scrypt, which a browser cannot compute: make the backup with `e2ee-chat key export --kdf pbkdf2`');
  }
  const k = f?.kdf;
  const c = f?.cipher;
  const ok =
    f !== null &&
    typeof f === 'object' &&
    Object.keys(f).length === 4 &&
    f.format === BACKUP_FORMAT &&
    k !== undefined &&
    Object.keys(k).length === 3 &&
    k.name === BACKUP_KDF &&
    Number.isInteger(k.iterations) &&
    k.iterations >= MIN_BACKUP_ITERATIONS &&
    k.iterations <= MAX_BACKUP_ITERATIONS &&
    isHex(k.salt, SALT_BYTES) &&
    c !== undefined &&
    Object.keys(c).length === 2 &&
    c.name === 'aes-256-gcm' &&
    isHex(c.nonce, NONCE_BYTES) &&
    isHex(f.ct) &&
    f.ct.length > 32;
  if (!ok) throw new BackupError('CORRUPT', 'unknown format or parameters out of bounds');
  return f as BackupFile;
}

/** Opens a backup: the PKCS#8 DER (the caller zeroes it). BAD_PASSPHRASE for a wrong passphrase or an altered file. */
export async function openBackup(text: string, passphrase: string, subtle: Subtle = globalThis.crypto.subtle): Promise<Uint8Array<ArrayBuffer>> {
  const f = parseBackup(text);
  const key = await deriveKey(subtle, passphrase, hexToBytes(f.kdf.salt), f.kdf.iterations, 'decrypt');
  try {
    return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: hexToBytes(f.cipher.nonce), additionalData: headerAd(f) }, key, hexToBytes(f.ct)));
  } catch {
    // GCM cannot tell a wrong passphrase from an altered file; both mean the passphrase did not open it.
    throw new BackupError('BAD_PASSPHRASE', 'wrong passphrase (or the backup was altered)');
  }
}
