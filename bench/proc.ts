/**
 * Processes for the benchmarks: the relay under test (our server through its CLI, as a user starts it,
 * or the bare pipe relay), the load-generator workers (forked, driven over IPC), and what /proc says about
 * a process (resident memory, CPU time, open files). Linux only, like the figures in bench/README.md.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/bench
export const REPO_DIST = join(HERE, '..'); // dist
export const CLI = join(REPO_DIST, 'src', 'cli', 'main.js');
export const PIPE_RELAY = join(HERE, 'pipe-relay.js');
export const LOADGEN = join(HERE, 'loadgen.js');

export interface Relay {
  readonly kind: 'server' | 'pipe';
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Sends SIGTERM and waits for exit (a graceful shutdown writes the --cpu-prof file). */
  stop(): Promise<void>;
  /** Everything the relay wrote on stderr so far (bounded), for error reports. */
  stderr(): string;
}

/**
 * Starts a relay and resolves once it prints `listening on HOST:PORT` (the server CLI's contract; the
 * pipe relay prints the same line). `nodeFlags` go before the script (for example --cpu-prof).
 */
export function startRelay(kind: 'server' | 'pipe', args: readonly string[], nodeFlags: readonly string[] = []): Promise<Relay> {
  const script = kind === 'server' ? [CLI, 'server'] : [PIPE_RELAY];
  const child = spawn(process.execPath, [...nodeFlags, ...script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    err = (err + s).slice(-8192);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise<Relay>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`${kind} relay exited (${code}) before listening: ${err.trim()}`));
    child.once('exit', onExit);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => {
      if (out.length > 65536) return; // a relay that logs to stdout must not grow this without bound
      out += s;
      const m = /listening on (\S+):(\d+)/.exec(out);
      if (m === null) return;
      out = 'listening on -'; // matched once; keep draining stdout so the relay never blocks on it
      child.off('exit', onExit);
      resolve({
        kind,
        host: m[1]!,
        port: Number(m[2]),
        pid: child.pid!,
        child,
        stderr: () => err,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
        },
      });
    });
  });
}

/** Resident set size of a process in bytes (VmRSS of /proc/PID/status). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** User + system CPU time a process has used, in milliseconds (/proc/PID/stat fields 14 and 15). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so utime (field 14) is rest[11] and stime (15) rest[12]; units are ticks.
  const ticks = Number(rest[11]) + Number(rest[12]);
  return (ticks * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on

/** Open file descriptors of a process (entries of /proc/PID/fd). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The soft open-file limit of a process (/proc/PID/limits), or null when unlimited or unreadable. */
export function nofileLimit(pid: number = process.pid): number | null {
  try {
    const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m === null || m[1] === 'unlimited' ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** A request to a worker and its answer (see bench/loadgen.ts for the operations). */
export interface WorkerRequest {
  readonly id: number;
  readonly op: string;
  readonly args: unknown;
}
export type WorkerReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** A forked load-generator process with a promise-per-request RPC over the IPC channel. */
export class Worker {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly exited: Promise<void>;
  readonly child: ChildProcess;

  /** `nodeFlags` go to the worker's node (for example --cpu-prof, to profile the client side). */
  constructor(
    readonly index: number,
    nodeFlags: readonly string[] = [],
  ) {
    this.child = fork(LOADGEN, [String(index)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv, ...nodeFlags] });
    this.child.on('message', (m: WorkerReply) => {
      const w = this.waiting.get(m.id);
      if (w === undefined) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(`worker ${index}: ${m.error}`));
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        for (const w of this.waiting.values()) w.reject(new Error(`worker ${index} exited (${code})`));
        this.waiting.clear();
        resolve();
      }),
    );
  }

  call<T>(op: string, args: unknown): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      // A worker that already exited (it failed to load, say) answers nothing: fail now, not never.
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        reject(new Error(`worker ${this.index} has exited (${this.child.exitCode ?? this.child.signalCode})`));
        return;
      }
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, op, args } satisfies WorkerRequest, (e) => {
        if (e === null || !this.waiting.delete(id)) return;
        reject(new Error(`worker ${this.index}: ${op} not sent: ${e.message}`));
      });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
