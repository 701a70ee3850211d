/**
 * Strict single-pass msgpack decoding of one frame body (spec/PROTOCOL.md §4 "Encoding rules", rules 1-8).
 *
 * @msgpack/msgpack decodes invalid UTF-8 without complaint, accepts non-shortest encodings and has no
 * nesting limit, so frame bodies never reach it: this scanner reads exactly the protocol's msgpack subset
 * in its one canonical form and builds the value in the same pass:
 * - types: positive integers up to 2^53 - 1, str, bin, array, map with str keys; nothing else
 *   (nil, bool, float, negative integers, ext and the never-used byte 0xc1 are rejected);
 * - every integer and every length in its shortest encoding;
 * - strings valid UTF-8 (RFC 3629); no duplicate map keys;
 * - nesting depth at most LIMITS.MAX_DEPTH (the frame map is depth 1), map entries at most
 *   LIMITS.MAX_MAP_ENTRIES, and every declared count or length checked against the bytes that remain
 *   before anything is allocated for it;
 * - a map at the top level, and no trailing bytes.
 * Any violation is a ProtocolError MALFORMED_FRAME. Rule 9 (frame shape) is checked afterwards, on the
 * built value, by frame.ts: rules 1-8 are checked over the whole body first (§4 "Checks apply in this
 * order"), so a body with both kinds of defect is MALFORMED_FRAME.
 *
 * Maps are returned as StrictMap (keys and values in wire order), never as plain objects, so a key such
 * as "__proto__" or "constructor" is an ordinary string with no effect on any prototype.
 */
import { ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function malformed(detail: string): never {
  throw new ProtocolError('MALFORMED_FRAME', detail);
}

/** A decoded msgpack map: keys and values in the order they appear on the wire. */
export class StrictMap {
  constructor(
    readonly keys: string[],
    readonly values: StrictValue[],
  ) {}

  /** The value for `key`, or undefined. Linear: maps hold at most MAX_MAP_ENTRIES (8) entries. */
  get(key: string): StrictValue | undefined {
    const i = this.keys.indexOf(key);
    return i < 0 ? undefined : this.values[i];
  }
}

/** A value of the protocol's msgpack subset. Binary values are views into the decoded body. */
export type StrictValue = number | string | Uint8Array | StrictValue[] | StrictMap;

/** Strings up to this many bytes that are pure ASCII are built char by char (faster than TextDecoder). */
const SHORT_ASCII = 24;

class Scanner {
  pos = 0;
  constructor(readonly b: Uint8Array) {}

  need(n: number): void {
    if (n > this.b.length - this.pos) malformed(`truncated: need ${n} bytes at offset ${this.pos}, have ${this.b.length - this.pos}`);
  }

  u8(): number {
    this.need(1);
    return this.b[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = (this.b[this.pos]! << 8) | this.b[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const b = this.b;
    const p = this.pos;
    const v = b[p]! * 0x100_0000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
    this.pos += 4;
    return v;
  }

  /** Reads `n` bytes of string payload; the bytes must be valid UTF-8 (§4 rule 4). */
  str(n: number): string {
    this.need(n);
    const b = this.b;
    const start = this.pos;
    const end = start + n;
    this.pos = end;
    if (n <= SHORT_ASCII) {
      let s = '';
      for (let i = start; i < end; i++) {
        const c = b[i]!;
        if (c >= 0x80) return this.utf8(start, end);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return this.utf8(start, end);
  }

  utf8(start: number, end: number): string {
    try {
      return utf8.decode(this.b.subarray(start, end));
    } catch {
      return malformed(`invalid UTF-8 in string at offset ${start}`);
    }
  }

  /** A bin payload of `n` bytes, as a view into the body (no copy). */
  bytes(n: number): Uint8Array {
    this.need(n);
    const start = this.pos;
    this.pos += n;
    return this.b.subarray(start, start + n);
  }

  /** Reads a string header; returns its byte length, or -1 when `tag` is not a str type. */
  strLength(tag: number): number {
    if (tag >= 0xa0 && tag <= 0xbf) return tag - 0xa0;
    if (tag === 0xd9) {
      const n = this.u8();
      if (n < 32) malformed('non-canonical str 8 for a string shorter than 32 bytes');
      return n;
    }
    if (tag === 0xda) {
      const n = this.u16();
      if (n < 0x100) malformed('non-canonical str 16');
      return n;
    }
    if (tag === 0xdb) {
      const n = this.u32();
      if (n < 0x10000) malformed('non-canonical str 32');
      return n;
    }
    return -1;
  }

  /** One value at nesting depth `depth` (the frame map is depth 1). */
  value(depth: number): StrictValue {
    const tag = this.u8();
    if (tag <= 0x7f) return tag; // positive fixint
    if (tag >= 0xa0 && tag <= 0xbf) return this.str(tag - 0xa0);
    if (tag >= 0x80 && tag <= 0x8f) return this.map(tag - 0x80, depth);
    if (tag >= 0x90 && tag <= 0x9f) return this.array(tag - 0x90, depth);
    switch (tag) {
      case 0xcc: {
        const v = this.u8();
        if (v < 0x80) malformed('non-canonical uint 8');
        return v;
      }
      case 0xcd: {
        const v = this.u16();
        if (v < 0x100) malformed('non-canonical uint 16');
        return v;
      }
      case 0xce: {
        const v = this.u32();
        if (v < 0x10000) malformed('non-canonical uint 32');
        return v;
      }
      case 0xcf: {
        const hi = this.u32();
        const lo = this.u32();
        if (hi === 0) malformed('non-canonical uint 64');
        if (hi > 0x1f_ffff) malformed('integer above 2^53 - 1');
        return hi * 0x1_0000_0000 + lo;
      }
      case 0xd9:
      case 0xda:
      case 0xdb:
        return this.str(this.strLength(tag));
      case 0xc4:
        return this.bytes(this.u8());
      case 0xc5: {
        const n = this.u16();
        if (n < 0x100) malformed('non-canonical bin 16');
        return this.bytes(n);
      }
      case 0xc6: {
        const n = this.u32();
        if (n < 0x10000) malformed('non-canonical bin 32');
        return this.bytes(n);
      }
      case 0xdc: {
        const n = this.u16();
        if (n < 16) malformed('non-canonical array 16');
        return this.array(n, depth);
      }
      case 0xdd: {
        const n = this.u32();
        if (n < 0x10000) malformed('non-canonical array 32');
        return this.array(n, depth);
      }
      case 0xde: {
        const n = this.u16();
        if (n < 16) malformed('non-canonical map 16');
        return this.map(n, depth);
      }
      case 0xdf: {
        const n = this.u32();
        if (n < 0x10000) malformed('non-canonical map 32');
        return this.map(n, depth);
      }
      default:
        return malformed(`msgpack type 0x${tag.toString(16).padStart(2, '0')} is not allowed`);
    }
  }

  array(n: number, depth: number): StrictValue[] {
    if (depth > LIMITS.MAX_DEPTH) malformed(`nesting deeper than ${LIMITS.MAX_DEPTH}`);
    // Every element takes at least one byte: a count beyond the remaining bytes is a lie (§4 rule 7).
    if (n > this.b.length - this.pos) malformed(`array declares ${n} elements, only ${this.b.length - this.pos} bytes remain`);
    const out: StrictValue[] = [];
    for (let i = 0; i < n; i++) out.push(this.value(depth + 1));
    return out;
  }

  map(n: number, depth: number): StrictMap {
    if (depth > LIMITS.MAX_DEPTH) malformed(`nesting deeper than ${LIMITS.MAX_DEPTH}`);
    if (n > LIMITS.MAX_MAP_ENTRIES) malformed(`map with ${n} entries, at most ${LIMITS.MAX_MAP_ENTRIES} allowed`);
    // Every entry takes at least two bytes (a fixstr key and a fixint value).
    if (2 * n > this.b.length - this.pos) malformed(`map declares ${n} entries, only ${this.b.length - this.pos} bytes remain`);
    const keys: string[] = [];
    const values: StrictValue[] = [];
    for (let i = 0; i < n; i++) {
      const kl = this.strLength(this.u8());
      if (kl < 0) malformed('map key is not a string');
      const k = this.str(kl);
      if (keys.includes(k)) malformed(`duplicate map key ${JSON.stringify(k)}`);
      keys.push(k);
      values.push(this.value(depth + 1));
    }
    return new StrictMap(keys, values);
  }
}

/**
 * Decodes `body` (one frame body, at most MAX_FRAME_BYTES bytes) as exactly one canonical value of the
 * protocol's msgpack subset whose top level is a map (§4 rules 1-8). Binary values in the result are
 * views into `body`. Throws ProtocolError MALFORMED_FRAME on any violation.
 */
export function decodeStrict(body: Uint8Array): StrictMap {
  if (body.length === 0) malformed('empty frame');
  const first = body[0]!;
  // §4 rule 8; checked first so that a scalar body is "not a map" rather than "trailing bytes".
  if (!((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) malformed('a frame must be a msgpack map');
  const s = new Scanner(body);
  const v = s.value(1) as StrictMap;
  if (s.pos !== body.length) malformed(`${body.length - s.pos} trailing bytes after the frame value`);
  return v;
}

/**
 * Proves that `body` is exactly one canonical value of the protocol's msgpack subset whose top level is
 * a map (§4 rules 1-8). Throws ProtocolError MALFORMED_FRAME otherwise.
 */
export function checkStrict(body: Uint8Array): void {
  decodeStrict(body);
}
