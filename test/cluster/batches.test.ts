/**
 * A connection's SENDs go to Redis in batches (spec/CLUSTER.md §3): per addressee its DELIVER frames in
 * one buffer, one PUBLISH per addressee and batch, and at most MAX_IN_FLIGHT_BYTES of them unanswered
 * before the relay stops reading that connection. A SEND is decided against the sender's view of its
 * room when it is read; the addressee's relay writes DELIVER frames only from a sender in its view. The engines run in this process with a recording sink
 * (no relay around them), so the test decides exactly what is sent in one turn of the event loop: while
 * it runs synchronously Redis cannot answer, and what `send` returns is decided by the bound alone.
 * Real Redis, real TCP on 127.0.0.1.
 */
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { decodeFrame, FrameReader } from '../../src/codec/index.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { MAX_BATCH_BYTES, MAX_BATCH_FRAMES, MAX_IN_FLIGHT_BYTES, RedisCluster } from '../../src/cluster/redis.js';
import type { RoomSink } from '../../src/room/engine.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { deliverHead } from '../../src/server/deliver.js';
import { TestRedis } from './redis-helper.js';

const redis = await TestRedis.start();
t.teardown(() => redis.stop());

interface Handle {
  nick: string;
  /** DELIVERs written to this handle: [from, body]. */
  got: [string, Buffer][];
  /** Nicknames of the PEER_LEFTs written to it. */
  left: string[];
  refused: string[];
  reader: FrameReader;
}

function handle(nick: string): Handle {
  return { nick, got: [], left: [], refused: [], reader: new FrameReader() };
}

function sink(onWrite: () => void = () => {}): RoomSink<Handle> {
  return {
    write(h, wire) {
      for (const body of h.reader.push(wire)) {
        const f = decodeFrame(body, 'relay');
        if (f.type === 'DELIVER') h.got.push([f.from, Buffer.from(f.body)]);
        if (f.type === 'PEER_LEFT') h.left.push(f.nick);
      }
      onWrite();
    },
    refuse(h, code) {
      h.refused.push(code);
    },
    lost() {},
    restored() {},
  };
}

/** Resolves once `cond()` holds, checked after every write to a handle (bounded: 10,000 checks per wait). */
function waiter(): { wake: () => void; until: (cond: () => boolean) => Promise<void> } {
  let waiting: { cond: () => boolean; resolve: () => void; left: number } | undefined;
  return {
    wake() {
      if (waiting === undefined) return;
      if (waiting.cond()) {
        waiting.resolve();
        waiting = undefined;
      } else if (--waiting.left === 0) throw new Error('waited 10,000 writes');
    },
    until(cond) {
      if (cond()) return Promise.resolve();
      return new Promise((resolve) => (waiting = { cond, resolve, left: 10000 }));
    },
  };
}

const KEY = new Uint8Array(32).fill(7);

/** Two cluster engines on the test's Redis, each attached to a sink that wakes `w`; closed at teardown. */
async function twoRelays(t: Test, maxRoomSize: number) {
  const w = waiter();
  const a = await RedisCluster.connect<Handle>(redis.url, { maxRoomSize });
  const b = await RedisCluster.connect<Handle>(redis.url, { maxRoomSize });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  a.attach(sink(w.wake));
  b.attach(sink(w.wake));
  return { w, a, b };
}

t.test('one batch to several addressees: each gets its own frames in order, once; every other SEND is refused once', async (t) => {
  const { w, a, b } = await twoRelays(t, 3);
  const alice = handle('alice');
  const bob = handle('bob');
  const carol = handle('carol');
  await b.join('multi', 'bob', KEY, bob, () => {});
  await b.join('multi', 'carol', KEY, carol, () => {});
  await a.join('multi', 'alice', KEY, alice, () => {});
  // Bodies across the bin 8 / bin 16 boundary and up to MAX_BODY_BYTES, interleaved between addressees,
  // with SENDs to a non-member and to alice herself among them: all in one turn, so one batch.
  const sizes = [1, 255, 256, 257, 1000, LIMITS.MAX_BODY_BYTES];
  const want: Record<string, Buffer[]> = { bob: [], carol: [] };
  let bad = 0;
  const refused: string[] = [];
  for (let i = 0; i < 60; i++) {
    const to = ['bob', 'carol', 'nobody', 'bob', 'alice', 'carol'][i % 6]!;
    const body = Buffer.alloc(sizes[i % sizes.length]!, i);
    body.writeUInt8(i, 0);
    try {
      t.equal(a.send(alice, to, body), undefined, 'under every bound: keep reading');
    } catch (e) {
      // Decided when read, against what alice was told of the room: the relay answers it as one relay does.
      refused.push(e instanceof ProtocolError ? e.errorName : String(e));
    }
    if (to in want) want[to]!.push(body);
    else bad++;
  }
  await w.until(() => bob.got.length === want['bob']!.length && carol.got.length === want['carol']!.length);
  t.same(bob.got.map(([, x]) => x.toString('hex')), want['bob']!.map((x) => x.toString('hex')), 'bob: his frames, in order, once');
  t.same(carol.got.map(([, x]) => x.toString('hex')), want['carol']!.map((x) => x.toString('hex')), 'carol: hers');
  t.ok([...bob.got, ...carol.got].every(([from]) => from === 'alice'), 'from is the sender');
  t.same(refused, Array(bad).fill('NO_SUCH_PEER'), 'one NO_SUCH_PEER per SEND to a non-member or to herself');
  t.same(alice.refused, [], 'and nothing refused later');
  t.equal(alice.got.length, 0, 'nothing comes back to the sender');
});

t.test(`past ${MAX_IN_FLIGHT_BYTES} bytes unanswered, send asks the relay to stop reading; once answered, everything arrives in order`, async (t) => {
  const { w, a, b } = await twoRelays(t, 2);
  const alice = handle('alice');
  const bob = handle('bob');
  await b.join('bound', 'bob', KEY, bob, () => {});
  await a.join('bound', 'alice', KEY, alice, () => {});
  // Small frames: a batch closes at MAX_BATCH_FRAMES, so four batches of 100-byte bodies are about 115 KB;
  // the byte bound must let far more than four batches through before it stops the reader.
  const body = (i: number) => Buffer.alloc(100, i & 0xff);
  let sent = 0;
  let stop: Promise<void> | undefined;
  // Synchronous: no answer can arrive while this loop runs. Bounded by the frames the bound allows.
  const cap = Math.ceil((MAX_IN_FLIGHT_BYTES + MAX_BATCH_BYTES) / 100) + MAX_BATCH_FRAMES;
  while (stop === undefined && sent < cap) stop = a.send(alice, 'bob', body(sent++));
  t.ok(stop instanceof Promise, 'send asked the relay to stop reading');
  const wire = 4 + deliverHead('alice').length + 2 + 100; // prefix, DELIVER's start for alice, bin 8 header, body
  t.ok(sent * wire >= MAX_IN_FLIGHT_BYTES, `not before ${MAX_IN_FLIGHT_BYTES} bytes were sent (${sent} frames of about ${wire} bytes)`);
  t.ok(sent * wire < MAX_IN_FLIGHT_BYTES + MAX_BATCH_BYTES, 'and at most one batch past it');
  t.ok(sent > 4 * MAX_BATCH_FRAMES, 'small batches do not stall the stream: more than four batches went out');
  await stop;
  // Reading resumes: the rest of the stream follows.
  for (let i = 0; i < 500; i++) void a.send(alice, 'bob', body(sent++));
  await w.until(() => bob.got.length === sent);
  t.equal(bob.got.length, sent, 'every frame once');
  t.ok(bob.got.every(([, x], i) => x.length === 100 && x[0] === (i & 0xff) && x[99] === (i & 0xff)), 'in the order sent');
  t.same(alice.refused, [], 'nothing refused');
});

t.test('frames a reaped relay publishes after the reap are dropped by the addressee\'s relay: nothing from a member after its PEER_LEFT', async (t) => {
  const w = waiter();
  // a never heartbeats in this test (it does not learn it was reaped); b reaps every 20 ms.
  const a = await RedisCluster.connect<Handle>(redis.url, { maxRoomSize: 2, heartbeatMs: 600_000, reapIntervalMs: 600_000 });
  const b = await RedisCluster.connect<Handle>(redis.url, { maxRoomSize: 2, reapIntervalMs: 20 });
  const raw = new Redis(redis.port, '127.0.0.1');
  t.teardown(async () => {
    raw.disconnect();
    await a.close();
    await b.close();
  });
  a.attach(sink(w.wake));
  b.attach(sink(w.wake));
  const alice = handle('alice');
  const bob = handle('bob');
  await b.join('reaped', 'bob', KEY, bob, () => {});
  await a.join('reaped', 'alice', KEY, alice, () => {});
  void a.send(alice, 'bob', Buffer.from('before'));
  await w.until(() => bob.got.length === 1);
  // a is taken for dead (its presence key gone, as after a pause longer than the TTL): b reaps alice.
  await raw.del(`e2ee:relay:${a.relayId}:alive`);
  await w.until(() => bob.left.length === 1);
  t.same(bob.left, ['alice'], 'bob is told alice left');
  // a still holds alice and bob in her view, so it publishes; bob's relay must not write it.
  t.equal(a.send(alice, 'bob', Buffer.from('after')), undefined);
  for (let i = 0; i < 500 && b.droppedFromNonMembers === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(b.droppedFromNonMembers, 1, 'the frame reached bob\'s relay and was dropped there');
  t.same(bob.got.map(([from, x]) => `${from}:${x.toString()}`), ['alice:before'], 'bob got only the frame sent while alice was a member');
});

t.test('the SENDs of several connections in one turn to members on one relay go in one PUBLISH; each addressee gets its own frames in order', async (t) => {
  const { w, a, b } = await twoRelays(t, 2);
  const raw = new Redis(redis.port, '127.0.0.1');
  t.teardown(() => raw.disconnect());
  const senders = [handle('alice'), handle('carol'), handle('erin')];
  const receivers = [handle('bob'), handle('dave'), handle('frank')];
  for (let i = 0; i < 3; i++) {
    await b.join(`turn${i}`, receivers[i]!.nick, KEY, receivers[i]!, () => {});
    await a.join(`turn${i}`, senders[i]!.nick, KEY, senders[i]!, () => {});
  }
  await raw.config('RESETSTAT');
  // One turn: 20 SENDs from each sender, interleaved.
  for (let k = 0; k < 20; k++) for (let i = 0; i < 3; i++) t.equal(a.send(senders[i]!, receivers[i]!.nick, Buffer.from(`${i}:${k}`)), undefined);
  await w.until(() => receivers.every((r) => r.got.length === 20));
  for (let i = 0; i < 3; i++) {
    t.same(
      receivers[i]!.got.map(([from, x]) => `${from} ${x.toString()}`),
      Array.from({ length: 20 }, (_, k) => `${senders[i]!.nick} ${i}:${k}`),
      `${receivers[i]!.nick}: its sender's frames, in order, once`,
    );
  }
  const stats = String(await raw.info('commandstats'));
  t.match(stats, /cmdstat_publish:calls=1,/, 'one PUBLISH for the three connections');
});
