// The crypto vector files (vectors/primitives.json, handshake.json, passive.json; spec/VECTORS.md):
// the committed files verify, the generator reproduces them byte for byte, and a copy with one byte
// changed fails verification, in process for many fields and through `e2ee-chat vectors verify`.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { primitivesSuite } from '../../src/vectors/crypto-primitives.js';
import { handshakeSuite } from '../../src/vectors/crypto-transcripts.js';
import { passiveSuite } from '../../src/vectors/crypto-passive.js';
import { renderSuite } from '../../src/vectors/generate.js';
import type { VectorSuite } from '../../src/vectors/types.js';

const ROOT = process.cwd();
const load = async (file: string) => JSON.parse(await readFile(join(ROOT, 'vectors', file), 'utf8')) as { cases: Record<string, unknown>[] };

for (const suite of [primitivesSuite, handshakeSuite, passiveSuite] as VectorSuite[]) {
  t.test(`${suite.file}: the committed file verifies and equals the generator's output`, async (t) => {
    const text = await readFile(join(ROOT, 'vectors', suite.file), 'utf8');
    t.same(await suite.verify(JSON.parse(text)), []);
    t.equal(text, await renderSuite(suite), 'no drift');
  });
}

/** Every hex string field of `obj` (recursively), as a path and a setter that flips one bit of its first byte. */
function hexFields(obj: unknown, path: string[] = []): { path: string; flip: () => void }[] {
  const out: { path: string; flip: () => void }[] = [];
  if (typeof obj !== 'object' || obj === null) return out;
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'string' && v.length >= 2 && /^[0-9a-f]+$/.test(v) && v.length % 2 === 0) {
      out.push({
        path: [...path, k].join('.'),
        flip: () => {
          const b = Buffer.from(v, 'hex');
          b[0] = (b[0] as number) ^ 0x01;
          (obj as Record<string, unknown>)[k] = b.toString('hex');
        },
      });
    } else out.push(...hexFields(v, [...path, k]));
  }
  return out;
}

t.test('handshake.json: one byte changed in a byte string of a transcript fails that case', async (t) => {
  const doc = await load('handshake.json');
  const fields = hexFields(doc.cases[0]);
  t.ok(fields.length >= 30, `${fields.length} byte strings in the transcript`);
  // Every input (keys, randomness) and frame, and every third derived value (each verification
  // regenerates the whole transcript, so all of them would take minutes on a loaded machine).
  for (const f of fields.filter((g, i) => /randomness|frames|pkcs8|spki/.test(g.path) || i % 3 === 0)) {
    const copy = { ...doc, cases: [structuredClone(doc.cases[0])] };
    hexFields(copy.cases[0]).find((g) => g.path === f.path)!.flip();
    const failures = await handshakeSuite.verify(copy);
    t.same(failures.map((x) => x.id), ['handshake_no_psk'], f.path);
  }
});

t.test('handshake.json: a defect case with one byte changed in its frame fails', async (t) => {
  const doc = await load('handshake.json');
  const base = doc.cases[0]!;
  for (const c of doc.cases.filter((x) => x['based_on'] === 'handshake_no_psk').slice(0, 6)) {
    // Changing the defective frame back toward the genuine one, or into another defect, changes the outcome
    // in most places; here the byte is replaced by the genuine frame's byte where the two differ.
    const genuine = (base['frames'] as Record<string, string>)[c['at'] === 'responder_idle' ? 'hs_init' : c['at'] === 'initiator_await_resp' ? 'hs_resp' : 'hs_finish']!;
    const frameHex = String(c['frame']);
    if (frameHex.length !== genuine.length) continue;
    const copy = { ...doc, cases: [base, { ...c, frame: genuine }] };
    const failures = await handshakeSuite.verify(copy);
    t.same(failures.map((x) => x.id), [c['id']], `${String(c['id'])} with the genuine frame no longer fails as recorded`);
  }
});

t.test('passive.json and primitives.json: one byte changed fails the case it is in', async (t) => {
  const passive = await load('passive.json');
  for (const id of ['passive_establish', 'passive_text_0', 'passive_tampered_1', 'passive_padding_nonzero_3', 'passive_ack_12']) {
    const copy = structuredClone(passive);
    const c = copy.cases.find((x) => x['id'] === id)!;
    const fields = hexFields(c);
    fields[fields.length - 1]!.flip();
    const ids = (await passiveSuite.verify(copy)).map((x) => x.id);
    t.ok(ids.includes(id), `${id}: ${ids.join(',')}`);
  }
  const prim = await load('primitives.json');
  for (const c of prim.cases.slice(0, 12)) {
    const copy = { ...prim, cases: [structuredClone(c)] };
    const fields = [...hexFields(copy.cases[0]!['output']), ...hexFields(copy.cases[0]!['input'])];
    fields[0]!.flip();
    t.same((await primitivesSuite.verify(copy)).map((x) => x.id), [c['id']], String(c['id']));
  }
});

t.test('e2ee-chat vectors verify fails on a copy of the vectors with one byte of handshake.json changed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'e2ee-vectors-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp(join(ROOT, 'vectors'), dir, { recursive: true });
  const cli = join(ROOT, 'dist/src/cli/main.js');
  const ok = spawnSync(process.execPath, [cli, 'vectors', 'verify', dir], { encoding: 'utf8' });
  t.equal(ok.status, 0, 'the unmodified copy verifies');
  const text = await readFile(join(dir, 'handshake.json'), 'utf8');
  const doc = JSON.parse(text) as { cases: { frames: { hs_resp: string } }[] };
  const resp = doc.cases[0]!.frames.hs_resp;
  // One byte (two hex digits) in the middle of the recorded HS_RESP, changed in the file's text.
  const at = text.indexOf(resp) + 300;
  const byte = text.slice(at, at + 2);
  const changed = text.slice(0, at) + (byte === 'ff' ? '00' : 'ff') + text.slice(at + 2);
  await writeFile(join(dir, 'handshake.json'), changed);
  const bad = spawnSync(process.execPath, [cli, 'vectors', 'verify', dir], { encoding: 'utf8' });
  t.equal(bad.status, 1);
  t.match(bad.stdout, /FAIL handshake\.json handshake_no_psk/);
});

t.test('a case with a field the runner does not know fails (spec/VECTORS.md §3: runners never skip)', async (t) => {
  const prim = await load('primitives.json');
  t.same((await primitivesSuite.verify({ ...prim, cases: [{ ...prim.cases[0], extra: 1 }] })).map((x) => x.id), [prim.cases[0]!['id']]);
  const c0 = prim.cases[0]!;
  t.same((await primitivesSuite.verify({ ...prim, cases: [{ ...c0, input: { ...(c0['input'] as object), label: '' } }] })).length, 1, 'unknown input field');
  t.same((await primitivesSuite.verify({ ...prim, cases: [{ ...c0, op: 'rsa_oaep_encrypt_v2' }] })).length, 1, 'unknown op');
  const passive = await load('passive.json');
  const withExtra = structuredClone(passive);
  (withExtra.cases[3] as Record<string, unknown>)['note'] = 'x';
  t.same((await passiveSuite.verify(withExtra)).map((x) => x.id), [passive.cases[3]!['id']]);
  const hs = await load('handshake.json');
  t.same((await handshakeSuite.verify({ ...hs, cases: [{ ...hs.cases[0], extra: true }] })).map((x) => x.id), ['handshake_no_psk']);
});

t.test('spec/VECTORS.md names every id area of the crypto files', async (t) => {
  const md = await readFile(join(ROOT, 'spec/VECTORS.md'), 'utf8');
  for (const file of ['primitives.json', 'handshake.json', 'passive.json']) {
    for (const c of (await load(file)).cases) {
      const id = String(c['id']);
      const documented = [...md.matchAll(/`([a-z0-9_]+_)`/g)].some((m) => id.startsWith(m[1]!));
      t.ok(documented || md.includes('`' + id + '`'), `${file} ${id}`);
    }
  }
});
