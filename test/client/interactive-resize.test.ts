// Resizing the terminal while a wrapped line is typed (issue 15 point 5): the input is redrawn at the new
// width, and no received line is lost from the screen or the scrollback. Real tmux (resize-window, then
// capture-pane of the whole scrollback with wrapped rows joined), real relay and member on 127.0.0.1.
import t from 'tap';
import { join } from 'node:path';
import { CLI, startClient, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';

t.test('a resize redraws the typed line at the new width and loses no received line', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const alice = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', join(dir, 'alice'), '--no-passphrase'], { cols: 60, rows: 20 });
  await alice.waitFor(/alice@lobby>$/);
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  await bob.waitFor(/^\* secure session with alice/);
  await alice.waitFor(/end-to-end session with bob established/);
  for (let i = 1; i <= 4; i++) bob.write(`before ${i}`);
  await alice.waitFor(/bob: before 4$/);

  // 150 characters after a 13-column prompt: three rows at 60 columns.
  const typed = 'abcdefghij'.repeat(15);
  alice.type(typed);
  await alice.waitFor(/alice@lobby> abcdefghij.*abcdefghij$/);
  // A message arriving while the line is typed: readline's record of the rows the input takes is now 2.
  bob.write('while typing');
  await alice.waitFor(/bob: while typing$/);

  // Each resize, then a message from bob: it is printed above the input only once the redraw is done, and
  // its row must be there too. Wider (two rows), much narrower (five rows), then in between.
  const sizes: [number, number][] = [[100, 20], [40, 20], [70, 24], [60, 20]];
  for (const [i, [cols, rows]] of sizes.entries()) {
    await alice.resize(cols, rows);
    bob.write(`after resize ${i + 1}`);
    await alice.waitFor(new RegExp(`bob: after resize ${i + 1}$`));
  }

  const all = alice.screen(true);
  const expected = ['before 1', 'before 2', 'before 3', 'before 4', 'while typing', ...sizes.map((_, i) => `after resize ${i + 1}`)];
  for (const text of expected) {
    t.equal(all.filter((l) => l.endsWith(`] bob: ${text}`)).length, 1, `"${text}" is on screen or in the scrollback, once`);
  }
  const prompts = all.filter((l) => l.includes('alice@lobby>'));
  t.same(prompts, [`alice@lobby> ${typed}`], 'one prompt row (no copy left by a redraw), holding the whole typed line');
  t.equal(all.at(-1), `alice@lobby> ${typed}`, 'the prompt is the last row');

  alice.keys('Enter');
  t.equal(await bob.waitFor(/^alice: /), `alice: ${typed}`, 'the line typed before the resizes is sent whole');
  alice.type('/quit');
  alice.keys('Enter');
  t.equal(await alice.waitExit(), 0);
  bob.end();
  await bob.exited;
});
