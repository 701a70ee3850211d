/**
 * `e2ee-chat client` identities end to end: kept across restarts under a passphrase, nickname binding at
 * the relay, trust on first use and the key-change warning (status 5). Real relay and client processes.
 */
import t from 'tap';
import { join } from 'node:path';
import { fingerprintOf, startClient, startServerProc, tempDir } from './procs.js';


t.test('a restarted client with the same --home keeps its identity; a wrong passphrase is status 4', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const env = { E2EE_CHAT_PASSPHRASE: 'correct horse battery staple' };
  const home = join(dir, 'alice');
  const first = startClient(t, { port, nick: 'alice', home, env, noPassphrase: false });
  const created = await first.waitFor(/^\* created identity key/);
  t.ok(created, 'the first run creates the key');
  const fp1 = fingerprintOf(await first.waitFor(/^\* joined lobby as alice/));
  first.end();
  t.equal((await first.exited).code, 0);

  const again = startClient(t, { port, nick: 'alice', home, env, noPassphrase: false });
  const fp2 = fingerprintOf(await again.waitFor(/^\* joined lobby as alice/));
  again.end();
  t.equal((await again.exited).code, 0, 'the relay accepts the same nickname with the same key');
  t.equal(fp2, fp1, 'same fingerprint after restart');
  t.notOk(again.out.some((l) => l.startsWith('* created identity key')), 'no new key on the second run');

  const wrong = startClient(t, { port, nick: 'alice', home, env: { E2EE_CHAT_PASSPHRASE: 'wrong' }, noPassphrase: false });
  wrong.end();
  t.equal((await wrong.exited).code, 4, 'wrong passphrase: status 4');

  const none = startClient(t, { port, nick: 'carol', home: join(dir, 'carol'), noPassphrase: false });
  none.end();
  t.equal((await none.exited).code, 2, 'no passphrase and no --no-passphrase for a new key: usage error');
});

t.test('a nickname bound to another key is refused with status 4', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const a = startClient(t, { port, nick: 'alice', home: join(dir, 'a1') });
  await a.waitFor(/^\* joined /);
  a.end();
  t.equal((await a.exited).code, 0);
  const impostor = startClient(t, { port, nick: 'alice', home: join(dir, 'a2') });
  impostor.end();
  t.equal((await impostor.exited).code, 4, 'NICK_BOUND: status 4');
  t.ok(impostor.err.some((l) => l.includes('NICK_BOUND')));
});

t.test('a peer that comes back with a new key triggers the warning and status 5', async (t) => {
  const dir = tempDir(t);
  const first = await startServerProc(t, { registry: join(dir, 'reg1.db') });
  const port = first.port;
  const alice = startClient(t, { port, nick: 'alice', home: join(dir, 'alice') });
  await alice.waitFor(/^\* joined /);
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  const pinned = fingerprintOf(await alice.waitFor(/^\* bob joined/));
  await alice.waitFor(/^\* secure session with bob/);
  alice.end();
  bob.end();
  await Promise.all([alice.exited, bob.exited]);

  // A relay with a fresh registry on the same host:port (the pins are keyed by it): "bob" can now
  // register another key. Alice's pin for bob must catch it.
  first.proc.kill();
  await first.proc.exited;
  await startServerProc(t, { port, registry: join(dir, 'reg2.db') });
  const bob2 = startClient(t, { port, nick: 'bob', home: join(dir, 'bob-new') });
  await bob2.waitFor(/^\* joined /);
  bob2.write('it is me, honest');
  const alice2 = startClient(t, { port, nick: 'alice', home: join(dir, 'alice') });
  const warning = await alice2.waitFor(/^\* WARNING: the identity key of bob CHANGED/);
  t.ok(warning.includes(pinned), 'the warning names the pinned fingerprint');
  const offered = fingerprintOf(await alice2.waitFor(/^\* bob joined/));
  t.ok(warning.includes(offered) && offered !== pinned, 'and the new one');
  const e = await alice2.exited;
  t.equal(e.code, 5, 'status 5');
  t.notOk(alice2.out.some((l) => l.startsWith('bob: ') || l.startsWith('* secure session')), 'no session, no message from the changed key');
  await bob2.waitFor(/^\* alice left/);
  t.notOk(bob2.out.some((l) => l.startsWith('* secure session')), 'the impostor never got a session');
  bob2.end();
  await bob2.exited;
});
