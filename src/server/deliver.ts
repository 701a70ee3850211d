/**
 * The relay's hot path: a SEND read straight from its canonical bytes, and DELIVER{from, body} written
 * straight into the one buffer that carries a batch of output to its connection.
 *
 * The generic codec (`decodeFrame`, `encodeWire(frame('DELIVER', ...))`) builds a map, re-validates every
 * field and copies the body twice; it was most of the relay's per-frame CPU (a profile of one busy room:
 * the strict decoder, the frame object, a buffer per DELIVER and one iovec per frame in the batch's
 * `writev`). On the relay both DELIVER fields are known valid when the SEND has been read (spec §6: `from`
 * is the authenticated nickname, `body` the SEND body of 1..MAX_BODY_BYTES), so only the canonical bytes
 * remain to be laid out (spec §4 rule 3: fixmap, fixstr or str 8, bin 8/16/32, shortest form).
 *
 * `readSend` accepts only the one canonical form of a valid SEND, which the generic decoder accepts with
 * the same result; anything else (a defect, another frame type) returns undefined and goes through
 * `decodeFrame`, which then names the error (test/server/deliver.test.ts holds both equal, and
 * `deliverWire` equal to the codec's encoder, for every nick and body length).
 */
import type { FrameOf } from '../codec/index.js';
import { LIMITS } from '../protocol/limits.js';
import { NICK_PATTERN, isNick } from '../protocol/names.js';

// fixmap(3), fixstr "t", 0x0a, fixstr "from"
const HEAD = Buffer.from([0x83, 0xa1, 0x74, 0x0a, 0xa4, 0x66, 0x72, 0x6f, 0x6d]);
// fixstr "body"
const BODY_KEY = Buffer.from([0xa4, 0x62, 0x6f, 0x64, 0x79]);
// fixmap(3), fixstr "t", 0x09 (SEND), fixstr "to"
const SEND_HEAD = [0x83, 0xa1, 0x74, 0x09, 0xa2, 0x74, 0x6f] as const;

/** 1 for each byte of the nick alphabet (names.ts NICK_PATTERN, one ASCII character at a time). */
const NICK_BYTE = Uint8Array.from({ length: 256 }, (_, c) => (c < 0x80 && NICK_PATTERN.test(String.fromCharCode(c)) ? 1 : 0));

/** Where `to` lies in the bytes of the last SEND `sendAt` accepted (offset and length). */
let toAt = 0;
let toLen = 0;

/**
 * SEND{to, body} in its canonical form (spec §4, §6) in the frame body `b[start, end)`: `to` of the nick
 * alphabet and NICK_MIN_BYTES..NICK_MAX_BYTES, `body` of 1..MAX_BODY_BYTES as bin 8 or bin 16 in the
 * shortest form, no trailing byte. Returns the offset of the body (which runs to `end`), or -1 for
 * anything else, valid or not (the caller then decodes it with the generic codec). Where `to` lies is
 * kept for `sendToIs` and `readSend`, until the next call.
 */
export function sendAt(b: Buffer, start: number, end: number): number {
  const n = end - start;
  if (n < SEND_HEAD.length + 1) return -1;
  for (let i = 0; i < SEND_HEAD.length; i++) if (b[start + i] !== SEND_HEAD[i]) return -1;
  let p = start + SEND_HEAD.length;
  const h = b[p++]!;
  let k: number;
  if ((h & 0xe0) === 0xa0) k = h & 0x1f;
  else if (h === 0xd9 && p < end) {
    k = b[p++]!;
    if (k < 32) return -1; // str 8 for what a fixstr holds is not canonical
  } else return -1;
  if (k < LIMITS.NICK_MIN_BYTES || k > LIMITS.NICK_MAX_BYTES || p + k + BODY_KEY.length + 2 > end) return -1;
  for (let i = p; i < p + k; i++) if (NICK_BYTE[b[i]!] === 0) return -1;
  toAt = p;
  toLen = k;
  p += k;
  for (let i = 0; i < BODY_KEY.length; i++) if (b[p + i] !== BODY_KEY[i]) return -1;
  p += BODY_KEY.length;
  let len: number;
  if (b[p] === 0xc4) {
    len = b[p + 1]!;
    p += 2;
  } else if (b[p] === 0xc5 && p + 3 <= end) {
    len = (b[p + 1]! << 8) | b[p + 2]!;
    if (len < 0x100) return -1; // bin 16 for what bin 8 holds is not canonical
    p += 3;
  } else return -1;
  if (len < 1 || len > LIMITS.MAX_BODY_BYTES || p + len !== end) return -1;
  return p;
}

/** True when the `to` of the SEND `sendAt` last accepted in `b` spells `s`. */
export function sendToIs(b: Buffer, s: string): boolean {
  return spells(b, toAt, toLen, s);
}

/**
 * SEND{to, body} from a frame body in its canonical form (`sendAt`); `body` is a view into `b` (the
 * caller copies it before `b` is reused). Undefined for anything else, valid or not: the caller then
 * decodes it with the generic codec. `lastTo`: the addressee of this connection's previous SEND; when
 * the bytes spell it, that string is returned instead of a new one (a stream to one peer makes no string
 * per frame).
 */
export function readSend(b: Buffer, lastTo?: string): FrameOf<'SEND'> | undefined {
  const at = sendAt(b, 0, b.length);
  if (at < 0) return undefined;
  const to = lastTo !== undefined && spells(b, toAt, toLen, lastTo) ? lastTo : b.toString('latin1', toAt, toAt + toLen);
  return { type: 'SEND', to, body: b.subarray(at) };
}

/** True when the k bytes of `b` at `p` are the characters of `s` (an ASCII nickname). */
function spells(b: Buffer, p: number, k: number, s: string): boolean {
  if (s.length !== k) return false;
  for (let i = 0; i < k; i++) if (b[p + i] !== s.charCodeAt(i)) return false;
  return true;
}

/**
 * The constant start of every DELIVER from one sender: the map header, "t", "from", the nickname and the
 * "body" key (up to 48 bytes); the relay makes it once per sending connection. RangeError unless `from`
 * is a nickname (a relay bug, never peer input: it is the authenticated nickname).
 */
export function deliverHead(from: string): Buffer {
  if (!isNick(from)) throw new RangeError(`deliverHead: nick of ${from.length} characters`);
  const k = from.length; // the nick alphabet is ASCII: characters = bytes
  const strHead = k < 32 ? [0xa0 | k] : [0xd9, k]; // fixstr up to 31 bytes, then str 8
  return Buffer.concat([HEAD, Buffer.from(strHead), Buffer.from(from, 'latin1'), BODY_KEY]);
}

/** Wire bytes (4-byte prefix included) of DELIVER{from, body} whose start is `head`, for a body of n bytes. */
function deliverLength(head: Buffer, n: number): number {
  // bin 8 below 256 bytes, else bin 16: MAX_BODY_BYTES (49152) < 65536, so bin 32 never occurs.
  return LIMITS.LENGTH_PREFIX_BYTES + head.length + (n < 0x100 ? 2 : 3) + n;
}

/**
 * Lays out DELIVER (prefix, `head`, the body's bin header, the body: the `n` bytes of `src` at `at`) at `o`
 * in `out`; returns the end offset.
 */
function writeDeliver(out: Buffer, o: number, head: Buffer, src: Uint8Array, at: number, n: number): number {
  if (n < 1 || n > LIMITS.MAX_BODY_BYTES) throw new RangeError(`deliverWire: body of ${n} bytes`);
  o = out.writeUInt32BE(deliverLength(head, n) - LIMITS.LENGTH_PREFIX_BYTES, o);
  out.set(head, o);
  o += head.length;
  if (n < 0x100) {
    out[o++] = 0xc4;
    out[o++] = n;
  } else {
    out[o++] = 0xc5;
    o = out.writeUInt16BE(n, o);
  }
  if (at === 0 && n === src.length) out.set(src, o);
  else out.set(src.subarray(at, at + n), o);
  return o + n;
}

/**
 * The wire bytes (4-byte big-endian length, then the canonical body) of DELIVER{from, body}.
 * `from`: a nickname (nick alphabet) of NICK_MIN_BYTES..NICK_MAX_BYTES; `body`: 1..MAX_BODY_BYTES bytes.
 * Throws RangeError outside those bounds (a relay bug, never peer input: both come from a decoded SEND).
 */
export function deliverWire(from: string, body: Uint8Array): Buffer {
  return deliverWireFrom(deliverHead(from), body);
}

/** deliverWire for a sender whose `deliverHead` is made already (the cluster keeps one per member). */
export function deliverWireFrom(head: Buffer, body: Uint8Array): Buffer {
  if (body.length < 1 || body.length > LIMITS.MAX_BODY_BYTES) throw new RangeError(`deliverWire: body of ${body.length} bytes`);
  const out = Buffer.allocUnsafe(deliverLength(head, body.length));
  writeDeliver(out, 0, head, body, 0, body.length);
  return out;
}

/** The largest buffer an Outbox starts a batch with (it grows past this only when one batch needs it). */
const MAX_START_BYTES = 256 * 1024;

/** Smallest and largest buffer a Spare keeps (below, a fresh one costs little; above, memory would). */
const SPARE_MIN_BYTES = 16 * 1024;
const SPARE_MAX_BYTES = 1024 * 1024;

/**
 * One batch buffer kept between batches for the Outboxes of one relay: a buffer whose bytes have been
 * written (the kernel took them at once, so nothing refers to them any more) starts the next batch,
 * instead of a fresh allocation per batch. A busy stream otherwise allocated a buffer of tens of KB per
 * read; V8 counts them as external memory and ran full mark-compact collections for them. It holds at
 * most one buffer of at most SPARE_MAX_BYTES, whatever the number of connections.
 */
export class Spare {
  #buf: Buffer | undefined;

  /** The kept buffer if it has at least `n` bytes (it is then no longer kept), else undefined. */
  get(n: number): Buffer | undefined {
    const b = this.#buf;
    if (b === undefined || b.length < n) return undefined;
    this.#buf = undefined;
    return b;
  }

  /** Keeps `b`, which nothing else refers to, if it owns its whole memory and is of a useful size. */
  put(b: Buffer): void {
    if (b.byteOffset !== 0 || b.buffer.byteLength !== b.length || b.length < SPARE_MIN_BYTES || b.length > SPARE_MAX_BYTES) return;
    if (this.#buf === undefined || this.#buf.length < b.length) this.#buf = b;
  }
}

/**
 * The output of one connection during one batch (what one read of its peers produced), in one buffer, so
 * the batch leaves in one `write()` of one contiguous buffer rather than a `writev` of one buffer per
 * frame. `take()` hands the bytes over and lets go of the buffer: an idle connection holds none. The
 * next batch starts with about the size of the last ones (at most MAX_START_BYTES), so a stream of
 * batches allocates one buffer each.
 */
export class Outbox {
  #buf: Buffer | undefined;
  #len = 0;
  #hint = 0;
  /** The buffer the last `take()` handed out a view of, until `recycle()` or the next `take()`. */
  #taken: Buffer | undefined;

  /** `spare`: where buffers come from and go back to (shared by the Outboxes of one relay), if anywhere. */
  constructor(private readonly spare?: Spare) {}

  /** Bytes queued and not yet taken. */
  get length(): number {
    return this.#len;
  }

  #room(n: number): Buffer {
    const need = this.#len + n;
    let b = this.#buf;
    if (b === undefined || need > b.length) {
      const size = Math.max(need, 2 * (b?.length ?? 0), this.#hint);
      const grown = this.spare?.get(size) ?? Buffer.allocUnsafe(size);
      if (b !== undefined) {
        grown.set(b.subarray(0, this.#len), 0);
        this.spare?.put(b);
      }
      this.#buf = b = grown;
    }
    return b;
  }

  /** Queues `bytes` (a whole wire frame, prefix included) after what is queued. */
  append(bytes: Uint8Array): void {
    const b = this.#room(bytes.length);
    b.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  /** Queues DELIVER{from, body} whose constant start is `head` (deliverHead(from)); returns its wire length. */
  appendDeliver(head: Buffer, body: Uint8Array): number {
    return this.appendDeliverOf(head, body, 0, body.length);
  }

  /** appendDeliver of the body that is the `n` bytes of `src` at `at` (a frame still in its read chunk). */
  appendDeliverOf(head: Buffer, src: Uint8Array, at: number, n: number): number {
    const len = deliverLength(head, n);
    this.#len = writeDeliver(this.#room(len), this.#len, head, src, at, n);
    return len;
  }

  /**
   * The queued bytes (a view of a buffer no longer written to), or undefined when nothing is queued. A
   * buffer much larger than its bytes (the start size overshot) is not handed on: the bytes are copied
   * out, so what a socket holds is never more than about twice what it counts as unsent.
   */
  take(): Buffer | undefined {
    this.#taken = undefined;
    if (this.#len === 0) return undefined;
    const b = this.#buf!;
    let out: Buffer;
    if (b.length > 2 * this.#len + 4096) {
      out = Buffer.from(b.subarray(0, this.#len));
      this.spare?.put(b); // nothing refers to it: its bytes were copied out
    } else {
      out = b.subarray(0, this.#len);
      this.#taken = b;
    }
    this.#hint = Math.min(MAX_START_BYTES, Math.max(this.#len, this.#hint >>> 1));
    this.#buf = undefined;
    this.#len = 0;
    return out;
  }

  /**
   * Says that the bytes the last `take()` returned have been written and nothing refers to them (a plain
   * socket's write the kernel took whole): their buffer goes back to the spare, for the next batch.
   */
  recycle(): void {
    if (this.#taken !== undefined) this.spare?.put(this.#taken);
    this.#taken = undefined;
  }
}
