// A changed key on a real terminal (tmux), replayed as issue 15's new user met it: the warning, /safety
// naming the new key and saying /trust before /verify (it said "then /verify bob" while /verify refused),
// the blocked member told at once, /trust starting a session on both sides, then /verify. Real relay
// and member processes on 127.0.0.1.
import t from 'tap';
import { join } from 'node:path';
import { CLI, startClient, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';

t.test('after a key change: /safety says /trust first, /verify refuses until then, /trust gives both sides a session', async (t) => {
  const dir = tempDir(t);
  const first = await startServerProc(t, { registry: join(dir, 'reg1.db') });
  const port = first.port;
  const aliceHome = join(dir, 'alice');
  const alice0 = startClient(t, { port, nick: 'alice', home: aliceHome });
  await alice0.waitFor(/^\* joined /);
  const bob0 = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  await alice0.waitFor(/^\* secure session with bob/);
  alice0.end();
  bob0.end();
  await Promise.all([alice0.exited, bob0.exited]);
  // The same relay address with a fresh registry: "bob" comes back with another key.
  first.proc.kill();
  await first.proc.exited;
  await startServerProc(t, { port, registry: join(dir, 'reg2.db') });
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob-new') });
  await bob.waitFor(/^\* joined /);

  const alice = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', aliceHome]);
  await alice.waitFor(/THE IDENTITY KEY OF bob HAS CHANGED/);
  await alice.waitFor(/alice@lobby>$/);
  // bob is told within the handshake, not after a timeout.
  t.match(await bob.waitFor(/^\* session with alice failed/), /alice's client has another key pinned for you/, 'the blocked side is told why');

  alice.type('/safety bob');
  alice.keys('Enter');
  await alice.waitFor(/^safety number with bob \(with the NEW key bob offers\):$/);
  await alice.waitFor(/if it matches, \/trust bob accepts this new key, then \/verify bob$/);
  alice.type('/verify bob');
  alice.keys('Enter');
  await alice.waitFor(/error: cannot verify bob: its key changed/);
  alice.type('/trust bob');
  alice.keys('Enter');
  await alice.waitFor(/accepted the new key of bob/);
  await alice.waitFor(/end-to-end session with bob established/);
  await bob.waitFor(/^\* secure session with alice/);
  const mark = alice.screen(true).length;
  alice.type('/safety bob');
  alice.keys('Enter');
  const after = await alice.waitFor(/if it matches, \/verify bob$/);
  t.notOk(after.slice(mark - 1).some((l) => l.includes('NEW key')), 'once accepted, /safety no longer speaks of a new key');
  alice.type('/verify bob');
  alice.keys('Enter');
  await alice.waitFor(/bob marked as verified/);
  bob.write('hello again');
  await alice.waitFor(/bob \[verified\]: hello again$/);
  alice.type('/quit');
  alice.keys('Enter');
  t.equal(await alice.waitExit(), 0);
  bob.end();
  await bob.exited;
});
