/**
 * The room epoch in cluster mode (PROTOCOL.md §7.1 "Room epoch", spec/CLUSTER.md §1-§3): the scripts that
 * change a room's membership change its epoch in the same step, so every member on every relay is told the
 * same epoch for the same change, refusals leave it alone, a reap of a dead relay moves it like a leave,
 * and a room that empties starts again at 1, as one relay's RoomManager does. Engines in this process
 * with a recording sink; real Redis on 127.0.0.1.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { decodeFrame, FrameReader } from '../../src/codec/index.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { RedisCluster } from '../../src/cluster/redis.js';
import type { RoomSink } from '../../src/room/engine.js';
import { RoomManager } from '../../src/room/index.js';
import { TestRedis } from './redis-helper.js';

const redis = await TestRedis.start();
t.teardown(() => redis.stop());
const raw = new Redis(redis.port, '127.0.0.1');
t.teardown(() => raw.disconnect());

interface Handle {
  nick: string;
  /** Membership events written to this handle, as "JOINED|PEER_JOINED|PEER_LEFT nick epoch". */
  events: string[];
  reader: FrameReader;
}

const handle = (nick: string): Handle => ({ nick, events: [], reader: new FrameReader() });

let wake = (): void => {};
const sink: RoomSink<Handle> = {
  write(h, wire) {
    for (const body of h.reader.push(wire)) {
      const f = decodeFrame(body, 'relay');
      if (f.type === 'PEER_JOINED' || f.type === 'PEER_LEFT') h.events.push(`${f.type} ${f.nick} ${f.epoch}`);
    }
    wake();
  },
  refuse() {},
  lost() {},
  restored() {},
};

/** Resolves once `cond()` holds, checked after every write to a handle (at most 1,000 writes). */
function until(cond: () => boolean): Promise<void> {
  if (cond()) return Promise.resolve();
  let left = 1000;
  return new Promise((resolve, reject) => {
    wake = () => {
      if (cond()) resolve();
      else if (--left === 0) reject(new Error('condition not reached in 1,000 writes'));
    };
  });
}

const KEY = new Uint8Array(32).fill(3);

/** The ProtocolError name `p` rejects with, or 'none'. */
const refused = (p: Promise<unknown>): Promise<string> => p.then(() => 'none', (e: unknown) => (e instanceof ProtocolError ? e.errorName : 'not a ProtocolError'));

/** The ProtocolError name `fn` throws, or 'none'. */
function refusal(fn: () => unknown): string {
  try {
    fn();
    return 'none';
  } catch (e) {
    return e instanceof ProtocolError ? e.errorName : 'not a ProtocolError';
  }
}

async function join(e: RedisCluster<Handle>, room: string, h: Handle): Promise<number> {
  let epoch = -1;
  await e.join(room, h.nick, KEY, h, (_others, ep) => {
    epoch = ep;
    h.events.push(`JOINED ${h.nick} ${ep}`);
  });
  return epoch;
}

t.test('every member on every relay is told the same epoch for the same change; refusals leave it alone', async (t) => {
  const a = await RedisCluster.connect<Handle>(redis.url, { maxRoomSize: 3 });
  const b = await RedisCluster.connect<Handle>(redis.url, { maxRoomSize: 3 });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  a.attach(sink);
  b.attach(sink);
  const [alice, bob, carol, dave, alice2] = ['alice', 'bob', 'carol', 'dave', 'alice'].map(handle) as [Handle, Handle, Handle, Handle, Handle];
  t.equal(await join(a, 'ep', alice), 1, 'the first join creates the room at epoch 1');
  t.equal(await join(b, 'ep', bob), 2);
  t.equal(await refused(join(b, 'ep', alice2)), 'NICK_IN_ROOM');
  t.equal(await join(b, 'ep', carol), 3, 'a refused join did not move the epoch');
  t.equal(await refused(join(a, 'ep', dave)), 'ROOM_FULL');
  await b.leave(bob);
  t.equal(await join(a, 'ep', dave), 5, 'the leave was 4, this join 5; the refused one nothing');
  await until(() => alice.events.length === 5 && carol.events.length === 3);
  t.same(alice.events, ['JOINED alice 1', 'PEER_JOINED bob 2', 'PEER_JOINED carol 3', 'PEER_LEFT bob 4', 'PEER_JOINED dave 5'], 'alice (relay a): every epoch, in order');
  t.same(carol.events, ['JOINED carol 3', 'PEER_LEFT bob 4', 'PEER_JOINED dave 5'], 'carol (relay b): the same epochs for the same changes');
  t.equal(Number(await raw.get('e2ee:epoch:ep')), 5, 'the stored epoch is the last one announced');
  for (const h of [alice, dave]) await a.leave(h);
  await b.leave(carol);
  t.equal(await raw.exists('e2ee:epoch:ep'), 0, 'the epoch goes with the last member');
  const erin = handle('erin');
  t.equal(await join(b, 'ep', erin), 1, 'a room that emptied starts again at 1');
  await b.leave(erin);
});

t.test('one relay (RoomManager) numbers the same sequence of changes the same way', async (t) => {
  // The embedded counterpart of the run above: JOIN alice, bob, carol, LEAVE bob, JOIN dave, all leave,
  // JOIN erin. ROOM_FULL and NICK_IN_ROOM throw before anything changes.
  const rooms = new RoomManager<object>(3);
  const seen: number[] = [];
  for (const nick of ['alice', 'bob', 'alice', 'carol']) {
    if (nick === 'alice' && seen.length === 2) {
      t.equal(refusal(() => rooms.join('ep', { nick, key: KEY, handle: {} })), 'NICK_IN_ROOM');
      continue;
    }
    rooms.join('ep', { nick, key: KEY, handle: {} });
    seen.push(rooms.epoch('ep'));
  }
  t.equal(refusal(() => rooms.join('ep', { nick: 'dave', key: KEY, handle: {} })), 'ROOM_FULL');
  rooms.leave('ep', 'bob');
  seen.push(rooms.epoch('ep'));
  rooms.join('ep', { nick: 'dave', key: KEY, handle: {} });
  seen.push(rooms.epoch('ep'));
  for (const nick of ['alice', 'carol', 'dave']) rooms.leave('ep', nick);
  rooms.join('ep', { nick: 'erin', key: KEY, handle: {} });
  seen.push(rooms.epoch('ep'));
  t.same(seen, [1, 2, 3, 4, 5, 1], 'the epochs the cluster announced above');
});

t.test("a dead relay's members are reaped with PEER_LEFT at the next epoch", async (t) => {
  // Relay `dead` registers, its member joins, then its presence key is deleted (what expiry does after
  // kill -9); its own heartbeat is never run (a long interval), so nothing of it acts again.
  const dead = await RedisCluster.connect<Handle>(redis.url, { maxRoomSize: 2, heartbeatMs: 3_600_000, reapIntervalMs: 3_600_000 });
  const live = await RedisCluster.connect<Handle>(redis.url, { maxRoomSize: 2, reapIntervalMs: 20 });
  t.teardown(async () => {
    await live.close();
    await dead.close();
  });
  dead.attach(sink);
  live.attach(sink);
  const alice = handle('alice');
  const bob = handle('bob');
  t.equal(await join(dead, 'reap', alice), 1);
  t.equal(await join(live, 'reap', bob), 2);
  await raw.del(`e2ee:relay:${dead.relayId}:alive`);
  await until(() => bob.events.length === 2);
  t.same(bob.events, ['JOINED bob 2', 'PEER_LEFT alice 3'], 'reap-dead-relays moved the epoch in the step that removed alice');
  t.equal(Number(await raw.get('e2ee:epoch:reap')), 3);
  const carol = handle('carol');
  t.equal(await join(live, 'reap', carol), 4, 'the freed place is taken at the next epoch');
  await until(() => bob.events.length === 3);
  t.equal(bob.events[2], 'PEER_JOINED carol 4');
});
