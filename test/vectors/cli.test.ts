/**
 * `e2ee-chat vectors verify` as a stranger runs it: the real CLI in a child process (node
 * dist/src/cli/main.js, built by `npm test`'s tsc) on copies of vectors/ in a temp dir.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
const VECTORS = join(ROOT, 'vectors');

/** Runs the CLI; `only` restricts it to codec.json (the other files are checked by the full runs). */
function verify(dir?: string, only = false): { code: number | null; out: string } {
  const args = [CLI, 'vectors', 'verify', ...(only ? ['--only', 'codec.json'] : []), ...(dir === undefined ? [] : [dir])];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** Anything with tap's teardown hook. */
interface HasTeardown {
  teardown(fn: () => unknown): void;
}

function copyVectors(t: HasTeardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-vectors-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(VECTORS, dir, { recursive: true });
  return dir;
}


t.test('an unmodified copy of vectors/ verifies: every file, every case', async (t) => {
  const dir = copyVectors(t);
  const r = verify(dir);
  t.equal(r.code, 0, r.out);
  t.notMatch(r.out, /^FAIL /m);
  t.match(r.out, /cases: all passed$/m);
});

t.test('changing one byte of an expected output in a copy makes verify fail and name that case', async (t) => {
  const dir = copyVectors(t);
  const file = join(dir, 'codec.json');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { cases: { id: string; input: string; frame?: { nick?: string; n?: number } }[] };
  const c = doc.cases.find((x) => x.id === 'relay_ping')!;
  // The expected encoding of PING{n: 7} ends in 07; make it 06.
  t.match(c.input, /07$/);
  c.input = c.input.slice(0, -2) + '06';
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  const r = verify(dir, true);
  t.equal(r.code, 1);
  t.match(r.out, /^FAIL codec\.json relay_ping: /m);
  t.equal(r.out.match(/^FAIL /gm)?.length, 1, 'only that case fails');
});

t.test('roster.json: a changed byte of a commitment, of a sealed ROSTER, or a changed report fails that case only, with both backends', async (t) => {
  const dir = copyVectors(t);
  const file = join(dir, 'roster.json');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { cases: { id: string; input: Record<string, unknown>; output?: Record<string, unknown> }[] };
  const flip = (hex: string) => hex.slice(0, -2) + (hex.endsWith('00') ? '01' : '00');
  const commitment = doc.cases.find((x) => x.id === 'roster_commitment_two')!;
  commitment.output!['hash'] = flip(commitment.output!['hash'] as string);
  const sealed = doc.cases.find((x) => x.id === 'roster_seal')!;
  sealed.output!['msg'] = flip(sealed.output!['msg'] as string);
  const check = doc.cases.find((x) => x.id === 'roster_check_mismatch')!;
  (check.output!['reports'] as { epoch: number }[])[0]!.epoch = 3;
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  for (const crypto of ['node', 'webcrypto']) {
    const r = spawnSync(process.execPath, [CLI, 'vectors', 'verify', '--crypto', crypto, '--only', 'roster.json', dir], { encoding: 'utf8' });
    t.equal(r.status, 1, crypto);
    const failed = [...(r.stdout + r.stderr).matchAll(/^FAIL roster\.json (\S+): /gm)].map((m) => m[1]).sort();
    t.same(failed, ['roster_check_mismatch', 'roster_commitment_two', 'roster_seal'], `${crypto}: exactly the three changed cases are named`);
  }
});

t.test('a changed expected error code is named', async (t) => {
  const dir = copyVectors(t);
  const file = join(dir, 'codec.json');
  const before = readFileSync(file, 'utf8');
  const after = before.replace(/("id": "frame_zero_length",[\s\S]*?"error": )"MALFORMED_FRAME"/, '$1"FRAME_TOO_LARGE"');
  t.not(after, before);
  writeFileSync(file, after);
  const r = verify(dir, true);
  t.equal(r.code, 1);
  t.match(r.out, /^FAIL codec\.json frame_zero_length: /m);
});

t.test('a missing file or a file that is not JSON fails', async (t) => {
  const dir = copyVectors(t);
  rmSync(join(dir, 'codec.json'));
  const r = verify(dir, true);
  t.equal(r.code, 1);
  t.match(r.out, /^FAIL codec\.json codec\.json: /m);
  writeFileSync(join(dir, 'codec.json'), '{"cases": [');
  const r2 = verify(dir, true);
  t.equal(r2.code, 1);
  t.match(r2.out, /^FAIL codec\.json codec\.json: /m);
});

t.test('usage errors exit 2', async (t) => {
  for (const args of [['vectors', 'check'], ['vectors', 'verify', '--only', 'nope.json'], ['vectors', 'verify', '--bogus'], ['vectors', 'verify', 'a', 'b']]) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    t.equal(r.status, 2, args.join(' '));
  }
});

t.test('without DIR the package vectors/ folder is used; --only verifies just the named file', async (t) => {
  const r = verify(undefined, true);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /^1 files, \d+ cases: all passed$/m);
});

t.test('the recovery vectors (§7.5): a changed byte of a commitment, or a changed parse result, fails naming the case, on both backends', async (t) => {
  for (const crypto of ['node', 'webcrypto']) {
    for (const [id, change] of [
      ['recovery_commit', (c: { output: Record<string, unknown> }) => (c.output['commit'] = String(c.output['commit']).replace(/^../, (b) => (b === '00' ? '01' : '00')))],
      ['recovery_code_parse_u', (c: { output: Record<string, unknown> }) => (c.output['code'] = '00'.repeat(16))],
      ['recovery_check_ok', (c: { output?: Record<string, unknown>; error?: string }) => (delete c.output, (c.error = 'NICK_BOUND'))],
    ] as const) {
      const dir = copyVectors(t);
      const file = join(dir, 'primitives.json');
      const doc = JSON.parse(readFileSync(file, 'utf8')) as { cases: { id: string; output: Record<string, unknown> }[] };
      const c = doc.cases.find((x) => x.id === id)!;
      t.ok(c, `${id} exists`);
      change(c as never);
      writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
      const r = spawnSync(process.execPath, [CLI, 'vectors', 'verify', '--crypto', crypto, '--only', 'primitives.json', dir], { encoding: 'utf8' });
      t.equal(r.status, 1, `${crypto} ${id}: exit 1`);
      t.match(r.stdout + r.stderr, new RegExp(`^FAIL primitives\\.json ${id}: `, 'm'));
      t.equal((r.stdout + r.stderr).match(/^FAIL /gm)?.length, 1, 'only that case fails');
    }
  }
});
