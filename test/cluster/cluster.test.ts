/**
 * Cluster mode against a real Redis (spec/CLUSTER.md): relays started in this process share rooms and
 * nicknames through one redis-server this test starts; real TCP on 127.0.0.1.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { frame } from '../../src/codec/index.js';
import { parseRedisUrl, RedisCluster } from '../../src/cluster/redis.js';
import { CLUSTER_SCRIPTS, CLUSTER_TIMINGS } from '../../src/cluster/tables.js';
import { SCRIPTS } from '../../src/cluster/scripts.js';
import { runServerKit } from '../../src/conformance/server-kit.js';
import { startServer, type RelayServer } from '../../src/server/index.js';
import { identities, TestClient, type Identity } from '../server/helpers.js';
import { TestRedis } from './redis-helper.js';

const redis = await TestRedis.start();
t.teardown(() => redis.stop());

const ids = identities(4);
const [K1, K2, K3, K4] = ids as [Identity, Identity, Identity, Identity];

async function relay(opts: { maxRoomSize?: number; idleTimeoutMs?: number; handshakeTimeoutMs?: number } = {}): Promise<RelayServer> {
  const maxRoomSize = opts.maxRoomSize ?? 2;
  const cluster = await RedisCluster.connect<object>(redis.url, { maxRoomSize });
  return startServer({ port: 0, maxRoomSize, registry: cluster, rooms: cluster, ...opts });
}

async function joined(port: number, nick: string, id: Identity, room: string): Promise<{ c: TestClient; members: string[] }> {
  const c = await TestClient.connect(port);
  await c.auth(nick, id);
  c.send(frame('JOIN', { room }));
  const j = await c.expect('JOINED');
  return { c, members: j.members.map((m) => m.nick) };
}

t.test('the scripts are exactly the invariants of the cluster table', async (t) => {
  t.same(Object.keys(SCRIPTS).sort(), Object.keys(CLUSTER_SCRIPTS).sort());
});

t.test('--redis URLs are parsed strictly', async (t) => {
  t.same(parseRedisUrl('redis://127.0.0.1:6379'), { host: '127.0.0.1', port: 6379, db: 0 });
  t.same(parseRedisUrl('redis://localhost:7000/3'), { host: 'localhost', port: 7000, db: 3 });
  for (const bad of ['http://h:1', 'redis://h', 'redis://u:p@h:1', 'redis://h:1/x', 'redis://h:1/0?a=1', 'nonsense']) {
    t.throws(() => parseRedisUrl(bad), RangeError, bad);
  }
});

t.test('alice on relay 1 and bob on relay 2 chat both ways, in order, and see each other leave', async (t) => {
  const r1 = await relay();
  const r2 = await relay();
  t.teardown(async () => {
    await r1.close();
    await r2.close();
  });
  const a = await joined(r1.port, 'alice', K1, 'chat');
  t.same(a.members, []);
  const b = await joined(r2.port, 'bob', K2, 'chat');
  t.same(b.members, ['alice']);
  const pj = await a.c.expect('PEER_JOINED');
  t.equal(pj.nick, 'bob');
  t.same(Buffer.from(pj.key), Buffer.from(K2.spki));
  for (let i = 0; i < 20; i++) a.c.send(frame('SEND', { to: 'bob', body: Uint8Array.of(1, i) }));
  for (let i = 0; i < 20; i++) b.c.send(frame('SEND', { to: 'alice', body: Uint8Array.of(2, i) }));
  for (let i = 0; i < 20; i++) {
    const d = await b.c.expect('DELIVER');
    t.equal(d.from, 'alice');
    t.same([...d.body], [1, i]);
  }
  for (let i = 0; i < 20; i++) {
    const d = await a.c.expect('DELIVER');
    t.equal(d.from, 'bob');
    t.same([...d.body], [2, i]);
  }
  t.equal(a.c.pending + b.c.pending, 0, 'each frame exactly once');
  b.c.send(frame('SEND', { to: 'carol', body: Uint8Array.of(0) }));
  t.equal(await b.c.expectError(), 'NO_SUCH_PEER');
  b.c.send(frame('LEAVE', {}));
  await b.c.expect('LEFT');
  const pl = await a.c.expect('PEER_LEFT');
  t.equal(pl.nick, 'bob');
  t.same([pj.epoch, pl.epoch], [2, 3], 'PEER_JOINED and PEER_LEFT carry the room epochs set by the join and leave scripts');
  a.c.send(frame('SEND', { to: 'bob', body: Uint8Array.of(0) }));
  t.equal(await a.c.expectError(), 'NO_SUCH_PEER');
  a.c.destroy();
  b.c.destroy();
});

t.test('a malformed pub/sub message is logged and dropped; the relay carries on', async (t) => {
  const events: Record<string, unknown>[] = [];
  const cluster = await RedisCluster.connect<object>(redis.url, { maxRoomSize: 2, log: (e) => events.push(e) });
  const r = await startServer({ port: 0, registry: cluster, rooms: cluster });
  t.teardown(() => r.close());
  const a = await joined(r.port, 'mal', K1, 'malformed');
  const { Redis } = await import('ioredis');
  const raw = new Redis(redis.port, '127.0.0.1');
  t.teardown(() => raw.disconnect());
  const member = (await raw.hget('e2ee:room:malformed', 'mal'))!;
  const [, relayId, token] = member.split(' ');
  // A nickname outside the alphabet: the frame cannot be built.
  await raw.publish(`e2ee:deliver:${relayId!}`, Buffer.from(`J\n${token!}\nnot a nick\n2\nxx`));
  // No room epoch (PROTOCOL.md §7.1): dropped and logged the same way.
  await raw.publish(`e2ee:deliver:${relayId!}`, Buffer.from(`L\n${token!}\nmal3\n`));
  const b = await joined(r.port, 'mal2', K2, 'malformed');
  t.same(b.members, ['mal']);
  t.equal((await a.c.expect('PEER_JOINED')).nick, 'mal2', 'the next event is the real one');
  t.equal(events.filter((e) => e['event'] === 'cluster_bad_message').length, 2);
  a.c.destroy();
  b.c.destroy();
});

t.test('a nickname bound through relay 1 with key K is refused through relay 2 with key K2', async (t) => {
  const r1 = await relay();
  const r2 = await relay();
  t.teardown(async () => {
    await r1.close();
    await r2.close();
  });
  const c1 = await TestClient.connect(r1.port);
  await c1.auth('dora', K1);
  const c2 = await TestClient.connect(r2.port);
  c2.send(frame('HELLO', { version: 2, nick: 'dora', key: K2.spki }));
  const ch = await c2.expect('CHALLENGE');
  const { pssSign, authMessage } = await import('../../src/crypto/rsa.js');
  c2.send(frame('AUTH', { sig: pssSign(K2.privateKey, authMessage(ch.nonce, 'dora', K2.spki, ch.relay, new Uint8Array(0))) }));
  t.equal(await c2.expectError(), 'NICK_BOUND');
  const c3 = await TestClient.connect(r2.port);
  await c3.auth('dora', K1); // the same key is welcome on every relay
  t.pass('same key welcomed through relay 2');
  for (const c of [c1, c2, c3]) c.destroy();
});

t.test('each relay of a cluster announces its own name: an AUTH made for relay 1 is refused at relay 2 (AUTH_FAILED), binding nothing', async (t) => {
  const r1 = await relay();
  const r2 = await relay();
  t.teardown(async () => {
    await r1.close();
    await r2.close();
  });
  t.not(r1.relayName, r2.relayName, 'two names');
  const { pssSign, authMessage } = await import('../../src/crypto/rsa.js');
  const c = await TestClient.connect(r2.port);
  c.send(frame('HELLO', { version: 2, nick: 'hana', key: K3.spki }));
  const ch = await c.expect('CHALLENGE');
  t.equal(ch.relay, r2.relayName);
  // What relay 1 could make of a CHALLENGE it passed on from relay 2 with its own name in it (§7.3).
  c.send(frame('AUTH', { sig: pssSign(K3.privateKey, authMessage(ch.nonce, 'hana', K3.spki, r1.relayName, new Uint8Array(0))) }));
  t.equal(await c.expectError(), 'AUTH_FAILED');
  const other = await TestClient.connect(r1.port);
  await other.auth('hana', K4);
  t.pass('the nickname was still free: the refused AUTH bound nothing in the shared registry');
  c.destroy();
  other.destroy();
});

t.test('50 rounds of three clients racing for a two-member room through three relays never yield three members', async (t) => {
  const relays = [await relay(), await relay(), await relay()];
  t.teardown(async () => {
    for (const r of relays) await r.close();
  });
  const nicks = ['r0', 'r1', 'r2'];
  const clients: TestClient[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await TestClient.connect(relays[i]!.port);
    await c.auth(nicks[i]!, ids[i]!);
    clients.push(c);
  }
  let full = 0;
  for (let round = 0; round < 50; round++) {
    const room = `race-${round}`;
    for (const c of clients) c.send(frame('JOIN', { room }));
    const answers = await Promise.all(clients.map((c) => c.next()));
    const winners = answers.filter((a) => a !== 'closed' && a.type === 'JOINED').length;
    const refused = answers.filter((a) => a !== 'closed' && a.type === 'ERROR').length;
    t.equal(winners, 2, `round ${round}: exactly two JOINED`);
    t.equal(refused, 1, `round ${round}: one refusal`);
    full++;
    // Winners see each other exactly once (PEER_JOINED to the first), then leave.
    for (let i = 0; i < 3; i++) {
      const a = answers[i]!;
      if (a === 'closed' || a.type !== 'JOINED') continue;
      // Room epochs (PROTOCOL.md §7.1): the first winner created the room at 1, the second joined at 2;
      // the first is told 2 as well, whichever relay each is on (incremented in the join script).
      if (a.members.length === 0) {
        t.equal(a.epoch, 1, `round ${round}: the room's first JOINED is epoch 1`);
        t.equal((await clients[i]!.expect('PEER_JOINED')).epoch, 2, `round ${round}: the second join is epoch 2 for the first winner`);
      } else t.equal(a.epoch, 2, `round ${round}: and for the second winner`);
      clients[i]!.send(frame('LEAVE', {}));
    }
    for (let i = 0; i < 3; i++) {
      const a = answers[i]!;
      if (a === 'closed' || a.type !== 'JOINED') continue;
      // LEFT, possibly after PEER_LEFT of the other winner.
      for (let k = 0; k < 2; k++) {
        const f = await clients[i]!.next();
        if (f !== 'closed' && f.type === 'LEFT') break;
      }
    }
  }
  t.equal(full, 50);
  for (const c of clients) c.destroy();
});

t.test('the conformance kit passes against each relay of a two-relay cluster', async (t) => {
  // Each cluster step is a Redis round trip or two: on a loaded machine the waits get more slack than
  // test/conformance gives the embedded relay.
  const r1 = await relay({ handshakeTimeoutMs: 2000, idleTimeoutMs: 6000 });
  const r2 = await relay({ handshakeTimeoutMs: 2000, idleTimeoutMs: 6000 });
  t.teardown(async () => {
    await r1.close();
    await r2.close();
  });
  for (const r of [r1, r2]) {
    const results = await runServerKit({ host: r.host, port: r.port, handshakeMs: 2000, waitMs: 5000 });
    const bad = results.filter((x) => x.status === 'fail' || x.status === 'error');
    t.same(bad.map((x) => `${x.id}: expected ${x.expected ?? ''}, arrived ${x.arrived ?? ''}`), [], `relay on ${r.port}`);
    t.ok(results.filter((x) => x.status === 'pass').length > 50);
  }
});

const CLI = fileURLToPath(new URL('../../bin/e2ee-chat.js', import.meta.url));

t.test('kill -9 of relay 1 gives bob PEER_LEFT for alice (bound stated in spec/CLUSTER.md)', async (t) => {
  const child = spawn(process.execPath, [CLI, 'server', '--port', '0', '--redis', redis.url], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', () => reject(new Error('relay exited')));
  });
  const port = Number(/:(\d+)$/.exec(line)![1]);
  const r2 = await relay();
  t.teardown(() => r2.close());
  const a = await joined(port, 'alice9', K3, 'kill');
  const b = await joined(r2.port, 'bob9', K4, 'kill');
  t.same(b.members, ['alice9']);
  await a.c.expect('PEER_JOINED');
  // The bound (spec/CLUSTER.md §4) is Redis's TTL, then relay 2's next reap timer, then pub/sub and a
  // write. Relay 2 runs in this process, so how late its timers fire on this machine is this event loop's
  // delay, measured over the same wait: the bound is checked with that lateness added, not a fixed time.
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const killed = performance.now();
  child.kill('SIGKILL');
  const f = await b.c.expect('PEER_LEFT');
  const ms = performance.now() - killed;
  lag.disable();
  const lateMs = lag.max / 1e6;
  t.equal(f.nick, 'alice9');
  t.ok(ms <= CLUSTER_TIMINGS.PEER_LEFT_BOUND_MS + lateMs, `PEER_LEFT ${ms.toFixed(0)} ms after kill -9: within the stated ${CLUSTER_TIMINGS.PEER_LEFT_BOUND_MS} ms plus this run's timer lateness (${lateMs.toFixed(0)} ms)`);
  // The room has a free place again: a third member is admitted.
  const c = await joined(r2.port, 'carol9', K1, 'kill');
  t.same(c.members, ['bob9']);
  a.c.destroy();
  b.c.destroy();
  c.c.destroy();
});

t.test('a Redis crash loses no confirmed binding, and a relay that loses Redis says so', async (t) => {
  const r1 = await relay();
  const c1 = await TestClient.connect(r1.port);
  await c1.auth('erin', K1); // WELCOME: the binding is confirmed
  await redis.kill9();
  t.equal(await c1.expectError(), 'SERVER_SHUTDOWN', 'the relay stops rather than diverge');
  await redis.run();
  const r2 = await relay();
  t.teardown(async () => {
    await r1.close();
    await r2.close();
  });
  const c2 = await TestClient.connect(r2.port);
  c2.send(frame('HELLO', { version: 2, nick: 'erin', key: K2.spki }));
  const ch = await c2.expect('CHALLENGE');
  const { pssSign, authMessage } = await import('../../src/crypto/rsa.js');
  c2.send(frame('AUTH', { sig: pssSign(K2.privateKey, authMessage(ch.nonce, 'erin', K2.spki, ch.relay, new Uint8Array(0))) }));
  t.equal(await c2.expectError(), 'NICK_BOUND', 'the binding survived the crash');
  const c3 = await TestClient.connect(r2.port);
  await c3.auth('erin', K1);
  t.pass('the owner is welcomed after the crash');
  for (const c of [c1, c2, c3]) c.destroy();
});

t.test('a Redis restart with appendfsync everysec (the least spec/CLUSTER.md §5 allows) loses no confirmed binding', async (t) => {
  const r = await TestRedis.start('everysec');
  t.teardown(() => r.stop());
  const c1 = await RedisCluster.connect<object>(r.url, { maxRoomSize: 2 });
  const relay1 = await startServer({ port: 0, registry: c1, rooms: c1 });
  const a = await TestClient.connect(relay1.port);
  await a.auth('gwen', K1); // WELCOME: confirmed
  await r.terminate(); // a restart: SIGTERM, as a service manager stops Redis
  t.equal(await a.expectError(), 'SERVER_SHUTDOWN');
  await r.run();
  const c2 = await RedisCluster.connect<object>(r.url, { maxRoomSize: 2 });
  const relay2 = await startServer({ port: 0, registry: c2, rooms: c2 });
  t.teardown(async () => {
    await relay1.close();
    await relay2.close();
  });
  const b = await TestClient.connect(relay2.port);
  b.send(frame('HELLO', { version: 2, nick: 'gwen', key: K2.spki }));
  const ch = await b.expect('CHALLENGE');
  const { pssSign, authMessage } = await import('../../src/crypto/rsa.js');
  b.send(frame('AUTH', { sig: pssSign(K2.privateKey, authMessage(ch.nonce, 'gwen', K2.spki, ch.relay, new Uint8Array(0))) }));
  t.equal(await b.expectError(), 'NICK_BOUND', 'the binding survived the restart');
  a.destroy();
  b.destroy();
});
