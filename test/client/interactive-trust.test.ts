// A changed key on a real terminal (tmux), replayed as issue 15's new user met it: the warning, /safety
// naming the new key and saying /trust before /verify (it said "then /verify bob" while /verify refused),
// the blocked member told at once, /trust starting a session on both sides, then /verify. Real relay
// and member processes on 127.0.0.1.
import t, { type Test } from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, startClient, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';

/**
 * alice and bob had a session (alice pinned bob's key); then the relay at the same address starts with a
 * fresh registry, so "bob" can come back with another key. Returns the relay's port and alice's --home.
 */
async function pinnedThenRelayReset(t: Test, dir: string): Promise<{ port: number; aliceHome: string }> {
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
  first.proc.kill();
  await first.proc.exited;
  await startServerProc(t, { port, registry: join(dir, 'reg2.db') });
  return { port, aliceHome };
}

t.test('after a key change: /safety says /trust first, /verify refuses until then, /trust gives both sides a session', async (t) => {
  const dir = tempDir(t);
  const { port, aliceHome } = await pinnedThenRelayReset(t, dir);
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** --handshake-timeout of both terminals in the cases below (seconds): short, so a case can wait past it. */
const HS_S = 1;
const count = (screen: string[], re: RegExp) => screen.filter((l) => re.test(l)).length;

t.test('/trust long after the handshake timeout (issue 15: "after more than about 30 s both sides stay failed"): both sides get a session', async (t) => {
  const dir = tempDir(t);
  const { port, aliceHome } = await pinnedThenRelayReset(t, dir);
  const client = (nick: string, home: string) => [process.execPath, CLI, 'client', '--port', String(port), '--nick', nick, '--home', home, '--no-passphrase', '--no-history', '--handshake-timeout', String(HS_S)];
  mkdirSync(join(dir, 'ta'));
  const alice = new Term(t, join(dir, 'ta'), client('alice', aliceHome));
  await alice.waitFor(/alice@lobby>$/);
  // bob joins later with his new key: he starts the handshake (the initiator), as the new user's bob did.
  mkdirSync(join(dir, 'tb'));
  const bob = new Term(t, join(dir, 'tb'), client('bob', join(dir, 'bob-new')));
  await alice.waitFor(/THE IDENTITY KEY OF bob HAS CHANGED/);
  await bob.waitFor(/session with alice failed \(UNEXPECTED_FRAME\): alice's client has another key pinned for you/);
  // "check with them": alice takes far longer than the handshake timeout (both machines' timers would
  // long have fired, had one been left running).
  await sleep(HS_S * 1000 * 4);
  t.equal(count(bob.screen(true), /session with alice failed/), 1, 'bob was told once, and no TIMEOUT came after it');
  t.equal(count(alice.screen(true), /failed/), 0, 'nothing failed on alice\'s side while she checked');
  alice.type('/trust bob');
  alice.keys('Enter');
  await alice.waitFor(/end-to-end session with bob established/);
  await bob.waitFor(/end-to-end session with alice established/);
  bob.type('new key, same bob');
  bob.keys('Enter');
  await alice.waitFor(/\] bob: new key, same bob$/);
  alice.type('welcome back');
  alice.keys('Enter');
  await bob.waitFor(/\] alice: welcome back$/);
  await alice.waitFor(/✓ #1 delivered to bob "welcome back"/);
  for (const term of [alice, bob]) {
    term.type('/quit');
    term.keys('Enter');
    t.equal(await term.waitExit(), 0);
  }
});

t.test('--handshake-timeout: a member that does not answer in time fails the session once (its late answer is not a second failure); /retry then succeeds', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db'), args: ['--max-room-size', '3'] });
  // bob joins, then stops (SIGSTOP): the HS_INIT of whoever joins next waits unread.
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob'), args: ['--handshake-timeout', String(HS_S)] });
  await bob.waitFor(/^\* joined /);
  const pid = bob.child.pid!;
  process.kill(pid, 'SIGSTOP');
  let stopped = true;
  t.teardown(() => {
    if (stopped) process.kill(pid, 'SIGCONT');
  });
  // carol waits for bob with a long timeout: that the short one is the option's, not a default, shows here.
  const carol = startClient(t, { port, nick: 'carol', home: join(dir, 'carol'), args: ['--handshake-timeout', '600'] });
  await carol.waitFor(/^\* joined /);
  const alice = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', join(dir, 'alice'), '--no-passphrase', '--no-history', '--handshake-timeout', String(HS_S)]);
  await alice.waitFor(/end-to-end session with carol established/);
  await alice.waitFor(/session with bob failed \(TIMEOUT\): bob's client did not answer the handshake in time; \/retry bob starts it again/);
  t.notOk(carol.out.some((l) => l.includes('failed')), "carol's handshake with bob, begun earlier, has not timed out");
  process.kill(pid, 'SIGCONT');
  stopped = false;
  // bob now reads both HS_INITs: carol's session opens; his answer to alice's failed machine is refused
  // there, and his own machine with alice times out.
  await carol.waitFor(/^\* secure session with bob/);
  await bob.waitFor(/^\* session with alice failed: TIMEOUT/);
  await alice.waitFor(/alice@lobby>$/);
  t.equal(count(alice.screen(true), /session with bob failed/), 1, 'one failure line for the one failed session');
  alice.type('/retry bob');
  alice.keys('Enter');
  const mark = bob.out.length;
  await bob.waitFor(/^\* secure session with alice/, mark);
  alice.type('after the retry');
  alice.keys('Enter');
  t.equal(await bob.waitFor(/^alice: /, mark), 'alice: after the retry');
  await alice.waitFor(/✓ #1 delivered to all 2 "after the retry"/);
  alice.type('/quit');
  alice.keys('Enter');
  t.equal(await alice.waitExit(), 0);
  bob.end();
  carol.end();
  await Promise.all([bob.exited, carol.exited]);
});
