/**
 * Backups of the page's identity (README "Moving one key between the page and the CLI"), in the format
 * of src/crypto/backup.ts that `e2ee-chat key import` reads and `e2ee-chat key export --kdf pbkdf2` writes.
 *
 * A key the page made is non-extractable: no script, this page's included, can read it out later, so an
 * existing key cannot be backed up. A backup is made with a NEW key, sealed in the one moment its bytes
 * exist (src/web/keys.ts generateExportingOnce); import reads a backup's bytes, imports them as
 * non-extractable keys, and overwrites them.
 */
import { openBackup, sealBackup, backupPassphraseOk, BackupError, MIN_BACKUP_PASSPHRASE } from '../crypto/backup.js';
import { generateExportingOnce, identityOfPkcs8, type StoredIdentity } from './keys.js';

/** A new identity and the text of its backup under `passphrase`. */
export async function exportBackup(passphrase: string): Promise<{ identity: StoredIdentity; text: string }> {
  if (!backupPassphraseOk(passphrase)) throw new BackupError('WEAK_PASSPHRASE', `a backup passphrase needs at least ${MIN_BACKUP_PASSPHRASE} characters`);
  const { identity, result } = await generateExportingOnce((pkcs8) => sealBackup(pkcs8, passphrase));
  return { identity, text: result };
}

/** The identity in a backup (BackupError CORRUPT, SCRYPT or BAD_PASSPHRASE when it does not open). */
export async function importBackup(text: string, passphrase: string): Promise<StoredIdentity> {
  const pkcs8 = await openBackup(text, passphrase);
  try {
    return await identityOfPkcs8(pkcs8);
  } catch {
    throw new BackupError('CORRUPT', 'the backup does not hold an RSA-2048 identity key');
  } finally {
    pkcs8.fill(0);
  }
}
