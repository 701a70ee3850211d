/**
 * The wire kit's raw relay connection (`RelayConn`) for the tests, the fuzzer, the benchmarks and the
 * conformance kit: TCP, any §3 byte stream or the WebSocket endpoint (§3.1), the reference FrameReader
 * on what the relay sends, and the HELLO, AUTH and JOIN steps of a legitimate client (spec §7.1, §7.3).
 * `RelayLink` is the fuzzer's and hostile tests' view of it.
 */
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { decodeFrame, encodeWire, frame, FrameReader, type Frame, type FrameOf, type RelayFrame } from '../codec/index.js';
import { ERROR_CODES, ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { authMessage, pssSign } from '../crypto/rsa.js';
import { identity, type Identity, type Keys } from './identity.js';

export { identity, KEY_POOL_SIZE, type Identity } from './identity.js';
import { wire } from './msgpack.js';
import { upgrade, WsLink, WsStreamAdapter, type Fragmenting, type UpgradeOptions } from './ws.js';

/**
 * What arrives on a relay connection, in order: a decoded frame, bytes that are not a valid relay frame
 * (a bad body, broken framing of the §3 stream, or a WebSocket message that breaks §3.1), the end of the
 * connection (sticky: every later wait sees it too), or nothing within a bounded wait.
 */
export type Arrival =
  | { readonly kind: 'frame'; readonly frame: RelayFrame }
  | Invalid
  | { readonly kind: 'closed' }
  | { readonly kind: 'silence'; readonly ms: number };

/** Bytes from the relay that are not a valid relay frame; `body` for a body that did not decode. */
export interface Invalid {
  readonly kind: 'invalid';
  readonly stage: 'body' | 'stream' | 'ws';
  readonly error: unknown;
  readonly body?: Buffer;
}

/** An error's stable name: the ProtocolError code name, else its text. */
export function errorText(e: unknown): string {
  return e instanceof ProtocolError ? e.errorName : String(e);
}

/** What a connection runs over: a §3 byte stream (TCP, TLS, any Duplex), or an upgraded WebSocket (§3.1). */
export interface Carrier<S extends Duplex = Duplex> {
  readonly socket: S;
  /** Over WebSocket: the bytes after the upgrade response, and how the adapter cuts messages into fragments. */
  readonly ws?: { readonly rest: Buffer; readonly fragmenting?: (index: number, body: Buffer) => Fragmenting };
}

/** No TCP connection within the time a caller allowed. */
export class ConnectTimeout extends Error {
  constructor(ms: number) {
    super(`no connection within ${ms} ms`);
    this.name = 'ConnectTimeout';
  }
}

/** A TCP connection to host:port (no delay), resolved once connected; rejects on error or after `connectMs`. */
export function tcpCarrier(host: string, port: number, o: { localAddress?: string; connectMs?: number } = {}): Promise<Carrier<Socket>> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}) });
    s.setNoDelay(true);
    const timer = o.connectMs === undefined ? undefined : setTimeout(() => {
      s.destroy();
      reject(new ConnectTimeout(o.connectMs!));
    }, o.connectMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve({ socket: s });
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Upgrade options of a kit WebSocket connection. */
export interface WsOptions {
  readonly fragmenting?: (index: number, body: Buffer) => Fragmenting;
  readonly upgrade?: Partial<UpgradeOptions>;
  readonly localAddress?: string;
}

/**
 * Upgrades a connection to the relay's WebSocket endpoint (§3.1: path, subprotocol, no Origin as a
 * program sends it). Resolves with the HTTP status; the carrier only when it is 101.
 */
export async function wsCarrier(host: string, port: number, o: WsOptions = {}, deadlineMs = 10_000): Promise<{ status: number; carrier?: Carrier<Socket> }> {
  const u = await upgrade({ host, port, ...o.upgrade, ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}) }, deadlineMs);
  if (u.status !== 101) {
    u.socket.destroy();
    return { status: u.status };
  }
  u.socket.setNoDelay(true);
  return { status: 101, carrier: { socket: u.socket, ws: { rest: u.rest, ...(o.fragmenting !== undefined ? { fragmenting: o.fragmenting } : {}) } } };
}

/**
 * The AUTH frame (§7.3) answering `challenge`: signed over the name the relay announced and `binding`
 * (its tls-exporter value on TLS, empty on plain TCP and on a WebSocket).
 */
export function authFrame(challenge: FrameOf<'CHALLENGE'>, nick: string, keys: Keys, binding: Uint8Array = new Uint8Array(0)): FrameOf<'AUTH'> {
  return frame('AUTH', { sig: pssSign(keys.privateKey, authMessage(challenge.nonce, nick, keys.spki, challenge.relay, binding)) });
}

/**
 * The wire kit's one raw relay connection, which the fuzzer, the hostile and server tests, the
 * conformance kit and the benchmarks' load generator build on: a carrier (a byte stream, or a
 * WebSocket whose binary messages are the §3 frame bodies), the reference FrameReader on what the
 * relay sends, a queue of arrivals with bounded or unbounded waits, and the legitimate steps of §7.3.
 *
 * Each body goes through `handleBody` (decode and queue; a load generator overrides it with a path that
 * reads only the type byte), each invalid arrival through `handleInvalid`, the end through `handleEnd`: what a
 * user does about a relay that breaks the rules is the user's.
 */
export class RelayConn<S extends Duplex = Duplex> {
  readonly socket: S;
  private readonly reader: FrameReader;
  private readonly queue: Arrival[] = [];
  private waiters: Array<(a: Arrival) => void> = [];
  private ended = false;
  /** Over WebSocket: the link and the adapter that carries the §3 byte stream as messages. */
  protected readonly ws: { readonly link: WsLink; readonly adapter: WsStreamAdapter } | undefined;
  /** Over WebSocket: the code of the relay's close frame, once one arrived (undefined: none). */
  closeCode: number | undefined;
  /** Bytes received in total (frame bodies over WebSocket). */
  received = 0;
  /** The largest frame body received so far, in bytes (§3: a peer must respect the announced max_frame). */
  maxBody = 0;

  constructor(c: Carrier<S>, maxFrame: number = LIMITS.MAX_FRAME_BYTES, views = false) {
    this.socket = c.socket;
    this.reader = new FrameReader(maxFrame, { views });
    if (c.ws === undefined) {
      this.ws = undefined;
      c.socket.on('data', (chunk: Buffer) => this.bytes(chunk, chunk.length));
      c.socket.on('error', (e: Error) => this.finish(e));
      c.socket.on('close', () => this.finish());
      c.socket.on('end', () => this.finish());
      return;
    }
    const link = new WsLink(c.socket as unknown as Socket, c.ws.rest, {
      // A message is one frame body (§3.1): the reader sees it with its length prefix, as on TCP.
      binary: (body) => this.bytes(wire(body), body.length),
      closed: (code) => {
        this.closeCode = code;
        this.finish();
      },
      violation: (what) => this.handleInvalid({ kind: 'invalid', stage: 'ws', error: what }),
    });
    // Before WELCOME the relay reads at most MAX_PRELOGIN_FRAME_BYTES, and its WebSocket layer at most
    // its max_frame (not known yet: MAX_FRAME_BYTES assumed); WELCOME's max_frame sets both (handleBody).
    this.ws = { link, adapter: new WsStreamAdapter((b) => link.write(b), LIMITS.MAX_PRELOGIN_FRAME_BYTES, LIMITS.MAX_FRAME_BYTES, c.ws.fragmenting) };
  }

  private bytes(chunk: Buffer, n: number): void {
    if (this.ended) return;
    this.received += n;
    let bodies: Buffer[];
    try {
      bodies = this.reader.push(chunk);
    } catch (e) {
      this.handleInvalid({ kind: 'invalid', stage: 'stream', error: e });
      return;
    }
    for (const body of bodies) {
      // A user that dropped the connection (on an invalid frame, say) takes nothing that came after it.
      if (this.ended || this.socket.destroyed) return;
      if (body.length > this.maxBody) this.maxBody = body.length;
      this.handleBody(body);
    }
    if (this.ended || this.socket.destroyed) return;
    // §3: a framing error after complete frames of this chunk comes after them.
    const failure = this.reader.failure;
    if (failure !== undefined && bodies.length > 0) this.handleInvalid({ kind: 'invalid', stage: 'stream', error: failure });
  }

  /** One frame body from the relay: decoded and queued. */
  protected handleBody(body: Buffer): void {
    let f: RelayFrame;
    try {
      f = decodeFrame(body, 'relay');
    } catch (e) {
      this.handleInvalid({ kind: 'invalid', stage: 'body', error: e, body });
      return;
    }
    // §3: from WELCOME on the relay reads frames up to the max_frame it announced (and §3.1: its
    // WebSocket layer the same).
    if (f.type === 'WELCOME' && this.ws !== undefined) this.ws.adapter.limit = this.ws.adapter.wsMax = f.max_frame;
    this.push({ kind: 'frame', frame: f });
  }

  /** Bytes from the relay that are not a valid relay frame: queued. */
  protected handleInvalid(a: Invalid): void {
    this.push(a);
  }

  /** The connection ended (`error` when the socket failed). */
  protected handleEnd(_error?: Error): void {}

  protected push(a: Arrival): void {
    const w = this.waiters.shift();
    if (w !== undefined) w(a);
    else this.queue.push(a);
  }

  /** Ends the connection's queue with `closed`, once; every wait in progress resolves with it. */
  protected finish(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.handleEnd(error);
    const closed: Arrival = { kind: 'closed' };
    const waiters = this.waiters;
    this.waiters = [];
    // Sticky: it stays at the head of the queue for every later wait.
    this.queue.push(closed);
    for (const w of waiters) w(closed);
  }

  /** True once the connection ended. */
  get closed(): boolean {
    return this.ended;
  }

  /** Frames received and not yet taken. */
  get pending(): number {
    return this.queue.filter((a) => a.kind === 'frame').length;
  }

  /**
   * The next arrival; `silence` after `ms` milliseconds when given (a liveness bound for a harness,
   * not a speed assertion), else no bound. After `closed` every call returns `closed`.
   */
  arrival(ms?: number): Promise<Arrival> {
    const q = this.queue.shift();
    if (q !== undefined) {
      if (q.kind === 'closed') this.queue.unshift(q);
      return Promise.resolve(q);
    }
    return new Promise((resolve) => {
      const w = (a: Arrival): void => {
        clearTimeout(timer);
        resolve(a);
      };
      const timer =
        ms === undefined
          ? undefined
          : setTimeout(() => {
              this.waiters = this.waiters.filter((x) => x !== w);
              resolve({ kind: 'silence', ms });
            }, ms);
      this.waiters.push(w);
    });
  }

  /**
   * Writes raw bytes of the §3 stream as they are (no length prefix added); over WebSocket each frame
   * goes out as one message once complete (a declared length over the limit as §3.1 carries it).
   * Ignored once the connection is gone; false when the socket's buffer is full.
   */
  write(bytes: Uint8Array): boolean {
    if (this.ended || this.socket.destroyed || !this.socket.writable) return false;
    if (this.ws === undefined) return this.socket.write(bytes);
    this.ws.adapter.write(bytes);
    return true;
  }

  /** Sends one canonical frame. */
  send(f: Frame): void {
    this.write(encodeWire(f));
  }

  /** Sends one body with its length prefix. */
  body(b: Uint8Array): void {
    this.write(wire(b));
  }

  /** HELLO (§7.3) as `nick` with key `spki`. */
  sendHello(nick: string, spki: Uint8Array): void {
    this.send(frame('HELLO', { version: PROTOCOL_VERSION, nick, key: spki }));
  }

  /**
   * AUTH (§7.3) answering `challenge`: signed over the name the relay announced and `binding` (its
   * tls-exporter value on TLS, empty on plain TCP and on a WebSocket).
   */
  sendAuth(challenge: FrameOf<'CHALLENGE'>, nick: string, keys: Keys, binding: Uint8Array = new Uint8Array(0)): void {
    this.send(authFrame(challenge, nick, keys, binding));
  }

  /** Ends the client's side: over WebSocket an unfinished frame goes out as a fragment without FIN first. */
  endStream(): void {
    this.ws?.adapter.end();
    this.socket.end();
  }

  /** Drops the connection at once. */
  close(): void {
    if (this.ws !== undefined) this.ws.link.destroy();
    else this.socket.destroy();
  }
}

/** A received frame, or the end of the connection. */
export type Received = RelayFrame | { type: 'closed' };

/**
 * The fuzzer's and the hostile tests' view of a kit connection, whatever carries it (TCP here,
 * WebSocket in src/wirekit/relay-ws-conn.ts): frames ending in `closed`, waits that reject past a
 * deadline, the violations seen, and the legitimate steps of §7.3.
 *
 * Everything the relay sends must itself be a valid relay frame; anything else is recorded as a
 * `violation`, so a relay that answers garbage with garbage fails the check that reads it.
 */
export class RelayLink<S extends Duplex = Duplex> extends RelayConn<S> {
  /** Bytes from the relay that did not decode as relay frames (a relay bug when non-empty). */
  readonly violations: string[] = [];

  protected override handleInvalid(a: Invalid): void {
    if (a.stage === 'ws') this.violations.push(`WebSocket: ${String(a.error)}`);
    else if (a.stage === 'stream') this.violations.push(`relay framing: ${errorText(a.error)}`);
    else this.violations.push(`relay sent an invalid frame (${errorText(a.error)}): ${a.body!.toString('hex').slice(0, 120)}`);
  }

  /**
   * The next frame from the relay, or `{type: 'closed'}`. Rejects after `deadlineMs` with no frame: a
   * liveness bound for the harness, not a speed assertion.
   */
  async next(deadlineMs = 10_000): Promise<Received> {
    const a = await this.arrival(deadlineMs);
    if (a.kind === 'frame') return a.frame;
    if (a.kind === 'closed') return { type: 'closed' };
    throw new Error(`no frame from the relay within ${deadlineMs} ms`);
  }

  /** The next frame of one of `types`, skipping room events (PEER_JOINED, PEER_LEFT) that may interleave. */
  async expect<T extends RelayFrame['type']>(type: T, deadlineMs = 10_000): Promise<Extract<RelayFrame, { type: T }>> {
    for (let i = 0; i < 10_000; i++) {
      const f = await this.next(deadlineMs);
      if (f.type === type) return f as Extract<RelayFrame, { type: T }>;
      if ((f.type === 'PEER_JOINED' || f.type === 'PEER_LEFT') && type !== 'PEER_JOINED' && type !== 'PEER_LEFT') continue;
      throw new Error(`expected ${type}, got ${f.type}${f.type === 'ERROR' ? ` code ${f.code}` : ''}`);
    }
    throw new Error(`expected ${type}: too many room events`);
  }

  /** HELLO then AUTH with `id`; resolves with the WELCOME (spec §7.3). */
  async authenticate(id: Identity, deadlineMs = 10_000): Promise<{ nonce: Uint8Array; welcome: Extract<RelayFrame, { type: 'WELCOME' }> }> {
    this.sendHello(id.nick, id.spki);
    const ch = await this.expect('CHALLENGE', deadlineMs);
    this.sendAuth(ch, id.nick, id);
    const welcome = await this.expect('WELCOME', deadlineMs);
    return { nonce: ch.nonce, welcome };
  }

  /** JOIN; resolves with JOINED or throws with the refusal. */
  async join(room: string, deadlineMs = 10_000): Promise<Extract<RelayFrame, { type: 'JOINED' }>> {
    this.send(frame('JOIN', { room }));
    return this.expect('JOINED', deadlineMs);
  }

  /** Resolves once the relay has closed the connection (frames before that are discarded). */
  async closedByRelay(deadlineMs = 10_000): Promise<RelayFrame[]> {
    const seen: RelayFrame[] = [];
    for (let i = 0; i < 100_000; i++) {
      const f = await this.next(deadlineMs);
      if (f.type === 'closed') return seen;
      seen.push(f);
    }
    return seen;
  }
}

/** A kit connection over TCP (§3). */
export class RawConnection extends RelayLink<Socket> {
  /** Opens a connection; resolves once TCP is connected. `localAddress` picks a loopback source address. */
  static async open(host: string, port: number, localAddress?: string): Promise<RawConnection> {
    return new RawConnection(await tcpCarrier(host, port, localAddress !== undefined ? { localAddress } : {}));
  }
}

/**
 * A connection flood from one source address: `count` connections at once. Each either is refused with
 * ERROR TOO_MANY_CONNECTIONS and closed, or is held (it then answers a HELLO with CHALLENGE and stays
 * open, so a probe never frees a slot for a later connection); at most `cap` are held.
 */
export async function connectionFlood(
  ep: { host: string; port: number },
  count: number,
  cap: number,
  localAddress: string,
  d: { replyMs: number },
): Promise<{ failure?: string; held: number; refused: number }> {
  const conns: RawConnection[] = [];
  try {
    for (let i = 0; i < count; i++) conns.push(await RawConnection.open(ep.host, ep.port, localAddress));
    const probe = identity('floodprobe');
    conns.forEach((c, i) => c.send(frame('HELLO', { version: PROTOCOL_VERSION, nick: `fp${i}`, key: probe.spki })));
    let held = 0;
    let refused = 0;
    for (const c of conns) {
      const f = await c.next(d.replyMs);
      if (f.type === 'ERROR' && f.code === ERROR_CODES.TOO_MANY_CONNECTIONS.code) refused++;
      else if (f.type === 'CHALLENGE') held++;
      else return { failure: `connection flood: unexpected answer ${f.type}${f.type === 'ERROR' ? ' ' + f.code : ''}`, held, refused };
    }
    if (held > cap) return { failure: `connection flood: ${held} connections held from one address, cap ${cap}`, held, refused };
    if (refused === 0 && count > cap) return { failure: `connection flood: ${count} connections, none refused (cap ${cap})`, held, refused };
    return { held, refused };
  } catch (e) {
    return { failure: `connection flood: ${e instanceof Error ? e.message : String(e)}`, held: 0, refused: 0 };
  } finally {
    for (const c of conns) c.close();
  }
}
