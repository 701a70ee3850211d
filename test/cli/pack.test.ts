// The package as npm makes it (issue 15 point 6, "install and run like a Node program"): `npm pack` of the
// built tree, unpacked into a temp folder, runs `e2ee-chat --version` and the offline `key show` from
// its own bin/ and dist/. Without a `files` list the tarball held no dist/ (it is in .gitignore) and a
// package installed from it failed with ERR_MODULE_NOT_FOUND. Offline: the dependencies are not
// fetched (this machine has no registry); the unpacked package uses the repo's node_modules through a link.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IDENTITY_FILE } from '../../src/client/home.js';
import { saveIdentity } from '../../src/crypto/keystore.js';
import { generateIdentity } from '../../src/crypto/rsa.js';
import { fingerprint } from '../../src/crypto/safety.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

t.test('npm pack of the built tree: the unpacked package runs --version and key show', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-pack-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
  // --ignore-scripts: the tree is built already (npm test builds first); prepare would build it again.
  const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' });
  t.equal(packed.status, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  const files = info!.files.map((f) => f.path);
  t.ok(files.includes('dist/src/cli/main.js'), 'the compiled CLI is in the package');
  t.ok(files.includes('bin/e2ee-chat.js'));
  t.notOk(files.some((f) => f.startsWith('dist/test/') || f.startsWith('test/') || f.startsWith('src/')), 'no tests or sources');
  execFileSync('tar', ['xzf', join(dir, info!.filename), '-C', dir]);
  const unpacked = join(dir, 'package');
  symlinkSync(join(ROOT, 'node_modules'), join(unpacked, 'node_modules'));
  const bin = join(unpacked, 'bin', 'e2ee-chat.js');

  const v = spawnSync(process.execPath, [bin, '--version'], { cwd: dir, encoding: 'utf8' });
  t.equal(v.status, 0, v.stderr);
  t.equal(v.stdout, `e2ee-chat ${pkg.version}\n`);

  const home = join(dir, 'home');
  mkdirSync(home, { mode: 0o700 });
  const id = generateIdentity();
  await saveIdentity(join(home, IDENTITY_FILE), id.privateKey, null);
  const show = spawnSync(process.execPath, [bin, 'key', 'show', '--home', home], { cwd: dir, encoding: 'utf8', env: { ...process.env, E2EE_CHAT_PASSPHRASE: '' } });
  t.equal(show.status, 0, show.stderr);
  t.match(show.stdout, `fingerprint ${fingerprint(id.spki)}\n`, 'the offline fingerprint of the key in --home');
});
