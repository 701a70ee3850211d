/**
 * Private files (src/files/private.ts, issue 14 point 3): the keystore's rules for every file in --home.
 * Reads refuse links, other modes and oversized files; writes are atomic through an O_EXCL|O_NOFOLLOW
 * temporary name with mode 0600; a folder others can write is refused; an I/O failure names its path.
 */
import t from 'tap';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPrivateDir, createPrivateFileSync, readPrivateFile, statPrivateFile, writePrivateFile } from '../../src/files/private.js';
import { prepareHome } from '../../src/client/home.js';

function dir(t: { teardown(f: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'e2ee-files-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test('writePrivateFile replaces a file atomically with mode 0600 and leaves no temporary file', async (t) => {
  const d = dir(t);
  const f = join(d, 'x');
  writeFileSync(f, 'old', { mode: 0o644 });
  await writePrivateFile(f, 'new');
  t.equal(readFileSync(f, 'utf8'), 'new');
  t.equal(statSync(f).mode & 0o777, 0o600);
  t.same(readdirSync(d), ['x'], 'no temporary left behind');
  t.same(await readPrivateFile(f, 3), Buffer.from('new'));
});

t.test('writePrivateFile into a missing folder fails as IO naming the path', async (t) => {
  const f = join(dir(t), 'gone', 'x');
  await t.rejects(writePrivateFile(f, 'x'), { code: 'IO', path: f });
});

t.test('readPrivateFile refuses a link, a mode open to others, a folder and an oversized file', async (t) => {
  const d = dir(t);
  const real = join(d, 'real');
  writeFileSync(real, 'secret', { mode: 0o600 });
  symlinkSync(real, join(d, 'link'));
  await t.rejects(readPrivateFile(join(d, 'link'), 100), { code: 'INSECURE_PERMISSIONS' });
  t.throws(() => statPrivateFile(join(d, 'link')), { code: 'INSECURE_PERMISSIONS' });
  chmodSync(real, 0o640);
  await t.rejects(readPrivateFile(real, 100), { code: 'INSECURE_PERMISSIONS' }, 'group-readable');
  t.throws(() => statPrivateFile(real), { code: 'INSECURE_PERMISSIONS' });
  chmodSync(real, 0o600);
  await t.rejects(readPrivateFile(real, 3), { code: 'TOO_LARGE' });
  await t.rejects(readPrivateFile(join(d, 'none'), 3), { code: 'NOT_FOUND' });
  t.equal(statPrivateFile(join(d, 'none')), null);
  mkdirSync(join(d, 'sub'), { mode: 0o700 });
  await t.rejects(readPrivateFile(join(d, 'sub'), 3), { code: 'NOT_A_FILE' });
});

t.test('createPrivateFileSync makes a 0600 file once and never follows a planted link', async (t) => {
  const d = dir(t);
  t.equal(createPrivateFileSync(join(d, 'db')), true);
  t.equal(statSync(join(d, 'db')).mode & 0o777, 0o600);
  t.equal(createPrivateFileSync(join(d, 'db')), false, 'an existing file is left alone');
  symlinkSync(join(d, 'target'), join(d, 'planted'));
  t.equal(createPrivateFileSync(join(d, 'planted')), false);
  t.notOk(existsSync(join(d, 'target')), 'nothing created through the link');
  t.throws(() => createPrivateFileSync(join(d, 'missing', 'db')), { code: 'IO' });
});

t.test('a home folder group or others can write is refused; a private one is accepted', async (t) => {
  const d = dir(t);
  const home = join(d, 'home');
  prepareHome(home);
  t.equal(statSync(home).mode & 0o777, 0o700, 'created 0700');
  chmodSync(home, 0o770);
  t.throws(() => prepareHome(home), { code: 'INSECURE_PERMISSIONS', path: home });
  chmodSync(home, 0o707);
  t.throws(() => checkPrivateDir(home), { code: 'INSECURE_PERMISSIONS' });
  chmodSync(home, 0o755);
  t.doesNotThrow(() => prepareHome(home), 'readable by others is the user\'s choice; writable is not');
  writeFileSync(join(d, 'file'), '');
  t.throws(() => checkPrivateDir(join(d, 'file')), { code: 'NOT_A_FILE' });
  t.throws(() => checkPrivateDir(join(d, 'nothing')), { code: 'IO' });
});
