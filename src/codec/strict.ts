/**
 * Strict structural check of one msgpack value (spec/PROTOCOL.md §4 "Encoding rules").
 *
 * @msgpack/msgpack decodes invalid UTF-8 without complaint, accepts non-shortest encodings and has no
 * nesting limit, so before a frame body reaches it this pass proves that the bytes are exactly one value
 * of the protocol's msgpack subset in its one canonical form:
 * - types: positive integers up to 2^53 - 1, str, bin, array, map with str keys; nothing else
 *   (nil, bool, float, negative integers, ext are rejected);
 * - every integer and every length in its shortest encoding;
 * - strings valid UTF-8; no duplicate map keys;
 * - nesting depth at most LIMITS.MAX_DEPTH, map entries at most LIMITS.MAX_MAP_ENTRIES, and every declared
 *   count or length checked against the bytes that remain before anything is allocated;
 * - no trailing bytes.
 * Any violation is a ProtocolError MALFORMED_FRAME. The pass allocates nothing but map-key strings.
 */
import { ProtocolError } from '../errors.js';
import { LIMITS } from '../limits.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function malformed(detail: string): never {
  throw new ProtocolError('MALFORMED_FRAME', detail);
}

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

  /** Skips `n` bytes of string payload, checking UTF-8; returns the string only when `keep`. */
  str(n: number, keep: boolean): string | undefined {
    this.need(n);
    const start = this.pos;
    const end = start + n;
    const b = this.b;
    let ascii = true;
    for (let i = start; i < end; i++) {
      if (b[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    let s: string | undefined;
    if (!ascii || keep) {
      try {
        s = utf8.decode(b.subarray(start, end));
      } catch {
        malformed(`invalid UTF-8 in string at offset ${start}`);
      }
    }
    this.pos = end;
    return s;
  }

  /** Reads a string header (for map keys); returns its byte length or -1 when the byte is not a str type. */
  strLength(tag: number): number {
    if (tag >= 0xa0 && tag <= 0xbf) return tag - 0xa0;
    if (tag === 0xd9) {
      const n = this.u8();
      if (n < 32) malformed('non-canonical str8 for a string shorter than 32 bytes');
      return n;
    }
    if (tag === 0xda) {
      const n = this.u16();
      if (n < 0x100) malformed('non-canonical str16');
      return n;
    }
    if (tag === 0xdb) {
      const n = this.u32();
      if (n < 0x10000) malformed('non-canonical str32');
      return n;
    }
    return -1;
  }

  value(depth: number): void {
    const tag = this.u8();
    if (tag <= 0x7f) return; // positive fixint
    const sl = this.strLength(tag);
    if (sl >= 0) {
      this.str(sl, false);
      return;
    }
    if (tag >= 0x80 && tag <= 0x8f) return this.map(tag - 0x80, depth);
    if (tag >= 0x90 && tag <= 0x9f) return this.array(tag - 0x90, depth);
    switch (tag) {
      case 0xcc:
        if (this.u8() < 0x80) malformed('non-canonical uint8');
        return;
      case 0xcd:
        if (this.u16() < 0x100) malformed('non-canonical uint16');
        return;
      case 0xce:
        if (this.u32() < 0x10000) malformed('non-canonical uint32');
        return;
      case 0xcf: {
        const hi = this.u32();
        const lo = this.u32();
        if (hi === 0) malformed('non-canonical uint64');
        if (hi > 0x1f_ffff) malformed('integer above 2^53 - 1');
        void lo;
        return;
      }
      case 0xc4: {
        const n = this.u8();
        this.need(n);
        this.pos += n;
        return;
      }
      case 0xc5: {
        const n = this.u16();
        if (n < 0x100) malformed('non-canonical bin16');
        this.need(n);
        this.pos += n;
        return;
      }
      case 0xc6: {
        const n = this.u32();
        if (n < 0x10000) malformed('non-canonical bin32');
        this.need(n);
        this.pos += n;
        return;
      }
      case 0xdc: {
        const n = this.u16();
        if (n < 16) malformed('non-canonical array16');
        return this.array(n, depth);
      }
      case 0xdd: {
        const n = this.u32();
        if (n < 0x10000) malformed('non-canonical array32');
        return this.array(n, depth);
      }
      case 0xde: {
        const n = this.u16();
        if (n < 16) malformed('non-canonical map16');
        return this.map(n, depth);
      }
      case 0xdf: {
        const n = this.u32();
        if (n < 0x10000) malformed('non-canonical map32');
        return this.map(n, depth);
      }
      default:
        return malformed(`msgpack type 0x${tag.toString(16).padStart(2, '0')} is not allowed`);
    }
  }

  array(n: number, depth: number): void {
    if (depth >= LIMITS.MAX_DEPTH) malformed(`nesting deeper than ${LIMITS.MAX_DEPTH}`);
    // Every element takes at least one byte: a count beyond the remaining bytes is a lie.
    if (n > this.b.length - this.pos) malformed(`array declares ${n} elements, only ${this.b.length - this.pos} bytes remain`);
    for (let i = 0; i < n; i++) this.value(depth + 1);
  }

  map(n: number, depth: number): void {
    if (depth >= LIMITS.MAX_DEPTH) malformed(`nesting deeper than ${LIMITS.MAX_DEPTH}`);
    if (n > LIMITS.MAX_MAP_ENTRIES) malformed(`map with ${n} entries, at most ${LIMITS.MAX_MAP_ENTRIES} allowed`);
    if (2 * n > this.b.length - this.pos) malformed(`map declares ${n} entries, only ${this.b.length - this.pos} bytes remain`);
    const keys: string[] = [];
    for (let i = 0; i < n; i++) {
      const tag = this.u8();
      const kl = this.strLength(tag);
      if (kl < 0) malformed('map key is not a string');
      const k = this.str(kl, true)!;
      if (keys.includes(k)) malformed(`duplicate map key ${JSON.stringify(k)}`);
      keys.push(k);
      this.value(depth + 1);
    }
  }
}

/**
 * Proves that `body` is exactly one canonical value of the protocol's msgpack subset whose top level is
 * a map. Throws ProtocolError MALFORMED_FRAME otherwise.
 */
export function checkStrict(body: Uint8Array): void {
  if (body.length === 0) malformed('empty frame');
  const first = body[0]!;
  if (!((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) malformed('a frame must be a msgpack map');
  const s = new Scanner(body);
  s.value(0);
  if (s.pos !== body.length) malformed(`${body.length - s.pos} trailing bytes after the frame value`);
}
