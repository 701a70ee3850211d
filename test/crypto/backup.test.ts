// Identity backups a browser can open (src/crypto/backup.ts): PBKDF2-HMAC-SHA-256 + AES-256-GCM over
// PKCS#8 in the key file container, run here on Node's WebCrypto as the page runs it on Chromium's; the
// keystore reads and writes the same files (`e2ee-chat key export --kdf pbkdf2`, `key import`). Every
// refusal is a BackupError / KeystoreError code.
import t from 'tap';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupError, MIN_BACKUP_ITERATIONS, openBackup, parseBackup, sealBackup } from '../../src/crypto/backup.js';
import { identityIsEncrypted, KeystoreError, loadIdentity, saveIdentity } from '../../src/crypto/keystore.js';
import { fixedIdentity } from '../../src/vectors/crypto-keys.js';

const dir = await mkdtemp(join(tmpdir(), 'e2ee-backup-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const alice = fixedIdentity('alice');
const PASS = 'a long backup passphrase';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    return e instanceof BackupError || e instanceof KeystoreError ? e.code : `other: ${String(e)}`;
  }
}

// The lowest accepted work factor keeps the file fast; one case checks what new backups are written with.
const text = await sealBackup(alice.pkcs8, PASS, undefined, MIN_BACKUP_ITERATIONS);

t.test('a backup opens with its passphrase to the same PKCS#8, and holds no key bytes in the clear', async (t) => {
  t.same(Buffer.from(await openBackup(text, PASS)), Buffer.from(alice.pkcs8));
  const window = Buffer.from(alice.pkcs8).subarray(200, 232);
  t.notOk(text.includes(window.toString('hex')) || text.includes(window.toString('base64')));
  t.equal(parseBackup(text).kdf.iterations, MIN_BACKUP_ITERATIONS);
});

t.test('a wrong passphrase or any altered byte is BAD_PASSPHRASE; a weakened or malformed header is CORRUPT', async (t) => {
  t.equal(await code(openBackup(text, 'not the passphrase!')), 'BAD_PASSPHRASE');
  const f = JSON.parse(text) as { kdf: { iterations: number; salt: string }; cipher: { nonce: string }; ct: string };
  const edit = (change: (g: typeof f) => void) => {
    const g = structuredClone(f);
    change(g);
    return JSON.stringify(g);
  };
  t.equal(await code(openBackup(edit((g) => (g.kdf.iterations += 1)), PASS)), 'BAD_PASSPHRASE', 'the header is authenticated');
  t.equal(await code(openBackup(edit((g) => (g.ct = (g.ct[0] === '0' ? '1' : '0') + g.ct.slice(1))), PASS)), 'BAD_PASSPHRASE');
  t.equal(await code(openBackup(edit((g) => (g.kdf.iterations = MIN_BACKUP_ITERATIONS - 1)), PASS)), 'CORRUPT', 'a lowered work factor never opens');
  t.equal(await code(openBackup(edit((g) => (g.cipher.nonce = g.cipher.nonce.slice(2))), PASS)), 'CORRUPT');
  t.equal(await code(openBackup(edit((g) => Object.assign(g, { extra: 1 })), PASS)), 'CORRUPT', 'an unknown field is refused');
  t.equal(await code(openBackup('not json', PASS)), 'CORRUPT');
  t.equal(await code(openBackup(text + ' '.repeat(20000), PASS)), 'CORRUPT', 'an oversized backup is refused before parsing');
  t.equal(await code(sealBackup(alice.pkcs8, 'short')), 'WEAK_PASSPHRASE');
});

t.test('the keystore writes and reads the same backups; a scrypt file is named as such for the page', async (t) => {
  const p = join(dir, 'backup.json');
  await saveIdentity(p, alice.privateKey, PASS, 'pbkdf2');
  t.equal((await stat(p)).mode & 0o777, 0o600);
  t.equal(await identityIsEncrypted(p), true);
  const written = await readFile(p, 'utf8');
  t.equal(parseBackup(written).kdf.iterations, 600_000, 'new backups use the written work factor');
  t.same(Buffer.from((await loadIdentity(p, PASS)).spki), Buffer.from(alice.spki));
  t.equal(await code(loadIdentity(p, 'not the passphrase!')), 'BAD_PASSPHRASE');
  t.equal(await code(loadIdentity(p, null)), 'PASSPHRASE_REQUIRED');
  t.equal(await code(saveIdentity(join(dir, 'weak.json'), alice.privateKey, 'short', 'pbkdf2')), 'BAD_PASSPHRASE');

  const s = join(dir, 'scrypt.json');
  await saveIdentity(s, alice.privateKey, PASS);
  t.equal(await code(openBackup(await readFile(s, 'utf8'), PASS)), 'SCRYPT', 'the page says to export with --kdf pbkdf2');
});
