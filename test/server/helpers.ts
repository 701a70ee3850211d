/**
 * A minimal scripted relay client for the server tests: the wire kit's raw relay connection, real TCP on
 * 127.0.0.1. Waits have no wall-clock limit (tap's own file timeout is the backstop): `next()` resolves
 * with the next frame, or with 'closed' once the server has closed the connection; it rejects instead
 * when the server sent bytes that are not valid frames (so a test expecting 'closed' fails on garbage).
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RelayFrame } from '../../src/codec/index.js';
import { freshKeys, type Keys } from '../../src/wirekit/identity.js';
import { errorText, RelayConn, tcpCarrier, type Invalid } from '../../src/wirekit/relay-conn.js';
import { ERROR_CODES, type ErrorName } from '../../src/protocol/errors.js';
import { tlsExporter } from '../../src/server/tls.js';

export type Identity = Keys;

/** `n` new identity keys (the wire kit's, made at once: call it before the test's relay starts). */
export function identities(n: number): Identity[] {
  return Array.from({ length: n }, freshKeys);
}

export type Received = RelayFrame | 'closed';

/**
 * The wire kit's connection (src/wirekit/relay-conn.ts) with the server tests' waits. Over TCP by
 * default; `over()` takes any §3 byte stream (a WebSocket adapted by src/server/ws-stream.ts, a TLS socket).
 */
export class TestClient<S extends Duplex = Socket> extends RelayConn<S> {
  /**
   * Set when the stream from the server was not valid frames (a relay bug); the connection is then
   * dropped, and `next()` rejects with it instead of resolving with 'closed'.
   */
  streamError: Error | undefined;

  /** A client over an already open byte stream of §3 frames. */
  static over<S extends Duplex>(stream: S): TestClient<S> {
    return new TestClient({ socket: stream });
  }

  /** Connects to 127.0.0.1:port, from `localAddress` when given (another loopback address). */
  static async connect(port: number, localAddress?: string): Promise<TestClient> {
    return TestClient.over((await tcpCarrier('127.0.0.1', port, localAddress === undefined ? {} : { localAddress })).socket);
  }

  protected override handleInvalid(a: Invalid): void {
    this.streamError ??= new Error(`the relay sent bytes that are not a valid frame (${a.stage}: ${errorText(a.error)})`, { cause: a.error });
    this.socket.destroy();
  }

  /** The next frame, or 'closed'; rejects with `streamError` once the server sent an invalid frame. */
  next(): Promise<Received> {
    return this.arrival().then((a) => {
      if (a.kind === 'frame') return a.frame;
      if (this.streamError !== undefined) throw this.streamError;
      return 'closed';
    });
  }

  raw(bytes: Uint8Array): void {
    this.write(bytes);
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
    this.sendHello(nick, id.spki);
    const ch = await this.expect('CHALLENGE');
    this.sendAuth(ch, nick, id, tlsExporter(this.socket) ?? new Uint8Array(0));
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
