/**
 * The generator and its drift check as CI runs them (`node dist/src/vectors/generate.js [--check] DIR`),
 * in child processes on temp folders.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SUITES } from '../../src/vectors/registry.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GEN = join(ROOT, 'dist/src/vectors/generate.js');
const VECTORS = join(ROOT, 'vectors');

function gen(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [GEN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

function temp(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-gen-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('generating into an empty folder writes every suite file, identical to the committed ones', async (t) => {
  const dir = temp(t);
  const r = gen(dir);
  t.equal(r.code, 0, r.out);
  t.same(readdirSync(dir).sort(), SUITES.map((s) => s.file).sort());
  for (const s of SUITES) t.ok(readFileSync(join(dir, s.file)).equals(readFileSync(join(VECTORS, s.file))), `${s.file} is byte-identical`);
});

// The full generation above is the drift check; the tests below run the codec suite only (--only), so
// they stay cheap while exercising the same code paths.
t.test('--check passes on an unmodified copy and writes nothing', async (t) => {
  const dir = temp(t);
  cpSync(VECTORS, dir, { recursive: true });
  const r = gen('--check', '--only', 'codec.json', dir);
  t.equal(r.code, 0, r.out);
});

t.test('--check fails and names the file when one byte differs or a file is missing, and writes nothing', async (t) => {
  const dir = temp(t);
  cpSync(VECTORS, dir, { recursive: true });
  const file = join(dir, 'codec.json');
  const changed = readFileSync(file, 'utf8').replace('"relay_ping"', '"relay_pinG"');
  writeFileSync(file, changed);
  const r = gen('--check', '--only', 'codec.json', dir);
  t.equal(r.code, 1);
  t.match(r.out, /codec\.json/);
  t.equal(readFileSync(file, 'utf8'), changed, 'the file was not rewritten');
  rmSync(file);
  const r2 = gen('--check', '--only', 'codec.json', dir);
  t.equal(r2.code, 1);
  t.match(r2.out, /codec\.json/);
});

t.test('usage errors exit 2', async (t) => {
  t.equal(gen().code, 2, 'no folder');
  t.equal(gen('--check').code, 2, '--check without a folder');
  t.equal(gen('--only', 'nope.json', 'x').code, 2, 'unknown file');
  t.equal(gen('--bogus', 'x').code, 2, 'unknown option');
});

t.test('--only writes just the named file', async (t) => {
  const dir = temp(t);
  t.equal(gen('--only', 'codec.json', dir).code, 0);
  t.same(readdirSync(dir), ['codec.json']);
});
