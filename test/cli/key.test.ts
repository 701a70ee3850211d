// `e2ee-chat key show|export|import` as a real child process: the fingerprint offline, an encrypted
// backup that only its own passphrase opens, and an import that gives another home the same identity.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IDENTITY_FILE, PUBLIC_KEY_FILE } from '../../src/client/home.js';
import { loadIdentity, saveIdentity } from '../../src/crypto/keystore.js';
import { fingerprint } from '../../src/crypto/safety.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'e2ee-chat.js');
const PASS = 'the home passphrase, long enough';
const BACKUP = 'a separate backup passphrase';

const key = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [BIN, 'key', ...args], {
    encoding: 'utf8',
    env: { ...process.env, E2EE_CHAT_PASSPHRASE: PASS, E2EE_CHAT_BACKUP_PASSPHRASE: BACKUP, ...env },
  });

/** A temporary folder holding home `a` (mode 0700) with a fresh identity saved under PASS. */
async function homeWithKey(t: Test, prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const home = join(dir, 'a');
  mkdirSync(home, { mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  await saveIdentity(join(home, IDENTITY_FILE), privateKey, PASS);
  return { dir, home, fp: fingerprint(new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }))) };
}

t.test('show, export and import keep one identity across homes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-key-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const home = join(dir, 'a');
  mkdirSync(home, { mode: 0o700 });
  t.equal(key(['show', '--home', home]).status, 2, 'no identity: status 2');

  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  const fp = fingerprint(new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })));
  await saveIdentity(join(home, IDENTITY_FILE), privateKey, PASS);

  // A key without identity.pub (as saveIdentity alone leaves it) is unlocked to be shown.
  t.equal(key(['show', '--home', home], { E2EE_CHAT_PASSPHRASE: 'wrong' }).status, 4, 'wrong passphrase: 4');
  const show = key(['show', '--home', home]);
  t.equal(show.status, 0);
  t.match(show.stdout, new RegExp(`^fingerprint ${fp}$`, 'm'), 'the fingerprint peers see');
  t.match(show.stdout, /encrypted under your passphrase/);

  const backup = join(dir, 'backup.key');
  t.equal(key(['export', '--home', home, '--out', backup], { E2EE_CHAT_BACKUP_PASSPHRASE: 'short' }).status, 2, 'a short backup passphrase is refused');
  t.equal(key(['export', '--home', home, '--out', backup]).status, 0);
  t.equal(statSync(backup).mode & 0o777, 0o600, 'backup written 0600');
  t.notOk(readFileSync(backup, 'utf8').includes('PRIVATE KEY'), 'the backup is sealed, not PEM');
  await t.rejects(loadIdentity(backup, PASS), { code: 'BAD_PASSPHRASE' }, 'the home passphrase does not open the backup');
  t.equal(key(['export', '--home', home, '--out', backup]).status, 2, 'never over an existing file');

  const other = join(dir, 'b');
  t.equal(key(['import', backup, '--home', other], { E2EE_CHAT_BACKUP_PASSPHRASE: 'not the backup passphrase' }).status, 4, 'wrong backup passphrase: 4');
  t.equal(key(['import', backup, '--home', other]).status, 0);
  const imported = await loadIdentity(join(other, IDENTITY_FILE), PASS);
  t.equal(fingerprint(imported.spki), fp, 'the other home has the same identity, under its passphrase');
  t.equal(key(['import', backup, '--home', other]).status, 2, 'a home with an identity is not replaced silently');
  t.equal(key(['import', backup, '--home', other, '--force', '--no-passphrase']).status, 0, '--force replaces it');
  t.match(readFileSync(join(other, IDENTITY_FILE), 'utf8'), /BEGIN PRIVATE KEY/, '--no-passphrase stores it in the clear, as asked');
  t.equal(key(['rotate', '--home', home]).status, 2, 'unknown verb: usage');
});

t.test('passwd changes the passphrase: the old one stops opening the key, a weak new one is refused', async (t) => {
  const { home, fp } = await homeWithKey(t, 'e2ee-key-passwd-');
  const file = join(home, IDENTITY_FILE);
  const NEW = 'a brand new passphrase for the key';
  t.equal(key(['passwd', '--home', home], { E2EE_CHAT_NEW_PASSPHRASE: 'pw' }).status, 2, 'a weak new passphrase: 2');
  t.equal(key(['passwd', '--home', home], { E2EE_CHAT_PASSPHRASE: 'wrong', E2EE_CHAT_NEW_PASSPHRASE: NEW }).status, 4, 'wrong current passphrase: 4');
  t.equal(key(['passwd', '--home', home], { E2EE_CHAT_NEW_PASSPHRASE: '' }).status, 2, 'no new passphrase and no terminal: 2');
  await t.resolves(loadIdentity(file, PASS), 'nothing changed by the refusals');
  const ok = key(['passwd', '--home', home], { E2EE_CHAT_NEW_PASSPHRASE: NEW });
  t.equal(ok.status, 0, ok.stderr);
  t.equal(statSync(file).mode & 0o777, 0o600, 'rewritten 0600');
  t.same(readdirSync(home).sort(), [IDENTITY_FILE, PUBLIC_KEY_FILE], 'no temporary file left (the public key is kept next to the key)');
  await t.rejects(loadIdentity(file, PASS), { code: 'BAD_PASSPHRASE' }, 'the old passphrase no longer opens it');
  t.equal(fingerprint((await loadIdentity(file, NEW)).spki), fp, 'same identity under the new passphrase');
  t.notOk(ok.stderr.includes(NEW) || ok.stdout.includes(NEW), 'the passphrase is never printed');
});

t.test('show needs no passphrase once the key was opened or imported: the fingerprint from identity.pub', async (t) => {
  const { dir, home, fp } = await homeWithKey(t, 'e2ee-key-show-');
  // stdin is a pipe here (no terminal to ask at) and no E2EE_CHAT_PASSPHRASE.
  t.equal(key(['show', '--home', home], { E2EE_CHAT_PASSPHRASE: '' }).status, 2, 'a key never opened by this version: the passphrase is needed once');
  t.equal(key(['show', '--home', home]).status, 0, 'opened once (with the passphrase), which writes identity.pub');
  t.equal(statSync(join(home, PUBLIC_KEY_FILE)).mode & 0o777, 0o600, 'identity.pub is kept 0600, as every file of --home');
  const show = key(['show', '--home', home], { E2EE_CHAT_PASSPHRASE: '' });
  t.equal(show.status, 0, show.stderr);
  t.match(show.stdout, new RegExp(`^fingerprint ${fp}$`, 'm'), 'the fingerprint, without the passphrase');

  const backup = join(dir, 'backup.key');
  t.equal(key(['export', '--home', home, '--out', backup]).status, 0);
  const other = join(dir, 'b');
  t.equal(key(['import', backup, '--home', other]).status, 0);
  const shown = key(['show', '--home', other], { E2EE_CHAT_PASSPHRASE: '' });
  t.equal(shown.status, 0, shown.stderr);
  t.match(shown.stdout, new RegExp(`^fingerprint ${fp}$`, 'm'), 'an imported key: shown without the passphrase');
  chmodSync(join(other, PUBLIC_KEY_FILE), 0o644);
  t.equal(key(['show', '--home', other], { E2EE_CHAT_PASSPHRASE: '' }).status, 2, 'an identity.pub open to others is refused, as any file of --home');
});

t.test('import --force over a home whose identity.pub is open to others: refused, and the key of the home unchanged', async (t) => {
  const { dir, home } = await homeWithKey(t, 'e2ee-key-import-');
  t.equal(key(['show', '--home', home]).status, 0, 'opened once, which writes identity.pub');
  const other = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  const backup = join(dir, 'backup.key');
  await saveIdentity(backup, other.privateKey, BACKUP);
  const before = readFileSync(join(home, IDENTITY_FILE));
  chmodSync(join(home, PUBLIC_KEY_FILE), 0o644);
  const r = key(['import', backup, '--home', home, '--force']);
  t.equal(r.status, 2, 'refused: status 2, as any file of --home open to others');
  t.ok(readFileSync(join(home, IDENTITY_FILE)).equals(before), 'identity.key byte for byte as before');
});
