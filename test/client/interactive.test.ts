// The interactive client on a real terminal (tmux): what a person types and sees. The relay and the
// other member are real processes on 127.0.0.1; see test/client/tmux.ts for how the terminal is driven.
import t from 'tap';
import { join } from 'node:path';
import { CLI, startClient, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';

async function room(t: { teardown(fn: () => unknown): void }) {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const alice = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', join(dir, 'alice'), '--no-passphrase']);
  await alice.waitFor(/alice@lobby>$/);
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  await bob.waitFor(/^\* secure session with alice/);
  await alice.waitFor(/end-to-end session with bob established/);
  return { dir, port, alice, bob };
}

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
