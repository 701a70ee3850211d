/**
 * Trust on first use end to end: a peer that comes back under a pinned nickname with another key is
 * refused with a warning naming both fingerprints and status 5. Real relay and client processes.
 */
import t from 'tap';
import { join } from 'node:path';
import { fingerprintOf, startClient, startServerProc, tempDir } from './procs.js';


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
