/**
 * Backups of the page's identity (README "Moving one key between the page and the CLI"), in the format
 * of src/crypto/backup.ts that `e2ee-chat key import` reads and `e2ee-chat key export --kdf pbkdf2` writes.
 *
 * A key the page holds is non-extractable: no script, this page's included, can read it out. Its backup
 * is therefore made in the one moment its bytes exist: when the page makes the key (src/web/keys.ts
 * generateIdentity, under the backup code shown once, or under a passphrase for "new key with a backup")
 * or when it imports one (the imported backup itself is kept). Export hands out that stored backup.
 */
import { openBackup, backupPassphraseOk, BackupError, MIN_BACKUP_PASSPHRASE } from '../crypto/backup.js';
import { generateIdentity, identityOfPkcs8, type StoredIdentity } from './keys.js';

/** A new identity with its backup (`identity.backup`, also returned as `text`) under `passphrase`. */
export async function exportBackup(passphrase: string): Promise<{ identity: StoredIdentity; text: string }> {
  if (!backupPassphraseOk(passphrase)) throw new BackupError('WEAK_PASSPHRASE', `a backup passphrase needs at least ${MIN_BACKUP_PASSPHRASE} characters`);
  const identity = await generateIdentity(passphrase);
  return { identity, text: identity.backup! };
}

/**
 * The identity in a backup (BackupError CORRUPT, SCRYPT or BAD_PASSPHRASE when it does not open), with
 * that backup kept as its own, so that exporting it later hands out the same file.
 */
export async function importBackup(text: string, passphrase: string): Promise<StoredIdentity> {
  const pkcs8 = await openBackup(text, passphrase);
  try {
    return { ...(await identityOfPkcs8(pkcs8)), backup: text };
  } catch {
    throw new BackupError('CORRUPT', 'the backup does not hold an RSA-2048 identity key');
  } finally {
    pkcs8.fill(0);
  }
}

/** The stored backup of `identity`, or null for a key kept from before backups were made with each key. */
export function storedBackup(identity: StoredIdentity): string | null {
  return typeof identity.backup === 'string' && identity.backup !== '' ? identity.backup : null;
}
