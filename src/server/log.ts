/**
 * The relay's log as an operator sees it (issue 12): JSON lines for a blind relay.
 *
 * - **No metadata by default.** A relay that cannot read messages should not keep a record of who talked
 *   to whom either: nicknames, room names and remote ports are left out, and an address is replaced by a
 *   keyed hash (HMAC-SHA-256 under a key drawn at start, 12 base64url characters), so the lines of one
 *   address can be told apart within one run but not linked to the address or across restarts.
 *   `metadata: true` (`--log-metadata`) writes them as they are.
 * - **Levels.** Each event has a level (EVENT_LEVELS); lines below the configured level are not written.
 *   Per-connection events (connect, auth, join, leave, disconnect) are `debug`.
 * - **Refusals aggregated.** A refusal is counted per address and code and written once per interval as
 *   one `refusals` line per address (at most MAX_AGGREGATED_ADDRESSES, the rest under `other`), so a flood
 *   of bad connections costs a line per interval, not a line per attempt. At `debug` each one is written too.
 * - **Asynchronous and bounded.** Lines go to the file descriptor through the libuv thread pool
 *   (fs.write), never by a synchronous write on the event loop: a log pipe nobody reads stalls only the
 *   log. At most `maxQueuedBytes` wait; past that lines are dropped, counted, and reported by a
 *   `log_dropped` line once writing resumes.
 * - **Reopen.** With a log file, `reopen()` (SIGHUP in the CLI) opens the path again, for log rotation.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { close, open, write } from 'node:fs';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The level of each event the relay, its web listener and the cluster engine emit; others are `info`. */
export const EVENT_LEVELS = {
  internal_error: 'error',
  server_error: 'error',
  web_internal_error: 'error',
  web_server_error: 'error',
  start_failed: 'error',
  connection_cap_lowered: 'warn',
  rooms_unavailable: 'warn',
  cluster_unavailable: 'warn',
  cluster_bad_message: 'warn',
  cluster_pending_overflow: 'warn',
  cluster_send_failed: 'warn',
  shed: 'warn',
  insecure_listener: 'warn',
  log_dropped: 'warn',
  log_reopen_failed: 'error',
  listening: 'info',
  web_listening: 'info',
  metrics_listening: 'info',
  rooms_available: 'info',
  cluster_joined: 'info',
  cluster_reaped: 'info',
  refusals: 'info',
  signal: 'info',
  log_reopened: 'info',
  shutdown: 'info',
  stopped: 'info',
  connect: 'debug',
  auth: 'debug',
  recovery_set: 'debug',
  join: 'debug',
  leave: 'debug',
  disconnect: 'debug',
  peer_error: 'debug',
  refuse: 'debug',
  web_refuse: 'debug',
  tls_failed: 'debug',
} as const satisfies Record<string, LogLevel>;

/** Fields that name a person, a room or a remote port: written only with `metadata`. */
const METADATA_FIELDS = ['nick', 'room', 'to', 'from', 'remote_port'] as const;

/** Aggregation interval of refusals, ms. */
export const LOG_INTERVAL_MS = 10_000;
/** Lines waiting to be written, bytes, before new ones are dropped. */
export const LOG_QUEUE_BYTES = 1 << 20;
/** Distinct addresses counted per interval; refusals from further addresses are counted under `other`. */
export const MAX_AGGREGATED_ADDRESSES = 1000;

export interface LoggerOptions {
  /** Lowest level written (default `info`). */
  level?: LogLevel;
  /** Write nicknames, room names and full addresses (default false). */
  metadata?: boolean;
  /** Append to this file instead of writing to `fd`; `reopen()` opens it again. */
  file?: string;
  /** File descriptor written when there is no `file` (default 2, stderr). */
  fd?: number;
  /** Refusal aggregation interval, ms (default LOG_INTERVAL_MS). */
  intervalMs?: number;
  /** Queue bound, bytes (default LOG_QUEUE_BYTES). */
  maxQueuedBytes?: number;
  /** Key of the address hash (default: 32 random bytes drawn now). */
  hashKey?: Uint8Array;
}

export interface LoggerStats {
  /** Lines written to the descriptor. */
  written: number;
  /** Lines dropped: the queue was full, or the descriptor failed for good (EPIPE, EBADF). */
  dropped: number;
  /** Bytes waiting to be written now. */
  queuedBytes: number;
}

interface Aggregate {
  total: number;
  codes: Record<string, number>;
}

const RETRY_MS = 50;

/** Opens `path` for appending, mode 0640, without blocking the event loop. */
function openAppend(path: string): Promise<number> {
  return new Promise((resolve, reject) => open(path, 'a', 0o640, (e, fd) => (e === null ? resolve(fd) : reject(e))));
}

export class Logger {
  private readonly level: number;
  private readonly metadata: boolean;
  private readonly hashKey: Uint8Array;
  private readonly maxQueued: number;
  private readonly intervalMs: number;
  private fd: number;
  private ownsFd = false;
  private queue: string[] = [];
  private queued = 0;
  private writing = false;
  /** Bytes of the write in flight not yet taken by the descriptor. */
  private inflight = 0;
  private broken = false;
  private closed = false;
  private droppedSinceReport = 0;
  private readonly counts: LoggerStats = { written: 0, dropped: 0, queuedBytes: 0 };
  private refusals = new Map<string, Aggregate>();
  private readonly timer: NodeJS.Timeout;
  private retry: NodeJS.Timeout | undefined;
  private idle: (() => void)[] = [];

  private constructor(
    o: LoggerOptions,
    fd: number,
    private readonly file: string | undefined,
  ) {
    this.level = LOG_LEVELS.indexOf(o.level ?? 'info');
    this.metadata = o.metadata ?? false;
    this.hashKey = o.hashKey ?? randomBytes(32);
    this.maxQueued = o.maxQueuedBytes ?? LOG_QUEUE_BYTES;
    this.intervalMs = o.intervalMs ?? LOG_INTERVAL_MS;
    this.fd = fd;
    this.ownsFd = file !== undefined;
    this.timer = setInterval(() => this.flushRefusals(), this.intervalMs);
    this.timer.unref();
  }

  /** A logger on `file` (opened for appending) or on `fd`; rejects if the file cannot be opened. */
  static async create(o: LoggerOptions = {}): Promise<Logger> {
    if (o.level !== undefined && !LOG_LEVELS.includes(o.level)) throw new RangeError(`log level: expected one of ${LOG_LEVELS.join(', ')}`);
    const fd = o.file === undefined ? (o.fd ?? 2) : await openAppend(o.file);
    return new Logger(o, fd, o.file);
  }

  /** The level of an event by its name (EVENT_LEVELS), `info` for one not listed. */
  static levelOf(event: string): LogLevel {
    return (EVENT_LEVELS as Record<string, LogLevel>)[event] ?? 'info';
  }

  /**
   * Whether `log` would do anything with an event of this name: write it (its level is enabled), or
   * count it (`refuse`, aggregated at every level), or end the run's counts (`stopped`).
   */
  takes(name: string): boolean {
    return !this.closed && (name === 'refuse' || name === 'stopped' || LOG_LEVELS.indexOf(Logger.levelOf(name)) <= this.level);
  }

  /** Takes one event (the relay's `log` sink). Never throws, never blocks. */
  log(event: Record<string, unknown>): void {
    if (this.closed) return;
    const name = typeof event['event'] === 'string' ? event['event'] : '';
    if (name === 'refuse') this.countRefusal(event);
    // The counts of the last interval come before the last line of a run.
    if (name === 'stopped') this.flushRefusals();
    if (LOG_LEVELS.indexOf(Logger.levelOf(name)) > this.level) return;
    this.enqueue(this.redact(event));
  }

  /** The address as logged: as is with `metadata`, otherwise its keyed hash. */
  address(addr: string): string {
    if (this.metadata) return addr;
    return createHmac('sha256', this.hashKey).update(addr).digest('base64url').slice(0, 12);
  }

  private redact(event: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (event['ts'] === undefined) out['ts'] = new Date().toISOString();
    for (const [k, v] of Object.entries(event)) {
      if (this.metadata) out[k] = v;
      else if (k === 'addr') out[k] = typeof v === 'string' ? this.address(v) : undefined;
      else if (!(METADATA_FIELDS as readonly string[]).includes(k)) out[k] = v;
    }
    return out;
  }

  private countRefusal(event: Record<string, unknown>): void {
    const code = typeof event['code'] === 'string' ? event['code'] : 'unknown';
    let key = typeof event['addr'] === 'string' ? this.address(event['addr']) : '-';
    if (!this.refusals.has(key) && this.refusals.size >= MAX_AGGREGATED_ADDRESSES) key = 'other';
    let a = this.refusals.get(key);
    if (a === undefined) {
      a = { total: 0, codes: {} };
      this.refusals.set(key, a);
    }
    a.total++;
    a.codes[code] = (a.codes[code] ?? 0) + 1;
  }

  /** Writes one `refusals` line per address counted since the last call, and starts a new interval. */
  flushRefusals(): void {
    if (this.refusals.size === 0) return;
    const ts = new Date().toISOString();
    const counted = this.refusals;
    this.refusals = new Map();
    if (LOG_LEVELS.indexOf('info') > this.level) return;
    for (const [addr, a] of counted) this.enqueue({ ts, event: 'refusals', interval_ms: this.intervalMs, addr, total: a.total, codes: a.codes });
  }

  private enqueue(event: Record<string, unknown>): void {
    let line: string;
    try {
      line = JSON.stringify(event) + '\n';
    } catch {
      line = JSON.stringify({ ts: new Date().toISOString(), event: 'log_unserializable', of: String(event['event']) }) + '\n';
    }
    if (this.broken || this.queued + this.inflight + line.length > this.maxQueued) {
      this.counts.dropped++;
      this.droppedSinceReport++;
      return;
    }
    this.queue.push(line);
    this.queued += line.length;
    this.pump();
  }

  /** Writes what is queued, one fs.write at a time, in order. */
  private pump(): void {
    if (this.writing || this.retry !== undefined || this.queue.length === 0) return;
    const lines = this.queue.length;
    const buf = Buffer.from(this.queue.join(''));
    this.queue = [];
    this.queued = 0;
    this.writing = true;
    this.inflight = buf.length;
    const fd = this.fd;
    const done = (e: NodeJS.ErrnoException | null, n: number, off: number): void => {
      this.inflight = buf.length - off - (e === null ? n : 0);
      if (e !== null && e.code !== 'EAGAIN' && e.code !== 'EINTR') {
        // The reader is gone for good (EPIPE) or the descriptor is unusable: stop logging rather than spin.
        this.writing = false;
        this.inflight = 0;
        this.broken = true;
        this.counts.dropped += lines + this.queue.length;
        this.queue = [];
        this.queued = 0;
        this.settle();
        return;
      }
      const at = off + (e === null ? n : 0);
      if (at < buf.length) {
        // A partial write, or EAGAIN on a non-blocking pipe that is full: the rest waits, then goes on.
        this.retry = setTimeout(() => {
          this.retry = undefined;
          write(fd, buf, at, buf.length - at, null, (e2, n2) => done(e2, n2, at));
        }, e === null ? 0 : RETRY_MS);
        this.retry.unref();
        return;
      }
      this.writing = false;
      this.counts.written += lines;
      if (this.droppedSinceReport > 0) {
        const n = this.droppedSinceReport;
        this.droppedSinceReport = 0;
        this.enqueue({ ts: new Date().toISOString(), event: 'log_dropped', lines: n });
      }
      // The log_dropped line may have started the next write already.
      if (!this.writing && this.queue.length === 0) this.settle();
      else this.pump();
    };
    write(fd, buf, 0, buf.length, null, (e, n) => done(e, n, 0));
  }

  private settle(): void {
    for (const r of this.idle.splice(0)) r();
  }

  stats(): LoggerStats {
    return { ...this.counts, queuedBytes: this.queued + this.inflight };
  }

  /**
   * Resolves once everything queued so far is written (or dropped), or after `timeoutMs`; true when the
   * queue drained, false when it timed out (a log pipe nobody reads).
   */
  flush(timeoutMs = 2000): Promise<boolean> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.idle.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** Opens the log file again (after rotation); without a file, nothing to do. Resolves with whether it did. */
  async reopen(): Promise<boolean> {
    if (this.file === undefined || this.closed) return false;
    const fd = await openAppend(this.file);
    await this.flush();
    const old = this.fd;
    this.fd = fd;
    this.broken = false;
    close(old, () => {});
    this.log({ event: 'log_reopened' });
    return true;
  }

  /** Writes the pending refusal counts, waits (at most `timeoutMs`) for the queue, closes a log file. */
  async close(timeoutMs = 2000): Promise<boolean> {
    if (this.closed) return true;
    clearInterval(this.timer);
    this.flushRefusals();
    const drained = await this.flush(timeoutMs);
    this.closed = true;
    if (this.ownsFd && drained) close(this.fd, () => {});
    return drained;
  }
}

/**
 * The one human line that tells an operator why a listener could not start (no JSON: it is read by a
 * person at a terminal or in a supervisor's status). `what` names the listener.
 */
export function startFailure(e: unknown, what: string): string {
  const err = (e ?? {}) as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = typeof err.address === 'string' ? `${err.address.includes(':') ? `[${err.address}]` : err.address}:${String(err.port)}` : undefined;
  const msg = (err instanceof Error ? err.message : String(e)).replace(/\s+/g, ' ');
  const why =
    err.code === 'EADDRINUSE' && where !== undefined
      ? `${where} is already in use (is another relay running?)`
      : err.code === 'EACCES' && where !== undefined
        ? `permission denied to listen on ${where}`
        : err.code === 'EADDRNOTAVAIL' && where !== undefined
          ? `${where}: not an address of this machine`
          : msg;
  return `e2ee-chat server: cannot start the ${what}: ${why}`;
}
