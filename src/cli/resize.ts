/**
 * Redrawing the interactive client's input line when the terminal is resized (issue 15 point 5).
 *
 * node:readline redraws on 'resize' by moving up the number of rows its last drawing took at the old
 * width, but that count is stale twice over: it is not updated while plain typing appends to the line
 * (so after typing a wrapped line it is 0, and a resize leaves copies of the upper rows of the input on
 * screen), and the terminal itself re-wraps (reflows) the rows of the input to the new width before the
 * program hears of it (tmux, VTE, kitty, iTerm2, Windows Terminal and most others do), so a line that took
 * three rows may now take two: moving up three then erases a received message from the screen and, once
 * the screen scrolls, from the scrollback.
 *
 * After a reflow, the cursor sits as many rows below the first row of the prompt as the prompt and the
 * text before the cursor fill at the NEW width, which is what readline's getCursorPos() computes once
 * `columns` has changed. So the redraw moves up exactly that far, clears below, and draws the prompt and
 * the line again. (A terminal that does not reflow, such as xterm, keeps the old rows as they were; there a
 * narrower window can still leave a copy of the input, never a lost message when the window grows.)
 */
import type { Interface } from 'node:readline';

/** The part of readline's Interface the redraw needs: its cursor position and its record of the rows drawn. */
interface Redrawable {
  getCursorPos(): { rows: number; cols: number };
  prompt(preserveCursor?: boolean): void;
}

/** The terminal's redraw on resize (`stop` removes it) and `sync`, to call before drawing anything. */
export interface ResizeRedraw {
  /**
   * Takes a resize that has happened but not been heard of yet into account now: the SIGWINCH and a
   * network read can come in the same turn of the event loop, and a message drawn first would be drawn at
   * the old width (moving up too few rows and leaving a copy of the input). Reads the size from the
   * terminal (ioctl) and, when it changed, updates `columns`/`rows` and emits 'resize' (so the redraw runs)
   * before the caller draws; Node's own SIGWINCH handler then finds nothing new.
   */
  sync(): void;
  stop(): void;
}

/**
 * Replaces readline's own 'resize' listener on `output` (the ones added by creating `rl`, found by
 * comparing with `before`, the listeners present before it was created) with a redraw that takes the
 * terminal's reflow into account.
 */
export function redrawOnResize(rl: Interface, output: NodeJS.WriteStream, before: ReadonlyArray<unknown>): ResizeRedraw {
  for (const l of output.listeners('resize')) if (!before.includes(l)) output.off('resize', l as () => void);
  const r = rl as unknown as Redrawable & { prevRows: number };
  const onResize = () => {
    r.prevRows = r.getCursorPos().rows;
    r.prompt(true);
  };
  output.on('resize', onResize);
  return {
    sync: () => {
      if (typeof output.getWindowSize !== 'function') return; // not a terminal: no resizes
      const [cols, rows] = output.getWindowSize();
      if (cols === output.columns && rows === output.rows) return;
      output.columns = cols;
      output.rows = rows;
      output.emit('resize');
    },
    stop: () => {
      output.off('resize', onResize);
    },
  };
}
