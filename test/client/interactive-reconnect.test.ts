// A relay restart under an interactive client whose key is sealed under a passphrase (issue 15 point 1, as
// the new user met it: "stopping the relay ends every client and each user must restart and type the
// passphrase again"). On a real terminal (tmux): the drop is said once, the attempts live in the prompt
// (one row redrawn, not a line each), the client authenticates again with the key it already unlocked (no
// passphrase prompt), rejoins and sets up a new session; then a SIGINT from outside ends it with 130.
// Real relay and member processes on 127.0.0.1.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { CLI, freePort, startClient, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';

const PASSPHRASE = 'correct horse battery staple';
const count = (screen: string[], re: RegExp) => screen.filter((l) => re.test(l)).length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a relay restart: no passphrase asked again, one line for the drop, the attempts in the prompt, a new session; SIGINT exits 130', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const registry = join(dir, 'reg.db');
  let relay = await startServerProc(t, { port, registry });
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob'), args: ['--reconnect', '120', '--no-history'] });
  await bob.waitFor(/^\* joined /);
  const alice = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', join(dir, 'alice'), '--no-history']);
  await alice.waitFor(/^new passphrase:/);
  alice.type(PASSPHRASE);
  alice.keys('Enter');
  await alice.waitFor(/^repeat new passphrase:/);
  alice.type(PASSPHRASE);
  alice.keys('Enter');
  await alice.waitFor(/end-to-end session with bob established/);
  await alice.waitFor(/alice@lobby>$/);
  const prompts = /passphrase:\s*$/;
  t.equal(count(alice.screen(true), prompts), 2, 'the passphrase was asked for the new key (twice: typed and repeated)');

  const bobMark = bob.out.length;
  relay.proc.kill('SIGKILL');
  await relay.proc.exited;
  // Stamped with the time of day like every other event line.
  await alice.waitFor(/^\[\d\d:\d\d:\d\d\] connection lost: /);
  // Back-off 0.5 s, 1 s, 2 s, ...: by the third attempt, a line per attempt would be on screen.
  await alice.waitFor(/^\(reconnecting: attempt [3-9] in \d+ s\) alice@lobby>$/);
  relay = await startServerProc(t, { port, registry });
  const back = await alice.waitFor(/reconnected after [\d.]+ s \(\d+ attempts\); new end-to-end sessions/);
  const attempts = Number(/\((\d+) attempts\)/.exec(back.find((l) => /reconnected after/.test(l))!)![1]);
  t.ok(attempts >= 3, `${attempts} attempts`);
  await bob.waitFor(/^\* secure session with alice/, bobMark);
  // The first session's line is in the scrollback too: wait (bounded polls) for the second one.
  for (let i = 0; i < 600 && count(alice.screen(true), /end-to-end session with bob established/) < 2; i++) await sleep(50);
  const screen = alice.screen(true);
  t.equal(count(screen, /end-to-end session with bob established/), 2, 'a new session after the reconnect');
  t.equal(count(screen, prompts), 2, 'no passphrase asked again: the key unlocked at the start was used');
  t.equal(count(screen, /connection lost/), 1, 'the drop is said once');
  t.equal(count(screen, /reconnecting: attempt/), 0, 'no row left per attempt (the status was the prompt, now plain again)');
  t.match(screen.at(-1), /^alice@lobby>$/, 'the plain prompt is back');

  bob.write('you are back');
  await alice.waitFor(/\] bob: you are back$/);
  alice.type('so I am');
  alice.keys('Enter');
  t.equal(await bob.waitFor(/^alice: /, bobMark), 'alice: so I am');

  // SIGINT from outside (kill -INT), not a Ctrl-C typed: the same status 130, after leaving the room.
  const node = Number(execFileSync('ps', ['-o', 'pid=', '--ppid', String(alice.pid())], { encoding: 'utf8' }).trim());
  process.kill(node, 'SIGINT');
  t.equal(await alice.waitExit(), 130, 'SIGINT: status 130');
  await bob.waitFor(/^\* alice left$/, bobMark);
  bob.end();
  t.equal((await bob.exited).code, 0);
});
