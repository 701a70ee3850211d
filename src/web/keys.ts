/**
 * The browser's identity key and trust store, kept in IndexedDB (the platform part of the web client;
 * the CLI keeps the same things in files under --home).
 *
 * The RSA-2048 identity is generated here, in the page, and never leaves it: the key material is
 * exported once, imported into one RSA-OAEP key (decrypt) and one RSA-PSS key (sign), both
 * non-extractable, and the exported bytes are overwritten. IndexedDB stores CryptoKey objects by
 * structured clone, so the stored keys stay non-extractable: script on this origin can use them but can
 * never read them out (SECURITY.md, "The web client").
 *
 * Its backup (issue 18 point 2) is made in that same moment: the PKCS#8 bytes are sealed into the backup
 * format of src/crypto/backup.ts (the one `e2ee-chat key import` reads) under a random backup code that
 * the page shows once and keeps nowhere, and the sealed text is stored with the keys. Exporting later
 * hands out that stored text: the page never needs, and never again has, the key's bytes.
 */
import { BACKUP_ITERATIONS, MIN_BACKUP_ITERATIONS, sealBackup } from '../crypto/backup.js';

const DB_NAME = 'e2ee-chat';
const DB_VERSION = 2;
const IDENTITY = 'identity';
const PINS = 'pins';
/** Version 2: which nicknames this browser registered a recovery code for, per relay (spec §7.5). */
const RECOVERY = 'recovery';
const SELF = 'self';
/**
 * Key of the identity store marking that the backup code of the key under SELF was shown but not yet
 * confirmed by the user (written down or saved): a later visit says so instead of losing it silently.
 */
const CODE_UNCONFIRMED = 'backup-code-unconfirmed';

export interface StoredIdentity {
  /** DER SubjectPublicKeyInfo, 294 bytes (spec §8.1). */
  spki: Uint8Array<ArrayBuffer>;
  /** RSA-OAEP-SHA-256, usage decrypt, extractable false. */
  oaep: CryptoKey;
  /** RSA-PSS-SHA-256, usage sign, extractable false. */
  pss: CryptoKey;
  /**
   * This key's encrypted backup (src/crypto/backup.ts text), sealed when the key was made (under its backup
   * code, or a passphrase the user chose) or the backup it was imported from; absent for a key stored
   * before backups were kept.
   */
  backup?: string;
}

/** One pinned member key (spec §8.5): per relay origin and nickname. */
export interface StoredPin {
  /** `${relay} ${nick}`. */
  id: string;
  spki: Uint8Array<ArrayBuffer>;
  verified: boolean;
}

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

export function openStore(): Promise<IDBDatabase> {
  const r = indexedDB.open(DB_NAME, DB_VERSION);
  r.onupgradeneeded = () => {
    const db = r.result;
    if (!db.objectStoreNames.contains(IDENTITY)) db.createObjectStore(IDENTITY);
    if (!db.objectStoreNames.contains(PINS)) db.createObjectStore(PINS, { keyPath: 'id' });
    if (!db.objectStoreNames.contains(RECOVERY)) db.createObjectStore(RECOVERY);
  };
  return req(r);
}

async function get<T>(db: IDBDatabase, store: string, key: string): Promise<T | undefined> {
  return (await req(db.transaction(store, 'readonly').objectStore(store).get(key))) as T | undefined;
}

async function put(db: IDBDatabase, store: string, value: unknown, key?: string): Promise<void> {
  const tx = db.transaction(store, 'readwrite');
  await req(key === undefined ? tx.objectStore(store).put(value) : tx.objectStore(store).put(value, key));
}

const RSA = { modulusLength: 2048, publicExponent: Uint8Array.of(1, 0, 1), hash: 'SHA-256' } as const;

/**
 * The identity of PKCS#8 DER: imported into one RSA-OAEP and one RSA-PSS key, both non-extractable, and
 * the public key taken from it. The caller zeroes `pkcs8` (the page holds the bytes no longer than this).
 */
export async function identityOfPkcs8(pkcs8: Uint8Array<ArrayBuffer>): Promise<StoredIdentity> {
  const [oaep, pss, pub] = await Promise.all([
    crypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt']),
    crypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSA-PSS', hash: 'SHA-256' }, false, ['sign']),
    // An extractable copy only long enough to read its public half (JWK n and e), then dropped.
    crypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSA-PSS', hash: 'SHA-256' }, true, ['sign']),
  ]);
  const jwk = await crypto.subtle.exportKey('jwk', pub);
  const pubKey = await crypto.subtle.importKey('jwk', { kty: 'RSA', n: jwk.n!, e: jwk.e!, alg: 'PS256', ext: true }, { name: 'RSA-PSS', hash: 'SHA-256' }, true, ['verify']);
  for (const k of ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const) delete jwk[k];
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', pubKey));
  if ((oaep.algorithm as RsaHashedKeyAlgorithm).modulusLength !== 2048 || jwk.e !== 'AQAB') throw new RangeError('the key is not an RSA-2048 identity with exponent 65537');
  return { spki, oaep, pss };
}

/** The 32 symbols of backup codes: digits and lower-case letters, without 0, 1, l and o (read alike). */
const CODE_ALPHABET = '23456789abcdefghijkmnpqrstuvwxyz';

/**
 * A random backup code: 24 symbols of 32 (120 bits), in six groups of four, `xxxx-xxxx-...-xxxx`. It is
 * the passphrase of the backup made with a new key; it has 29 characters, over MIN_BACKUP_PASSPHRASE.
 */
export function newBackupCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(15));
  let bits = 0;
  let acc = 0;
  let out = '';
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += CODE_ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  bytes.fill(0);
  return out.match(/.{4}/g)!.join('-');
}

/**
 * Generates a new identity and lets `use` see its PKCS#8 DER once (to seal a backup) before the bytes are
 * overwritten: the only moment a key made in the page exists outside a non-extractable CryptoKey.
 */
export async function generateExportingOnce<T>(use: (pkcs8: Uint8Array<ArrayBuffer>) => Promise<T>): Promise<{ identity: StoredIdentity; result: T }> {
  const pair = await crypto.subtle.generateKey({ name: 'RSA-PSS', ...RSA }, true, ['sign', 'verify']);
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
  try {
    const [oaep, pss] = await Promise.all([
      crypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt']),
      crypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSA-PSS', hash: 'SHA-256' }, false, ['sign']),
    ]);
    const result = await use(pkcs8);
    return { identity: { spki, oaep, pss }, result };
  } finally {
    pkcs8.fill(0);
  }
}

/** Stores `identity` as this browser's key, replacing the one it had (peers will see a key change). */
export async function replaceIdentity(db: IDBDatabase, identity: StoredIdentity): Promise<void> {
  // The new key's backup is the one the user just chose or imported: no code of the old key is pending.
  const tx = db.transaction(IDENTITY, 'readwrite');
  tx.objectStore(IDENTITY).delete(CODE_UNCONFIRMED);
  await req(tx.objectStore(IDENTITY).put(identity, SELF));
}

/** Whether the backup code of the stored key was shown and never confirmed (see loadOrCreateIdentity). */
export async function backupCodeUnconfirmed(db: IDBDatabase): Promise<boolean> {
  return (await get<true>(db, IDENTITY, CODE_UNCONFIRMED)) === true;
}

/** The user wrote the backup code down or saved it. */
export async function confirmBackupCode(db: IDBDatabase): Promise<void> {
  await req(db.transaction(IDENTITY, 'readwrite').objectStore(IDENTITY).delete(CODE_UNCONFIRMED));
}

/**
 * Generates a new identity (spec §8.1: RSA-2048, e = 65537): its two non-extractable private keys and
 * its backup sealed under `passphrase` with `iterations` of PBKDF2 (BACKUP_ITERATIONS for a passphrase a
 * person chose; a random backup code of 120 bits gains nothing from more than the floor).
 */
export async function generateIdentity(passphrase: string, iterations = BACKUP_ITERATIONS): Promise<StoredIdentity> {
  const { identity, result } = await generateExportingOnce((pkcs8) => sealBackup(pkcs8, passphrase, crypto.subtle, iterations));
  return { ...identity, backup: result };
}

/**
 * The stored identity, or on first use a new one, stored with its backup; `code` is then the backup code
 * that opens that backup, to be shown to the user once (it is kept nowhere), else null. A new key is
 * stored with a mark that its code is unconfirmed, until confirmBackupCode.
 */
export async function loadOrCreateIdentity(db: IDBDatabase): Promise<{ identity: StoredIdentity; created: boolean; code: string | null }> {
  const have = await get<StoredIdentity>(db, IDENTITY, SELF);
  if (have !== undefined && have.spki instanceof Uint8Array && have.oaep instanceof CryptoKey && have.pss instanceof CryptoKey) {
    return { identity: have, created: false, code: null };
  }
  const code = newBackupCode();
  const identity = await generateIdentity(code, MIN_BACKUP_ITERATIONS);
  // The key and the mark that its code still awaits the user's confirmation, in one transaction.
  const tx = db.transaction(IDENTITY, 'readwrite');
  tx.objectStore(IDENTITY).put(true, CODE_UNCONFIRMED);
  await req(tx.objectStore(IDENTITY).put(identity, SELF));
  return { identity, created: true, code };
}

/** Every pin kept, with its relay and nickname (the id is `${relay} ${nick}`; a relay name has no space). */
export async function listPins(db: IDBDatabase): Promise<(StoredPin & { relay: string; nick: string })[]> {
  const all = (await req(db.transaction(PINS, 'readonly').objectStore(PINS).getAll())) as StoredPin[];
  return all.flatMap((p) => {
    const at = p.id.indexOf(' ');
    return at > 0 ? [{ ...p, relay: p.id.slice(0, at), nick: p.id.slice(at + 1) }] : [];
  });
}

export async function deletePin(db: IDBDatabase, relay: string, nick: string): Promise<void> {
  await req(db.transaction(PINS, 'readwrite').objectStore(PINS).delete(`${relay} ${nick}`));
}

export async function putPin(db: IDBDatabase, relay: string, nick: string, spki: Uint8Array<ArrayBuffer>, verified: boolean): Promise<void> {
  await put(db, PINS, { id: `${relay} ${nick}`, spki, verified } satisfies StoredPin);
}

/**
 * Whether this browser registered a recovery code for `nick` at `relay` (spec §7.5): the page registers
 * one at the first WELCOME of a nickname on a relay, as the CLI does (its --home/recovery.json). Only the
 * mark is kept, never the code: the code is shown once and kept by the user.
 */
export async function hasRecoveryMark(db: IDBDatabase, relay: string, nick: string): Promise<boolean> {
  return (await get<true>(db, RECOVERY, `${relay} ${nick}`)) === true;
}

export async function addRecoveryMark(db: IDBDatabase, relay: string, nick: string): Promise<void> {
  await put(db, RECOVERY, true, `${relay} ${nick}`);
}
