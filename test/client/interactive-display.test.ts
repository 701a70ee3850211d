// Issue 14 point 4 on a real terminal (tmux, NO_COLOR): a member's text made to look like a line from a
// verified member (`ok` + 69 spaces + `bob [verified]: ...`, the walkthrough's attack with today's mark)
// never gives a row that starts like bob's own lines; the received text wraps with its further rows
// indented, and the real bob's line carries the mark the client adds.
import t from 'tap';
import { join } from 'node:path';
import { CLI, startClient, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';

t.test("a text posing as a verified member's line wraps indented: no row starts as that member's", async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db'), args: ['--max-room-size', '3'] });
  const alice = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', join(dir, 'alice'), '--no-passphrase'], { cols: 40 });
  await alice.waitFor(/alice@lobby>$/);
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  await alice.waitFor(/end-to-end session with bob established/);
  alice.type('/verify bob');
  alice.keys('Enter');
  await alice.waitFor(/bob marked as verified/);
  const mallory = startClient(t, { port, nick: 'mallory', home: join(dir, 'mallory') });
  await alice.waitFor(/end-to-end session with mallory established/);
  await mallory.waitFor(/^\* secure session with alice/);
  bob.write('the real bob');
  const real = await alice.waitFor(/the real bob$/);
  const bobRow = real.find((l) => l.endsWith('the real bob'))!;
  t.match(bobRow, /bob \[verified\]: the real bob$/, "bob's own line carries the mark the client adds");
  const fake = 'ok' + ' '.repeat(69) + 'bob [verified]: the meeting moved to room 4';
  mallory.write(fake);
  const screen = await alice.waitFor(/room 4$/);
  // A row that starts as bob's lines do: his name first, after at most the time of day.
  const posing = screen.filter((l) => /^(\[[\d:]+\] )?bob \[verified\]/.test(l) && !l.endsWith('the real bob'));
  t.same(posing, [], "no row starts the way bob's lines do");
  const malloryRow = screen.findIndex((l) => /mallory: ok/.test(l));
  t.ok(malloryRow >= 0, "mallory's line is shown as mallory's");
  const end = screen.findIndex((l, i) => i >= malloryRow && l.endsWith('room 4'));
  const rest = screen.slice(malloryRow + 1, end + 1);
  t.ok(rest.length > 0, 'at 40 columns the text goes on in further rows');
  for (const l of rest) t.match(l, /^ +\S/, `a further row is indented: ${JSON.stringify(l)}`);
  t.notOk(screen[malloryRow]!.includes(' '.repeat(5)), 'the run of 69 spaces is collapsed');

  // /history shows stored texts under the same rule. This one is made for a history row: at 40 columns
  // the 58 spaces would put a fake "[time] bob: ..." at the start of the third row the terminal wraps.
  const time = /^\[([\d:]+)\]/.exec(bobRow)![1]!;
  mallory.write('ok' + ' '.repeat(58) + `[${time}] bob: the meeting moved to room 5`);
  await alice.waitFor(/room 5$/);
  alice.type('/history');
  alice.keys('Enter');
  await alice.waitFor(/^── last \d+ messages in lobby ──$/);
  await alice.waitFor(/^──$/);
  const rows = alice.screen(true, false); // as the terminal shows them, wrapped rows not joined
  const last = (f: (l: string) => boolean) => rows.length - 1 - [...rows].reverse().findIndex(f);
  const shown = rows.slice(last((l) => l.startsWith('── last')) + 1, last((l) => l === '──'));
  t.ok(shown.some((l) => l.endsWith('room 5')), `the stored text is in the history: ${JSON.stringify(shown)}`);
  const starts = shown.filter((l) => !l.startsWith(' ')).map((l) => /^\[[\d:]+\] (\w+):/.exec(l)?.[1] ?? l);
  t.same(starts.filter((n) => n === 'bob'), ['bob'], `one history row starts as bob's, his own: ${JSON.stringify(shown)}`);
  t.same(new Set(starts), new Set(['bob', 'mallory']), 'every other history row is indented under its text');
  alice.type('/quit');
  alice.keys('Enter');
  t.equal(await alice.waitExit(), 0);
  bob.end();
  mallory.end();
  await Promise.all([bob.exited, mallory.exited]);
});
