/**
 * Byte-string helpers of the core, over plain Uint8Array (no Buffer): the core runs in a browser as it
 * runs in Node (../shared/STYLE.md "The core runs anywhere"). Nothing here is a cryptographic primitive.
 */

const utf8Encoder = new TextEncoder();

/** The UTF-8 bytes of `s`. */
export function utf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

/** The concatenation of `parts`, in a fresh array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Writes `n` (0..2^32-1) big-endian into `out` at `at`. */
export function writeU32BE(out: Uint8Array, at: number, n: number): void {
  // Byte by byte: a DataView per call was an allocation on every message's hot path (issue 16).
  if (!(n >= 0 && n <= 0xffffffff && Number.isInteger(n))) throw new RangeError(`u32 out of range: ${n}`);
  if (!(at >= 0 && at + 4 <= out.length)) throw new RangeError(`u32 at ${at} outside ${out.length} bytes`);
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
}

/** Reads a big-endian u32 from `b` at `at`. */
export function readU32BE(b: Uint8Array, at: number): number {
  if (!(at >= 0 && at + 4 <= b.length)) throw new RangeError(`u32 at ${at} outside ${b.length} bytes`);
  return ((b[at] as number) * 0x1000000 + (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number)));
}

/** Writes `n` (a safe integer, >= 0) as a big-endian u64 into `out` at `at`. */
export function writeU64BE(out: Uint8Array, at: number, n: number): void {
  // Two u32 halves instead of a DataView and a BigInt per call (every message's nonce and ad, issue 16).
  if (!(n >= 0 && Number.isSafeInteger(n))) throw new RangeError(`u64 out of range: ${n}`);
  writeU32BE(out, at, Math.floor(n / 0x100000000));
  writeU32BE(out, at + 4, n >>> 0);
}

/**
 * Equality of two byte strings in time that depends only on their length (never on where they differ);
 * false, not a throw, when the lengths differ. For secrets: MACs, shared secrets, keys.
 */
export function equalSecret(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= (a[i] as number) ^ (b[i] as number);
  return acc === 0;
}

/** True when every byte of `b` is zero (constant time in the length). */
export function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i] as number;
  return acc === 0;
}

/** Lower-case hex, two characters per byte. */
export function bytesToHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i] as number).toString(16).padStart(2, '0');
  return s;
}

/** Overwrites every array given with zeros (skips undefined). */
export function erase(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}

/** `lp(x)` of spec §1: a 4-byte big-endian length, then the bytes (strings as UTF-8). */
export function lp(x: Uint8Array | string): Uint8Array {
  const b = typeof x === 'string' ? utf8(x) : x;
  const out = new Uint8Array(4 + b.length);
  writeU32BE(out, 0, b.length);
  out.set(b, 4);
  return out;
}
