/**
 * One kit-side TCP connection to the target relay (spec/PROTOCOL.md §3).
 *
 * Everything the target sends is read through the strict codec (a relay's own output must be canonical,
 * §4 "Encoders MUST produce exactly this canonical form"), and turned into a queue of events: a decoded
 * frame, an invalid frame, or the end of the connection. Tests pull events with a bounded wait, so no
 * case can hang on a target that never answers.
 */
import { connect, type Socket } from 'node:net';
import { FrameReader, decodeFrame, encodeWire, type RelayFrame, type FrameName } from '../codec/index.js';
import { ERROR_CODES, errorName, isProtocolError, type ErrorName } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { wire } from '../wirekit/msgpack.js';

export type Arrival =
  | { readonly kind: 'frame'; readonly frame: RelayFrame }
  | { readonly kind: 'invalid'; readonly detail: string }
  | { readonly kind: 'closed' }
  | { readonly kind: 'silence'; readonly ms: number };

/** A case's failure: what the spec requires and what the target did instead. */
export class CaseFailure extends Error {
  constructor(
    readonly expected: string,
    readonly arrived: string,
  ) {
    super(`expected ${expected}, arrived ${arrived}`);
    this.name = 'CaseFailure';
  }
}

/** A case that cannot run against this target (for example a room too large for the connection budget). */
export class CaseSkip extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'CaseSkip';
  }
}

function hexShort(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return b.length <= 8 ? `0x${h}` : `${b.length} bytes`;
}

/** A short human description of a frame, for reports. */
export function describeFrame(f: RelayFrame): string {
  if (f.type === 'ERROR') return `ERROR ${errorName(f.code) ?? `code ${f.code}`}`;
  const parts = Object.entries(f)
    .filter(([k]) => k !== 'type')
    .map(([k, v]) => {
      if (v instanceof Uint8Array) return `${k}: ${hexShort(v)}`;
      if (Array.isArray(v)) return `${k}: [${v.map((m: { nick: string }) => m.nick).join(', ')}]`;
      return `${k}: ${JSON.stringify(v)}`;
    });
  return parts.length === 0 ? f.type : `${f.type} {${parts.join(', ')}}`;
}

/** A short human description of an arrival, for reports. */
export function describe(a: Arrival): string {
  switch (a.kind) {
    case 'frame':
      return describeFrame(a.frame);
    case 'invalid':
      return `an invalid frame from the target (${a.detail})`;
    case 'closed':
      return 'connection closed';
    case 'silence':
      return `nothing within ${a.ms} ms`;
  }
}

export class Conn {
  private readonly queue: Arrival[] = [];
  private waiter: ((a: Arrival) => void) | undefined;
  private readonly reader = new FrameReader(LIMITS.MAX_FRAME_BYTES);
  private ended = false;
  /** The largest frame body received so far, in bytes (§3: a peer must respect the announced max_frame). */
  maxBody = 0;
  /** Frames received so far, in order (for diagnostics). */
  readonly log: string[] = [];

  private constructor(
    readonly socket: Socket,
    /** Default wait for an expected answer, in milliseconds. */
    readonly waitMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.finish());
    socket.on('close', () => this.finish());
    socket.on('end', () => this.finish());
  }

  /** Wraps an accepted socket (the kit's scripted relay reads the client under test with it). */
  static wrap(socket: Socket, waitMs: number): Conn {
    socket.setNoDelay(true);
    return new Conn(socket, waitMs);
  }

  /** Opens a TCP connection to host:port; rejects with a CaseFailure when it cannot connect within waitMs. */
  static open(host: string, port: number, waitMs: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port });
      s.setNoDelay(true);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new CaseFailure('a TCP connection', `no connection within ${waitMs} ms`));
      }, waitMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(new Conn(s, waitMs));
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(new CaseFailure('a TCP connection', `connect failed: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      });
    });
  }

  private push(a: Arrival): void {
    if (a.kind === 'frame' || a.kind === 'invalid') this.log.push(describe(a));
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w(a);
    } else {
      this.queue.push(a);
    }
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    let bodies: Buffer[];
    try {
      bodies = this.reader.push(chunk);
    } catch (e) {
      this.push({ kind: 'invalid', detail: isProtocolError(e) ? e.errorName : String(e) });
      this.finish();
      return;
    }
    for (const body of bodies) {
      if (body.length > this.maxBody) this.maxBody = body.length;
      try {
        this.push({ kind: 'frame', frame: decodeFrame(body, 'relay') });
      } catch (e) {
        this.push({ kind: 'invalid', detail: isProtocolError(e) ? `${e.errorName}: ${e.message}` : String(e) });
      }
    }
    // §3: a framing error after complete frames of this chunk comes after them.
    const failure = this.reader.failure;
    if (failure !== undefined) {
      this.push({ kind: 'invalid', detail: failure.errorName });
      this.finish();
    }
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.destroy();
    this.push({ kind: 'closed' });
  }

  /** True once the target closed the connection (or it failed). */
  get closed(): boolean {
    return this.ended;
  }

  /** Sends raw bytes as they are (no length prefix added). Ignored after the connection ended. */
  raw(bytes: Uint8Array): void {
    if (!this.ended) this.socket.write(bytes);
  }

  /** Sends one body with its length prefix. */
  body(b: Uint8Array): void {
    this.raw(wire(b));
  }

  /** Sends one canonical frame. */
  send(f: RelayFrame): void {
    this.raw(encodeWire(f));
  }

  /** The next arrival, or `silence` after `ms` milliseconds. After `closed` every call returns `closed`. */
  next(ms: number = this.waitMs): Promise<Arrival> {
    const q = this.queue.shift();
    if (q) {
      if (q.kind === 'closed') this.queue.unshift(q);
      return Promise.resolve(q);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve({ kind: 'silence', ms });
      }, ms);
      this.waiter = (a) => {
        clearTimeout(timer);
        if (a.kind === 'closed') this.queue.unshift(a);
        resolve(a);
      };
    });
  }

  /** The next frame, which must be of type `name`; anything else is a CaseFailure. */
  async expect<N extends FrameName>(name: N, what: string = name, ms?: number): Promise<Extract<RelayFrame, { type: N }>> {
    const a = await this.next(ms);
    if (a.kind === 'frame' && a.frame.type === name) return a.frame as Extract<RelayFrame, { type: N }>;
    throw new CaseFailure(what, describe(a));
  }

  /** The next arrival must be ERROR `code`; when the code closes (§9) the connection must then end. */
  async expectError(code: ErrorName, ms?: number): Promise<void> {
    const a = await this.next(ms);
    if (!(a.kind === 'frame' && a.frame.type === 'ERROR' && a.frame.code === ERROR_CODES[code].code)) {
      throw new CaseFailure(`ERROR ${code}`, describe(a));
    }
    if (ERROR_CODES[code].close) await this.expectClosed(`connection closed after ERROR ${code} (§3, §9 closes = yes)`);
  }

  /** The connection must end with no further frame. */
  async expectClosed(what = 'connection closed', ms?: number): Promise<void> {
    const a = await this.next(ms);
    if (a.kind !== 'closed') throw new CaseFailure(what, describe(a));
  }

  /**
   * Proves that nothing is queued for this connection: sends PING n and requires the very next frame to be
   * PONG n (§7.1 READY/IN_ROOM PING). A frame that arrives first was sent when it should not have been.
   */
  async barrier(n: number, what = 'nothing before the PONG'): Promise<void> {
    this.send({ type: 'PING', n });
    const a = await this.next();
    if (a.kind === 'frame' && a.frame.type === 'PONG' && a.frame.n === n) return;
    throw new CaseFailure(`${what}, then PONG {n: ${n}}`, describe(a));
  }

  /** Closes the connection from the kit's side. */
  destroy(): void {
    this.ended = true;
    this.socket.destroy();
  }
}
