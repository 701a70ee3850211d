/**
 * Events held for a joining connection (spec/CLUSTER.md §3): a relay holds the events Redis delivers for
 * a member whose own JOIN reply is still in flight, writes them right after JOINED, and when it would
 * have to hold more than its bound it drops that connection with SLOW_CONSUMER (counted, logged, the
 * membership undone with PEER_LEFT to the others) instead of discarding events and letting it diverge.
 *
 * The test puts events in that window deterministically: the relay runs in this process, so a
 * synchronous redis-cli call made as the join starts blocks the relay's event loop while Redis publishes
 * to the relay's channel; those messages are then already waiting on the subscriber socket when the join
 * script's reply is sent. Real Redis, real TCP on 127.0.0.1.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { encodeWire, frame } from '../../src/codec/index.js';
import { RedisCluster, type ClusterOptions } from '../../src/cluster/redis.js';
import { deliverWire } from '../../src/server/deliver.js';
import { startServer, type RelayServer } from '../../src/server/index.js';
import { identities, TestClient, type Identity } from '../server/helpers.js';
import { TestRedis } from './redis-helper.js';

const redis = await TestRedis.start();
t.teardown(() => redis.stop());
const raw = new Redis(redis.port, '127.0.0.1');
t.teardown(() => raw.disconnect());

const [K1, K2] = identities(2) as [Identity, Identity];

/** The membership token of `nick` in `room` (field 3 of its record, spec/CLUSTER.md §1), read synchronously. */
function tokenNow(room: string, nick: string): string {
  const rec = execFileSync('redis-cli', ['-p', String(redis.port), 'HGET', `e2ee:room:${room}`, nick], { encoding: 'latin1' });
  const tok = rec.split(' ')[2];
  if (tok === undefined) throw new Error(`${nick} is no member of ${room}`);
  return tok;
}

/**
 * Publishes `n` DELIVER events from `from` (bodies `<payload>1`..`<payload>n`, one W message each with
 * the sender's membership token `fromToken`, spec/CLUSTER.md §3) to membership `token` on `relayId`'s
 * channel, synchronously. The frames go in on stdin (redis-cli -x: the last argument), since arguments
 * cannot carry their zero bytes.
 */
const PUBLISH_N = `local sz = tonumber(ARGV[3]) for i = 0, #ARGV[4] / sz - 1 do redis.call('PUBLISH', KEYS[1], 'W\\n' .. ARGV[1] .. '\\n' .. ARGV[2] .. '\\n' .. string.sub(ARGV[4], i * sz + 1, (i + 1) * sz)) end return 1`;
function publishNow(relayId: string, token: string, fromToken: string, from: string, payload: string, n: number): void {
  const frames = Array.from({ length: n }, (_, i) => deliverWire(from, Buffer.from(`${payload}${i + 1}`)));
  if (frames.some((f) => f.length !== frames[0]!.length)) throw new RangeError('publishNow: frames of one length only');
  execFileSync('redis-cli', ['-p', String(redis.port), '-x', 'EVAL', PUBLISH_N, '1', `e2ee:deliver:${relayId}`, token, fromToken, String(frames[0]!.length)], {
    input: Buffer.concat(frames),
    stdio: ['pipe', 'ignore', 'ignore'],
  });
}

interface Setup {
  cluster: RedisCluster<object>;
  relay: RelayServer;
  other: RelayServer;
  events: Record<string, unknown>[];
}

/**
 * Relay `relay` (engine options `opts`, log collected) and a second relay `other`; the first join on
 * `relay` gets `n` events from bob published into its window just before its join script runs, with
 * bob's membership token, or with `fromToken` when given.
 */
async function setup(t: Test, opts: Partial<ClusterOptions>, n: number, payload: string, fromToken?: string): Promise<Setup> {
  const events: Record<string, unknown>[] = [];
  const cluster = await RedisCluster.connect<object>(redis.url, { maxRoomSize: 2, ...opts, log: (e) => events.push(e) });
  const relay = await startServer({ port: 0, registry: cluster, rooms: cluster, log: (e) => events.push(e) });
  const otherCluster = await RedisCluster.connect<object>(redis.url, { maxRoomSize: 2 });
  const other = await startServer({ port: 0, registry: otherCluster, rooms: otherCluster });
  t.teardown(async () => {
    await relay.close();
    await other.close();
  });
  const join = cluster.join.bind(cluster);
  let first = true;
  cluster.join = (...args) => {
    if (first && n > 0) {
      first = false;
      // Tokens are `<relay id>.<counter>` (spec/CLUSTER.md §1): this engine's first membership is `.1`.
      publishNow(cluster.relayId, `${cluster.relayId}.1`, fromToken ?? tokenNow(args[0], 'bob'), 'bob', payload, n);
    }
    return join(...args);
  };
  return { cluster, relay, other, events };
}

async function member(port: number, nick: string, id: Identity, room: string): Promise<TestClient> {
  const c = await TestClient.connect(port);
  await c.auth(nick, id);
  c.send(frame('JOIN', { room }));
  await c.expect('JOINED');
  return c;
}

t.test('events held within the bound are written after JOINED, in order', async (t) => {
  const s = await setup(t, { maxPendingEvents: 4 }, 4, 'held');
  const bob = await member(s.other.port, 'bob', K2, 'hold-ok');
  const carol = await TestClient.connect(s.relay.port);
  await carol.auth('carol', K1);
  carol.send(frame('JOIN', { room: 'hold-ok' }));
  const j = await carol.expect('JOINED');
  t.same(j.members.map((m) => m.nick), ['bob']);
  for (let i = 1; i <= 4; i++) {
    const d = await carol.expect('DELIVER');
    t.equal(d.from, 'bob');
    t.equal(Buffer.from(d.body).toString('latin1'), `held${i}`);
  }
  t.equal(s.cluster.pendingOverflows, 0);
  t.equal((await bob.expect('PEER_JOINED')).nick, 'carol');
  carol.destroy();
  bob.destroy();
});

t.test('held DELIVER events from a token that is not in the joiner\'s view of the room are dropped, not written', async (t) => {
  // bob is a member, but these frames carry a membership token the room never had (a sender that left,
  // or a relay reaped meanwhile, spec/CLUSTER.md §3): the check runs as the held events are written.
  const s = await setup(t, {}, 3, 'stale', '0123456789abcdef.999');
  const bob = await member(s.other.port, 'bob', K2, 'hold-stale');
  const carol = await TestClient.connect(s.relay.port);
  await carol.auth('carol', K1);
  carol.send(frame('JOIN', { room: 'hold-stale' }));
  t.same((await carol.expect('JOINED')).members.map((m) => m.nick), ['bob']);
  t.equal((await bob.expect('PEER_JOINED')).nick, 'carol');
  bob.send(frame('SEND', { to: 'carol', body: Uint8Array.of(42) }));
  t.same([...(await carol.expect('DELIVER')).body], [42], 'the first DELIVER carol gets is bob\'s real one');
  t.equal(s.cluster.droppedFromNonMembers, 3, 'the three held ones were dropped');
  t.equal(carol.pending, 0);
  carol.destroy();
  bob.destroy();
});

for (const [what, opts, n, payload] of [
  ['one event more than MAX events', { maxPendingEvents: 4 }, 5, 'x'],
  ['more bytes than the write high-water mark', { maxPendingBytes: 200 }, 3, 'y'.repeat(80)],
] as const) {
  t.test(`${what} held for a joining connection: it is dropped with SLOW_CONSUMER, counted, logged, and its membership undone`, async (t) => {
    const room = `overflow-${n}`;
    const s = await setup(t, opts, n, payload);
    const bob = await member(s.other.port, 'bob', K2, room);
    const carol = await TestClient.connect(s.relay.port);
    await carol.auth('carol', K1);
    carol.send(frame('JOIN', { room }));
    t.equal(await carol.expectError(), 'SLOW_CONSUMER', 'the connection is told why, never left with a gap');
    t.equal(await carol.next(), 'closed');
    // The others see the member come and go: the join script added it, the relay undid it.
    t.equal((await bob.expect('PEER_JOINED')).nick, 'carol');
    t.equal((await bob.expect('PEER_LEFT')).nick, 'carol');
    t.equal(await raw.hexists(`e2ee:room:${room}`, 'carol'), 0, 'carol is no member any more');
    t.equal(s.cluster.pendingOverflows, 1);
    t.equal(s.relay.stats().errors['SLOW_CONSUMER'], 1);
    const logged = s.events.filter((e) => e['event'] === 'cluster_pending_overflow');
    t.equal(logged.length, 1);
    t.notOk(JSON.stringify(logged).includes('carol') || JSON.stringify(logged).includes(room), 'no nickname or room in the log');
    // The room has its place back.
    const dave = await member(s.relay.port, 'carol', K1, room);
    t.pass('carol joins again');
    dave.destroy();
    bob.destroy();
  });
}

t.test('a W message that is not whole DELIVER frames is logged and dropped; the member carries on', async (t) => {
  const s = await setup(t, {}, 0, 'unused');
  const bob = await member(s.other.port, 'bob', K2, 'bad-w');
  const carol = await member(s.relay.port, 'carol', K1, 'bad-w');
  await bob.expect('PEER_JOINED');
  const rec = (await raw.hget('e2ee:room:bad-w', 'carol'))!;
  const [, relayId, token] = rec.split(' ');
  const good = deliverWire('bob', Buffer.from('ok'));
  const ping = encodeWire(frame('PING', { n: 1 }));
  for (const bad of [Buffer.alloc(0), good.subarray(0, 3), good.subarray(0, good.length - 1), ping, Buffer.concat([good, Buffer.from([0, 0, 0, 0])])]) {
    await raw.publish(`e2ee:deliver:${relayId!}`, Buffer.concat([Buffer.from(`W\n${token!}\n\n`), bad]));
  }
  // Several W messages in one (M): a truncated section length, a section longer than the message, a section that is not a W.
  const w = Buffer.from(`W\n${token!}\n\n`);
  for (const bad of [Buffer.from([0x4d, 0, 0]), Buffer.concat([Buffer.from([0x4d, 0, 0, 1, 0]), w]), Buffer.concat([Buffer.from([0x4d, 0, 0, 0, 3]), Buffer.from('L\nx')])]) {
    await raw.publish(`e2ee:deliver:${relayId!}`, bad);
  }
  bob.send(frame('SEND', { to: 'carol', body: Uint8Array.of(7) }));
  const d = await carol.expect('DELIVER');
  t.same([...d.body], [7], 'the next frame is the real one');
  t.equal(s.events.filter((e) => e['event'] === 'cluster_bad_message').length, 8);
  carol.destroy();
  bob.destroy();
});

t.test('pipelined SENDs: refusals come one per refused SEND and before the answer to any later frame', async (t) => {
  const s = await setup(t, {}, 0, 'unused');
  const bob = await member(s.other.port, 'bob', K2, 'order');
  const carol = await member(s.relay.port, 'carol', K1, 'order');
  await bob.expect('PEER_JOINED');
  // One write: good, bad, good, self, then PING; on one relay the answers are ERROR, ERROR, PONG.
  carol.send(frame('SEND', { to: 'bob', body: Uint8Array.of(1) }));
  carol.send(frame('SEND', { to: 'nobody', body: Uint8Array.of(2) }));
  carol.send(frame('SEND', { to: 'bob', body: Uint8Array.of(3) }));
  carol.send(frame('SEND', { to: 'carol', body: Uint8Array.of(4) }));
  carol.send(frame('PING', { n: 7 }));
  t.equal(await carol.expectError(), 'NO_SUCH_PEER');
  t.equal(await carol.expectError(), 'NO_SUCH_PEER');
  t.equal((await carol.expect('PONG')).n, 7, 'PONG after the refusals of the SENDs before it');
  t.same([...(await bob.expect('DELIVER')).body], [1]);
  t.same([...(await bob.expect('DELIVER')).body], [3], 'the good ones in order, once each');
  // Refusals before LEFT, and every SEND read before the LEAVE is delivered.
  for (let i = 0; i < 3; i++) carol.send(frame('SEND', { to: 'nobody', body: Uint8Array.of(9) }));
  carol.send(frame('SEND', { to: 'bob', body: Uint8Array.of(5) }));
  carol.send(frame('LEAVE', {}));
  for (let i = 0; i < 3; i++) t.equal(await carol.expectError(), 'NO_SUCH_PEER');
  await carol.expect('LEFT');
  t.same([...(await bob.expect('DELIVER')).body], [5]);
  t.equal((await bob.expect('PEER_LEFT')).nick, 'carol');
  t.equal(carol.pending + bob.pending, 0, 'nothing else');
  carol.destroy();
  bob.destroy();
});
