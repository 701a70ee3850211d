/**
 * One kit-side connection to the target relay: over TCP (spec/PROTOCOL.md §3), or over the relay's
 * WebSocket endpoint (§3.1), where the same §3 byte stream travels as one binary message per frame body
 * (src/wirekit/ws.ts WsStreamAdapter) and the relay's close code is checked as §3.1 states it.
 *
 * Everything the target sends is read through the strict codec (a relay's own output must be canonical,
 * §4 "Encoders MUST produce exactly this canonical form"), and turned into a queue of events: a decoded
 * frame, an invalid frame, or the end of the connection. Tests pull events with a bounded wait, so no
 * case can hang on a target that never answers.
 */
import type { Socket } from 'node:net';
import type { RelayFrame, FrameName } from '../codec/index.js';
import { ERROR_CODES, errorName, isProtocolError, type ErrorName } from '../protocol/errors.js';
import { ConnectTimeout, errorText, RelayConn, tcpCarrier, wsCarrier, type Carrier, type Invalid } from '../wirekit/relay-conn.js';

/** What carries a kit connection: TCP (§3) or WebSocket (§3.1). */
export type Transport = 'tcp' | 'ws';
export const TRANSPORTS: readonly Transport[] = ['tcp', 'ws'];

/** §3.1 close codes: after a closing ERROR 4000 + its code; 1009 for a message over the limit (no ERROR). */
const WS_CLOSE_ERROR_BASE = 4000;
const WS_CLOSE_TOO_BIG = 1009;

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

/** An invalid arrival of the wire kit's connection, described for a report. */
function detailOf(a: Invalid): string {
  if (a.stage === 'ws') return `WebSocket: ${String(a.error)}`;
  if (a.stage === 'stream') return errorText(a.error);
  return isProtocolError(a.error) ? `${a.error.errorName}: ${a.error.message}` : String(a.error);
}

/**
 * The wire kit's relay connection (src/wirekit/relay-conn.ts) with the kit's bounded waits and
 * expectations: the first framing error or WebSocket violation ends the connection, and every
 * failure is a CaseFailure that names what the spec requires.
 */
export class Conn extends RelayConn<Socket> {
  private constructor(
    carrier: Carrier<Socket>,
    /** Default wait for an expected answer, in milliseconds. */
    readonly waitMs: number,
  ) {
    super(carrier);
  }

  /** The transport this connection runs over. */
  get transport(): Transport {
    return this.ws === undefined ? 'tcp' : 'ws';
  }

  /** Wraps an accepted socket (the kit's scripted relay reads the client under test with it). */
  static wrap(socket: Socket, waitMs: number): Conn {
    socket.setNoDelay(true);
    return new Conn({ socket }, waitMs);
  }

  /**
   * Opens a connection to host:port over `transport` (for WebSocket, host:port is the relay's web
   * listener: the upgrade of §3.1, path and subprotocol, no Origin as a program sends it); rejects with
   * a CaseFailure when it cannot connect (and upgrade) within waitMs.
   */
  static async open(host: string, port: number, waitMs: number, transport: Transport = 'tcp'): Promise<Conn> {
    if (transport === 'tcp') {
      try {
        return new Conn(await tcpCarrier(host, port, { connectMs: waitMs }), waitMs);
      } catch (e) {
        const arrived = e instanceof ConnectTimeout ? e.message : `connect failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
        throw new CaseFailure('a TCP connection', arrived);
      }
    }
    let u: Awaited<ReturnType<typeof wsCarrier>>;
    try {
      u = await wsCarrier(host, port, {}, waitMs);
    } catch (e) {
      throw new CaseFailure('a WebSocket upgrade (§3.1)', e instanceof Error ? e.message : String(e));
    }
    if (u.carrier === undefined) {
      throw new CaseFailure('a WebSocket upgrade answered 101 (§3.1)', u.status === 0 ? 'the connection closed without a response' : `HTTP ${u.status}`);
    }
    return new Conn(u.carrier, waitMs);
  }

  /** Queued; a framing error or a WebSocket violation then ends the connection. */
  protected override handleInvalid(a: Invalid): void {
    super.handleInvalid(a);
    if (a.stage !== 'body') this.finish();
  }

  protected override handleEnd(): void {
    this.close();
  }

  /**
   * Sends raw bytes of the §3 stream as they are (no length prefix added); over WebSocket each frame
   * goes out as one message once complete. Ignored after the connection ended.
   */
  raw(bytes: Uint8Array): void {
    this.write(bytes);
  }

  /** Ends the kit's side: over WebSocket an unfinished frame goes out as a fragment without FIN first. */
  end(): void {
    if (!this.closed) this.endStream();
  }

  /** The next arrival, or `silence` after `ms` milliseconds. After `closed` every call returns `closed`. */
  async next(ms: number = this.waitMs): Promise<Arrival> {
    const a = await this.arrival(ms);
    return a.kind === 'invalid' ? { kind: 'invalid', detail: detailOf(a) } : a;
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
    // §3.1: a message over the limit is refused on its header with close code 1009 and no ERROR.
    if (code === 'FRAME_TOO_LARGE' && this.ws !== undefined && a.kind === 'closed' && this.closeCode === WS_CLOSE_TOO_BIG) return;
    if (!(a.kind === 'frame' && a.frame.type === 'ERROR' && a.frame.code === ERROR_CODES[code].code)) {
      throw new CaseFailure(`ERROR ${code}${code === 'FRAME_TOO_LARGE' && this.ws !== undefined ? ' (or close code 1009, §3.1)' : ''}`, this.describeEnd(a));
    }
    if (ERROR_CODES[code].close) {
      await this.expectClosed(`connection closed after ERROR ${code} (§3, §9 closes = yes)`);
      const want = WS_CLOSE_ERROR_BASE + ERROR_CODES[code].code;
      if (this.ws !== undefined && this.closeCode !== want) {
        throw new CaseFailure(`close code ${want} after ERROR ${code} (§3.1)`, this.closeCode === undefined ? 'no close frame' : `close code ${this.closeCode}`);
      }
    }
  }

  /** An arrival described for a report; over WebSocket a close names its close code. */
  private describeEnd(a: Arrival): string {
    if (a.kind !== 'closed' || this.ws === undefined) return describe(a);
    return `connection closed (${this.closeCode === undefined ? 'no close frame' : `close code ${this.closeCode}`})`;
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
    this.close();
  }
}
