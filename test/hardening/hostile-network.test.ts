// Hostile network, against the real relay on loopback (spec §3, §7.1 "Resource limits", §10):
// a 4 GiB declared length is refused as soon as its 4 bytes arrive; garbage before, inside and after
// frames gets the code the reference decoder names; hundreds of slowloris connections trickling bytes do
// not stop a legitimate pair from completing an end-to-end session; connection floods are capped.
// Many source addresses (127.0.0.x) stand in for many hosts, so the per-address cap does not hide the test.
import t, { type Test } from 'tap';
import { encodeFrame, frame } from '../../src/codec/index.js';
import { ERROR_CODES, type ErrorName } from '../../src/protocol/errors.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { startServer, type RelayServer } from '../../src/server/index.js';
import { ConnectionOracle, splitStream } from '../../src/wirekit/relay-model.js';
import { connectionFlood } from '../../src/wirekit/relay-conn.js';
import { identity, RawConnection, type Identity } from '../../src/wirekit/relay-conn.js';
import { sessionPair } from './session-pair.js';
import { wire } from '../../src/wirekit/msgpack.js';

const code = (n: ErrorName): number => ERROR_CODES[n].code;

async function relay(t: Test, opts: Parameters<typeof startServer>[0] = {}): Promise<RelayServer> {
  const s = await startServer({ port: 0, ...opts });
  t.teardown(() => s.close());
  return s;
}

/** Polls `cond` on the event loop, at most `tries` times 10 ms apart; true once it holds. */
async function eventually(cond: () => boolean, tries = 500): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}

async function inState(s: RelayServer, state: 'AWAIT_HELLO' | 'READY' | 'IN_ROOM', id: Identity): Promise<RawConnection> {
  const c = await RawConnection.open(s.host, s.port);
  if (state !== 'AWAIT_HELLO') await c.authenticate(id);
  if (state === 'IN_ROOM') await c.join(`room-${id.nick}`);
  return c;
}

t.test('a 4 GiB declared length is refused with FRAME_TOO_LARGE on its 4 bytes alone, in every state', async (t) => {
  const s = await relay(t);
  const before = process.memoryUsage().rss;
  for (const state of ['AWAIT_HELLO', 'READY', 'IN_ROOM'] as const) {
    for (const prefix of [0xffff_ffff, 0x8000_0000, LIMITS.MAX_FRAME_BYTES + 1]) {
      const c = await inState(s, state, identity(`big${state.length}${prefix % 1000}`));
      const hdr = Buffer.alloc(4);
      hdr.writeUInt32BE(prefix);
      c.write(hdr); // nothing else is ever sent: the relay cannot be waiting for a body
      const f = await c.next();
      t.match(f, { type: 'ERROR', code: code('FRAME_TOO_LARGE') }, `${state}: prefix ${prefix.toString(16)}`);
      t.match(await c.next(), { type: 'closed' }, 'and the connection is closed');
      c.close();
    }
  }
  const grew = process.memoryUsage().rss - before;
  t.ok(grew < 256 * 1024 * 1024, `relay and test together grew by ${Math.round(grew / 1048576)} MiB, far below one 4 GiB buffer`);
  t.equal(s.stats().errors.FRAME_TOO_LARGE, 9);
});

t.test('garbage before, inside and after frames gets the code the reference decoder names', async (t) => {
  const s = await relay(t);
  const me = identity('gbase');
  const hello = wire(encodeFrame(frame('HELLO', { version: 2, nick: 'gbefore', key: me.spki })));
  // The first error the reference decoder finds, in stream order: a framing error further on in the same
  // read never overtakes the frames before it (spec §3).
  const expected = (bytes: Buffer): number[] => {
    const oracle = new ConnectionOracle({ state: 'AWAIT_HELLO', maxFrame: LIMITS.MAX_FRAME_BYTES, peers: new Set(), registry: new Map() });
    const items = splitStream(bytes, LIMITS.MAX_FRAME_BYTES);
    for (const it of items) {
      const e = oracle.expect(it);
      if (e.kind === 'error') return [code(e.codes[0]!)];
    }
    return [];
  };
  const cases: [string, Buffer][] = [
    ['HTTP request before HELLO', Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n\r\n'), hello])],
    ['TLS ClientHello before HELLO', Buffer.concat([Buffer.from('160301020001', 'hex'), hello])],
    ['zero length before HELLO', Buffer.concat([Buffer.alloc(4), hello])],
    ['a stray byte before HELLO', Buffer.concat([Buffer.from([0x00]), hello])],
    ['noise inside HELLO (length counts it)', (() => {
      const body = Buffer.from(encodeFrame(frame('HELLO', { version: 2, nick: 'ginside', key: me.spki })));
      return wire(Buffer.concat([body.subarray(0, 20), Buffer.from('deadbeef', 'hex'), body.subarray(20)]));
    })()],
    ['noise inside HELLO (length does not count it)', (() => {
      const w = Buffer.from(hello);
      return Buffer.concat([w.subarray(0, 30), Buffer.from('c1c1c1c1', 'hex'), w.subarray(30)]);
    })()],
    ['a HELLO cut short by a new frame', Buffer.concat([hello.subarray(0, 100), hello])],
  ];
  for (const [name, bytes] of cases) {
    const want = expected(bytes);
    t.ok(want.length > 0, `${name}: the decoder rejects it (codes ${want.join(' or ')})`);
    const c = await RawConnection.open(s.host, s.port);
    c.write(bytes);
    const f = await c.next();
    if (f.type === 'closed') {
      // Still waiting for the rest of a frame that cannot complete: end it; a partial frame is a disconnect.
      t.fail(`${name}: closed without ERROR`);
      continue;
    }
    t.ok(f.type === 'ERROR' && want.includes(f.code), `${name}: ERROR ${f.type === 'ERROR' ? f.code : f.type}`);
    t.match(await c.next(), { type: 'closed' }, `${name}: closed after the ERROR`);
    c.close();
  }
  // After frames: a valid PING is answered, then the garbage that follows it gets its code.
  const c = await inState(s, 'READY', identity('gafter'));
  c.send(frame('PING', { n: 41 }));
  t.match(await c.next(), { type: 'PONG', n: 41 }, 'the frame before the garbage is answered');
  c.write(Buffer.from('ffff', 'hex'));
  c.write(Buffer.from('ffff', 'hex'));
  t.match(await c.next(), { type: 'ERROR', code: code('FRAME_TOO_LARGE') }, 'garbage after a frame: FRAME_TOO_LARGE');
  // Nobody else was affected.
  const pair = await sessionPair(s.host, s.port, identity('gpa'), identity('gpb'), 'garbage-after');
  t.same(pair.shown, ['hello through the storm'], 'a legitimate pair still completes a session');
});

t.test('300 slowloris connections trickling bytes do not stop a legitimate pair', async (t) => {
  // A long handshake timeout keeps every slowloris connection held for the whole test.
  // One /24 (127.0.0.x) holds all 300: the per-subnet cap (default 256) is raised with the total.
  const s = await relay(t, { handshakeTimeoutMs: 120_000, maxConnections: 1000, maxConnectionsPerSubnet: 1000 });
  const slow: RawConnection[] = [];
  const ADDRS = ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14'];
  for (let i = 0; i < 300; i++) slow.push(await RawConnection.open(s.host, s.port, ADDRS[i % ADDRS.length]));
  t.teardown(() => slow.forEach((c) => c.close()));
  t.ok(await eventually(() => s.stats().connections >= 300), `${s.stats().connections} connections held`);
  const probe = identity('slowkey');
  const hellos = slow.map((_, i) => wire(encodeFrame(frame('HELLO', { version: 2, nick: `slow${i}`, key: probe.spki }))));
  let sent = 0;
  let trickling = true;
  // One byte per connection per tick; bounded by the HELLO length, stops when the pair is done.
  const trickle = (async () => {
    for (let tick = 0; tick < hellos[0]!.length - 1 && trickling; tick++) {
      slow.forEach((c, i) => c.write(hellos[i]!.subarray(tick, tick + 1)));
      sent += slow.length;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const started = performance.now();
  const pair = await sessionPair(s.host, s.port, identity('slowa'), identity('slowb'), 'under-siege', '127.0.0.1');
  const ms = performance.now() - started;
  const held = s.stats().connections;
  trickling = false;
  await trickle;
  t.equal(pair.safetyA, pair.safetyB, 'both ends show the same safety number');
  t.same(pair.shown, ['hello through the storm'], 'the message arrived and was shown once');
  t.ok(held >= 300, `${held} connections held when the pair finished (300 slowloris and the pair)`);
  t.ok(sent > 0, `${sent} bytes trickled meanwhile`);
  t.ok(slow.every((c) => !c.closed), 'no slowloris connection was refused or closed');
  t.comment(`legitimate pair (auth, join, e2e handshake, one message) took ${ms.toFixed(0)} ms beside 300 slowloris connections`);
});

t.test('connection floods are capped: per address, and in total', async (t) => {
  const s = await relay(t, { maxConnections: 100 });
  const d = { replyMs: 15_000 };
  const one = await connectionFlood(s, 90, LIMITS.MAX_CONNECTIONS_PER_ADDRESS, '127.0.0.20', d);
  t.equal(one.failure, undefined, one.failure ?? 'per-address flood checked');
  t.equal(one.held, LIMITS.MAX_CONNECTIONS_PER_ADDRESS, `${one.held} held from one address`);
  t.equal(one.refused, 90 - LIMITS.MAX_CONNECTIONS_PER_ADDRESS, `${one.refused} refused with TOO_MANY_CONNECTIONS`);
  t.ok(await eventually(() => s.stats().connections === 0), 'every flood connection is forgotten once closed');
  // Total: two addresses of 60 against a total cap of 100, held at the same time.
  const both = await Promise.all([connectionFlood(s, 60, 64, '127.0.0.21', d), connectionFlood(s, 60, 64, '127.0.0.22', d)]);
  const held = both[0].held + both[1].held;
  const refused = both[0].refused + both[1].refused;
  t.equal(held, 100, `${held} held in total, the cap`);
  t.equal(refused, 20, `${refused} refused`);
  t.ok(await eventually(() => s.stats().connections === 0), 'and forgotten once closed');
  const pair = await sessionPair(s.host, s.port, identity('flooda'), identity('floodb'), 'after-flood');
  t.same(pair.shown, ['hello through the storm'], 'after the floods a legitimate pair completes a session');
});
