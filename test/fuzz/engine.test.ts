// The fuzz engine's own parts, in process: the seeded PRNG, the msgpack tree that bends frames out of
// shape, the mutation engine, the oracle's stream splitting, the minimiser and the crasher corpus format.
// The engine is only useful if each mutation class really reaches the rule it targets, so each class is
// checked against the reference decoder's verdict (spec §3, §4).
import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeFrame, encodeFrame, frame } from '../../src/codec/index.js';
import { ProtocolError, type ErrorName } from '../../src/protocol/errors.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { Prng } from '../../fuzz/prng.js';
import { cloneTree, formsOf, canonicalForm, nodesOf, parseTree, wire, writeTree, type Node } from '../../src/wirekit/msgpack.js';
import { garbage, mutate } from '../../fuzz/mutate.js';
import { ConnectionOracle, splitStream } from '../../src/wirekit/relay-model.js';
import { loadSeeds, retarget } from '../../fuzz/seeds.js';
import { minimise } from '../../fuzz/minimise.js';
import { caseOf, loadCorpus, saveCrasher } from '../../fuzz/corpus.js';
import { IdentityBook, makeCase, segmentsOf, type FuzzCase } from '../../fuzz/harness.js';

const VECTORS = fileURLToPath(new URL('../../vectors/codec.json', import.meta.url));
const { seeds, raw, fromVectors } = loadSeeds(VECTORS);

function codeOf(body: Uint8Array): ErrorName | 'ok' {
  try {
    decodeFrame(body, 'relay');
    return 'ok';
  } catch (e) {
    if (e instanceof ProtocolError) return e.errorName;
    throw e;
  }
}

t.test('the PRNG is a pure function of its seed', async (t) => {
  const a = new Prng(42);
  const b = new Prng(42);
  const c = new Prng(43);
  const xs = Array.from({ length: 64 }, () => a.u32());
  t.same(Array.from({ length: 64 }, () => b.u32()), xs);
  t.not(Array.from({ length: 64 }, () => c.u32()).join(), xs.join());
  const r = new Prng(7);
  for (let i = 0; i < 1000; i++) {
    const v = r.below(10);
    if (v < 0 || v >= 10 || !Number.isInteger(v)) t.fail(`below(10) gave ${v}`);
  }
  t.equal(new Prng(1).bytes(13).length, 13);
});

t.test('seeds: every valid codec vector frame, plus one built-in per frame type', async (t) => {
  t.ok(fromVectors >= 20, `${fromVectors} seeds from vectors/codec.json`);
  t.ok(raw.length > 0, 'framing vectors kept as raw streams');
  for (const s of seeds) t.same(writeTree(parseTree(s.body)), s.body, `${s.id}: tree round trip is byte-exact`);
});

t.test('retarget points a seed at the connection under test and keeps it valid', async (t) => {
  const book = new IdentityBook();
  const me = book.get('fme');
  const target = { nick: 'fme', spki: me.spki, room: 'rroom', peer: 'ppeer' };
  for (const s of seeds) {
    const body = retarget(s, target);
    const f = decodeFrame(body, 'relay');
    if (s.layer !== 'relay') t.match(f, { type: 'SEND', to: 'ppeer' }, `${s.id} travels in a SEND`);
    else if (f.type === 'HELLO') t.same([f.nick, Buffer.from(f.key)], ['fme', Buffer.from(me.spki)]);
    else if (f.type === 'JOIN') t.equal(f.room, 'rroom');
    else if (f.type === 'SEND') t.equal(f.to, 'ppeer');
  }
});

t.test('each mutation class reaches the rule it targets (reference decoder verdicts)', async (t) => {
  const ping = Buffer.from(encodeFrame(frame('PING', { n: 300 })));
  const send = Buffer.from(encodeFrame(frame('SEND', { to: 'bob', body: Buffer.from('hi') })));
  const at = (body: Buffer, pick: (n: Node) => boolean, change: (n: Node) => Node | void): Buffer => {
    const root = parseTree(body);
    const place = nodesOf(root).find((p) => pick(p.node) && p.replace !== undefined)!;
    const out = change(place.node);
    if (out !== undefined) place.replace!(out);
    return writeTree(root);
  };
  // §4 rule 1: forbidden types.
  for (const bytes of [[0xc0], [0xc2], [0xc3], [0xca, 0, 0, 0, 0], [0xff], [0xd0, 1], [0xd4, 1, 0]]) {
    const b = at(ping, (n) => n.kind === 'uint' && n.value === 300, () => ({ kind: 'raw', bytes: Buffer.from(bytes) }));
    t.equal(codeOf(b), 'MALFORMED_FRAME', `type 0x${bytes[0]!.toString(16)} in a field`);
  }
  // §4 rule 3: every longer form of every node is non-canonical.
  for (const body of [ping, send]) {
    const count = nodesOf(parseTree(body)).length;
    for (let i = 0; i < count; i++) {
      const root = parseTree(body);
      const n = nodesOf(root)[i]!.node as Exclude<Node, { kind: 'raw' }>;
      const forms = formsOf(n.kind);
      for (const f of forms.slice(forms.indexOf(canonicalForm(n)!) + 1)) {
        const copy = cloneTree(root);
        (nodesOf(copy)[i]!.node as Exclude<Node, { kind: 'raw' }>).form = f;
        t.equal(codeOf(writeTree(copy)), 'MALFORMED_FRAME', `${n.kind} node ${i} in form ${f}`);
      }
    }
  }
  // §4 rule 6: nesting.
  const deep = at(send, (n) => n.kind === 'bin', (n) => ({ kind: 'array', items: [{ kind: 'array', items: [{ kind: 'array', items: [n] }] }] }));
  t.equal(codeOf(deep), 'MALFORMED_FRAME', 'a container at depth 4');
  // §4 rule 7: a declared size past the end of the body.
  for (const size of [0xffff_ffff, 0x1_0000, 3]) {
    const b = at(send, (n) => n.kind === 'bin', (n) => {
      (n as Extract<Node, { kind: 'bin' }>).declared = size;
      (n as Extract<Node, { kind: 'bin' }>).form = size > 0xffff ? '32' : size > 0xff ? '16' : '8';
    });
    t.equal(codeOf(b), 'MALFORMED_FRAME', `bin declaring ${size} bytes`);
  }
  // §4 rule 4: invalid UTF-8.
  for (const bad of [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80]]) {
    const b = at(send, (n) => n.kind === 'str' && n.bytes.toString() === 'bob', (n) => {
      (n as Extract<Node, { kind: 'str' }>).bytes = Buffer.concat([Buffer.from('b'), Buffer.from(bad)]);
    });
    t.equal(codeOf(b), 'MALFORMED_FRAME', `UTF-8 ${Buffer.from(bad).toString('hex')}`);
  }
});

t.test('mutants: every mutation is judged by the oracle without a stray exception', async (t) => {
  const book = new IdentityBook();
  const me = book.get('fprop');
  let judged = 0;
  const rejected = new Map<string, number>();
  fc.assert(
    fc.property(fc.integer({ min: 0, max: seeds.length - 1 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (si, rs) => {
      const r = new Prng(rs);
      const m = r.chance(0.1) ? garbage(r) : mutate(seeds[si]!.body, r);
      const items = splitStream(m.wire, LIMITS.MAX_FRAME_BYTES);
      const oracle = new ConnectionOracle({ state: 'READY', maxFrame: LIMITS.MAX_FRAME_BYTES, nick: 'fprop', spki: me.spki, peers: new Set(['ppeer']), registry: new Map() });
      for (const it of items) {
        const exp = oracle.expect(it);
        judged++;
        if (exp.kind === 'error') for (const c of exp.codes) rejected.set(c, (rejected.get(c) ?? 0) + 1);
      }
    }),
    { numRuns: 2000, seed: 20261125 },
  );
  t.ok(judged >= 2000, `${judged} items judged`);
  for (const code of ['MALFORMED_FRAME', 'FRAME_TOO_LARGE', 'INVALID_FIELD', 'UNEXPECTED_FRAME', 'UNKNOWN_FRAME_TYPE'] as const) {
    t.ok((rejected.get(code) ?? 0) > 0, `mutants reach ${code} (${rejected.get(code) ?? 0} times)`);
  }
});

t.test('splitStream keeps the frames that precede a bad length prefix', async (t) => {
  const ping = wire(encodeFrame(frame('PING', { n: 1 })));
  const huge = Buffer.from([0xff, 0xff, 0xff, 0xff]);
  const items = splitStream(Buffer.concat([ping, ping, huge, ping]), LIMITS.MAX_FRAME_BYTES);
  t.same(items.map((i) => i.kind), ['frame', 'frame', 'framing-error']);
  t.match(items[2], { kind: 'framing-error', code: 'FRAME_TOO_LARGE' });
  t.match(splitStream(Buffer.concat([ping, Buffer.from([0, 0, 0, 0])]), 65536)[1], { kind: 'framing-error', code: 'MALFORMED_FRAME' });
  t.match(splitStream(ping.subarray(0, 7), 65536), [{ kind: 'partial', have: 3 }]);
});

t.test('the oracle follows the relay table: answers per state', async (t) => {
  const ctx = (state: 'AWAIT_HELLO' | 'READY' | 'IN_ROOM') => ({ state, maxFrame: 65536, peers: new Set(['ppeer']), registry: new Map<string, Buffer>() });
  const item = (f: Parameters<typeof encodeFrame>[0]) => ({ kind: 'frame' as const, body: Buffer.from(encodeFrame(f)) });
  t.match(new ConnectionOracle(ctx('AWAIT_HELLO')).expect(item(frame('PING', { n: 5 }))), { kind: 'error', codes: ['UNEXPECTED_FRAME'] });
  t.match(new ConnectionOracle(ctx('READY')).expect(item(frame('PING', { n: 5 }))), { kind: 'reply', type: 'PONG', n: 5 });
  t.match(new ConnectionOracle(ctx('IN_ROOM')).expect(item(frame('SEND', { to: 'ppeer', body: Buffer.from('x') }))), { kind: 'deliver', to: 'ppeer' });
  t.match(new ConnectionOracle(ctx('IN_ROOM')).expect(item(frame('SEND', { to: 'zed', body: Buffer.from('x') }))), { kind: 'error', codes: ['NO_SUCH_PEER'] });
  t.match(new ConnectionOracle(ctx('AWAIT_HELLO')).expect(item(frame('HELLO', { version: 1, nick: 'a', key: Buffer.alloc(294, 1) }))), {
    kind: 'error',
    codes: ['UNSUPPORTED_VERSION', 'BAD_PUBLIC_KEY'],
  });
  t.match(new ConnectionOracle(ctx('READY')).expect(item(frame('DELIVER', { from: 'a', body: Buffer.from('x') }))), { kind: 'error', codes: ['UNEXPECTED_FRAME'] });
  t.match(new ConnectionOracle(ctx('READY')).expect(item(frame('ERROR', { code: 1, detail: '' }))), { kind: 'close' });
});

t.test('cases are reproducible from (seed, index)', async (t) => {
  const book = new IdentityBook();
  for (let i = 0; i < 50; i++) {
    const a = makeCase(99, i, seeds, raw, book);
    const b = makeCase(99, i, seeds, raw, book);
    t.same([a.state, a.ops, a.cuts, a.payload.toString('hex')], [b.state, b.ops, b.cuts, b.payload.toString('hex')]);
    t.same(Buffer.concat(segmentsOf(a)), Buffer.concat([a.payload, a.sentinel]), 'segments cover the stream exactly');
  }
});

t.test('the minimiser finds the one byte that matters, within its attempt bound', async (t) => {
  const book = new IdentityBook();
  const base = makeCase(5, 0, seeds, raw, book);
  const noisy = Buffer.concat([new Prng(1).bytes(300).map((b) => (b === 0xc1 ? 0 : b)), Buffer.from([0xc1]), Buffer.alloc(77, 3)]);
  let runs = 0;
  const small = await minimise({ ...base, payload: noisy, cuts: [10, 200] }, async (c) => {
    runs++;
    return c.payload.includes(0xc1);
  });
  t.same([...small.payload], [0xc1]);
  t.ok(runs <= 300, `${runs} attempts`);
  let bounded = 0;
  const same = await minimise({ ...base, payload: noisy }, async () => (bounded++, false), 25);
  t.equal(bounded, 25, 'stops at maxAttempts when no candidate fails');
  t.same(same.payload, noisy, 'and keeps the original');
});

t.test('corpus files round-trip, and a damaged file is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-corpus-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const book = new IdentityBook();
  const c: FuzzCase = makeCase(7, 3, seeds, raw, book);
  const path = saveCrasher(dir, 7, c, 'what went wrong');
  const [e] = loadCorpus(dir);
  t.ok(path.endsWith(`${e!.id}.json`));
  const back = caseOf(e!, book);
  t.same([back.state, back.payload, back.sentinel, back.cuts, back.target.nick], [c.state, c.payload, c.sentinel, c.cuts, c.target.nick]);
  writeFileSync(join(dir, 'zz_bad.json'), JSON.stringify({ ...e, id: 'zz_bad', payload: 'xyz' }));
  t.throws(() => loadCorpus(dir), /hex/);
});
