// Identity keys at rest (issue 3 "Keys at rest"): sealed under a passphrase with scrypt, mode 0600,
// refused when readable by others, every failure a KeystoreError code. Real files in a temp dir.
import t from 'tap';
import { chmod, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identityIsEncrypted, KeystoreError, loadIdentity, saveIdentity } from '../../src/crypto/keystore.js';
import { fixedIdentity } from '../../src/vectors/crypto-keys.js';

const dir = await mkdtemp(join(tmpdir(), 'e2ee-keystore-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const alice = fixedIdentity('alice');
let n = 0;
const path = () => join(dir, `key${++n}`);

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    return e instanceof KeystoreError ? e.code : `other: ${String(e)}`;
  }
}

const sealed = path();
await saveIdentity(sealed, alice.privateKey, 'correct horse');

t.test('a sealed key round-trips with its passphrase and is written with mode 0600', async (t) => {
  t.equal((await stat(sealed)).mode & 0o777, 0o600);
  const id = await loadIdentity(sealed, 'correct horse');
  t.same(Buffer.from(id.spki), Buffer.from(alice.spki));
  t.equal(await identityIsEncrypted(sealed), true);
});

t.test('the sealed file holds no private key material in the clear', async (t) => {
  const text = await readFile(sealed, 'utf8');
  const der = Buffer.from(alice.pkcs8);
  for (const enc of ['hex', 'base64'] as const) {
    // any 32-byte window of the key (here: from the private exponent region) must not appear
    t.notOk(text.includes(der.subarray(600, 632).toString(enc)), `no ${enc} key bytes`);
  }
  t.notOk(text.includes('PRIVATE KEY'));
});

t.test('wrong passphrase, missing passphrase, lowered work factor, altered file', async (t) => {
  t.equal(await code(loadIdentity(sealed, 'wrong')), 'BAD_PASSPHRASE');
  t.equal(await code(loadIdentity(sealed, null)), 'PASSPHRASE_REQUIRED');
  const j = JSON.parse(await readFile(sealed, 'utf8')) as { kdf: { N: number }; ct: string };
  const weaker = path();
  await writeFile(weaker, JSON.stringify({ ...j, kdf: { ...j.kdf, N: 2 ** 15 } }), { mode: 0o600 });
  t.equal(await code(loadIdentity(weaker, 'correct horse')), 'BAD_PASSPHRASE', 'the header is authenticated');
  const tiny = path();
  await writeFile(tiny, JSON.stringify({ ...j, kdf: { ...j.kdf, N: 2 ** 10 } }), { mode: 0o600 });
  t.equal(await code(loadIdentity(tiny, 'correct horse')), 'CORRUPT', 'a work factor below the floor');
  const altered = path();
  const ct = Buffer.from(j.ct, 'hex');
  ct[10] = (ct[10] as number) ^ 1;
  await writeFile(altered, JSON.stringify({ ...j, ct: ct.toString('hex') }), { mode: 0o600 });
  t.equal(await code(loadIdentity(altered, 'correct horse')), 'BAD_PASSPHRASE');
  t.equal(await code(saveIdentity(path(), alice.privateKey, '')), 'BAD_PASSPHRASE', 'an empty passphrase is refused');
});

t.test('a file group or others may access is refused with INSECURE_PERMISSIONS', async (t) => {
  for (const mode of [0o640, 0o604, 0o660, 0o606, 0o700 | 0o010]) {
    const p = path();
    await saveIdentity(p, alice.privateKey, null);
    await chmod(p, mode);
    t.equal(await code(loadIdentity(p, null)), 'INSECURE_PERMISSIONS', mode.toString(8));
    t.equal(await code(identityIsEncrypted(p)), 'INSECURE_PERMISSIONS');
  }
  const link = path();
  await symlink(sealed, link);
  t.equal(await code(loadIdentity(link, 'correct horse')), 'INSECURE_PERMISSIONS', 'a symbolic link');
});

t.test('clear keys, missing files and garbage', async (t) => {
  const clear = path();
  await saveIdentity(clear, alice.privateKey, null);
  t.equal((await stat(clear)).mode & 0o777, 0o600);
  t.equal(await identityIsEncrypted(clear), false);
  t.same(Buffer.from((await loadIdentity(clear, null)).spki), Buffer.from(alice.spki));
  t.equal(await code(loadIdentity(join(dir, 'absent'), null)), 'NOT_FOUND');
  const junk = path();
  await writeFile(junk, 'not a key', { mode: 0o600 });
  t.equal(await code(loadIdentity(junk, 'x')), 'CORRUPT');
  const ed = path();
  await writeFile(ed, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  t.equal(await code(loadIdentity(ed, null)), 'CORRUPT', 'not an RSA-2048 identity');
  const big = path();
  await writeFile(big, 'x'.repeat(20000), { mode: 0o600 });
  t.equal(await code(loadIdentity(big, null)), 'CORRUPT', 'oversized file');
});

t.test('saving over an existing file replaces it and keeps mode 0600', async (t) => {
  const p = path();
  await saveIdentity(p, alice.privateKey, null);
  await saveIdentity(p, fixedIdentity('bob').privateKey, 'pw');
  t.equal((await stat(p)).mode & 0o777, 0o600);
  t.same(Buffer.from((await loadIdentity(p, 'pw')).spki), Buffer.from(fixedIdentity('bob').spki));
});
