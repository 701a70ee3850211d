/** Lower-case hex for vector files (spec/VECTORS.md: every byte string is hex). */

/** Encodes bytes as lower-case hex, two characters per byte. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Decodes lower-case or upper-case hex (an even number of hex digits); throws on anything else. */
export function fromHex(s: unknown, where = 'hex'): Uint8Array {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new TypeError(`${where}: expected an even-length hex string`);
  }
  return new Uint8Array(Buffer.from(s, 'hex'));
}
