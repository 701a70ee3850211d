// The interactive client on a real terminal (tmux): what a person types and sees. The relay and the
// other member are real processes on 127.0.0.1; see test/client/tmux.ts for how the terminal is driven.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, freePort, startClient, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';

async function room(t: { teardown(fn: () => unknown): void }) {
  const dir = tempDir(t);
  const { port, proc } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const alice = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', join(dir, 'alice'), '--no-passphrase']);
  await alice.waitFor(/alice@lobby>$/);
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  await bob.waitFor(/^\* secure session with alice/);
  await alice.waitFor(/end-to-end session with bob established/);
  relayPid.set(alice, proc.child.pid!);
  return { dir, port, alice, bob };
}

/** The relay process behind each terminal (to freeze it). */
const relayPid = new WeakMap<Term, number>();

t.test('a half-typed line survives incoming messages and is sent as typed', async (t) => {
  const { alice, bob } = await room(t);
  alice.type('half typed');
  bob.write('hello alice');
  const screen = await alice.waitFor(/bob: hello alice$/);
  t.match(screen.at(-1), /alice@lobby> half typed$/, 'the prompt row still holds the typed text');
  alice.type(' and finished');
  alice.keys('Enter');
  t.equal(await bob.waitFor(/^alice: /), 'alice: half typed and finished', 'bob receives the whole line');
  alice.type('/quit');
  alice.keys('Enter');
  t.equal(await alice.waitExit(), 0, '/quit exits 0');
  bob.end();
  await bob.exited;
});

t.test('Ctrl-C keeps a typed line the first time and quits with 130 the second time', async (t) => {
  const { alice, bob } = await room(t);
  alice.type('not finished yet');
  alice.keys('C-c');
  const screen = await alice.waitFor(/Ctrl-C again quits/);
  t.match(screen.at(-1), /alice@lobby> not finished yet$/, 'the line is still there');
  alice.keys('C-c');
  t.equal(await alice.waitExit(), 130, 'status 130, as after SIGINT');
  t.notOk(bob.out.some((l) => l.startsWith('alice: ')), 'nothing was sent');
  await bob.waitFor(/^\* alice left$/);
  bob.end();
  await bob.exited;
});

t.test('after Ctrl-Z and fg in a shell, typing works again at once', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  await bob.waitFor(/^\* joined /);
  // A real shell with job control, as a person has: Ctrl-Z stops the job, fg continues it.
  const sh = new Term(t, dir, ['bash', '--norc', '--noprofile', '-i'], { env: { PS1: 'sh$ ' } });
  await sh.waitFor(/^sh\$$/);
  sh.type(`${process.execPath} ${CLI} client --port ${port} --nick alice --home ${join(dir, 'alice')} --no-passphrase`);
  sh.keys('Enter');
  await sh.waitFor(/end-to-end session with bob established/);
  await sh.waitFor(/alice@lobby>$/);
  sh.keys('C-z');
  await sh.waitFor(/Stopped/);
  sh.type('fg');
  sh.keys('Enter');
  await sh.waitFor(/alice@lobby>$/);
  sh.type('back again');
  sh.keys('Enter');
  t.equal(await bob.waitFor(/^alice: /), 'alice: back again', 'the line typed after fg is sent without any network event');
  sh.keys('C-d');
  await sh.waitFor(/^sh\$$/);
  sh.type('echo "status=$?"');
  sh.keys('Enter');
  await sh.waitFor(/^status=0$/);
  t.pass('Ctrl-D quit the client with status 0');
  bob.end();
  await bob.exited;
});

t.test('Tab completes nicknames and commands', async (t) => {
  const { alice, bob } = await room(t);
  // Node's readline completes on a Tab only when the Tab is read on its own (a chunk of several
  // characters is taken as pasted, its Tab inserted as text), so each key waits for the echo of the
  // keys before it: under load tmux may otherwise hand them over in one read.
  alice.type('/sa');
  await alice.waitFor(/alice@lobby> \/sa$/);
  alice.keys('Tab');
  await alice.waitFor(/alice@lobby> \/safety$/);
  alice.type(' b');
  await alice.waitFor(/alice@lobby> \/safety b$/);
  alice.keys('Tab');
  await alice.waitFor(/alice@lobby> \/safety bob$/);
  alice.keys('Enter');
  await alice.waitFor(/^safety number with bob:$/);
  await alice.waitFor(/if it matches, \/verify bob$/);
  alice.type('/quit');
  alice.keys('Enter');
  t.equal(await alice.waitExit(), 0);
  bob.end();
  await bob.exited;
});

t.test('a pasted block is sent only after one confirmation, and pasted commands never run', async (t) => {
  const { alice, bob } = await room(t);
  alice.paste('first pasted line\n/quit\nthird line');
  await alice.waitFor(/you pasted 3 lines/);
  t.equal(alice.exitStatus(), null, 'the pasted /quit did not run');
  t.notOk(bob.out.some((l) => l.startsWith('alice: ')), 'nothing sent before the answer');
  alice.type('y');
  alice.keys('Enter');
  t.equal(await bob.waitFor(/^alice: first/), 'alice: first pasted line');
  t.equal(await bob.waitFor(/^alice: \//), 'alice: /quit', 'the pasted command went as text');
  t.equal(await bob.waitFor(/^alice: third/), 'alice: third line');
  alice.paste('dropped one\ndropped two\n');
  await alice.waitFor(/you pasted 2 lines/);
  alice.type('n');
  alice.keys('Enter');
  await alice.waitFor(/dropped the 2 pasted lines/);
  alice.type('/quit');
  alice.keys('Enter');
  t.equal(await alice.waitExit(), 0, '/quit exits 0');
  t.notOk(bob.out.some((l) => l.includes('dropped')), 'a refused paste is never sent');
  bob.end();
  await bob.exited;
});

t.test('a relay that is down is said before any prompt: no nickname or passphrase asked, the error once, status 6', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const term = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--home', join(dir, 'dave')]);
  t.equal(await term.waitExit(), 6, 'cannot connect: status 6');
  const screen = term.screen(true);
  t.equal(screen.filter((l) => l.includes('ECONNREFUSED')).length, 1, `the error is shown once: ${screen.filter((l) => l !== "").join(' | ')}`);
  t.notOk(screen.some((l) => /passphrase|nickname:/i.test(l)), 'nothing was asked');
  t.notOk(existsSync(join(dir, 'dave', 'identity.key')), 'no key was made for a run that could not start');
});

t.test('Ctrl-C at the passphrase prompt exits 130, and quitting never hangs on a frozen relay', async (t) => {
  const dir = tempDir(t);
  // A relay that answers: the passphrase is asked only once its address is reached.
  const up = await startServerProc(t, { registry: join(dir, 'up.db') });
  const prompt = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(up.port), '--nick', 'carol', '--home', join(dir, 'carol')]);
  await prompt.waitFor(/new passphrase:/);
  prompt.keys('C-c');
  t.equal(await prompt.waitExit(), 130, 'cancelled at the prompt: 130, not a usage error');

  const { alice, bob } = await room(t);
  const srvPid = relayPid.get(alice)!;
  process.kill(srvPid, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(srvPid, 'SIGCONT');
    } catch {
      // already gone
    }
  });
  alice.keys('C-c');
  t.equal(await alice.waitExit(), 130, 'one Ctrl-C quits although the relay never answers the LEAVE');
  process.kill(srvPid, 'SIGCONT');
  bob.end();
  await bob.exited;
});

t.test('a line typed while alone is not sent to whoever joins next: it goes back into the input', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const alice = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', join(dir, 'alice'), '--no-passphrase']);
  await alice.waitFor(/alice@lobby>$/);
  alice.type('the door code is 4711');
  alice.keys('Enter');
  const screen = await alice.waitFor(/NOT sent: nobody else is here/);
  await alice.waitFor(/alice@lobby> the door code is 4711$/);
  t.notOk(screen.some((l) => /^\[\d\d:\d\d:\d\d\] alice: the door code/.test(l)), 'not shown as a sent message');
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  await bob.waitFor(/^\* secure session with alice/);
  await alice.waitFor(/end-to-end session with bob established/);
  t.match(alice.screen().at(-1), /alice@lobby> the door code is 4711$/, 'the line is still in the input after bob joined');
  t.notOk(bob.out.some((l) => l.startsWith('alice: ')), 'bob received nothing on joining');
  alice.keys('Enter');
  t.equal(await bob.waitFor(/^alice: /), 'alice: the door code is 4711', 'sent once alice pressed Enter with bob present');
  alice.type('/quit');
  alice.keys('Enter');
  t.equal(await alice.waitExit(), 0);
  bob.end();
  await bob.exited;
});
