// The interactive client's redraw on resize (src/cli/resize.ts), in process: readline on a fake terminal
// whose width changes, the bytes it writes read back. The real terminal case (tmux reflow, scrollback) is
// test/client/interactive-resize.test.ts.
import t from 'tap';
import { PassThrough, Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { redrawOnResize } from '../../src/cli/resize.js';

/** A terminal's output side: records what is written; `size` is what the ioctl would report. */
function fakeTerminal(columns: number, rows = 20) {
  const written: string[] = [];
  const out = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      written.push(chunk.toString());
      cb();
    },
  }) as Writable & { isTTY: boolean; columns: number; rows: number; getWindowSize?: () => [number, number] };
  out.isTTY = true;
  out.columns = columns;
  out.rows = rows;
  const size: [number, number] = [columns, rows];
  out.getWindowSize = () => [size[0], size[1]];
  return { out, written, size, take: () => written.splice(0).join('') };
}

function setup(t: { teardown(fn: () => unknown): void }, columns: number) {
  const term = fakeTerminal(columns);
  const input = new PassThrough() as PassThrough & { isTTY?: boolean };
  const before = term.out.listeners('resize');
  const rl = createInterface({ input, output: term.out as unknown as NodeJS.WriteStream, prompt: '> ', terminal: true });
  t.teardown(() => rl.close());
  const redraw = redrawOnResize(rl, term.out as unknown as NodeJS.WriteStream, before);
  return { ...term, input, rl, redraw };
}

const up = (n: number) => `\x1b[${n}A`;

t.test("readline's own resize listener is replaced by one", async (t) => {
  const { out, redraw } = setup(t, 60);
  t.equal(out.listenerCount('resize'), 1, 'one listener: ours');
  redraw.stop();
  t.equal(out.listenerCount('resize'), 0, 'stop removes it');
});

t.test('a resize moves up the rows the typed line takes at the new width, then redraws it', async (t) => {
  const { out, input, rl, take } = setup(t, 60);
  rl.prompt();
  input.write('x'.repeat(150)); // 2 + 150 columns: three rows at 60, the cursor on the third
  await new Promise((r) => setImmediate(r));
  t.equal(rl.line.length, 150);
  take();
  out.columns = 100; // re-wrapped by the terminal: two rows, the cursor on the second
  out.emit('resize');
  const wider = take();
  t.ok(wider.startsWith(up(1)), `moves up 1 row, not readline's stale count (${JSON.stringify(wider.slice(0, 8))})`);
  t.ok(wider.includes('\x1b[0J'), 'clears below');
  t.ok(wider.includes('> ' + 'x'.repeat(150)), 'draws the prompt and the line again');
  out.columns = 40; // five rows, the cursor on the fifth
  out.emit('resize');
  t.ok(take().startsWith(up(3)), 'narrower: moves up the 3 rows above the cursor at 40 columns (152 = 3 x 40 + 32)');
});

t.test('sync takes a resize the program has not heard of yet into account before drawing', async (t) => {
  const { out, input, rl, redraw, size, take } = setup(t, 100);
  rl.prompt();
  input.write('y'.repeat(150));
  await new Promise((r) => setImmediate(r));
  take();
  redraw.sync();
  t.equal(take(), '', 'same size: nothing drawn');
  size[0] = 50; // the terminal is narrower; its SIGWINCH has not been handled
  redraw.sync();
  t.equal(out.columns, 50, 'the width is read from the terminal');
  t.ok(take().startsWith(up(3)), 'redrawn for 50 columns (152 = 3 x 50 + 2)');
  redraw.sync();
  t.equal(take(), '', 'once only');
  redraw.stop();
  out.columns = 80;
  out.emit('resize');
  t.equal(take(), '', 'after stop, a resize draws nothing');
});

t.test('on an output that is not a terminal, sync does nothing', async (t) => {
  const { out, redraw, take } = setup(t, 80);
  delete out.getWindowSize;
  take();
  redraw.sync();
  t.equal(out.columns, 80);
  t.equal(take(), '');
});
