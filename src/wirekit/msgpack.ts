/**
 * The one msgpack builder of the wire kit (spec/PROTOCOL.md §4), for vectors, tests, the conformance kit
 * and the fuzzer. Independent of the codec under test: it writes exactly the bytes asked for, canonical
 * by default (§4 rule 3), and can also write every defect a receiver has to refuse: a longer header form
 * than needed (non-canonical), a declared size that lies (§4 rule 7), raw bytes of a forbidden type
 * (§4 rule 1). Nothing here decides what a receiver must answer; the reference decoder (src/codec) does.
 *
 * Two ways to build: the value helpers (`uint`, `str`, `bin`, `array`, `map`, `wire`, ...) for bytes
 * spelled out by hand, and a tree (`parseTree`, `writeTree`) whose nodes may carry a `form` or a
 * `declared` size, for the fuzzer's mutations.
 */

export type Bytes = Uint8Array;

/** A header form: the msgpack family member used to write a node's header. */
export type Form = 'fix' | '8' | '16' | '32' | '64';

export type Node =
  | { kind: 'uint'; value: number; form?: Form }
  | { kind: 'str'; bytes: Buffer; form?: Form; declared?: number }
  | { kind: 'bin'; bytes: Buffer; form?: Form; declared?: number }
  | { kind: 'array'; items: Node[]; form?: Form; declared?: number }
  | { kind: 'map'; entries: [Node, Node][]; form?: Form; declared?: number }
  | { kind: 'raw'; bytes: Buffer };

/** Parses one msgpack value of the protocol subset; throws RangeError on anything else (seeds are valid). */
export function parseTree(b: Uint8Array): Node {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  let pos = 0;
  const take = (n: number): Buffer => {
    if (pos + n > buf.length) throw new RangeError('truncated msgpack');
    const out = Buffer.from(buf.subarray(pos, pos + n));
    pos += n;
    return out;
  };
  const value = (): Node => {
    const tag = take(1)[0]!;
    if (tag <= 0x7f) return { kind: 'uint', value: tag };
    if (tag >= 0x80 && tag <= 0x8f) return map(tag - 0x80);
    if (tag >= 0x90 && tag <= 0x9f) return array(tag - 0x90);
    if (tag >= 0xa0 && tag <= 0xbf) return { kind: 'str', bytes: take(tag - 0xa0) };
    switch (tag) {
      case 0xcc:
        return { kind: 'uint', value: take(1).readUInt8(0) };
      case 0xcd:
        return { kind: 'uint', value: take(2).readUInt16BE(0) };
      case 0xce:
        return { kind: 'uint', value: take(4).readUInt32BE(0) };
      case 0xcf:
        return { kind: 'uint', value: Number(take(8).readBigUInt64BE(0)) };
      case 0xd9:
        return { kind: 'str', bytes: take(take(1).readUInt8(0)) };
      case 0xda:
        return { kind: 'str', bytes: take(take(2).readUInt16BE(0)) };
      case 0xdb:
        return { kind: 'str', bytes: take(take(4).readUInt32BE(0)) };
      case 0xc4:
        return { kind: 'bin', bytes: take(take(1).readUInt8(0)) };
      case 0xc5:
        return { kind: 'bin', bytes: take(take(2).readUInt16BE(0)) };
      case 0xc6:
        return { kind: 'bin', bytes: take(take(4).readUInt32BE(0)) };
      case 0xdc:
        return array(take(2).readUInt16BE(0));
      case 0xdd:
        return array(take(4).readUInt32BE(0));
      case 0xde:
        return map(take(2).readUInt16BE(0));
      case 0xdf:
        return map(take(4).readUInt32BE(0));
      default:
        throw new RangeError(`msgpack type 0x${tag.toString(16)} outside the protocol subset`);
    }
  };
  const array = (n: number): Node => {
    const items: Node[] = [];
    for (let i = 0; i < n; i++) items.push(value());
    return { kind: 'array', items };
  };
  const map = (n: number): Node => {
    const entries: [Node, Node][] = [];
    for (let i = 0; i < n; i++) entries.push([value(), value()]);
    return { kind: 'map', entries };
  };
  const root = value();
  if (pos !== buf.length) throw new RangeError('trailing bytes after msgpack value');
  return root;
}

/** The msgpack families the protocol's subset uses, with the tag of each header form. */
const FAMILIES = {
  uint: { fix: 0x00, mask: 0x7f, '8': 0xcc, '16': 0xcd, '32': 0xce, '64': 0xcf },
  str: { fix: 0xa0, mask: 0x1f, '8': 0xd9, '16': 0xda, '32': 0xdb },
  bin: { '8': 0xc4, '16': 0xc5, '32': 0xc6 },
  array: { fix: 0x90, mask: 0x1f, '16': 0xdc, '32': 0xdd },
  map: { fix: 0x80, mask: 0x1f, '16': 0xde, '32': 0xdf },
} as const satisfies Record<string, Partial<Record<Form, number>> & { fix?: number; mask?: number }>;
export type Family = keyof typeof FAMILIES;

function shortestUint(v: number): Form {
  if (v <= 0x7f) return 'fix';
  if (v <= 0xff) return '8';
  if (v <= 0xffff) return '16';
  if (v <= 0xffff_ffff) return '32';
  return '64';
}

function shortestLen(n: number, fixMax: number, has8: boolean): Form {
  if (n <= fixMax) return 'fix';
  if (has8 && n <= 0xff) return '8';
  if (n <= 0xffff) return '16';
  return '32';
}

/** The canonical (shortest) header form for a value (uint) or a length or count (the others). */
export function shortestForm(family: Family, n: number): Form {
  switch (family) {
    case 'uint':
      return shortestUint(n);
    case 'str':
      return shortestLen(n, 31, true);
    case 'bin':
      return shortestLen(n, -1, true);
    default:
      return shortestLen(n, 15, false);
  }
}

/**
 * A header of `family` in `form` carrying `n` (the value itself for uint). Canonical by default; a form
 * too small for `n` keeps only the low bits that fit (that too is a defect the fuzzer writes).
 */
export function head(family: Family, n: number, form: Form = shortestForm(family, n)): Buffer {
  const f: Partial<Record<Form | 'mask', number>> = FAMILIES[family];
  const tag = f[form];
  if (tag === undefined) throw new RangeError(`no ${form} header form for ${family}`);
  switch (form) {
    case 'fix':
      return Buffer.from([tag + (n & f.mask!)]);
    case '8':
      return Buffer.from([tag, n & 0xff]);
    case '16': {
      const h = Buffer.alloc(3);
      h[0] = tag;
      h.writeUInt16BE(n & 0xffff, 1);
      return h;
    }
    case '32': {
      const h = Buffer.alloc(5);
      h[0] = tag;
      h.writeUInt32BE(n >>> 0, 1);
      return h;
    }
    case '64': {
      const h = Buffer.alloc(9);
      h[0] = tag;
      h.writeBigUInt64BE(BigInt(n), 1);
      return h;
    }
  }
}

// ---- values spelled out by hand ----

/** Concatenates byte strings; a string argument is taken as hex (white space ignored). */
export function cat(...parts: (Bytes | string)[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p.replace(/\s+/g, ''), 'hex') : p)));
}

/** An unsigned integer (positive fixint, uint 8/16/32/64), canonical unless `form` says otherwise. */
export function uint(n: number, form?: Form): Buffer {
  return head('uint', n, form);
}

/** uint 64 form of any value (canonical only for values above 2^32 - 1). */
export function uint64(n: bigint): Buffer {
  const b = Buffer.alloc(9);
  b[0] = 0xcf;
  b.writeBigUInt64BE(n, 1);
  return b;
}

/** The header of a str of `n` bytes. */
export function strHeader(n: number, form?: Form): Buffer {
  return head('str', n, form);
}

/** A str of the UTF-8 bytes of `s`, or of raw bytes (which need not be valid UTF-8). */
export function str(s: string | Bytes, form?: Form): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([strHeader(bytes.length, form), bytes]);
}

/** The header of a bin of `n` bytes. */
export function binHeader(n: number, form?: Form): Buffer {
  return head('bin', n, form);
}

/** A bin. */
export function bin(bytes: Bytes, form?: Form): Buffer {
  return Buffer.concat([binHeader(bytes.length, form), bytes]);
}

/** The header of an array of `n` elements. */
export function arrayHeader(n: number, form?: Form): Buffer {
  return head('array', n, form);
}

/** An array of already-encoded elements. */
export function array(items: readonly Bytes[]): Buffer {
  return Buffer.concat([arrayHeader(items.length), ...items]);
}

/** The header of a map of `n` entries. */
export function mapHeader(n: number, form?: Form): Buffer {
  return head('map', n, form);
}

/** A map of (key, encoded value) entries in the given order; a string key is written as a str, a byte key as is. */
export function map(entries: ReadonlyArray<readonly [string | Bytes, Bytes]>): Buffer {
  return rawMap(entries.map(([k, v]) => [typeof k === 'string' ? str(k) : k, v] as const));
}

/** A map whose keys are already encoded, under any header (for a count that lies). */
export function rawMap(entries: ReadonlyArray<readonly [Bytes, Bytes]>, header: Bytes = mapHeader(entries.length)): Buffer {
  return Buffer.concat([header, ...entries.flatMap(([k, v]) => [k, v])]);
}

/** A bare 4-byte big-endian length prefix declaring `n` body bytes (spec §3). */
export function prefix(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** The 4-byte big-endian length prefix (declaring `declared`, by default the true length) followed by the body. */
export function wire(body: Bytes, declared: number = body.length): Buffer {
  return Buffer.concat([prefix(declared), body]);
}

/** `n` deterministic bytes (a fixed pattern, no randomness): byte i is (seed + 37 i) mod 256. */
export function pattern(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (seed + 37 * i) & 0xff;
  return out;
}

// ---- trees, for the fuzzer ----

/** The forms a node's kind can be written in (for "non-canonical form" mutations). */
export function formsOf(kind: Node['kind']): Form[] {
  switch (kind) {
    case 'uint':
      return ['fix', '8', '16', '32', '64'];
    case 'str':
      return ['fix', '8', '16', '32'];
    case 'bin':
      return ['8', '16', '32'];
    case 'array':
    case 'map':
      return ['fix', '16', '32'];
    default:
      return [];
  }
}

/** The canonical (shortest) form for a node, as src/codec/strict.ts demands. */
export function canonicalForm(n: Node): Form | undefined {
  switch (n.kind) {
    case 'uint':
      return shortestForm('uint', n.value);
    case 'str':
    case 'bin':
      return shortestForm(n.kind, n.bytes.length);
    case 'array':
      return shortestForm('array', n.items.length);
    case 'map':
      return shortestForm('map', n.entries.length);
    default:
      return undefined;
  }
}

/**
 * Writes a tree. A node's `form` overrides its canonical header (a form too small for the value is
 * truncated to fit: that too is a mutation), `declared` overrides the length or count in its header.
 */
export function writeTree(n: Node): Buffer {
  const parts: Buffer[] = [];
  const walk = (x: Node): void => {
    switch (x.kind) {
      case 'raw':
        parts.push(x.bytes);
        return;
      case 'uint':
        parts.push(head('uint', x.value, x.form));
        return;
      case 'str':
        parts.push(head('str', x.declared ?? x.bytes.length, x.form ?? shortestForm('str', x.bytes.length)), x.bytes);
        return;
      case 'bin': {
        const form = x.form ?? shortestForm('bin', x.bytes.length);
        parts.push(head('bin', x.declared ?? x.bytes.length, form === 'fix' ? '8' : form), x.bytes);
        return;
      }
      case 'array':
        parts.push(head('array', x.declared ?? x.items.length, x.form ?? shortestForm('array', x.items.length)));
        x.items.forEach(walk);
        return;
      case 'map':
        parts.push(head('map', x.declared ?? x.entries.length, x.form ?? shortestForm('map', x.entries.length)));
        for (const [k, v] of x.entries) {
          walk(k);
          walk(v);
        }
        return;
    }
  };
  walk(n);
  return Buffer.concat(parts);
}

/** A deep copy of a tree (mutations work on copies; seeds stay intact). */
export function cloneTree(n: Node): Node {
  switch (n.kind) {
    case 'uint':
      return { ...n };
    case 'str':
    case 'bin':
    case 'raw':
      return { ...n, bytes: Buffer.from(n.bytes) };
    case 'array':
      return { ...n, items: n.items.map(cloneTree) };
    case 'map':
      return { ...n, entries: n.entries.map(([k, v]) => [cloneTree(k), cloneTree(v)] as [Node, Node]) };
  }
}

/** A node in a tree, with a setter that replaces it in its parent (the root has none). */
export interface Place {
  node: Node;
  replace: ((m: Node) => void) | undefined;
  depth: number;
}

/** Every node of a tree in pre-order; `depth` 0 is the root (spec §4 rule 6 counts it as depth 1). */
export function nodesOf(root: Node): Place[] {
  const out: Place[] = [];
  const visit = (node: Node, replace: ((m: Node) => void) | undefined, depth: number): void => {
    out.push({ node, replace, depth });
    if (node.kind === 'array') node.items.forEach((c, i) => visit(c, (m) => (node.items[i] = m), depth + 1));
    if (node.kind === 'map')
      node.entries.forEach((e, i) => {
        visit(e[0], (m) => (node.entries[i]![0] = m), depth + 1);
        visit(e[1], (m) => (node.entries[i]![1] = m), depth + 1);
      });
  };
  visit(root, undefined, 0);
  return out;
}
