// Resource limits of the relay (spec/PROTOCOL.md §7.1 "Timeouts", "Resource limits", §10): handshake and
// idle timeouts, the token-bucket rate limit, the write high-water mark for slow readers, connection caps.
// Timeouts are configured short; no assertion depends on how long anything took.
import t, { type Test } from 'tap';
import { encodeWire, frame } from '../../src/codec/index.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { openFileLimit, startServer, type ServerOptions } from '../../src/server/index.js';
import { identities, TestClient, type Identity } from './helpers.js';

const [alice, bob, carol, dave] = identities(4) as [Identity, Identity, Identity, Identity];

async function withServer(t: Test, opts: ServerOptions = {}) {
  const logs: Record<string, unknown>[] = [];
  const s = await startServer({ ...opts, log: (e) => logs.push(e) });
  t.teardown(() => s.close());
  return { port: s.port, logs, server: s };
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a silent connection gets TIMEOUT after the handshake timeout, in AWAIT_HELLO and AWAIT_AUTH', async (t) => {
  const { port } = await withServer(t, { handshakeTimeoutMs: 50, idleTimeoutMs: 600_000 });
  const silent = await TestClient.connect(port);
  t.equal(await silent.expectError(), 'TIMEOUT');
  t.equal(await silent.next(), 'closed');
  // The HELLO round trip must fit in the timeout here; a second relay with a roomier one.
  const roomy = await withServer(t, { handshakeTimeoutMs: 1500, idleTimeoutMs: 600_000 });
  const halfway = await TestClient.connect(roomy.port);
  halfway.send(frame('HELLO', { version: 2, nick: 'alice', key: alice.spki }));
  await halfway.expect('CHALLENGE');
  t.equal(await halfway.expectError(), 'TIMEOUT', 'HELLO alone does not complete the handshake');
  t.equal(await halfway.next(), 'closed');
});

t.test('a slowloris trickling bytes of one frame still times out', async (t) => {
  const { port } = await withServer(t, { handshakeTimeoutMs: 100, idleTimeoutMs: 600_000 });
  const c = await TestClient.connect(port);
  c.raw(Buffer.from([0, 0, 1])); // part of a length prefix
  let sent = 0;
  // Bounded: at most 200 more bytes, each a zero of an ever-growing, never-finished frame.
  while (!c.closed && sent < 200) {
    await sleep(5);
    if (!c.closed) c.raw(Buffer.from([0x00]));
    sent++;
  }
  const frames = await c.drainUntilClosed();
  t.same(
    frames.map((f) => (f.type === 'ERROR' ? f.code : f.type)),
    [13],
    'exactly one frame: ERROR TIMEOUT (13)',
  );
});

t.test('an authenticated connection that sends nothing for idle_ms gets TIMEOUT; PEER_LEFT reaches the room', async (t) => {
  const { port } = await withServer(t, { idleTimeoutMs: 1500, handshakeTimeoutMs: 600_000 });
  const a = await member(port, 'alice', alice, 'r');
  const b = await member(port, 'bob', bob, 'r');
  t.equal((await a.expect('PEER_JOINED')).nick, 'bob');
  // Both go quiet: both time out; whichever goes second may see the other's PEER_LEFT first.
  const fa = await a.drainUntilClosed();
  const fb = await b.drainUntilClosed();
  const codes = (fs: typeof fa) => fs.filter((f) => f.type === 'ERROR').map((f) => (f.type === 'ERROR' ? f.code : 0));
  t.same(codes(fa), [13], 'alice: ERROR TIMEOUT');
  t.same(codes(fb), [13], 'bob: ERROR TIMEOUT');
  t.ok([...fa, ...fb].some((f) => f.type === 'PEER_LEFT'), 'the member that timed out second saw PEER_LEFT of the first');
});

t.test('PING at a third of idle_ms keeps a connection alive past idle_ms', async (t) => {
  const { port } = await withServer(t, { idleTimeoutMs: 3000, handshakeTimeoutMs: 600_000 });
  const c = await TestClient.connect(port);
  const w = await c.auth('alice', alice);
  const every = Math.floor(w.idle_ms / LIMITS.KEEPALIVE_DIVISOR / 10); // ten times more often than needed
  let pongs = 0;
  for (let i = 0; i < 40; i++) {
    await sleep(every);
    c.send(frame('PING', { n: i }));
    const r = await c.next();
    if (r !== 'closed' && r.type === 'PONG' && r.n === i) pongs++;
    else break;
  }
  t.equal(pongs, 40, `40 PONGs over at least ${40 * every} ms with idle_ms ${w.idle_ms}`);
  c.destroy();
});

t.test('more frames than the token bucket holds is RATE_LIMITED', async (t) => {
  const { port, server } = await withServer(t, { rateFramesPerSecond: 1, rateBurst: 6 });
  const c = await TestClient.connect(port);
  await c.auth('alice', alice); // 2 of the 6 tokens
  // Twenty PINGs in one write: 4 tokens remain, refill is 1 per second.
  c.raw(Buffer.concat(Array.from({ length: 20 }, (_, i) => encodeWire(frame('PING', { n: i })))));
  const frames = await c.drainUntilClosed();
  const pongs = frames.filter((f) => f.type === 'PONG').length;
  const last = frames[frames.length - 1];
  t.ok(pongs >= 1 && pongs < 20, `some PONGs before the limit (${pongs})`);
  t.equal(last?.type === 'ERROR' ? last.code : undefined, 14, 'then ERROR RATE_LIMITED (14) and close');
  t.equal(server.stats().errors.RATE_LIMITED, 1);
});


t.test('a slow reader is disconnected with SLOW_CONSUMER while other rooms keep flowing', async (t) => {
  // The frame and byte rate limits are raised: alice's flood is what fills bob's buffer, and the byte bucket
  // (4 MiB burst, about 85 of these frames) would otherwise cut alice off first on a slower machine.
  const { port, server, logs } = await withServer(t, {
    writeHighWaterBytes: 256 * 1024,
    rateFramesPerSecond: 1_000_000,
    rateBurst: 1_000_000,
    rateBytesPerSecond: 1 << 30,
    rateBurstBytes: 1 << 30,
  });
  const a = await member(port, 'alice', alice, 'slow');
  const b = await member(port, 'bob', bob, 'slow');
  await a.expect('PEER_JOINED');
  const c = await member(port, 'carol', carol, 'fast');
  const d = await member(port, 'dave', dave, 'fast');
  await c.expect('PEER_JOINED');

  b.socket.pause(); // bob stops reading: the relay's buffer for him can only grow
  let gone = false;
  const aliceSaw = a.next().then((r) => {
    gone = true;
    return r;
  });
  const body = Buffer.alloc(LIMITS.MAX_BODY_BYTES, 0x5a);
  let sent = 0;
  let fastOk = 0;
  // Bounded: at most 4000 frames of 48 KiB (196 MB) from alice; kernel buffers plus 256 KiB fill far sooner.
  while (!gone && sent < 4000) {
    const more = a.socket.write(encodeWire(frame('SEND', { to: 'bob', body })));
    sent++;
    // Meanwhile, the other room talks.
    c.send(frame('SEND', { to: 'dave', body: Buffer.from(`m${sent}`) }));
    const r = await d.next();
    if (r !== 'closed' && r.type === 'DELIVER' && Buffer.from(r.body).toString() === `m${sent}`) fastOk++;
    if (!more) await Promise.race([new Promise((r) => a.socket.once('drain', r)), aliceSaw]);
  }
  t.same(await aliceSaw, { type: 'PEER_LEFT', nick: 'bob', epoch: 3 }, `alice saw bob leave after ${sent} frames`);
  t.equal(fastOk, sent, 'every frame in the other room arrived, in order, while bob was stalled');
  t.equal(server.stats().errors.SLOW_CONSUMER, 1);
  t.ok(logs.some((e) => e['event'] === 'refuse' && e['code'] === 'SLOW_CONSUMER' && e['nick'] === 'bob'), 'logged with its code');

  // Bob reads again: his stream ends (with ERROR SLOW_CONSUMER last if it was flushed before the close).
  b.socket.resume();
  const tail = await b.drainUntilClosed();
  const last = tail[tail.length - 1];
  t.ok(last === undefined || last.type === 'DELIVER' || (last.type === 'ERROR' && last.code === 15), 'bob is closed; his last frame, if any, is DELIVER or ERROR SLOW_CONSUMER');

  c.send(frame('SEND', { to: 'dave', body: Buffer.from('after') }));
  t.equal(Buffer.from((await d.expect('DELIVER')).body).toString(), 'after', 'the other room still flows');
  a.send(frame('PING', { n: 9 }));
  // SENDs alice had in flight when bob was dropped are refused (bob is no longer a member); then PONG.
  let refused = 0;
  const other: string[] = [];
  for (let i = 0; i <= sent; i++) {
    const r = await a.next();
    if (r !== 'closed' && r.type === 'PONG' && r.n === 9) break;
    if (r !== 'closed' && r.type === 'ERROR' && r.code === 12) refused++;
    else other.push(r === 'closed' ? 'closed' : r.type === 'ERROR' ? `ERROR ${r.code}` : r.type);
    if (r === 'closed') break;
  }
  t.same(other, [], `alice got only NO_SUCH_PEER (${refused}) before her PONG: she stays connected`);
  for (const x of [a, c, d]) x.destroy();
});

t.test('connections beyond the total cap get TOO_MANY_CONNECTIONS; a freed place is reusable', async (t) => {
  const { port, server } = await withServer(t, { maxConnections: 3 });
  const held = [await member(port, 'alice', alice), await member(port, 'bob', bob), await member(port, 'carol', carol)];
  const over = await TestClient.connect(port);
  t.equal(await over.expectError(), 'TOO_MANY_CONNECTIONS');
  t.equal(await over.next(), 'closed');
  for (const [i, c] of held.entries()) {
    c.send(frame('PING', { n: i }));
    t.equal((await c.expect('PONG')).n, i, `held connection ${i} unaffected`);
  }
  held[0]!.destroy();
  for (let i = 0; i < 500 && server.stats().connections > 2; i++) await sleep(10);
  const again = await TestClient.connect(port);
  await again.auth('dave', dave);
  t.pass('a new connection is accepted once one closed');
  again.destroy();
  for (const c of held) c.destroy();
});

t.test('connections beyond the per-address cap are refused; another address is not affected', async (t) => {
  const { port } = await withServer(t, { maxConnectionsPerAddress: 2 });
  const a = await TestClient.connect(port);
  const b = await TestClient.connect(port);
  const c = await TestClient.connect(port);
  t.equal(await c.expectError(), 'TOO_MANY_CONNECTIONS');
  t.equal(await c.next(), 'closed');
  // 127.0.0.2 is another loopback address on Linux: its own quota.
  const o = await TestClient.connect(port, '127.0.0.2');
  {
    await o.auth('dave', dave);
    t.pass('a connection from 127.0.0.2 is accepted while 127.0.0.1 is at its cap');
    o.destroy();
  }
  a.send(frame('HELLO', { version: 2, nick: 'alice', key: alice.spki }));
  await a.expect('CHALLENGE');
  t.pass('a connection held before the cap was reached is unaffected');
  a.destroy();
  b.destroy();
});

t.test('the connection cap stays below the open-file limit with headroom', async (t) => {
  const { server } = await withServer(t, { maxConnections: LIMITS.MAX_UINT });
  const limit = openFileLimit();
  if (limit === undefined) {
    t.equal(server.stats().maxConnections, LIMITS.MAX_UINT, 'no known fd limit: the cap is as configured');
  } else {
    t.ok(server.stats().maxConnections <= limit - LIMITS.FD_HEADROOM, `cap ${server.stats().maxConnections} under fd limit ${limit} minus ${LIMITS.FD_HEADROOM}`);
    t.ok(server.stats().maxConnections >= 1);
  }
});
