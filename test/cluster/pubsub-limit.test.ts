/**
 * A slow subscriber (spec/CLUSTER.md §3): Redis keeps what it published to a relay that reads slowly in
 * that connection's output buffer, bounded only by `client-output-buffer-limit pubsub`. A relay starts
 * only on a Redis with a hard limit for that class, and logs it; on one without, it refuses and registers
 * nothing. Real Redis on 127.0.0.1.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { parsePubsubLimit, RedisCluster } from '../../src/cluster/redis.js';
import { TestRedis } from './redis-helper.js';

const redis = await TestRedis.start('everysec');
t.teardown(() => redis.stop());
const raw = new Redis(redis.port, '127.0.0.1');
t.teardown(() => raw.disconnect());

t.test('the pubsub class is read from the CONFIG GET reply, anything else is no answer', async (t) => {
  t.same(parsePubsubLimit(['client-output-buffer-limit', 'normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60']), { hardBytes: 33554432, softBytes: 8388608, softSeconds: 60 });
  t.same(parsePubsubLimit(['client-output-buffer-limit', 'pubsub 0 0 0']), { hardBytes: 0, softBytes: 0, softSeconds: 0 });
  t.equal(parsePubsubLimit(['client-output-buffer-limit', 'normal 0 0 0 slave 1 1 1']), undefined);
  t.equal(parsePubsubLimit(['client-output-buffer-limit', 'pubsub 1 2']), undefined);
  t.equal(parsePubsubLimit(['client-output-buffer-limit', 'xpubsub 1 2 3']), undefined);
  t.equal(parsePubsubLimit([]), undefined);
  t.equal(parsePubsubLimit('pubsub 1 2 3'), undefined);
  t.equal(parsePubsubLimit(['client-output-buffer-limit', 3]), undefined);
});

t.test("Redis's default limit is logged and the relay registers", async (t) => {
  const events: Record<string, unknown>[] = [];
  const c = await RedisCluster.connect<object>(redis.url, { maxRoomSize: 2, log: (e) => events.push(e) });
  t.teardown(() => c.close());
  const ev = events.find((e) => e.event === 'cluster_pubsub_limit');
  t.ok(ev !== undefined, 'cluster_pubsub_limit logged');
  t.equal(ev?.hard_bytes, 33554432);
  t.equal(ev?.soft_bytes, 8388608);
  t.equal(ev?.soft_seconds, 60);
  t.ok(await raw.sismember('e2ee:relays', c.relayId), 'registered');
});

t.test('without a hard pubsub limit the relay refuses to start and registers nothing', async (t) => {
  await raw.config('SET', 'client-output-buffer-limit', 'pubsub 0 8388608 60');
  t.teardown(() => raw.config('SET', 'client-output-buffer-limit', 'pubsub 33554432 8388608 60'));
  const before = await raw.smembers('e2ee:relays');
  await t.rejects(RedisCluster.connect<object>(redis.url, { maxRoomSize: 2 }), RangeError);
  t.same((await raw.smembers('e2ee:relays')).sort(), before.sort(), 'no relay registered');
  t.equal(Number(await raw.pubsub('NUMPAT')) + (await raw.pubsub('CHANNELS', 'e2ee:deliver:*')).length, 0, 'nothing subscribed');
});

t.test('where CONFIG is not allowed the relay says it could not check, and starts', async (t) => {
  await raw.call('ACL', 'SETUSER', 'default', '-config');
  t.teardown(() => raw.call('ACL', 'SETUSER', 'default', '+config'));
  const events: Record<string, unknown>[] = [];
  const c = await RedisCluster.connect<object>(redis.url, { maxRoomSize: 2, log: (e) => events.push(e) });
  t.teardown(() => c.close());
  t.ok(events.some((e) => e.event === 'cluster_pubsub_limit_unknown'), 'cluster_pubsub_limit_unknown logged');
  t.notOk(events.some((e) => e.event === 'cluster_pubsub_limit'));
  t.ok(await raw.sismember('e2ee:relays', c.relayId), 'registered');
});
