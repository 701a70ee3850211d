// `e2ee-chat vectors verify --crypto webcrypto` (issue 11): every vector file verifies with the runtime
// code running on the WebCrypto backend, the handshake and passive vectors through the session machine;
// a changed expected output still fails there; the CLI takes the flag and refuses an unknown backend.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CryptoBackend } from '../../src/crypto/backend.js';
import { webCryptoBackend } from '../../src/crypto/webcrypto.js';
import { SUITES } from '../../src/vectors/registry.js';

const ROOT = process.cwd();
const CLI = join(ROOT, 'dist/src/cli/main.js');
const load = async (file: string) => JSON.parse(await readFile(join(ROOT, 'vectors', file), 'utf8')) as { cases: Record<string, unknown>[] };

/** The WebCrypto backend, counting the calls of each operation. */
function counted(): { backend: CryptoBackend; calls: Record<string, number> } {
  const inner = webCryptoBackend();
  const calls: Record<string, number> = {};
  const out: Record<string, unknown> = { name: inner.name };
  for (const [k, f] of Object.entries(inner)) {
    if (typeof f !== 'function') continue;
    out[k] = (...a: unknown[]) => {
      calls[k] = (calls[k] ?? 0) + 1;
      return (f as (...x: unknown[]) => unknown)(...a);
    };
  }
  return { backend: out as unknown as CryptoBackend, calls };
}

for (const suite of SUITES) {
  t.test(`${suite.file} verifies on the WebCrypto backend`, async (t) => {
    const { backend, calls } = counted();
    t.same(await suite.verify(await load(suite.file), backend), []);
    if (suite.file === 'codec.json') return;
    if (suite.file === 'roster.json') {
      // Commitments hashed and ROSTERs sealed and opened on WebCrypto.
      for (const op of ['sha256', 'hmacSha512', 'aesGcmSeal', 'aesGcmOpen']) t.ok((calls[op] ?? 0) > 0, `${op} ran on WebCrypto (${calls[op] ?? 0} calls)`);
      return;
    }
    // The cryptography of the check ran on WebCrypto, not on node:crypto.
    t.ok((calls['sha512'] ?? 0) >= 5200, `safety numbers through WebCrypto (${calls['sha512'] ?? 0} SHA-512)`);
    if (suite.file === 'handshake.json' || suite.file === 'passive.json') {
      // Sessions: keys imported, the peer's HS_INIT decrypted, signatures verified, messages opened.
      for (const op of ['importPrivateKey', 'importPublicKey', 'oaepDecrypt', 'pssVerify', 'x25519', 'hkdfSha256', 'aesGcmOpen', 'aesGcmSeal', 'hmacSha512']) {
        t.ok((calls[op] ?? 0) > 0, `${op} ran on WebCrypto (${calls[op] ?? 0} calls)`);
      }
    }
  });
}

t.test('on WebCrypto too, a changed expected outcome of a passive step fails that step', async (t) => {
  const doc = await load('passive.json');
  const c = doc.cases.find((x) => x['id'] === 'passive_text_1')!;
  const expect = c['expect'] as { text: { text: string } };
  expect.text.text = expect.text.text + '!';
  const passive = SUITES.find((s) => s.file === 'passive.json')!;
  const failures = await passive.verify(doc, webCryptoBackend());
  t.same(failures.map((f) => f.id), ['passive_text_1']);
});

t.test('e2ee-chat vectors verify --crypto webcrypto passes every file; an unknown backend is a usage error', async (t) => {
  const ok = spawnSync(process.execPath, [CLI, 'vectors', 'verify', '--crypto', 'webcrypto'], { encoding: 'utf8' });
  t.equal(ok.status, 0, ok.stdout + ok.stderr);
  t.match(ok.stdout, new RegExp(`^${SUITES.length} files, \\d+ cases: all passed$`, 'm'));
  const bad = spawnSync(process.execPath, [CLI, 'vectors', 'verify', '--crypto', 'openssl3'], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /webcrypto/);
});
