/**
 * The interactive client on a real terminal: each `Term` is a tmux server of its own (a socket in a temp
 * folder, so tests never share one) running one command in a window of a fixed size. `screen()` is what
 * a person sees (capture-pane), `keys()` types (send-keys), `resize()` changes the window, `pid()` is
 * the process running in the pane (for signals). Waits poll the screen and end when the text appears or
 * the pane's process exits; they have no wall-clock limit of their own (tap's per-file timeout is the
 * backstop), but `waitFor` gives up after `polls` looks so a missing line fails with the screen shown.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

interface Teardown {
  teardown(fn: () => unknown): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Term {
  private readonly socket: string;

  constructor(
    t: Teardown,
    dir: string,
    command: string[],
    opts: { cols?: number; rows?: number; env?: Record<string, string> } = {},
  ) {
    this.socket = join(dir, 'tmux.sock');
    const env = Object.entries({ NO_COLOR: '1', E2EE_CHAT_PASSPHRASE: '', E2EE_CHAT_ROOM_SECRET: '', TERM: 'xterm-256color', ...opts.env }).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    // remain-on-exit keeps the pane (and its last screen) after the command ends, so its exit status
    // can be read and a failure shows what was on screen.
    this.tmux('-f', '/dev/null', 'new-session', '-d', '-x', String(opts.cols ?? 100), '-y', String(opts.rows ?? 30), ...env, '--', ...command);
    this.tmux('set-option', '-g', 'remain-on-exit', 'on');
    t.teardown(() => {
      spawnSync('tmux', ['-S', this.socket, 'kill-server'], { stdio: 'ignore' });
    });
  }

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-S', this.socket, ...args], { encoding: 'utf8' });
  }

  /** The visible screen, one string per row, trailing blanks trimmed (with `history`, the scrollback too). */
  screen(history = false): string[] {
    const args = ['capture-pane', '-p', '-J'];
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

  resize(cols: number, rows: number): void {
    this.tmux('resize-window', '-x', String(cols), '-y', String(rows));
  }

  /** The pid of the command in the pane. */
  pid(): number {
    return Number(this.tmux('display-message', '-p', '#{pane_pid}').trim());
  }

  /** The command's exit status once it ended (remain-on-exit), else null. */
  exitStatus(): number | null {
    const [dead, status] = this.tmux('display-message', '-p', '#{pane_dead} #{pane_dead_status}').trim().split(' ');
    // tmux can report the pane dead a moment before it knows the status: keep polling until it does.
    return dead === '1' && status !== undefined && /^\d+$/.test(status) ? Number(status) : null;
  }

  /** Resolves with the screen once `re` matches a row of it (scrollback included); throws after `polls`. */
  async waitFor(re: RegExp, polls = 600): Promise<string[]> {
    for (let i = 0; i < polls; i++) {
      const s = this.screen(true);
      if (s.some((l) => re.test(l))) return s;
      await sleep(50);
    }
    throw new Error(`screen never showed ${re}:\n${this.screen(true).join('\n')}`);
  }

  /** Resolves with the exit status once the command ended; throws after `polls`. */
  async waitExit(polls = 600): Promise<number> {
    for (let i = 0; i < polls; i++) {
      const s = this.exitStatus();
      if (s !== null) return s;
      await sleep(50);
    }
    throw new Error(`the command did not exit; screen:\n${this.screen(true).join('\n')}`);
  }
}
