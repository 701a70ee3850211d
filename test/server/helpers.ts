/**
 * A minimal scripted relay client for the server tests: real TCP on 127.0.0.1, frames in and out through
 * the project's codec. Waits have no wall-clock limit (tap's own file timeout is the backstop): `next()`
 * resolves with the next frame, or with 'closed' once the server has closed the connection.
 */
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { decodeFrame, encodeWire, frame, FrameReader, type Frame, type RelayFrame } from '../../src/codec/index.js';
import { authMessage, pssSign } from '../../src/crypto/rsa.js';
import { freshKeys, type Keys } from '../../src/wirekit/identity.js';
import { ERROR_CODES, type ErrorName } from '../../src/protocol/errors.js';
import { tlsExporter } from '../../src/server/tls.js';

export type Identity = Keys;

/** `n` new identity keys (the wire kit's, made at once: call it before the test's relay starts). */
export function identities(n: number): Identity[] {
  return Array.from({ length: n }, freshKeys);
}

export type Received = RelayFrame | 'closed';

/** Over TCP by default; `over()` takes any §3 byte stream (a WebSocket adapted by src/server/ws-stream.ts). */
export class TestClient<S extends Duplex = Socket> {
  readonly socket: S;
  private readonly reader = new FrameReader();
  private readonly queue: Received[] = [];
  private waiters: ((r: Received) => void)[] = [];
  closed = false;
  /** Set when the stream from the server was not valid frames (a relay bug). */
  streamError: unknown;

  private constructor(socket: S) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const body of this.reader.push(chunk)) this.deliver(decodeFrame(body, 'relay'));
      } catch (e) {
        this.streamError = e;
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.deliver('closed');
    });
  }

  /** A client over an already open byte stream of §3 frames. */
  static over<S extends Duplex>(stream: S): TestClient<S> {
    return new TestClient(stream);
  }

  /** Connects to 127.0.0.1:port, from `localAddress` when given (another loopback address). */
  static connect(port: number, localAddress?: string): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const s = connect(localAddress === undefined ? { host: '127.0.0.1', port } : { host: '127.0.0.1', port, localAddress });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new TestClient(s));
      });
      s.once('error', reject);
    });
  }

  private deliver(r: Received): void {
    // 'closed' is sticky: every later next() sees it too.
    const w = this.waiters.shift();
    if (w !== undefined) w(r);
    else this.queue.push(r);
  }

  next(): Promise<Received> {
    const r = this.queue.shift();
    if (r !== undefined) {
      if (r === 'closed') this.queue.unshift(r);
      return Promise.resolve(r);
    }
    if (this.closed) return Promise.resolve('closed');
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Frames already received and not yet taken. */
  get pending(): number {
    return this.queue.filter((r) => r !== 'closed').length;
  }

  send(f: Frame): void {
    this.socket.write(encodeWire(f));
  }

  raw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Next frame, which must be of the given type; throws with what arrived instead. */
  async expect<T extends RelayFrame['type']>(type: T): Promise<Extract<RelayFrame, { type: T }>> {
    const r = await this.next();
    if (r === 'closed' || r.type !== type) throw new Error(`expected ${type}, got ${r === 'closed' ? 'close' : describe(r)}`);
    return r as Extract<RelayFrame, { type: T }>;
  }

  /** Waits for ERROR and returns its code name (or the number if unknown). */
  async expectError(): Promise<ErrorName | number> {
    const f = await this.expect('ERROR');
    return errorNameOf(f.code);
  }

  /** Waits until the server closes, returning the frames that came first. */
  async drainUntilClosed(maxFrames = 100_000): Promise<RelayFrame[]> {
    const got: RelayFrame[] = [];
    for (let i = 0; i < maxFrames; i++) {
      const r = await this.next();
      if (r === 'closed') return got;
      got.push(r);
    }
    throw new Error('server kept sending past the bound');
  }

  /**
   * HELLO, CHALLENGE, AUTH, WELCOME with a correct signature: over the name the relay announced and, on a
   * TLS socket, its tls-exporter value (§7.3; empty on plain TCP and on a WebSocket, wss included).
   */
  async auth(nick: string, id: Identity): Promise<Extract<RelayFrame, { type: 'WELCOME' }>> {
    this.send(frame('HELLO', { version: 2, nick, key: id.spki }));
    const ch = await this.expect('CHALLENGE');
    const cb = tlsExporter(this.socket) ?? new Uint8Array(0);
    this.send(frame('AUTH', { sig: pssSign(id.privateKey, authMessage(ch.nonce, nick, id.spki, ch.relay, cb)) }));
    return this.expect('WELCOME');
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function errorNameOf(code: number): ErrorName | number {
  const hit = (Object.keys(ERROR_CODES) as ErrorName[]).find((n) => ERROR_CODES[n].code === code);
  return hit ?? code;
}

function describe(f: RelayFrame): string {
  return f.type === 'ERROR' ? `ERROR ${String(errorNameOf(f.code))}` : f.type;
}
