/**
 * One WebSocket connection seen by the relay as the byte stream of spec/PROTOCOL.md §3 (the WebSocket
 * transport, §3.1): each binary message in is one frame body, handed to the relay with its 4-byte length
 * prefix; each frame the relay writes goes out as one binary message without it. The relay's §7.1
 * machine, limits, timeouts, registry and rooms then apply unchanged.
 *
 * What WebSocket adds is translated into the byte stream the relay already knows how to refuse, so it
 * counts and logs them with their §9 codes like any TCP peer's:
 * - a text message, an empty message or a WebSocket protocol violation becomes a zero length prefix
 *   (MALFORMED_FRAME);
 * - a message over `max_frame` (ws's `maxPayload`, checked on the frame header before any byte of the
 *   payload is buffered) becomes a prefix declaring `max_frame + 1` (FRAME_TOO_LARGE).
 * When the relay ends the stream after a closing ERROR, the close frame carries 4000 + that §9 code;
 * ws itself sends 1002/1007/1009 when it fails the connection first.
 */
import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { decodeFrame } from '../codec/index.js';
import { LIMITS } from '../protocol/limits.js';
import type { RelayStream } from './stream.js';

/** Close code for a closing ERROR with §9 code c: 4000 + c (the private-use range of RFC 6455 §7.4.2). */
export const WS_CLOSE_ERROR_BASE = 4000;
/** Normal closure (RFC 6455 §7.4.1), after LEFT or a peer's ERROR. */
export const WS_CLOSE_NORMAL = 1000;
/** At most one WebSocket ping per this many ms is answered (§3.1); the rest are ignored. */
export const WS_PING_INTERVAL_MS = 1000;

const PREFIX = LIMITS.LENGTH_PREFIX_BYTES;

function prefixed(body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(PREFIX + body.length);
  b.writeUInt32BE(body.length, 0);
  body.copy(b, PREFIX);
  return b;
}

function lengthOnly(n: number): Buffer {
  const b = Buffer.alloc(PREFIX);
  b.writeUInt32BE(n, 0);
  return b;
}

/** The ws close code for the last body the relay wrote before ending: 4000 + code after an ERROR. */
function closeCodeAfter(last: Buffer | undefined): number {
  // Only one small frame per connection is decoded, at close: the relay's hot path is not touched.
  if (last === undefined || last.length > 512) return WS_CLOSE_NORMAL;
  try {
    const f = decodeFrame(last, 'relay');
    return f.type === 'ERROR' ? WS_CLOSE_ERROR_BASE + f.code : WS_CLOSE_NORMAL;
  } catch {
    return WS_CLOSE_NORMAL;
  }
}

export class WsStream extends Duplex implements RelayStream {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /** Output bytes of a frame split across writes (the relay writes whole frames; this is a backstop). */
  private partial: Buffer = Buffer.alloc(0);
  private lastBody: Buffer | undefined;
  /** Set once a refusal was handed to the relay: nothing more is read from this peer. */
  private poisoned = false;
  private lastPingAt = -Infinity;
  /** Set by the web listener over https: the tls-exporter value of the TLS socket under this WebSocket (§3.2). */
  channelBinding: (() => Uint8Array | undefined) | undefined;

  constructor(
    private readonly ws: WebSocket,
    remoteAddress: string | undefined,
    remotePort: number | undefined,
    private readonly maxFrame: number,
  ) {
    super({ allowHalfOpen: true, decodeStrings: true });
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.poisoned) return;
      if (!isBinary || data.length === 0) this.refuseWith(lengthOnly(0));
      else this.push(prefixed(data));
    });
    ws.on('ping', (data: Buffer) => {
      // §3.1: pings are not frames (no idle credit); answered at most once per WS_PING_INTERVAL_MS.
      const now = performance.now();
      if (now - this.lastPingAt < WS_PING_INTERVAL_MS || ws.readyState !== ws.OPEN) return;
      this.lastPingAt = now;
      ws.pong(data);
    });
    ws.on('error', (e: Error & { code?: string }) => {
      if (this.poisoned) return;
      // ws has already sent its close frame (1009 for a message over maxPayload, 1002/1007 otherwise).
      this.refuseWith(e.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? lengthOnly(this.maxFrame + 1) : lengthOnly(0));
    });
    ws.on('close', () => {
      this.push(null);
      this.destroy();
    });
  }

  private refuseWith(prefix: Buffer): void {
    this.poisoned = true;
    this.push(prefix);
  }

  override _read(): void {
    // Messages are pushed as they arrive; pause()/resume() below hold them back at the socket.
  }

  override pause(): this {
    super.pause();
    this.ws.pause();
    return this;
  }

  override resume(): this {
    super.resume();
    this.ws.resume();
    return this;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this._writev([{ chunk }], done);
  }

  override _writev(chunks: { chunk: Buffer }[], done: (e?: Error | null) => void): void {
    const bodies: Buffer[] = [];
    let buf = this.partial.length === 0 && chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat([this.partial, ...chunks.map((c) => c.chunk)]);
    while (buf.length >= PREFIX) {
      const n = buf.readUInt32BE(0);
      if (buf.length < PREFIX + n) break;
      bodies.push(buf.subarray(PREFIX, PREFIX + n));
      buf = buf.subarray(PREFIX + n);
    }
    this.partial = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
    if (bodies.length === 0 || this.ws.readyState !== this.ws.OPEN) {
      done();
      return;
    }
    this.lastBody = bodies[bodies.length - 1];
    // The write completes when ws has handed the last message to the socket, so writableLength counts
    // what is still queued here: the relay's SLOW_CONSUMER check (§7.1) sees a slow browser as it
    // sees a slow TCP reader.
    for (let i = 0; i < bodies.length; i++) {
      this.ws.send(bodies[i]!, { binary: true }, i === bodies.length - 1 ? () => done() : undefined);
    }
  }

  override _final(done: (e?: Error | null) => void): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(closeCodeAfter(this.lastBody));
    done();
  }

  override _destroy(err: Error | null, done: (e?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.CLOSED) this.ws.terminate();
    done(err);
  }
}
