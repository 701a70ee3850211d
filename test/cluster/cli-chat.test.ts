/**
 * The reference CLI across a two-relay cluster: `e2ee-chat server --redis` twice (real processes), alice
 * on relay 1 and bob on relay 2 in scripted mode, a real redis-server started by the test.
 */
import t from 'tap';
import { Proc, safetyOf, startClient, tempDir } from '../client/procs.js';
import { TestRedis } from './redis-helper.js';

async function clusterRelay(t: { teardown(fn: () => unknown): void }, url: string): Promise<number> {
  const proc = new Proc(['server', '--port', '0', '--redis', url]);
  t.teardown(async () => {
    proc.kill('SIGTERM');
    await proc.exited;
  });
  return Number(/:(\d+)$/.exec(await proc.waitFor(/^listening on /))![1]);
}

t.test('alice on relay 1 and bob on relay 2 chat both ways through the reference CLI', async (t) => {
  const redis = await TestRedis.start();
  t.teardown(() => redis.stop());
  const p1 = await clusterRelay(t, redis.url);
  const p2 = await clusterRelay(t, redis.url);
  const dir = tempDir(t);
  const alice = startClient(t, { port: p1, nick: 'alice', home: `${dir}/alice`, args: ['--wait', '20'] });
  await alice.waitFor(/^\* joined lobby as alice/);
  const bob = startClient(t, { port: p2, nick: 'bob', home: `${dir}/bob`, args: ['--wait', '20'] });
  const sa = safetyOf(await alice.waitFor(/^\* secure session with bob/));
  const sb = safetyOf(await bob.waitFor(/^\* secure session with alice/));
  t.equal(sa, sb, 'the same safety number on both relays');
  alice.write('hello bob');
  bob.write('hello alice');
  t.equal(await bob.waitFor(/^alice: /), 'alice: hello bob');
  t.equal(await alice.waitFor(/^bob: /), 'bob: hello alice');
  await alice.waitFor(/^\* delivered to bob/);
  await bob.waitFor(/^\* delivered to alice/);
  alice.end();
  bob.end();
  t.equal((await alice.exited).code, 0);
  t.equal((await bob.exited).code, 0);
});
