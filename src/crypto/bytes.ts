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
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(at, n, false);
}

/** Reads a big-endian u32 from `b` at `at`. */
export function readU32BE(b: Uint8Array, at: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, false);
}

/** Writes `n` (a safe integer, >= 0) as a big-endian u64 into `out` at `at`. */
export function writeU64BE(out: Uint8Array, at: number, n: number): void {
  new DataView(out.buffer, out.byteOffset, out.byteLength).setBigUint64(at, BigInt(n), false);
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
