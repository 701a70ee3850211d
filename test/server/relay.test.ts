// The relay over real TCP on 127.0.0.1 (spec/PROTOCOL.md §3, §7.1, §7.3): authentication, rooms,
// relaying, leaving, and every refusal a client can provoke, each asserted by its §9 code.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { encode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { encodeWire, frame } from '../../src/codec/index.js';
import { authMessage, pssSign } from '../../src/crypto/rsa.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { MAX_LISTABLE_ROOM_SIZE, startServer, type ServerOptions } from '../../src/server/index.js';
import { identities, TestClient, type Identity } from './helpers.js';
import { wire } from '../../src/wirekit/msgpack.js';

const [alice, bob, carol, mallory] = identities(4) as [Identity, Identity, Identity, Identity];

async function withServer(t: Test, opts: ServerOptions = {}): Promise<{ port: number; logs: Record<string, unknown>[]; stats: () => ReturnType<Awaited<ReturnType<typeof startServer>>['stats']> }> {
  const logs: Record<string, unknown>[] = [];
  const s = await startServer({ ...opts, log: (e) => logs.push(e) });
  t.teardown(() => s.close());
  return { port: s.port, logs, stats: () => s.stats() };
}

async function member(port: number, nick: string, id: Identity, room?: string): Promise<TestClient> {
  const c = await TestClient.connect(port);
  await c.auth(nick, id);
  if (room !== undefined) {
    c.send(frame('JOIN', { room }));
    await c.expect('JOINED');
  }
  return c;
}

t.test('auth: WELCOME announces the limits in force', async (t) => {
  const { port } = await withServer(t, { maxRoomSize: 5, idleTimeoutMs: 12345, rateFramesPerSecond: 77, maxFrameBytes: 4096 });
  const c = await TestClient.connect(port);
  const w = await c.auth('alice', alice);
  t.same({ ...w }, { type: 'WELCOME', idle_ms: 12345, max_frame: 4096, room_size: 5, rate: 77 });
  c.destroy();
});

t.test('join: the joiner gets the members with their keys, the others get PEER_JOINED with its key', async (t) => {
  const { port } = await withServer(t);
  const a = await member(port, 'alice', alice, 'r');
  const b = await TestClient.connect(port);
  await b.auth('bob', bob);
  b.send(frame('JOIN', { room: 'r' }));
  const joined = await b.expect('JOINED');
  t.equal(joined.room, 'r');
  t.same(joined.members.map((m) => [m.nick, Buffer.from(m.key).toString('hex')]), [['alice', Buffer.from(alice.spki).toString('hex')]]);
  const pj = await a.expect('PEER_JOINED');
  t.equal(pj.nick, 'bob');
  t.same(Buffer.from(pj.key), Buffer.from(bob.spki));
  a.destroy();
  b.destroy();
});

t.test('relay: bodies arrive unchanged and in order, both ways at once', async (t) => {
  const { port, stats } = await withServer(t);
  const a = await member(port, 'alice', alice, 'r');
  const b = await member(port, 'bob', bob, 'r');
  await a.expect('PEER_JOINED');
  const N = 300;
  const body = (from: string, i: number): Uint8Array => Buffer.from(`${from}:${i}:${'x'.repeat(i % 97)}`);
  for (let i = 0; i < N; i++) {
    a.send(frame('SEND', { to: 'bob', body: body('a', i) }));
    b.send(frame('SEND', { to: 'alice', body: body('b', i) }));
  }
  let inOrder = 0;
  for (let i = 0; i < N; i++) {
    const atB = await b.expect('DELIVER');
    const atA = await a.expect('DELIVER');
    if (atB.from === 'alice' && Buffer.from(atB.body).equals(body('a', i)) && atA.from === 'bob' && Buffer.from(atA.body).equals(body('b', i))) inOrder++;
  }
  t.equal(inOrder, N, `all ${N} frames each way in order, bodies unchanged, from stamped`);
  t.equal(stats().framesRelayed, 2 * N);
  a.destroy();
  b.destroy();
});

t.test('sender stamping: from is the authenticated nickname; a SEND carrying "from" is refused', async (t) => {
  const { port } = await withServer(t, { maxRoomSize: 3 });
  const a = await member(port, 'alice', alice, 'r');
  const b = await member(port, 'bob', bob, 'r');
  const m = await member(port, 'mallory', mallory, 'r');
  await a.expect('PEER_JOINED');
  await a.expect('PEER_JOINED');
  await b.expect('PEER_JOINED');
  m.send(frame('SEND', { to: 'bob', body: Buffer.from('hi') }));
  t.equal((await b.expect('DELIVER')).from, 'mallory', 'stamped with the sender, not chosen by it');
  // A SEND with an extra `from` field claiming to be alice: not a valid SEND (§4 rule 9).
  m.raw(wire(encode({ t: 9, to: 'bob', body: Buffer.from('forged'), from: 'alice' })));
  t.equal(await m.expectError(), 'INVALID_FIELD');
  t.equal(await m.next(), 'closed');
  const next = await b.next();
  t.same(typeof next === 'string' ? next : { type: next.type, nick: (next as { nick?: string }).nick }, { type: 'PEER_LEFT', nick: 'mallory' }, 'bob sees mallory leave, never a forged DELIVER');
  a.destroy();
  b.destroy();
});

t.test('SEND to oneself or to a non-member is NO_SUCH_PEER and the connection stays', async (t) => {
  const { port } = await withServer(t);
  const a = await member(port, 'alice', alice, 'r');
  const b = await member(port, 'bob', bob, 'other');
  a.send(frame('SEND', { to: 'alice', body: Buffer.from('me') }));
  t.equal(await a.expectError(), 'NO_SUCH_PEER');
  a.send(frame('SEND', { to: 'bob', body: Buffer.from('not in my room') }));
  t.equal(await a.expectError(), 'NO_SUCH_PEER');
  a.send(frame('PING', { n: 1 }));
  t.equal((await a.expect('PONG')).n, 1);
  b.send(frame('PING', { n: 2 }));
  t.equal((await b.expect('PONG')).n, 2, 'bob received nothing before his PONG');
  a.destroy();
  b.destroy();
});

t.test('a refusal that does not close does not drop the frames after it in the same write', async (t) => {
  const { port } = await withServer(t);
  const a = await member(port, 'alice', alice, 'r');
  const b = await member(port, 'bob', bob, 'r');
  await a.expect('PEER_JOINED');
  a.raw(
    Buffer.concat([
      encodeWire(frame('SEND', { to: 'nobody', body: Buffer.from('x') })),
      encodeWire(frame('SEND', { to: 'bob', body: Buffer.from('after the refusal') })),
      encodeWire(frame('PING', { n: 5 })),
    ]),
  );
  t.equal(await a.expectError(), 'NO_SUCH_PEER');
  t.equal((await a.expect('PONG')).n, 5);
  t.equal(Buffer.from((await b.expect('DELIVER')).body).toString(), 'after the refusal');
  a.destroy();
  b.destroy();
});

t.test('SENDs in a busy room, in any mix and cut anywhere: every DELIVER in order, every refusal and PONG in its place', async (t) => {
  // The relay reads a member's SENDs to the same addressee straight from the chunk (src/server/index.ts
  // relaySends) and hands anything else, and the frame a chunk cuts, to the frame reader: whatever the
  // mix and wherever the chunks end, the outcome is that of the frames taken one by one.
  const { port, stats } = await withServer(t);
  const a = await member(port, 'alice', alice, 'r');
  const b = await member(port, 'bob', bob, 'r');
  await member(port, 'carol', carol, 'other');
  await a.expect('PEER_JOINED');
  type Op = { k: 'bob'; body: Uint8Array } | { k: 'nobody' | 'self' | 'carol' } | { k: 'ping'; n: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.uint8Array({ minLength: 2, maxLength: 600 }).map((body) => ({ k: 'bob' as const, body })) },
    { weight: 1, arbitrary: fc.constantFrom({ k: 'nobody' as const }, { k: 'self' as const }, { k: 'carol' as const }) },
    { weight: 1, arbitrary: fc.nat({ max: 1000 }).map((n) => ({ k: 'ping' as const, n })) },
  );
  const encoded = (o: Op): Buffer =>
    o.k === 'bob' ? encodeWire(frame('SEND', { to: 'bob', body: o.body }))
    : o.k === 'ping' ? encodeWire(frame('PING', { n: o.n }))
    : encodeWire(frame('SEND', { to: o.k === 'self' ? 'alice' : o.k, body: Buffer.from('x') }));
  let round = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), fc.array(fc.nat(), { maxLength: 8 }), async (ops, cuts) => {
      round++;
      const bytes = Buffer.concat([...ops.map(encoded), encodeWire(frame('SEND', { to: 'bob', body: Buffer.from([0xff]) })), encodeWire(frame('PING', { n: 1_000_000 + round }))]);
      const at = [...new Set(cuts.map((c) => c % bytes.length))].sort((x, y) => x - y);
      let from = 0;
      for (const c of [...at, bytes.length]) {
        if (c > from) a.raw(bytes.subarray(from, c));
        from = c;
        await new Promise((r) => setTimeout(r, 1));
      }
      const delivered: string[] = [];
      for (;;) {
        const d = await b.expect('DELIVER');
        if (d.from !== 'alice') return false;
        if (d.body.length === 1 && d.body[0] === 0xff) break;
        delivered.push(Buffer.from(d.body).toString('hex'));
      }
      const answered: string[] = [];
      for (;;) {
        const f = await a.next();
        if (f === 'closed') return false;
        if (f.type === 'PONG' && f.n === 1_000_000 + round) break;
        answered.push(f.type === 'PONG' ? `PONG ${f.n}` : f.type === 'ERROR' ? `ERROR ${f.code}` : f.type);
      }
      const wantDelivered = ops.flatMap((o) => (o.k === 'bob' ? [Buffer.from(o.body).toString('hex')] : []));
      const wantAnswered = ops.flatMap((o) => (o.k === 'bob' ? [] : o.k === 'ping' ? [`PONG ${o.n}`] : [`ERROR ${ERROR_CODES.NO_SUCH_PEER.code}`]));
      t.same(delivered, wantDelivered);
      t.same(answered, wantAnswered);
      return JSON.stringify(delivered) === JSON.stringify(wantDelivered) && JSON.stringify(answered) === JSON.stringify(wantAnswered);
    }),
    { numRuns: 60 },
  );
  t.equal(round, 60);
  t.equal(stats().errors.INTERNAL_ERROR, undefined);
});

t.test('SENDs in one write past the frame rate or the byte rate: the first ones delivered in order, then RATE_LIMITED', async (t) => {
  for (const opts of [
    { rateFramesPerSecond: 1, rateBurst: 24 },
    { rateBytesPerSecond: 1, rateBurstBytes: 65536, rateFramesPerSecond: 1_000_000, rateBurst: 1_000_000 },
  ]) {
    const { port, stats } = await withServer(t, opts);
    const a = await member(port, 'alice', alice, 'r');
    const b = await member(port, 'bob', bob, 'r');
    await a.expect('PEER_JOINED');
    a.send(frame('SEND', { to: 'bob', body: Buffer.from('first') }));
    t.equal(Buffer.from((await b.expect('DELIVER')).body).toString(), 'first');
    const body = (i: number) => Buffer.concat([Buffer.from(`${i}:`), Buffer.alloc(600, i & 0xff)]);
    const n = 200; // 200 x 616 bytes: past 65,536 bytes as well as past 24 frames
    a.raw(Buffer.concat(Array.from({ length: n }, (_, i) => encodeWire(frame('SEND', { to: 'bob', body: body(i) })))));
    const frames = await a.drainUntilClosed();
    const last = frames.at(-1);
    t.equal(last?.type === 'ERROR' ? last.code : undefined, 14, 'ERROR RATE_LIMITED (14) and close');
    t.equal(stats().errors.RATE_LIMITED, 1);
    const got: number[] = [];
    for (;;) {
      const d = await b.next();
      if (d === 'closed' || d.type !== 'DELIVER') break;
      got.push(Number(Buffer.from(d.body).toString('latin1').split(':')[0]));
      if (got.length === n) break;
    }
    t.ok(got.length >= 1 && got.length < n, `some delivered before the limit (${got.length})`);
    t.same(got, Array.from({ length: got.length }, (_, i) => i), 'in order, none skipped');
    a.destroy();
    b.destroy();
  }
});

t.test('leave and rejoin: LEFT, PEER_LEFT at once, then JOINED/PEER_JOINED again; each event carries the next room epoch', async (t) => {
  const { port, stats } = await withServer(t);
  const a = await member(port, 'alice', alice, 'r');
  const b = await member(port, 'bob', bob, 'r');
  t.equal((await a.expect('PEER_JOINED')).epoch, 2, 'alice created the room at epoch 1; bob joined at 2');
  b.send(frame('LEAVE', {}));
  await b.expect('LEFT');
  t.same(await a.expect('PEER_LEFT'), { type: 'PEER_LEFT', nick: 'bob', epoch: 3 });
  a.send(frame('SEND', { to: 'bob', body: Buffer.from('gone?') }));
  t.equal(await a.expectError(), 'NO_SUCH_PEER', 'nothing is delivered after a leave');
  b.send(frame('JOIN', { room: 'r' }));
  const again = await b.expect('JOINED');
  t.same(again.members.map((m) => m.nick), ['alice']);
  const pj = await a.expect('PEER_JOINED');
  t.equal(pj.nick, 'bob');
  t.same([again.epoch, pj.epoch], [4, 4], 'the joiner and the member are told the same epoch');
  a.send(frame('SEND', { to: 'bob', body: Buffer.from('back') }));
  t.equal(Buffer.from((await b.expect('DELIVER')).body).toString(), 'back');
  b.send(frame('LEAVE', {}));
  await b.expect('LEFT');
  t.equal((await a.expect('PEER_LEFT')).epoch, 5);
  a.send(frame('LEAVE', {}));
  await a.expect('LEFT');
  t.equal(stats().rooms, 0, 'the room is removed when empty');
  a.send(frame('JOIN', { room: 'r' }));
  t.equal((await a.expect('JOINED')).epoch, 1, 'an emptied room created anew starts again at epoch 1');
  a.destroy();
  b.destroy();
});

t.test('a dropped connection sends PEER_LEFT to the rest', async (t) => {
  const { port } = await withServer(t);
  const a = await member(port, 'alice', alice, 'r');
  const b = await member(port, 'bob', bob, 'r');
  await a.expect('PEER_JOINED');
  b.destroy();
  t.same(await a.expect('PEER_LEFT'), { type: 'PEER_LEFT', nick: 'bob', epoch: 3 });
  a.destroy();
});

t.test('room full: the third joiner gets ROOM_FULL and stays connected', async (t) => {
  const { port, logs } = await withServer(t);
  const a = await member(port, 'alice', alice, 'r');
  const b = await member(port, 'bob', bob, 'r');
  const c = await member(port, 'carol', carol);
  c.send(frame('JOIN', { room: 'r' }));
  t.equal(await c.expectError(), 'ROOM_FULL');
  c.send(frame('JOIN', { room: 'elsewhere' }));
  t.same((await c.expect('JOINED')).members, [], 'the same connection may join another room');
  t.ok(logs.some((e) => e['event'] === 'refuse' && e['code'] === 'ROOM_FULL'), 'the refusal is logged with its code');
  for (const x of [a, b, c]) x.destroy();
});

t.test('three simultaneous joins to one room admit exactly two', async (t) => {
  const { port } = await withServer(t);
  const cs = [await member(port, 'alice', alice), await member(port, 'bob', bob), await member(port, 'carol', carol)];
  for (const c of cs) c.send(frame('JOIN', { room: 'race' }));
  const outcomes = await Promise.all(
    cs.map(async (c) => {
      const r = await c.next();
      if (r === 'closed') return 'closed';
      return r.type === 'ERROR' ? `ERROR ${r.code}` : r.type;
    }),
  );
  t.same([...outcomes].sort(), ['ERROR 10', 'JOINED', 'JOINED'], 'two JOINED, one ROOM_FULL (code 10)');
  for (const c of cs) c.destroy();
});

t.test('rooms of more than two members, when configured', async (t) => {
  const { port } = await withServer(t, { maxRoomSize: 3 });
  const a = await member(port, 'alice', alice, 'big');
  const b = await member(port, 'bob', bob, 'big');
  const c = await TestClient.connect(port);
  await c.auth('carol', carol);
  c.send(frame('JOIN', { room: 'big' }));
  t.same((await c.expect('JOINED')).members.map((m) => m.nick), ['alice', 'bob']);
  t.equal((await a.expect('PEER_JOINED')).nick, 'bob');
  t.equal((await a.expect('PEER_JOINED')).nick, 'carol');
  t.equal((await b.expect('PEER_JOINED')).nick, 'carol');
  c.send(frame('SEND', { to: 'alice', body: Buffer.from('to alice only') }));
  a.send(frame('PING', { n: 1 }));
  b.send(frame('PING', { n: 2 }));
  t.equal((await a.expect('DELIVER')).from, 'carol');
  await a.expect('PONG');
  t.equal((await b.expect('PONG')).n, 2, 'bob got nothing addressed to alice');
  for (const x of [a, b, c]) x.destroy();
});

t.test('the same nickname twice in a room is NICK_IN_ROOM', async (t) => {
  const { port } = await withServer(t);
  const a1 = await member(port, 'alice', alice, 'r');
  const a2 = await member(port, 'alice', alice);
  a2.send(frame('JOIN', { room: 'r' }));
  t.equal(await a2.expectError(), 'NICK_IN_ROOM');
  a2.send(frame('PING', { n: 3 }));
  t.equal((await a2.expect('PONG')).n, 3, 'NICK_IN_ROOM does not close');
  a1.destroy();
  a2.destroy();
});

t.test('a signature that does not verify is AUTH_FAILED and binds nothing', async (t) => {
  const { port } = await withServer(t);
  const c = await TestClient.connect(port);
  c.send(frame('HELLO', { version: 2, nick: 'alice', key: alice.spki }));
  const ch = await c.expect('CHALLENGE');
  // Signed by mallory's key, claiming alice's.
  c.send(frame('AUTH', { sig: pssSign(mallory.privateKey, authMessage(ch.nonce, 'alice', alice.spki, ch.relay, new Uint8Array(0))) }));
  t.equal(await c.expectError(), 'AUTH_FAILED');
  t.equal(await c.next(), 'closed');

  const stale = await TestClient.connect(port);
  stale.send(frame('HELLO', { version: 2, nick: 'alice', key: alice.spki }));
  const ch2 = await stale.expect('CHALLENGE');
  // Signed by the right key over another nonce (a replayed AUTH).
  const other = Buffer.from(ch2.nonce).fill(0);
  stale.send(frame('AUTH', { sig: pssSign(alice.privateKey, authMessage(other, 'alice', alice.spki, `127.0.0.1:${port}`, new Uint8Array(0))) }));
  t.equal(await stale.expectError(), 'AUTH_FAILED');

  const m = await TestClient.connect(port);
  await m.auth('alice', mallory);
  t.pass('the nickname was still free: failed AUTH bound nothing');
  m.destroy();
});

t.test('HELLO with another version is UNSUPPORTED_VERSION; a bad key is BAD_PUBLIC_KEY', async (t) => {
  const { port } = await withServer(t);
  const v = await TestClient.connect(port);
  v.send(frame('HELLO', { version: 1, nick: 'alice', key: alice.spki }));
  t.equal(await v.expectError(), 'UNSUPPORTED_VERSION');
  t.equal(await v.next(), 'closed');

  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'der' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  for (const [what, key] of [
    ['1024-bit RSA', small],
    ['EC key', ec],
    ['garbage', Buffer.from('not a key at all')],
  ] as const) {
    const c = await TestClient.connect(port);
    c.send(frame('HELLO', { version: 2, nick: 'alice', key }));
    t.equal(await c.expectError(), 'BAD_PUBLIC_KEY', what);
    t.equal(await c.next(), 'closed');
  }
});

t.test('framing violations are refused with their codes and close', async (t) => {
  const { port } = await withServer(t, { maxFrameBytes: 2048 });
  const cases: [string, Buffer, string][] = [
    ['zero length', Buffer.from([0, 0, 0, 0]), 'MALFORMED_FRAME'],
    ['declared length over max_frame, no body sent', Buffer.from([0, 0, 0x08, 0x01]), 'FRAME_TOO_LARGE'],
    ['declared length over MAX_FRAME_BYTES', Buffer.from([0xff, 0xff, 0xff, 0xff]), 'FRAME_TOO_LARGE'],
    ['not msgpack', wire(Buffer.from([0xc1])), 'MALFORMED_FRAME'],
    ['trailing bytes', wire(Buffer.concat([Buffer.from(encode({ t: 13, n: 1 })), Buffer.from([0])])), 'MALFORMED_FRAME'],
    ['an e2e frame on the relay connection', wire(encode({ t: 0x23, sig: new Uint8Array(256), mac: new Uint8Array(32) })), 'UNKNOWN_FRAME_TYPE'],
    ['HELLO without key', wire(encode({ t: 1, version: 2, nick: 'alice' })), 'INVALID_FIELD'],
    ['nick outside the alphabet', wire(encode({ t: 1, version: 2, nick: 'al ice', key: alice.spki })), 'INVALID_FIELD'],
  ];
  for (const [what, bytes, code] of cases) {
    const c = await TestClient.connect(port);
    c.raw(bytes);
    t.equal(await c.expectError(), code, what);
    t.equal(await c.next(), 'closed', `${what}: closed`);
  }
});

t.test('a frame split across many writes is one frame; many frames in one write are all handled', async (t) => {
  const { port } = await withServer(t);
  const c = await TestClient.connect(port);
  await c.auth('alice', alice);
  const ping = encodeWire(frame('PING', { n: 42 }));
  for (const byte of ping) {
    c.raw(Buffer.from([byte]));
    await new Promise((r) => setImmediate(r));
  }
  t.equal((await c.expect('PONG')).n, 42);
  c.raw(Buffer.concat(Array.from({ length: 20 }, (_, i) => encodeWire(frame('PING', { n: i })))));
  const ns: number[] = [];
  for (let i = 0; i < 20; i++) ns.push((await c.expect('PONG')).n);
  t.same(ns, Array.from({ length: 20 }, (_, i) => i));
  c.destroy();
});

t.test('NICK_BOUND: another key for a bound nickname is refused, also after a restart on the same registry', async (t) => {
  const dir = t.testdir({});
  const registry = join(dir, 'state', 'registry.db');
  const first = await startServer({ registry });
  const a = await TestClient.connect(first.port);
  await a.auth('alice', alice);
  const m = await TestClient.connect(first.port);
  m.send(frame('HELLO', { version: 2, nick: 'alice', key: mallory.spki }));
  const ch = await m.expect('CHALLENGE');
  m.send(frame('AUTH', { sig: pssSign(mallory.privateKey, authMessage(ch.nonce, 'alice', mallory.spki, ch.relay, new Uint8Array(0))) }));
  t.equal(await m.expectError(), 'NICK_BOUND');
  t.equal(await m.next(), 'closed');
  await first.close();
  t.equal(await a.expectError(), 'SERVER_SHUTDOWN');

  const second = await startServer({ registry });
  t.teardown(() => second.close());
  const m2 = await TestClient.connect(second.port);
  m2.send(frame('HELLO', { version: 2, nick: 'alice', key: mallory.spki }));
  const ch2 = await m2.expect('CHALLENGE');
  m2.send(frame('AUTH', { sig: pssSign(mallory.privateKey, authMessage(ch2.nonce, 'alice', mallory.spki, ch2.relay, new Uint8Array(0))) }));
  t.equal(await m2.expectError(), 'NICK_BOUND', 'the binding survived the restart');
  const a2 = await TestClient.connect(second.port);
  await a2.auth('alice', alice);
  t.pass('the first key is still welcome');
  a2.destroy();
});

t.test('a client reset in the middle of its handshake does not affect others', async (t) => {
  const { port, stats } = await withServer(t);
  const a = await member(port, 'alice', alice, 'r');
  const b = await member(port, 'bob', bob, 'r');
  await a.expect('PEER_JOINED');
  const before = stats().connections;
  for (let i = 0; i < 10; i++) {
    const x = await TestClient.connect(port);
    x.send(frame('HELLO', { version: 2, nick: `x${i}`, key: carol.spki }));
    if (i % 2 === 0) await x.expect('CHALLENGE');
    // A half frame, then a TCP reset.
    x.raw(encodeWire(frame('PING', { n: 1 })).subarray(0, 3));
    x.socket.resetAndDestroy();
  }
  a.send(frame('SEND', { to: 'bob', body: Buffer.from('still here') }));
  t.equal(Buffer.from((await b.expect('DELIVER')).body).toString(), 'still here');
  b.send(frame('SEND', { to: 'alice', body: Buffer.from('me too') }));
  t.equal(Buffer.from((await a.expect('DELIVER')).body).toString(), 'me too');
  // The resets are forgotten: wait (bounded) until the relay has seen every close.
  for (let i = 0; i < 500 && stats().connections > before; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(stats().connections, before, 'the reset connections are forgotten');
  a.destroy();
  b.destroy();
});

t.test('logs carry codes and metadata, never a body or a key', async (t) => {
  const { port, logs } = await withServer(t);
  const a = await member(port, 'alice', alice, 'r');
  const b = await member(port, 'bob', bob, 'r');
  await a.expect('PEER_JOINED');
  const secret = 'BODY-MARKER-7f3a9c';
  a.send(frame('SEND', { to: 'bob', body: Buffer.from(secret) }));
  await b.expect('DELIVER');
  a.send(frame('SEND', { to: 'nobody', body: Buffer.from(secret) }));
  t.equal(await a.expectError(), 'NO_SUCH_PEER');
  a.destroy();
  await b.expect('PEER_LEFT');
  const text = logs.map((e) => JSON.stringify(e)).join('\n');
  t.notOk(text.includes(secret), 'no body in any log line');
  t.notOk(text.includes(Buffer.from(secret).toString('hex')) || text.includes(Buffer.from(secret).toString('base64')), 'nor its hex or base64');
  const keyHex = Buffer.from(alice.spki).toString('hex').slice(100, 160);
  const keyB64 = Buffer.from(alice.spki).toString('base64').slice(100, 140);
  t.notOk(text.includes(keyHex) || text.includes(keyB64), 'no key bytes in any log line');
  t.ok(logs.every((e) => Object.values(e).every((v) => !(v instanceof Uint8Array))), 'no binary values');
  t.ok(logs.some((e) => e['event'] === 'refuse' && e['code'] === 'NO_SUCH_PEER'));
  b.destroy();
});

t.test('random bytes and random frame sequences never produce INTERNAL_ERROR or stop the relay', async (t) => {
  const { port, stats } = await withServer(t, { maxConnectionsPerAddress: 1000 });
  const pair = [await member(port, 'alice', alice, 'r'), await member(port, 'bob', bob, 'r')] as const;
  await pair[0].expect('PEER_JOINED');
  const body = fc.uint8Array({ minLength: 1, maxLength: 64 });
  const anyFrame = fc.oneof(
    fc.constant(frame('LEAVE', {})),
    fc.record({ room: fc.constantFrom('r', 'x', 'y') }).map((f) => frame('JOIN', f)),
    fc.record({ to: fc.constantFrom('alice', 'bob', 'zed'), body }).map((f) => frame('SEND', f)),
    fc.record({ n: fc.nat() }).map((f) => frame('PING', f)),
    fc.record({ n: fc.nat() }).map((f) => frame('PONG', f)),
    fc.record({ sig: fc.uint8Array({ minLength: 256, maxLength: 256 }) }).map((f) => frame('AUTH', f)),
    fc.record({ version: fc.constantFrom(0, 1, 2), nick: fc.constantFrom('alice', 'q'), key: fc.constantFrom(alice.spki, carol.spki) }).map((f) => frame('HELLO', f)),
  );
  const input = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => ({ raw: Buffer.from(b), auth: false })),
    fc.array(anyFrame, { minLength: 1, maxLength: 12 }).map((fs) => ({ raw: Buffer.concat(fs.map((f) => encodeWire(f))), auth: true })),
  );
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(input, async ({ raw, auth }) => {
      const c = await TestClient.connect(port);
      if (auth) await c.auth(`fz${runs}`, mallory);
      runs++;
      c.raw(raw);
      // End whatever state survived the input: a closing ERROR after whole frames, a half-close after
      // raw bytes (which may have left a frame unfinished).
      if (auth) c.send(frame('ERROR', { code: 18, detail: '' }));
      else c.end();
      const got = await c.drainUntilClosed();
      // Everything the relay answered is a frame it may send, and every ERROR carries a relay code.
      return got.every((f) => f.type !== 'ERROR' || (f.code >= 1 && f.code <= 17));
    }),
    { numRuns: 150 },
  );
  t.equal(runs, 150);
  t.equal(stats().errors.INTERNAL_ERROR, undefined, 'no INTERNAL_ERROR in any run');
  pair[0].send(frame('SEND', { to: 'bob', body: Buffer.from('still relaying') }));
  t.equal(Buffer.from((await pair[1].expect('DELIVER')).body).toString(), 'still relaying');
  for (const c of pair) c.destroy();
});

t.test('room_size is capped where JOINED still fits one frame (spec §6): 192 works with full-length names, 193 is refused', async (t) => {
  t.equal(MAX_LISTABLE_ROOM_SIZE, 192);
  await t.rejects(startServer({ maxRoomSize: MAX_LISTABLE_ROOM_SIZE + 1 }), RangeError);
  const size = MAX_LISTABLE_ROOM_SIZE;
  const { port } = await withServer(t, { maxRoomSize: size, maxConnectionsPerAddress: size + 8, maxConnectionsPerKey: size + 8, bindsPerKey: size + 8 });
  const room = 'R'.repeat(64);
  const nick = (i: number) => `n${i}`.padEnd(32, '_');
  const cs: TestClient[] = [];
  for (let i = 0; i < size; i++) {
    const c = await TestClient.connect(port);
    await c.auth(nick(i), carol); // one key may hold many nicknames
    c.send(frame('JOIN', { room }));
    const j = await c.expect('JOINED');
    if (j.members.length !== i) t.fail(`joiner ${i} saw ${j.members.length} members`);
    cs.push(c);
  }
  const last = cs[size - 1]!;
  t.pass(`${size} members joined with 32-byte nicknames in a 64-byte room`);
  const over = await TestClient.connect(port);
  await over.auth('late', carol);
  over.send(frame('JOIN', { room }));
  t.equal(await over.expectError(), 'ROOM_FULL');
  last.send(frame('SEND', { to: nick(0), body: Buffer.from('from the last') }));
  // The first member got PEER_JOINED for each of the others before this DELIVER.
  let peerJoined = 0;
  for (let i = 0; i < size; i++) {
    const r = await cs[0]!.next();
    if (r !== 'closed' && r.type === 'PEER_JOINED') peerJoined++;
    else {
      t.equal(r !== 'closed' && r.type === 'DELIVER' ? r.from : undefined, nick(size - 1));
      break;
    }
  }
  t.equal(peerJoined, size - 1);
  for (const c of [...cs, over]) c.destroy();
});

t.test('JOIN behind AUTH (§7.1, §7.4): handled after WELCOME; behind a refused AUTH never handled, nothing reaches the room', async (t) => {
  const dir = t.testdir({});
  const { port } = await withServer(t, { registry: join(dir, 'registry.db') });
  // AUTH and JOIN in one write, and JOIN in a write of its own while the new binding is being committed.
  const behind = async (nick: string, id: Identity, signer: Identity, split: boolean): Promise<TestClient> => {
    const c = await TestClient.connect(port);
    c.send(frame('HELLO', { version: 2, nick, key: id.spki }));
    const ch = await c.expect('CHALLENGE');
    const auth = encodeWire(frame('AUTH', { sig: pssSign(signer.privateKey, authMessage(ch.nonce, nick, id.spki, ch.relay, new Uint8Array(0))) }));
    const join = encodeWire(frame('JOIN', { room: 'early' }));
    if (split) {
      c.raw(auth);
      c.raw(join);
    } else c.raw(Buffer.concat([auth, join]));
    return c;
  };
  const a = await behind('alice', alice, alice, false);
  t.equal((await a.expect('WELCOME')).type, 'WELCOME', 'WELCOME first');
  t.same((await a.expect('JOINED')).members, [], 'then JOINED: the JOIN was handled in READY');
  const b = await behind('bob', bob, bob, true);
  await b.expect('WELCOME');
  t.same((await b.expect('JOINED')).members.map((m) => m.nick), ['alice'], 'a JOIN in its own write behind AUTH too');
  t.equal((await a.expect('PEER_JOINED')).nick, 'bob');

  // A bad signature (AUTH_FAILED), and another key for a bound nickname (NICK_BOUND, after the registry).
  const forged = await behind('carol', carol, mallory, false);
  t.equal(await forged.expectError(), 'AUTH_FAILED');
  t.equal(await forged.next(), 'closed', 'closed, the JOIN behind never answered');
  const taken = await behind('alice', mallory, mallory, true);
  t.equal(await taken.expectError(), 'NICK_BOUND');
  t.equal(await taken.next(), 'closed', 'closed, the JOIN behind never answered');
  // Neither reached the room: its members saw no PEER_JOINED, and its epoch moved only for bob.
  b.send(frame('LEAVE', {}));
  await b.expect('LEFT');
  const left = await a.expect('PEER_LEFT');
  t.equal(left.nick, 'bob', 'the next event alice sees is bob leaving: no PEER_JOINED for carol or mallory');
  t.equal(left.epoch, 3, 'epochs 1 (alice), 2 (bob), 3 (bob left): nothing else joined');
  a.destroy();
});
