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

/**
 * Memory (issue 12): a partial frame is held in one buffer of exactly its declared length, allocated once
 * the prefix has been read and filled by copying, never as one buffer per TCP segment; a partial prefix
 * lives in a fixed 4-byte buffer. So what a reader holds is at most LENGTH_PREFIX_BYTES + the declared
 * length of the frame in progress, and a peer that trickles one byte per segment costs no more than one
 * that sends the frame at once. The limit may be changed between frames (`limit`): a relay reads with the
 * pre-login limit until WELCOME and with its `max_frame` after.
 */
export class FrameReader {
  private readonly head = Buffer.alloc(LIMITS.LENGTH_PREFIX_BYTES);
  private headHave = 0;
  private body: Buffer | undefined;
  private bodyHave = 0;
  private failed: ProtocolError | undefined;
  private max: number;
  private readonly views: boolean;

  /**
   * @param maxFrame largest frame body accepted, at most LIMITS.MAX_FRAME_BYTES.
   * @param opts.views a body that lies whole in one pushed chunk is returned as a view into that chunk
   *   instead of a copy (the relay's hot path: it is read at once and the chunk is never reused, as
   *   Node's socket chunks are not). A body gathered over several chunks is its own buffer either way.
   */
  constructor(maxFrame: number = LIMITS.MAX_FRAME_BYTES, opts: { views?: boolean } = {}) {
    this.max = FrameReader.checkLimit(maxFrame);
    this.views = opts.views === true;
  }

  private static checkLimit(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > LIMITS.MAX_FRAME_BYTES) {
      throw new RangeError(`maxFrame must be an integer in 1..${LIMITS.MAX_FRAME_BYTES}, got ${n}`);
    }
    return n;
  }

  /** The largest frame body accepted for frames whose prefix has not been read yet. */
  get limit(): number {
    return this.max;
  }

  set limit(n: number) {
    this.max = FrameReader.checkLimit(n);
  }

  /** Bytes received but not yet returned as frames (at most 4 + the limit). */
  get pending(): number {
    return this.headHave + this.bodyHave;
  }

  /** Bytes this reader holds allocated for the frame in progress: its declared length, or 0 between bodies. */
  get reserved(): number {
    return this.body === undefined ? 0 : this.body.length;
  }

  /** The framing error met so far (MALFORMED_FRAME for a zero length, FRAME_TOO_LARGE over the limit). */
  get failure(): ProtocolError | undefined {
    return this.failed;
  }

  /**
   * Feeds bytes; returns the complete frame bodies they finish, in order (each a fresh buffer the caller
   * owns, or with `views` a view into `chunk` when the body lies whole in it). A bad length prefix (zero: MALFORMED_FRAME; over the limit: FRAME_TOO_LARGE) ends the stream:
   * the frames completed before it are still returned and the error is left in `failure` for the caller
   * to act on after them; it is thrown only when no frame precedes it in this push, and by every later push.
   */
  push(chunk: Uint8Array): Buffer[] {
    if (this.failed) throw this.failed;
    const out: Buffer[] = [];
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    let pos = 0;
    try {
      while (pos < buf.length) {
        if (this.body === undefined) {
          // HEADER: the prefix, straight from the chunk when it is whole there, else gathered in `head`.
          let n: number;
          if (this.headHave === 0 && buf.length - pos >= LIMITS.LENGTH_PREFIX_BYTES) {
            n = buf.readUInt32BE(pos);
            pos += LIMITS.LENGTH_PREFIX_BYTES;
          } else {
            const take = Math.min(LIMITS.LENGTH_PREFIX_BYTES - this.headHave, buf.length - pos);
            buf.copy(this.head, this.headHave, pos, pos + take);
            this.headHave += take;
            pos += take;
            if (this.headHave < LIMITS.LENGTH_PREFIX_BYTES) break;
            this.headHave = 0;
            n = this.head.readUInt32BE(0);
          }
          this.checkLength(n); // before a byte of the body is allocated or buffered
          if (buf.length - pos >= n) {
            // The whole body is in this chunk: a view (`views`), or one copy (from the pool: it is handed on at once).
            out.push(this.views ? buf.subarray(pos, pos + n) : Buffer.from(buf.subarray(pos, pos + n)));
            pos += n;
            continue;
          }
          // One allocation of exactly n bytes; copied into, so the caller may reuse its chunk (a partial
          // frame outlives the call) and no segment's buffer is retained. Not pooled: a pooled slice
          // would keep its whole 8 KiB pool alive.
          this.body = Buffer.allocUnsafeSlow(n);
          this.bodyHave = 0;
        }
        const take = Math.min(this.body.length - this.bodyHave, buf.length - pos);
        buf.copy(this.body, this.bodyHave, pos, pos + take);
        this.bodyHave += take;
        pos += take;
        if (this.bodyHave < this.body.length) break;
        out.push(this.body);
        this.body = undefined;
        this.bodyHave = 0;
      }
    } catch (e) {
      this.failed = e as ProtocolError;
      this.headHave = 0;
      this.body = undefined;
      this.bodyHave = 0;
      if (out.length === 0) throw e;
    }
    return out;
  }

  /**
   * Bytes still to come of the frame in progress: 0 between frames, -1 while its length prefix is itself
   * incomplete (how long the frame is is not known yet).
   */
  get remaining(): number {
    if (this.body !== undefined) return this.body.length - this.bodyHave;
    return this.headHave === 0 ? 0 : -1;
  }

  /** True when the stream ended between frames (no partial header or body pending). */
  get atBoundary(): boolean {
    return this.body === undefined && this.headHave === 0;
  }

  private checkLength(n: number): void {
    if (n === 0) throw new ProtocolError('MALFORMED_FRAME', 'zero-length frame');
    if (n > this.max) throw new ProtocolError('FRAME_TOO_LARGE', `declared length ${n} exceeds ${this.max}`);
  }
}
