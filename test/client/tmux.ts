/**
 * The interactive client on a real terminal: each `Term` is a tmux server of its own (a socket in a temp
 * folder, so tests never share one) running one command in a window of a fixed size. `screen()` is what
 * a person sees (capture-pane), `keys()` types (send-keys), `resize()` changes the window (and waits for the pane's terminal to follow), `pid()` is
 * the process running in the pane. Waits poll the screen and end when the text appears or
 * the pane's process exits; they have no wall-clock limit of their own (tap's per-file timeout is the
 * backstop), but `waitFor` gives up after `polls` looks so a missing line fails with the screen shown.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Teardown {
  teardown(fn: () => unknown): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Term {
  private readonly socket: string;
  private readonly statusFile: string;

  constructor(
    t: Teardown,
    dir: string,
    command: string[],
    opts: { cols?: number; rows?: number; env?: Record<string, string> } = {},
  ) {
    this.socket = join(dir, 'tmux.sock');
    const env = Object.entries({ NO_COLOR: '1', E2EE_CHAT_PASSPHRASE: '', E2EE_CHAT_ROOM_SECRET: '', TERM: 'xterm-256color', ...opts.env }).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    // The command runs under a small sh that records its exit status in a file. tmux's own record of it
    // (pane_dead_status) depends on the tmux server reaping its child, and under load with coverage on,
    // the ended client was seen to stay a zombie for the whole wait (ps: `Zs [node] <defunct>`, parent
    // the tmux server), so a status read from tmux could arrive too late.
    this.statusFile = join(dir, 'tmux.status');
    const wrapped = ['sh', '-c', '"$@"; echo $? > "$0.tmp" && mv "$0.tmp" "$0"', this.statusFile, ...command];
    this.tmux('-f', '/dev/null', 'new-session', '-d', '-x', String(opts.cols ?? 100), '-y', String(opts.rows ?? 30), ...env, '--', ...wrapped);
    // remain-on-exit keeps the pane (and its last screen) after the command ends, so a failure shows it.
    this.tmux('set-option', '-g', 'remain-on-exit', 'on');
    t.teardown(() => {
      spawnSync('tmux', ['-S', this.socket, 'kill-server'], { stdio: 'ignore' });
    });
  }

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-S', this.socket, ...args], { encoding: 'utf8' });
  }

  /**
   * The visible screen, one string per row, trailing blanks trimmed (with `history`, the scrollback too).
   * Rows the terminal wrapped are joined unless `joined` is false: then each row is as a person sees it.
   */
  screen(history = false, joined = true): string[] {
    const args = ['capture-pane', '-p'];
    if (joined) args.push('-J');
    if (history) args.push('-S', '-');
    return this.tmux(...args).replace(/\n+$/, '').split('\n').map((l) => l.trimEnd());
  }

  /** Types: each argument is a tmux key name (`Enter`, `C-c`, `Tab`) or, with `literal`, text. */
  keys(...keys: string[]): void {
    this.tmux('send-keys', ...keys);
  }

  type(text: string): void {
    this.tmux('send-keys', '-l', text);
  }

  /** Puts `text` in tmux's buffer and pastes it as a terminal paste (bracketed when the app asks for it). */
  paste(text: string): void {
    this.tmux('set-buffer', '--', text);
    this.tmux('paste-buffer', '-p');
  }

  /**
   * Resizes the window and resolves once the pane's terminal has the new size (so the program has been
   * sent its SIGWINCH). tmux re-wraps its screen at once but may tell the program a few hundred ms later
   * (it spaces out the size changes of quick successive resizes), and whatever the program draws in
   * between is drawn for the old width; a person resizing a window never races their own messages so.
   */
  async resize(cols: number, rows: number, polls = 200): Promise<void> {
    this.tmux('resize-window', '-x', String(cols), '-y', String(rows));
    const tty = this.tmux('display-message', '-p', '#{pane_tty}').trim();
    for (let i = 0; i < polls; i++) {
      if (execFileSync('stty', ['-F', tty, 'size'], { encoding: 'utf8' }).trim() === `${rows} ${cols}`) return;
      await sleep(20);
    }
    throw new Error(`the pane's terminal never got the size ${cols}x${rows}`);
  }

  /** The pid of the pane's process: the sh that runs the command and records its status (the command is its child). */
  pid(): number {
    return Number(this.tmux('display-message', '-p', '#{pane_pid}').trim());
  }

  /** What the pane's process (and its children) are doing: state, kernel wait channel, CPU time; for failures. */
  processState(): string {
    try {
      const pid = this.pid();
      const out = spawnSync('ps', ['-o', 'pid,ppid,stat,wchan:24,time,args', '--ppid', String(pid), '-p', String(pid)], { encoding: 'utf8' });
      let status = '';
      try {
        status = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter((l) => /^(State|SigPnd|ShdPnd|SigBlk)/.test(l)).join(' ');
      } catch {
        status = '(no /proc entry)';
      }
      return `${out.stdout.trim()}\n${status}`;
    } catch (e) {
      return `(process state unavailable: ${String(e)})`;
    }
  }

  /** The command's exit status once it ended, else null. */
  exitStatus(): number | null {
    let status: string;
    try {
      status = readFileSync(this.statusFile, 'utf8');
    } catch {
      return null; // not ended yet (the file appears, complete, by rename)
    }
    if (!/^\d+\n$/.test(status)) throw new Error(`unexpected exit status record ${JSON.stringify(status)}`);
    return Number(status);
  }

  /** Resolves with the screen once `re` matches a row of it (scrollback included); throws after `polls`. */
  async waitFor(re: RegExp, polls = 600): Promise<string[]> {
    for (let i = 0; i < polls; i++) {
      const s = this.screen(true);
      if (s.some((l) => re.test(l))) return s;
      await sleep(50);
    }
    throw new Error(`screen never showed ${re}:\n${this.screen(true).join('\n')}\nprocess:\n${this.processState()}`);
  }

  /** Resolves with the exit status once the command ended; throws after `polls`. */
  async waitExit(polls = 600): Promise<number> {
    for (let i = 0; i < polls; i++) {
      const s = this.exitStatus();
      if (s !== null) return s;
      await sleep(50);
    }
    throw new Error(`the command did not exit; screen:\n${this.screen(true).join('\n')}\nprocess:\n${this.processState()}`);
  }
}
