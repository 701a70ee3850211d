/**
 * The relay under test as a child process (`node dist/src/cli/main.js server --port 0`), so the harness
 * can watch what an in-process test cannot: that it stays alive, how much memory it holds (VmRSS from
 * /proc), and every line it logs on stderr (JSON lines; anything else, or an `internal_error` or
 * `server_error` event, is an unhandled failure).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this file that holds package.json. */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(d, 'package.json'))) return d;
    d = dirname(d);
  }
  throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
}

/** Log events that mean the relay hit a bug rather than a misbehaving peer. */
const BAD_EVENTS = new Set(['internal_error', 'server_error']);

export class ServerProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly host: string,
    readonly port: number,
    private readonly dir: string,
    private readonly lines: string[],
    readonly problems: string[],
    /** The web listener's port (the WebSocket endpoint, §3.1) when started with --web-port. */
    readonly wsPort?: number,
  ) {}

  /** Starts the relay with a fresh registry in a temp dir; `args` are extra `e2ee-chat server` flags. */
  static async start(args: string[] = []): Promise<ServerProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'e2ee-fuzz-'));
    const main = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
    const child = spawn(process.execPath, [main, 'server', '--port', '0', '--registry', join(dir, 'registry.db'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    const problems: string[] = [];
    let partial = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      partial += s;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        if (line.length === 0) continue;
        let ev: { event?: unknown } | undefined;
        try {
          ev = JSON.parse(line) as { event?: unknown };
        } catch {
          problems.push(`non-JSON stderr line (an unhandled exception?): ${line.slice(0, 300)}`);
          continue;
        }
        if (typeof ev?.event === 'string' && BAD_EVENTS.has(ev.event)) problems.push(`relay logged ${line.slice(0, 300)}`);
        if (lines.length < 2000) lines.push(line);
      }
    });
    // With --web-port the relay prints the web listener's line after the TCP one (src/cli/server.ts).
    const web = args.includes('--web-port');
    const addr = await new Promise<{ host: string; port: number; wsPort?: number }>((resolve, reject) => {
      let out = '';
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (s: string) => {
        out += s;
        const m = /listening on (\S+):(\d+)/.exec(out);
        const w = /web on https?:\/\/\S+:(\d+)\//.exec(out);
        if (m && (!web || w)) resolve({ host: m[1]!, port: Number(m[2]), ...(w ? { wsPort: Number(w[1]) } : {}) });
      });
      child.once('exit', (code) => reject(new Error(`relay exited with ${String(code)} before listening: ${problems.join('; ')}`)));
    });
    const sp = new ServerProcess(child, addr.host, addr.port, dir, lines, problems, addr.wsPort);
    child.on('exit', (code, signal) => {
      if (!sp.stopping) problems.push(`relay process exited (code ${String(code)}, signal ${String(signal)})`);
    });
    return sp;
  }

  /** Set once `stop` is called: the exit that follows is not a failure. */
  stopping = false;

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resident memory of the relay process in bytes (Linux /proc), or undefined where unavailable. */
  rssBytes(): number | undefined {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${this.child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : undefined;
    } catch {
      return undefined;
    }
  }

  /** The relay's log lines so far (at most the first 2000). */
  get log(): readonly string[] {
    return this.lines;
  }

  /** SIGTERM, wait for exit (SIGKILL after `graceMs`), remove the temp dir. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    if (this.alive) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
