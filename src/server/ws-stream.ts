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
 * When the relay ends the stream after a closing ERROR, the close frame carries 4000 + that §9 code.
 *
 * When ws fails the connection itself (1009 for a message over the limit, 1002/1007 for an RFC 6455
 * violation) it would send its close frame at once, ahead of the answers to frames it had already
 * handed over, which the relay may still be working on (AUTH waits for a signature check, SET_RECOVERY
 * for a registry write): RFC 6455 allows no data after a close frame, so those answers would be lost,
 * and §3's "errors never overtake frames" broken. So ws's close is held back: the refusal goes into the
 * byte stream behind those frames, the relay answers them in order, and its answer to the refusal
 * itself (the ERROR the refusal's prefix earns) is replaced by ws's close code, without an ERROR frame
 * (§3.1). The wait is bounded by `failCloseMs` (FRAME_TIMEOUT_MS); nothing more is read meanwhile.
 */
import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { decodeFrame } from '../codec/index.js';
import { ERROR_CODES } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import type { RelayStream } from './stream.js';

/** Close code for a closing ERROR with §9 code c: 4000 + c (the private-use range of RFC 6455 §7.4.2). */
export const WS_CLOSE_ERROR_BASE = 4000;
/** Normal closure (RFC 6455 §7.4.1), after LEFT or a peer's ERROR. */
export const WS_CLOSE_NORMAL = 1000;
/** At most one WebSocket ping per this many ms is answered (§3.1); the rest are ignored. */
export const WS_PING_INTERVAL_MS = 1000;

/**
 * A message ws is still gathering is held as the reads it arrived in, each a Buffer of its own (about a
 * hundred bytes of heap beside its bytes): a peer trickling a message one byte per read would make the
 * relay hold ~80 times what it sent. So an incomplete message may take at most WS_READS_BASE reads plus
 * one per WS_READ_BYTES of it (§3.1); past that the connection fails with close code 1008. A browser
 * writes a message at once, and TCP segments and TLS records are far larger than WS_READ_BYTES.
 */
export const WS_READS_BASE = 16;
export const WS_READ_BYTES = 256;
/** Heap a held read costs beside its bytes (a Buffer and its backing store), for the buffer budget. */
const WS_READ_COST_BYTES = 128;
/** Policy violation (RFC 6455 §7.4.1): the close code for a message in too many small reads. */
export const WS_CLOSE_POLICY = 1008;

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

/** The §9 code of an ERROR body the relay wrote, or undefined for any other body. */
function errorCodeOf(body: Buffer | undefined): number | undefined {
  // Small bodies only (an ERROR's detail is clipped), and only at close or after a WebSocket failure:
  // the relay's hot path is not touched.
  if (body === undefined || body.length > 512) return undefined;
  try {
    const f = decodeFrame(body, 'relay');
    return f.type === 'ERROR' ? f.code : undefined;
  } catch {
    return undefined;
  }
}

/** The ws close code for the last body the relay wrote before ending: 4000 + code after an ERROR. */
function closeCodeAfter(last: Buffer | undefined): number {
  const code = errorCodeOf(last);
  return code === undefined ? WS_CLOSE_NORMAL : WS_CLOSE_ERROR_BASE + code;
}

/** A failure of the WebSocket layer itself, whose close frame waits for the answers before it. */
interface WsFailure {
  /** ws's close code: 1009, 1002 or 1007; ours, 1008, for a message in too many small reads. */
  closeCode: number;
  /** The §9 code the relay answers the refusal with (FRAME_TOO_LARGE or MALFORMED_FRAME); never sent. */
  refusal: number;
  timer: NodeJS.Timeout;
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
  /** ws's own close(), called by us; ws's calls go through the override in the constructor. */
  private readonly wsClose: WebSocket['close'];
  /** A close ws asked for, until we know why (a failure of its receiver is followed by 'error'). */
  private asked: { code: number | undefined; data: string | Buffer | undefined } | undefined;
  private failure: WsFailure | undefined;
  /** Set once we have closed (or terminated) the WebSocket: later closes by ws go straight through. */
  private closedByUs = false;
  /** Reads and bytes of what ws holds since its last complete message or control frame. */
  private heldReads = 0;
  private heldBytes = 0;
  /** Set when a message came in too many small reads: nothing more is read from the socket. */
  private halted = false;
  /** Set by the web listener over https: the tls-exporter value of the TLS socket under this WebSocket (§3.2). */
  channelBinding: (() => Uint8Array | undefined) | undefined;

  constructor(
    private readonly ws: WebSocket,
    remoteAddress: string | undefined,
    remotePort: number | undefined,
    private readonly maxFrame: number,
    /** Longest wait, after ws failed the connection, for the relay's answers to the frames before it. */
    private readonly failCloseMs: number = LIMITS.FRAME_TIMEOUT_MS,
  ) {
    super({ allowHalfOpen: true, decodeStrings: true });
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    ws.binaryType = 'nodebuffer';
    const close = ws.close.bind(ws);
    this.wsClose = close;
    // ws closes by itself in two cases: its receiver failed (it calls close(code), then emits 'error'
    // in the same step), or the peer sent a close frame (it echoes it, §5.5.1). The first is held back
    // by the 'error' handler below; the second goes out once this step is over, as before.
    ws.close = (code?: number, data?: string | Buffer): void => {
      if (this.closedByUs || ws.readyState !== ws.OPEN) {
        close(code, data);
        return;
      }
      this.asked = { code, data };
      queueMicrotask(() => {
        const a = this.asked;
        this.asked = undefined;
        if (a !== undefined && this.failure === undefined) this.closeNow(a.code, a.data);
      });
    };
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.heldReads = this.heldBytes = 0;
      if (this.poisoned) return;
      if (!isBinary || data.length === 0) this.refuseWith(lengthOnly(0));
      else this.push(prefixed(data));
    });
    ws.on('pong', () => {
      this.heldReads = this.heldBytes = 0;
    });
    ws.on('ping', (data: Buffer) => {
      this.heldReads = this.heldBytes = 0;
      // §3.1: pings are not frames (no idle credit); answered at most once per WS_PING_INTERVAL_MS.
      const now = performance.now();
      if (now - this.lastPingAt < WS_PING_INTERVAL_MS || ws.readyState !== ws.OPEN) return;
      this.lastPingAt = now;
      ws.pong(data);
    });
    ws.on('error', (e: Error & { code?: string }) => {
      // ws's receiver failed: 1009 for a message over maxPayload (refused on its header), 1002/1007 for
      // an RFC 6455 violation. Its close waits for the relay to reach the refusal (see the file comment).
      const tooLarge = e.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
      const asked = this.asked;
      this.asked = undefined;
      if (asked !== undefined && asked.code !== undefined) {
        const refusal = tooLarge ? ERROR_CODES.FRAME_TOO_LARGE.code : ERROR_CODES.MALFORMED_FRAME.code;
        const timer = setTimeout(() => this.closeNow(asked.code, asked.data), this.failCloseMs);
        timer.unref();
        this.failure = { closeCode: asked.code, refusal, timer };
        this.lastBody = undefined;
      }
      if (!this.poisoned) this.refuseWith(tooLarge ? lengthOnly(this.maxFrame + 1) : lengthOnly(0));
    });
    ws.on('close', () => {
      if (this.failure !== undefined) clearTimeout(this.failure.timer);
      this.push(null);
      this.destroy();
    });
  }

  /** What ws holds of an incomplete message, as it costs (counted in the relay's buffer budget, §7.1). */
  get pendingInput(): number {
    return this.heldBytes + this.heldReads * WS_READ_COST_BYTES;
  }

  /**
   * Called by the web listener with the size of each read of the socket under this WebSocket, before ws
   * takes it. A message that needs more reads than WS_READS_BASE + bytes / WS_READ_BYTES fails the
   * connection like a WebSocket violation (§3.1): the frames before it are answered, then close 1008.
   */
  noteRead(bytes: number): void {
    if (this.poisoned || this.halted) return;
    this.heldReads++;
    this.heldBytes += bytes;
    if (this.heldReads <= WS_READS_BASE + Math.floor(this.heldBytes / WS_READ_BYTES)) return;
    this.halted = true;
    this.ws.pause();
    const timer = setTimeout(() => this.closeNow(WS_CLOSE_POLICY), this.failCloseMs);
    timer.unref();
    this.failure = { closeCode: WS_CLOSE_POLICY, refusal: ERROR_CODES.MALFORMED_FRAME.code, timer };
    this.lastBody = undefined;
    this.refuseWith(lengthOnly(0));
  }

  private closeNow(code: number | undefined, data?: string | Buffer): void {
    if (this.failure !== undefined) clearTimeout(this.failure.timer);
    this.closedByUs = true;
    if (this.ws.readyState === this.ws.OPEN) this.wsClose(code, data);
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
    if (!this.halted) this.ws.resume();
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
    const f = this.failure;
    if (f !== undefined && !this.closedByUs) {
      // The relay's ERROR for the refusal is the last thing it writes; ws's close code stands for it.
      // (An earlier frame refused with the same code would be taken for it: both name the same fault.)
      for (let i = bodies.length - 1; i >= 0; i--) if (errorCodeOf(bodies[i]) === f.refusal) bodies.splice(i, 1);
    }
    if (bodies.length === 0 || this.ws.readyState !== this.ws.OPEN || this.closedByUs) {
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
    // After a WebSocket failure: an ERROR the relay sent since (an earlier frame's) gives 4000 + its
    // code, else ws's own close code (the refusal's answer, which was not sent).
    const code = closeCodeAfter(this.lastBody);
    this.closeNow(this.failure !== undefined && code === WS_CLOSE_NORMAL ? this.failure.closeCode : code);
    done();
  }

  override _destroy(err: Error | null, done: (e?: Error | null) => void): void {
    if (this.failure !== undefined) clearTimeout(this.failure.timer);
    this.closedByUs = true;
    if (this.ws.readyState !== this.ws.CLOSED) this.ws.terminate();
    done(err);
  }
}
