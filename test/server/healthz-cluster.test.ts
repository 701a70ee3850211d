// /healthz of a relay in cluster mode follows its Redis (spec/CLUSTER.md: without its store the relay
// refuses every connection): 200 while Redis answers, 503 after a kill -9 of Redis, 200 again once Redis
// is back. A real redis-server on a free loopback port (test/cluster/redis-helper.ts).
import t from 'tap';
import { request } from 'node:http';
import { RedisCluster } from '../../src/cluster/redis.js';
import { startServer } from '../../src/server/index.js';
import { startMetrics } from '../../src/server/metrics.js';
import { TestRedis } from '../cluster/redis-helper.js';
import { identities, TestClient, type Identity } from './helpers.js';

const [alice] = identities(1) as [Identity];

const status = (url: string): Promise<number> =>
  new Promise((resolve, reject) => {
    request(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });

/** Polls /healthz (bounded: 1,000 tries 20 ms apart) until it answers `want`. */
async function until(url: string, want: number): Promise<number> {
  let got = await status(url);
  for (let i = 0; i < 1000 && got !== want; i++) {
    await new Promise((r) => setTimeout(r, 20));
    got = await status(url);
  }
  return got;
}

t.test('cluster mode: /healthz is 503 while Redis is down and 200 once it is back', async (t) => {
  const redis = await TestRedis.start();
  t.teardown(() => redis.stop());
  const cluster = await RedisCluster.connect<object>(redis.url, { maxRoomSize: 2 });
  const relay = await startServer({ port: 0, registry: cluster, rooms: cluster });
  t.teardown(() => relay.close());
  const m = await startMetrics(relay, { host: '127.0.0.1', port: 0 });
  t.teardown(() => m.close());
  const health = m.url.replace('/metrics', '/healthz');
  t.equal(await status(health), 200);
  const c = await TestClient.connect(relay.port);
  await c.auth('alice', alice);
  await redis.kill9();
  t.equal(await c.expectError(), 'SERVER_SHUTDOWN', 'the relay stops serving without its store');
  t.equal(await until(health, 503), 503, '503 while Redis is down');
  await redis.run();
  t.equal(await until(health, 200), 200, '200 again once Redis is back');
  const d = await TestClient.connect(relay.port);
  await d.auth('alice', alice);
  t.pass('and a client is served again');
  c.destroy();
  d.destroy();
});
