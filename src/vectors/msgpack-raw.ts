/**
 * A minimal msgpack byte builder for vectors and tests, independent of the codec under test: it writes
 * exactly the bytes asked for, canonical by default (spec/PROTOCOL.md §4 rule 3), so that invalid
 * inputs with one defect can be spelled out and valid frames cross-checked against the encoder.
 */

export type Bytes = Uint8Array;

/** Concatenates byte strings; a string argument is taken as hex. */
export function cat(...parts: (Bytes | string)[]): Bytes {
  return new Uint8Array(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p.replace(/\s+/g, ''), 'hex') : p))));
}

function be(n: number, width: number): Bytes {
  const out = new Uint8Array(width);
  let v = BigInt(n);
  for (let i = width - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Canonical unsigned integer (positive fixint, uint 8/16/32/64). */
export function uint(n: number): Bytes {
  if (n < 0x80) return cat(be(n, 1));
  if (n < 0x100) return cat('cc', be(n, 1));
  if (n < 0x10000) return cat('cd', be(n, 2));
  if (n < 0x1_0000_0000) return cat('ce', be(n, 4));
  return cat('cf', be(n, 8));
}

/** Canonical str header for a payload of `n` bytes. */
export function strHeader(n: number): Bytes {
  if (n < 32) return cat(be(0xa0 + n, 1));
  if (n < 0x100) return cat('d9', be(n, 1));
  if (n < 0x10000) return cat('da', be(n, 2));
  return cat('db', be(n, 4));
}

/** Canonical str of the UTF-8 bytes of `s`. */
export function str(s: string): Bytes {
  const b = Buffer.from(s, 'utf8');
  return cat(strHeader(b.length), b);
}

/** Canonical str header followed by arbitrary (possibly invalid UTF-8) payload bytes. */
export function strRaw(payload: Bytes): Bytes {
  return cat(strHeader(payload.length), payload);
}

/** Canonical bin. */
export function bin(b: Bytes): Bytes {
  if (b.length < 0x100) return cat('c4', be(b.length, 1), b);
  if (b.length < 0x10000) return cat('c5', be(b.length, 2), b);
  return cat('c6', be(b.length, 4), b);
}

/** Canonical array header for `n` elements. */
export function arrayHeader(n: number): Bytes {
  if (n < 16) return cat(be(0x90 + n, 1));
  if (n < 0x10000) return cat('dc', be(n, 2));
  return cat('dd', be(n, 4));
}

/** Canonical array of already-encoded elements. */
export function array(items: Bytes[]): Bytes {
  return cat(arrayHeader(items.length), ...items);
}

/** Canonical map header for `n` entries. */
export function mapHeader(n: number): Bytes {
  if (n < 16) return cat(be(0x80 + n, 1));
  if (n < 0x10000) return cat('de', be(n, 2));
  return cat('df', be(n, 4));
}

/** Canonical map; a string key is encoded as a canonical str, a byte key is used as is. */
export function map(entries: [string | Bytes, Bytes][]): Bytes {
  return cat(mapHeader(entries.length), ...entries.flatMap(([k, v]) => [typeof k === 'string' ? str(k) : k, v]));
}

/** The 4-byte big-endian length prefix followed by the body (spec §3). */
export function wire(body: Bytes, declared: number = body.length): Bytes {
  return cat(be(declared, 4), body);
}

/** `n` deterministic bytes (a fixed pattern, no randomness): byte i is (seed + 37 i) mod 256. */
export function pattern(n: number, seed: number): Bytes {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed + 37 * i) & 0xff;
  return out;
}
