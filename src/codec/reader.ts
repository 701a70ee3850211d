/**
 * Incremental frame reader over a byte stream (spec/PROTOCOL.md §3 "Framing").
 *
 * An explicit two-state machine: HEADER waits for the 4-byte big-endian length, BODY waits for that many
 * bytes. "Not enough bytes yet" returns and waits; only a violation is an error. The declared length is
 * checked against the limit when the header completes, before any byte of the body is buffered. The first
 * error poisons the reader: every later push throws the same error.
 */
import { ProtocolError } from '../errors.js';
import { LIMITS } from '../limits.js';

const enum State {
  Header,
  Body,
}

export class FrameReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private state = State.Header;
  private want: number = LIMITS.LENGTH_PREFIX_BYTES;
  private failure: ProtocolError | undefined;

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

  /**
   * Feeds bytes; returns the complete frame bodies they finish, in order (each a fresh buffer).
   * Throws ProtocolError MALFORMED_FRAME for a zero length, FRAME_TOO_LARGE for a declared length over
   * the limit; frames completed before the bad header in the same chunk are lost with the connection.
   */
  push(chunk: Uint8Array): Buffer[] {
    if (this.failure) throw this.failure;
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
      this.failure = e as ProtocolError;
      this.chunks.length = 0;
      this.buffered = 0;
      throw e;
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
