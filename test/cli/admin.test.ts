/**
 * `e2ee-chat admin bindings list|release` on a RUNNING relay's registry (spec §7.5 "Release"): real relay
 * and client processes, the relay's own SQLite file (WAL) and a real Redis for a cluster. A release is seen
 * by the relay without a restart: a new key then binds the nickname. Lists show fingerprints, never keys.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CLI, fingerprintOf, Proc, startClient, startServerProc, tempDir } from '../client/procs.js';
import { TestRedis } from '../cluster/redis-helper.js';

function admin(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, 'admin', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function runClient(t: Parameters<typeof startClient>[0], port: number, nick: string, home: string): Promise<{ code: number | null; fp: string | undefined }> {
  const c = startClient(t, { port, nick, home });
  const fp = await c.waitFor(/^\* joined /).then(fingerprintOf, () => undefined);
  c.end();
  return { code: (await c.exited).code, fp };
}

t.test('SQLite: list and release on a running relay; the relay sees the release at once', async (t) => {
  const dir = tempDir(t);
  const registry = join(dir, 'reg.db');
  const { port } = await startServerProc(t, { registry });
  const first = await runClient(t, port, 'alice', join(dir, 'a1'));
  t.equal(first.code, 0);
  t.equal((await runClient(t, port, 'bob', join(dir, 'b1'))).code, 0);

  const list = admin('bindings', 'list', '--registry', registry);
  t.equal(list.code, 0, list.err);
  const lines = list.out.trim().split('\n');
  t.equal(lines.length, 2);
  t.match(lines[0], /^alice  /);
  t.ok(lines[0]!.includes(first.fp!), 'alice is listed with her fingerprint');
  t.match(lines[0], /recovery yes/, 'the client registered a recovery code at first binding');
  t.notMatch(list.out, /30820122|MIIB/, 'no key bytes');

  t.equal((await runClient(t, port, 'alice', join(dir, 'a2'))).code, 4, 'a new key: NICK_BOUND');
  const rel = admin('bindings', 'release', 'alice', '--registry', registry);
  t.equal(rel.code, 0, rel.err);
  t.equal(admin('bindings', 'release', 'alice', '--registry', registry).code, 3, 'nothing left to release: 3');
  const again = await runClient(t, port, 'alice', join(dir, 'a2'));
  t.equal(again.code, 0, 'the running relay lets the new key bind the released nickname');
  t.not(again.fp, first.fp);
  t.ok(admin('bindings', 'list', '--registry', registry).out.includes(again.fp!), 'the list shows the new key');
});

t.test('usage and registry errors have their statuses', async (t) => {
  const dir = tempDir(t);
  t.equal(admin('bindings', 'list').code, 2, 'no registry given');
  t.equal(admin('bindings', 'list', '--registry', 'a', '--redis', 'redis://127.0.0.1:1').code, 2, 'both given');
  t.equal(admin('bindings', 'release', 'no spaces', '--registry', join(dir, 'x.db')).code, 2, 'not a nickname');
  t.equal(admin('bindings', 'drop', 'x', '--registry', join(dir, 'x.db')).code, 2, 'unknown verb');
  t.equal(admin('bindings', 'list', '--registry', join(dir, 'missing.db')).code, 1, 'a missing registry is not created');
  t.equal(admin('bindings', 'list', '--redis', 'redis://127.0.0.1:1').code, 1, 'an unreachable Redis');
  t.equal(admin('--help').code, 0);
});

t.test('Redis: the same commands on a cluster registry, seen by a running clustered relay', async (t) => {
  const redis = await TestRedis.start();
  t.teardown(() => redis.stop());
  const dir = tempDir(t);
  const server = new Proc(['server', '--port', '0', '--redis', redis.url]);
  t.teardown(async () => {
    server.kill();
    await server.exited;
  });
  const port = Number(/:(\d+)$/.exec(await server.waitFor(/^listening on /))![1]);
  const first = await runClient(t, port, 'carol', join(dir, 'c1'));
  t.equal(first.code, 0);
  const list = admin('bindings', 'list', '--redis', redis.url);
  t.equal(list.code, 0, list.err);
  t.match(list.out, new RegExp(`^carol  ${first.fp}  bound .* recovery yes$`, 'm'));
  t.equal((await runClient(t, port, 'carol', join(dir, 'c2'))).code, 4);
  t.equal(admin('bindings', 'release', 'carol', '--redis', redis.url).code, 0);
  t.equal(admin('bindings', 'release', 'carol', '--redis', redis.url).code, 3);
  t.equal((await runClient(t, port, 'carol', join(dir, 'c2'))).code, 0, 'released: the new key binds it without a restart');
});
