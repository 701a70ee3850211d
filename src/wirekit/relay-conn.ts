/**
 * The wire kit's raw relay connection, for hostile tests and the fuzzer: real TCP, the reference
 * FrameReader on what the relay sends, one identity pool, and helpers that walk a legitimate client
 * through HELLO, AUTH and JOIN (spec §7.1, §7.3).
 *
 * Everything the relay sends must itself be a valid relay frame; anything else is recorded as a
 * `violation`, so a relay that answers garbage with garbage fails the check that reads it.
 */
import { connect, type Socket } from 'node:net';
import { decodeFrame, encodeWire, frame, FrameReader, type RelayFrame } from '../codec/index.js';
import { ERROR_CODES, ProtocolError } from '../protocol/errors.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { authMessage, pssSign } from '../crypto/rsa.js';
import { identity, type Identity } from './identity.js';

/** A received frame, or the end of the connection. */
export type Received = RelayFrame | { type: 'closed' };

export { identity, KEY_POOL_SIZE, type Identity } from './identity.js';

/**
 * What every kit connection to the relay shares, whatever carries it (TCP here, WebSocket in
 * src/wirekit/relay-ws-conn.ts): a queue of decoded relay frames ending in `closed`, the violations
 * seen, and the legitimate steps of §7.3.
 */
export abstract class RelayLink {
  private readonly queue: Received[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  /** Bytes from the relay that did not decode as relay frames (a relay bug when non-empty). */
  readonly violations: string[] = [];
  /** Bytes received in total. */
  received = 0;

  /** Writes raw bytes of the §3 stream (ignored once the connection is gone). */
  abstract write(bytes: Uint8Array): void;
  /** Ends the client's side of the stream (an unfinished frame stays unfinished). */
  abstract endStream(): void;
  /** Drops the connection at once. */
  abstract close(): void;

  /** One frame body from the relay. */
  protected body(b: Buffer): void {
    try {
      this.queue.push(decodeFrame(b, 'relay'));
    } catch (e) {
      this.violations.push(`relay sent an invalid frame (${e instanceof ProtocolError ? e.errorName : String(e)}): ${b.toString('hex').slice(0, 120)}`);
    }
  }

  /** The connection ended. */
  protected end(): void {
    if (this.ended) return;
    this.ended = true;
    this.queue.push({ type: 'closed' });
    this.wake();
  }

  protected wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  get closed(): boolean {
    return this.ended;
  }

  send(f: RelayFrame): void {
    this.write(encodeWire(f));
  }

  /**
   * The next frame from the relay, or `{type: 'closed'}`. Rejects after `deadlineMs` with no frame: a
   * liveness bound for the harness, not a speed assertion.
   */
  async next(deadlineMs = 10_000): Promise<Received> {
    if (this.queue.length > 0) return this.queue.shift()!;
    if (this.ended) return { type: 'closed' };
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no frame from the relay within ${deadlineMs} ms`));
      }, deadlineMs);
      this.waiter = () => {
        clearTimeout(t);
        resolve();
      };
    });
    return this.next(deadlineMs);
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
    this.send(frame('HELLO', { version: PROTOCOL_VERSION, nick: id.nick, key: id.spki }));
    const ch = await this.expect('CHALLENGE', deadlineMs);
    this.send(frame('AUTH', { sig: pssSign(id.privateKey, authMessage(ch.nonce, id.nick, id.spki, ch.relay, new Uint8Array(0))) }));
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

/** A kit connection over TCP (§3): the reference FrameReader on what the relay sends. */
export class RawConnection extends RelayLink {
  readonly socket: Socket;
  private readonly reader = new FrameReader();

  private constructor(socket: Socket) {
    super();
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      let bodies: Buffer[] = [];
      try {
        bodies = this.reader.push(chunk);
      } catch (e) {
        this.violations.push(`relay framing: ${e instanceof ProtocolError ? e.errorName : String(e)}`);
      }
      for (const b of bodies) this.body(b);
      if (bodies.length > 0 && this.reader.failure !== undefined) this.violations.push(`relay framing: ${this.reader.failure.errorName}`);
      this.wake();
    });
    const end = (): void => this.end();
    socket.on('close', end);
    socket.on('end', end);
    socket.on('error', () => end());
  }

  /** Opens a connection; resolves once TCP is connected. `localAddress` picks a loopback source address. */
  static open(host: string, port: number, localAddress?: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port, ...(localAddress !== undefined ? { localAddress } : {}) });
      s.setNoDelay(true);
      const c = new RawConnection(s);
      s.once('connect', () => resolve(c));
      s.once('error', reject);
    });
  }

  /** Writes raw bytes (ignored once the connection is gone). */
  write(bytes: Uint8Array): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(bytes);
  }

  endStream(): void {
    this.socket.end();
  }

  close(): void {
    this.socket.destroy();
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
