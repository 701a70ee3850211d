/**
 * Incremental frame reader over a byte stream (spec/PROTOCOL.md §3 "Framing").
 *
 * An explicit two-state machine: HEADER waits for the 4-byte big-endian length, BODY waits for that many
 * bytes. "Not enough bytes yet" returns and waits; only a violation is an error. The declared length is
 * checked against the limit when the header completes, before any byte of the body is buffered.
 *
 * Errors never overtake frames (§3): a push whose bytes complete frames and then hit a bad length prefix
 * returns those frames and records the error in `failure`, so the receiver acts on the frames in stream
 * order and then on the error, whatever the TCP segmentation. The first error poisons the reader: every
 * later push throws it.
 */
import { ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';

const enum State {
  Header,
  Body,
}

export class FrameReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private state = State.Header;
  private want: number = LIMITS.LENGTH_PREFIX_BYTES;
  private failed: ProtocolError | undefined;

  /** @param maxFrame largest frame body accepted, at most LIMITS.MAX_FRAME_BYTES. */
  constructor(private readonly maxFrame: number = LIMITS.MAX_FRAME_BYTES) {
    if (!Number.isInteger(maxFrame) || maxFrame < 1 || maxFrame > LIMITS.MAX_FRAME_BYTES) {
      throw new RangeError(`maxFrame must be an integer in 1..${LIMITS.MAX_FRAME_BYTES}, got ${maxFrame}`);
    }
  }

  /** Bytes received but not yet returned as frames (at most 4 + maxFrame). */
  get pending(): number {
    return this.buffered;
  }

  /** The framing error met so far (MALFORMED_FRAME for a zero length, FRAME_TOO_LARGE over the limit). */
  get failure(): ProtocolError | undefined {
    return this.failed;
  }

  /**
   * Feeds bytes; returns the complete frame bodies they finish, in order (each a fresh buffer). A bad
   * length prefix (zero: MALFORMED_FRAME; over the limit: FRAME_TOO_LARGE) ends the stream: the frames
   * completed before it are still returned and the error is left in `failure` for the caller to act on
   * after them; it is thrown only when no frame precedes it in this push, and by every later push.
   */
  push(chunk: Uint8Array): Buffer[] {
    if (this.failed) throw this.failed;
    const out: Buffer[] = [];
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    try {
      // Fast path: nothing pending, whole frames in this chunk are sliced without copying the chunk.
      while (buf.length > 0) {
        if (this.buffered === 0 && this.state === State.Header && buf.length >= LIMITS.LENGTH_PREFIX_BYTES) {
          const n = this.checkLength(buf.readUInt32BE(0));
          const end = LIMITS.LENGTH_PREFIX_BYTES + n;
          if (buf.length >= end) {
            out.push(Buffer.from(buf.subarray(LIMITS.LENGTH_PREFIX_BYTES, end)));
            buf = buf.subarray(end);
            continue;
          }
          this.state = State.Body;
          this.want = n;
          buf = buf.subarray(LIMITS.LENGTH_PREFIX_BYTES);
        }
        const take = Math.min(this.want - this.buffered, buf.length);
        // Copied: the caller may reuse its buffer after push returns (a partial frame outlives the call).
        this.chunks.push(Buffer.from(buf.subarray(0, take)));
        this.buffered += take;
        buf = buf.subarray(take);
        if (this.buffered < this.want) break;
        const whole = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
        this.chunks.length = 0;
        this.buffered = 0;
        if (this.state === State.Header) {
          this.want = this.checkLength(whole.readUInt32BE(0));
          this.state = State.Body;
        } else {
          out.push(whole);
          this.state = State.Header;
          this.want = LIMITS.LENGTH_PREFIX_BYTES;
        }
      }
    } catch (e) {
      this.failed = e as ProtocolError;
      this.chunks.length = 0;
      this.buffered = 0;
      if (out.length === 0) throw e;
    }
    return out;
  }

  /** True when the stream ended between frames (no partial header or body pending). */
  get atBoundary(): boolean {
    return this.state === State.Header && this.buffered === 0;
  }

  private checkLength(n: number): number {
    if (n === 0) throw new ProtocolError('MALFORMED_FRAME', 'zero-length frame');
    if (n > this.maxFrame) throw new ProtocolError('FRAME_TOO_LARGE', `declared length ${n} exceeds ${this.maxFrame}`);
    return n;
  }
}
