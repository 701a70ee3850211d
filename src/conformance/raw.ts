/**
 * A raw msgpack byte builder for the conformance kit (spec/PROTOCOL.md §4).
 *
 * The codec's encoder can only produce canonical, valid frames; the kit must also send every kind of
 * invalid body a relay has to refuse. These helpers build msgpack bytes by hand, canonical by default,
 * with explicit helpers for the non-canonical and disallowed forms. Nothing here decodes.
 */

/** Canonical positive integer (positive fixint, uint 8/16/32/64). `n` must be a safe non-negative integer. */
export function uint(n: number): Buffer {
  if (n <= 0x7f) return Buffer.from([n]);
  if (n <= 0xff) return Buffer.from([0xcc, n]);
  if (n <= 0xffff) return Buffer.from([0xcd, n >> 8, n & 0xff]);
  if (n <= 0xffff_ffff) {
    const b = Buffer.alloc(5);
    b[0] = 0xce;
    b.writeUInt32BE(n, 1);
    return b;
  }
  return uint64(BigInt(n));
}

/** uint 64 form of any value (canonical only for values above 2^32 - 1). */
export function uint64(n: bigint): Buffer {
  const b = Buffer.alloc(9);
  b[0] = 0xcf;
  b.writeBigUInt64BE(n, 1);
  return b;
}

/** Canonical header for a str of `n` bytes. */
export function strHeader(n: number): Buffer {
  if (n < 32) return Buffer.from([0xa0 | n]);
  if (n <= 0xff) return Buffer.from([0xd9, n]);
  if (n <= 0xffff) return Buffer.from([0xda, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0xdb;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Canonical str of the UTF-8 bytes of `s`, or of raw bytes (which need not be valid UTF-8). */
export function str(s: string | Uint8Array): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s);
  return Buffer.concat([strHeader(bytes.length), bytes]);
}

/** Canonical header for a bin of `n` bytes. */
export function binHeader(n: number): Buffer {
  if (n <= 0xff) return Buffer.from([0xc4, n]);
  if (n <= 0xffff) return Buffer.from([0xc5, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0xc6;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Canonical bin. */
export function bin(bytes: Uint8Array): Buffer {
  return Buffer.concat([binHeader(bytes.length), Buffer.from(bytes)]);
}

/** Canonical array header for `n` elements. */
export function arrayHeader(n: number): Buffer {
  if (n <= 15) return Buffer.from([0x90 | n]);
  if (n <= 0xffff) return Buffer.from([0xdc, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Canonical array of already-encoded elements. */
export function array(items: readonly Buffer[]): Buffer {
  return Buffer.concat([arrayHeader(items.length), ...items]);
}

/** Canonical map header for `n` entries. */
export function mapHeader(n: number): Buffer {
  if (n <= 15) return Buffer.from([0x80 | n]);
  if (n <= 0xffff) return Buffer.from([0xde, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0xdf;
  b.writeUInt32BE(n, 1);
  return b;
}

/** A map of (key, encoded value) entries in the given order; keys are encoded as canonical str. */
export function map(entries: ReadonlyArray<readonly [string, Buffer]>): Buffer {
  return Buffer.concat([mapHeader(entries.length), ...entries.flatMap(([k, v]) => [str(k), v])]);
}

/** A map whose keys are already encoded (for non-string or non-canonical keys). */
export function rawMap(entries: ReadonlyArray<readonly [Buffer, Buffer]>, header: Buffer = mapHeader(entries.length)): Buffer {
  return Buffer.concat([header, ...entries.flatMap(([k, v]) => [k, v])]);
}

/** Prefixes a body with its 4-byte big-endian length (spec §3). */
export function wire(body: Uint8Array): Buffer {
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

/** A bare 4-byte length prefix declaring `n` body bytes. */
export function prefix(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}
