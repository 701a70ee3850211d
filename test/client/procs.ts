/**
 * Real processes for the client tests: `e2ee-chat server` and `e2ee-chat client` run from dist/ (build
 * first: `npx tsc`), on 127.0.0.1 with port 0, in temp folders that are removed at teardown. Waits have no
 * wall-clock limit: `waitFor` resolves when a line matches or rejects when the process exits without one;
 * tap's per-file timeout is the only backstop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A temp folder removed at teardown. */
export function tempDir(t: Teardown, prefix = 'e2ee-client-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process whose stdout and stderr are collected as lines. */
export class Proc {
  readonly child: ChildProcess;
  readonly out: string[] = [];
  readonly err: string[] = [];
  readonly exited: Promise<Exit>;
  private outRest = '';
  private errRest = '';
  private waiters: { re: RegExp; stream: 'out' | 'err'; from: number; resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  private done: Exit | null = null;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, NO_COLOR: '1', E2EE_CHAT_PASSPHRASE: '', E2EE_CHAT_ROOM_SECRET: '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdin!.on('error', () => {});
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.outRest = this.take(this.outRest + d, this.out);
      this.check();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.errRest = this.take(this.errRest + d, this.err);
      this.check();
    });
    this.exited = new Promise<Exit>((res) => {
      this.child.on('close', (code, signal) => {
        if (this.outRest) this.out.push(this.outRest);
        if (this.errRest) this.err.push(this.errRest);
        this.outRest = this.errRest = '';
        this.done = { code, signal };
        this.check();
        res(this.done);
      });
    });
  }

  private take(buf: string, into: string[]): string {
    const parts = buf.split('\n');
    const rest = parts.pop()!;
    into.push(...parts);
    return rest;
  }

  private check(): void {
    for (const w of [...this.waiters]) {
      const lines = w.stream === 'out' ? this.out : this.err;
      const hit = lines.slice(w.from).find((l) => w.re.test(l));
      if (hit !== undefined) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(hit);
      } else if (this.done) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.reject(new Error(`process exited (${JSON.stringify(this.done)}) before a line matched ${w.re}; stdout:\n${this.out.join('\n')}\nstderr:\n${this.err.join('\n')}`));
      }
    }
  }

  /** The first line (at or after line index `from`) of stdout matching `re`. */
  waitFor(re: RegExp, from = 0, stream: 'out' | 'err' = 'out'): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ re, stream, from, resolve, reject });
      this.check();
    });
  }

  write(line: string): void {
    this.child.stdin!.write(line + '\n');
  }

  end(): void {
    this.child.stdin!.end();
  }

  kill(sig: NodeJS.Signals = 'SIGTERM'): void {
    if (this.done === null) this.child.kill(sig);
  }
}

/** `e2ee-chat server --port P` with its own registry file; resolves once it prints `listening on`. */
export async function startServerProc(t: Teardown, opts: { port?: number; registry: string; args?: string[] }): Promise<{ proc: Proc; port: number }> {
  const proc = new Proc(['server', '--port', String(opts.port ?? 0), '--registry', opts.registry, ...(opts.args ?? [])]);
  t.teardown(async () => {
    proc.kill();
    await proc.exited;
  });
  const line = await proc.waitFor(/^listening on /);
  const port = Number(/:(\d+)$/.exec(line)![1]);
  return { proc, port };
}

export interface ClientArgs {
  port: number;
  nick: string;
  home: string;
  room?: string;
  /** --relay-name: the relay's name (§7.3) when `port` is a proxy in front of it, e.g. `localhost:RELAYPORT`. */
  relayName?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Default true: pass --no-passphrase unless a passphrase is given in env. */
  noPassphrase?: boolean;
}

/** `e2ee-chat client` in scriptable mode (stdin is a pipe); killed at teardown if still running. */
export function startClient(t: Teardown, a: ClientArgs): Proc {
  const args = ['client', '--port', String(a.port), '--nick', a.nick, '--home', a.home, '--room', a.room ?? 'lobby', ...(a.args ?? [])];
  if (a.relayName !== undefined) args.push('--relay-name', a.relayName);
  if (a.noPassphrase ?? true) args.push('--no-passphrase');
  const proc = new Proc(args, a.env ?? {});
  t.teardown(async () => {
    proc.kill('SIGKILL');
    await proc.exited;
  });
  return proc;
}

/** The safety number in a `* secure session with NICK..., safety number ...` line. */
export function safetyOf(line: string): string {
  const m = /safety number ((?:\d{5} ){11}\d{5})$/.exec(line);
  if (m === null) throw new Error(`no safety number in ${JSON.stringify(line)}`);
  return m[1]!;
}

export function fingerprintOf(line: string): string {
  const m = /fingerprint ((?:[0-9a-f]{4}:){7}[0-9a-f]{4})/.exec(line);
  if (m === null) throw new Error(`no fingerprint in ${JSON.stringify(line)}`);
  return m[1]!;
}

/** A port that was just free: listen on 0, read the port, close. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A TCP proxy on 127.0.0.1:0 that forwards to `target` and records every byte in both directions.
 * It stands where a network observer (or the relay's own host) stands.
 */
export class RecordingProxy {
  readonly upstream: Buffer[] = [];
  readonly downstream: Buffer[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: number) {
    this.server = createServer((client) => {
      const up = connect({ host: '127.0.0.1', port: this.target });
      this.sockets.add(client).add(up);
      client.on('data', (d: Buffer) => {
        this.upstream.push(Buffer.from(d));
        up.write(d);
      });
      up.on('data', (d: Buffer) => {
        this.downstream.push(Buffer.from(d));
        client.write(d);
      });
      const close = () => {
        client.destroy();
        up.destroy();
      };
      client.on('close', close).on('error', close);
      up.on('close', close).on('error', close);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  /** Everything that crossed the proxy, both directions. */
  bytes(): Buffer {
    return Buffer.concat([...this.upstream, ...this.downstream]);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
