/**
 * The mutation engine: turns one valid frame body into wire bytes that break one (or a few) of the rules
 * of spec §3 (framing) and §4 (encoding), or the field bounds of §6.
 *
 * A mutation only produces bytes. What the relay must answer is computed separately, by running the
 * reference decoder and the transition table over those bytes (src/wirekit/relay-model.ts), so a mutation that happens
 * to produce a valid frame is not a false alarm.
 */
import { LIMITS } from '../src/protocol/limits.js';
import { cloneTree, canonicalForm, formsOf, nodesOf, parseTree, writeTree, wire, type Form, type Node } from '../src/wirekit/msgpack.js';
import type { Prng } from './prng.js';

/** Wire bytes (length prefix included) and the names of the mutations that made them. */
export interface Mutant {
  ops: string[];
  wire: Buffer;
}

/** msgpack bytes of types the protocol forbids (§4 rule 1), each a complete value. */
const FORBIDDEN: readonly Buffer[] = [
  Buffer.from([0xc0]), // nil
  Buffer.from([0xc2]), // false
  Buffer.from([0xc3]), // true
  Buffer.from([0xc1]), // never used
  Buffer.from([0xca, 0x3f, 0x80, 0x00, 0x00]), // float32 1.0
  Buffer.from([0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]), // float64 1.0
  Buffer.from([0xff]), // negative fixint -1
  Buffer.from([0xe0]), // negative fixint -32
  Buffer.from([0xd0, 0x80]), // int8 -128
  Buffer.from([0xd0, 0x01]), // int8 1 (a signed type even for a positive value)
  Buffer.from([0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // int64 -1
  Buffer.from([0xd4, 0x01, 0x00]), // fixext1
  Buffer.from([0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]), // timestamp64
  Buffer.from([0xc7, 0x01, 0x05, 0x00]), // ext8
];

/** Invalid UTF-8 sequences (RFC 3629): overlong, surrogate, beyond U+10FFFF, stray and cut sequences. */
const BAD_UTF8: readonly Buffer[] = [
  Buffer.from([0xc0, 0x80]),
  Buffer.from([0xc1, 0xbf]),
  Buffer.from([0xe0, 0x80, 0x80]),
  Buffer.from([0xf0, 0x80, 0x80, 0x80]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xed, 0xbf, 0xbf]),
  Buffer.from([0xf4, 0x90, 0x80, 0x80]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
  Buffer.from([0x80]),
  Buffer.from([0xbf]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xff]),
  Buffer.from([0xfe]),
];

/** Declared sizes that lie: past the frame, at the protocol limits, and at the 2^16 / 2^32 edges. */
const HUGE_SIZES: readonly number[] = [0xffff_ffff, 0x7fff_ffff, 0x1_0000, 0xffff, LIMITS.MAX_FRAME_BYTES + 1, 0x100, 1 << 20];

/** Integers at and around the edges the encoding and the field bounds care about. */
const EDGE_UINTS: readonly number[] = [
  0, 1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 294, 511, 512, 513, 0xffff, 0x1_0000, 49152, 49153, 65536,
  65537, 0xffff_ffff, 0x1_0000_0000, LIMITS.MAX_UINT, LIMITS.MAX_UINT + 1, 2 ** 60,
];

type TreeOp = (root: Node, r: Prng) => string | undefined;

function typeConfusion(root: Node, r: Prng): string | undefined {
  const places = nodesOf(root).filter((p) => p.replace !== undefined);
  if (places.length === 0) return undefined;
  const p = r.pick(places);
  if (r.chance(0.6)) {
    p.replace!({ kind: 'raw', bytes: Buffer.from(r.pick(FORBIDDEN)) });
    return 'type-forbidden';
  }
  const swaps: Node[] = [
    { kind: 'uint', value: r.pick(EDGE_UINTS) },
    { kind: 'str', bytes: Buffer.from('x'.repeat(r.int(0, 40))) },
    { kind: 'bin', bytes: r.bytes(r.int(0, 40)) },
    { kind: 'array', items: [] },
    { kind: 'map', entries: [] },
  ];
  p.replace!(r.pick(swaps));
  return 'type-swap';
}

function nonCanonical(root: Node, r: Prng): string | undefined {
  const places = nodesOf(root).filter((p) => p.node.kind !== 'raw');
  if (places.length === 0) return undefined;
  const p = r.pick(places);
  const n = p.node as Exclude<Node, { kind: 'raw' }>;
  const forms = formsOf(n.kind);
  const canon = canonicalForm(n);
  const rank = (f: Form | undefined): number => (f === undefined ? 0 : forms.indexOf(f));
  const longer = forms.filter((f) => rank(f) > rank(canon));
  if (longer.length === 0) return undefined;
  n.form = r.pick(longer);
  return 'non-canonical';
}

function deepNesting(root: Node, r: Prng): string | undefined {
  const places = nodesOf(root).filter((p) => p.replace !== undefined);
  if (places.length === 0) return undefined;
  const p = r.pick(places);
  let n = p.node;
  const levels = r.pick([1, 2, 3, 4, 8, 64, 1000]);
  for (let i = 0; i < levels; i++) {
    n = r.chance(0.5) ? { kind: 'array', items: [n] } : { kind: 'map', entries: [[{ kind: 'str', bytes: Buffer.from('k') }, n]] };
  }
  p.replace!(n);
  return 'deep-nesting';
}

function hugeSize(root: Node, r: Prng): string | undefined {
  const places = nodesOf(root).filter((p) => p.node.kind === 'str' || p.node.kind === 'bin' || p.node.kind === 'array' || p.node.kind === 'map');
  if (places.length === 0) return undefined;
  const n = r.pick(places).node as Extract<Node, { declared?: number }>;
  const size = r.chance(0.3) ? lengthOf(n) + r.int(1, 8) : r.pick(HUGE_SIZES);
  n.declared = size;
  n.form = formFor(n.kind, size);
  return 'huge-declared-size';
}

/** The smallest header form of a kind that can declare `size` (so only the size lies, not the form). */
function formFor(kind: 'str' | 'bin' | 'array' | 'map', size: number): Form {
  if (size > 0xffff) return '32';
  if (kind === 'array' || kind === 'map') return size > 15 ? '16' : 'fix';
  if (size > 0xff) return '16';
  if (kind === 'str' && size < 32) return 'fix';
  return '8';
}

function lengthOf(n: Node): number {
  if (n.kind === 'str' || n.kind === 'bin') return n.bytes.length;
  if (n.kind === 'array') return n.items.length;
  if (n.kind === 'map') return n.entries.length;
  return 0;
}

function invalidUtf8(root: Node, r: Prng): string | undefined {
  const strs = nodesOf(root).filter((p) => p.node.kind === 'str');
  if (strs.length === 0) return undefined;
  const n = r.pick(strs).node as Extract<Node, { kind: 'str' }>;
  const bad = r.pick(BAD_UTF8);
  const at = r.int(0, n.bytes.length);
  n.bytes = Buffer.concat([n.bytes.subarray(0, at), bad, n.bytes.subarray(at)]);
  return 'invalid-utf8';
}

function mapKeys(root: Node, r: Prng): string | undefined {
  const maps = nodesOf(root).filter((p) => p.node.kind === 'map' && p.node.entries.length > 0);
  if (maps.length === 0) return undefined;
  const m = r.pick(maps).node as Extract<Node, { kind: 'map' }>;
  const i = r.below(m.entries.length);
  switch (r.below(6)) {
    case 0:
      m.entries.splice(i, 0, [cloneTree(m.entries[i]![0]), cloneTree(m.entries[i]![1])]);
      return 'duplicate-key';
    case 1:
      m.entries.splice(i, 1);
      return 'missing-key';
    case 2:
      m.entries.splice(i, 0, [{ kind: 'str', bytes: Buffer.from(r.pick(['x', 'type', '__proto__', 'constructor', 'T', 't '])) }, { kind: 'uint', value: 1 }]);
      return 'unknown-key';
    case 3: {
      const j = r.below(m.entries.length);
      const a = m.entries[i]!;
      m.entries[i] = m.entries[j]!;
      m.entries[j] = a;
      return 'key-order';
    }
    case 4:
      m.entries[i]![0] = r.chance(0.5) ? { kind: 'uint', value: r.int(0, 5) } : { kind: 'bin', bytes: Buffer.from(keyText(m.entries[i]![0])) };
      return 'non-string-key';
    default:
      while (m.entries.length <= LIMITS.MAX_MAP_ENTRIES) m.entries.push([{ kind: 'str', bytes: Buffer.from(`k${m.entries.length}`) }, { kind: 'uint', value: 0 }]);
      return 'too-many-entries';
  }
}

function keyText(n: Node): string {
  return n.kind === 'str' ? n.bytes.toString('latin1') : 'k';
}

function intEdge(root: Node, r: Prng): string | undefined {
  const ints = nodesOf(root).filter((p) => p.node.kind === 'uint');
  if (ints.length === 0) return undefined;
  const n = r.pick(ints).node as Extract<Node, { kind: 'uint' }>;
  n.value = r.chance(0.7) ? r.pick(EDGE_UINTS) : Math.max(0, n.value + r.int(-2, 2));
  return 'int-edge';
}

function fieldEdge(root: Node, r: Prng): string | undefined {
  const blobs = nodesOf(root).filter((p) => p.node.kind === 'str' || p.node.kind === 'bin');
  if (blobs.length === 0) return undefined;
  const n = r.pick(blobs).node as Extract<Node, { kind: 'str' | 'bin' }>;
  const target = r.pick([0, 1, 31, 32, 33, 64, 65, 255, 256, 257, 294, 512, 513, n.bytes.length - 1, n.bytes.length + 1]);
  const len = Math.max(0, target);
  const fill = n.kind === 'str' ? Buffer.from(r.pick(['a', '-', '.', ' ', '/', '\u00e9', '\u{1F600}']).repeat(len)).subarray(0, len) : r.bytes(len);
  n.bytes = n.bytes.length >= len ? Buffer.from(n.bytes.subarray(0, len)) : Buffer.concat([n.bytes, fill.subarray(0, len - n.bytes.length)]);
  return 'field-size-edge';
}

function frameType(root: Node, r: Prng): string | undefined {
  if (root.kind !== 'map' || root.entries.length === 0) return undefined;
  const t = root.entries.find(([k]) => k.kind === 'str' && k.bytes.toString() === 't');
  if (t === undefined) return undefined;
  t[1] = { kind: 'uint', value: r.chance(0.8) ? r.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x20, 0x21, 0x24, 0x31, 0x32, 0x7f, 0xff]) : r.int(0, 0xffff) };
  return 'frame-type';
}

const TREE_OPS: readonly TreeOp[] = [typeConfusion, nonCanonical, deepNesting, hugeSize, invalidUtf8, mapKeys, intEdge, fieldEdge, frameType];

type ByteOp = (body: Buffer, r: Prng) => [string, Buffer];

const BYTE_OPS: readonly ByteOp[] = [
  (b, r) => {
    const out = Buffer.from(b);
    const flips = r.int(1, 8);
    for (let i = 0; i < flips && out.length > 0; i++) out[r.below(out.length)]! ^= 1 << r.below(8);
    return ['bit-flip', out];
  },
  (b, r) => {
    const out = Buffer.from(b);
    if (out.length > 0) out[r.below(out.length)] = r.pick([0x00, 0x7f, 0x80, 0x8f, 0x90, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xcf, 0xd9, 0xdb, 0xdd, 0xdf, 0xff]);
    return ['byte-set', out];
  },
  (b, r) => ['truncate', Buffer.from(b.subarray(0, r.below(Math.max(1, b.length))))],
  (b, r) => ['extend', Buffer.concat([b, r.chance(0.5) ? r.bytes(r.int(1, 16)) : Buffer.from(r.pick(FORBIDDEN))])],
  (b, r) => {
    const at = r.int(0, b.length);
    return ['splice', Buffer.concat([b.subarray(0, at), r.bytes(r.int(1, 8)), b.subarray(at)])];
  },
  (b, r) => {
    if (b.length < 2) return ['duplicate-run', Buffer.concat([b, b])];
    const from = r.below(b.length - 1);
    const to = r.int(from + 1, Math.min(b.length, from + 64));
    return ['duplicate-run', Buffer.concat([b.subarray(0, to), b.subarray(from, to), b.subarray(to)])];
  },
  (b) => ['top-level-not-map', Buffer.concat([Buffer.from([0x91]), b])],
];

type PrefixOp = (body: Buffer, r: Prng) => [string, Buffer];

const PREFIX_OPS: readonly PrefixOp[] = [
  (b, r) => ['prefix-longer', wire(b, b.length + r.int(1, 16))],
  (b, r) => ['prefix-shorter', wire(b, Math.max(0, b.length - r.int(1, Math.max(1, b.length))))],
  (b, r) => ['prefix-huge', wire(b, r.pick([LIMITS.MAX_FRAME_BYTES + 1, 0x10_0000, 0x7fff_ffff, 0xffff_ffff, 0xffff_fffe, 0x8000_0000]))],
  (b) => ['prefix-zero', wire(b, 0)],
];

/**
 * One mutant of a valid frame body: 1 to 3 tree-level mutations (types, forms, nesting, sizes, UTF-8,
 * keys, integer and length edges), then possibly a byte-level one, then possibly a lying length prefix.
 */
export function mutate(seedBody: Uint8Array, r: Prng): Mutant {
  const ops: string[] = [];
  let body: Buffer;
  if (r.chance(0.75)) {
    const root = parseTree(seedBody);
    const rounds = r.int(1, 3);
    for (let i = 0; i < rounds; i++) {
      const op = r.pick(TREE_OPS)(root, r);
      if (op !== undefined) ops.push(op);
    }
    body = writeTree(root);
  } else {
    body = Buffer.from(seedBody);
  }
  if (ops.length === 0 || r.chance(0.25)) {
    const [op, out] = r.pick(BYTE_OPS)(body, r);
    ops.push(op);
    body = out;
  }
  if (r.chance(0.12)) {
    const [op, wire] = r.pick(PREFIX_OPS)(body, r);
    ops.push(op);
    return { ops, wire };
  }
  return { ops, wire: wire(body) };
}

/** Raw garbage that is not a frame at all: random bytes, ASCII protocol confusion, all-ones. */
export function garbage(r: Prng): Mutant {
  const kind = r.below(4);
  if (kind === 0) return { ops: ['garbage-random'], wire: r.bytes(r.int(1, 64)) };
  if (kind === 1) return { ops: ['garbage-http'], wire: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n') };
  if (kind === 2) return { ops: ['garbage-tls'], wire: Buffer.from('16030100a5010000a10303', 'hex') };
  return { ops: ['garbage-ones'], wire: Buffer.alloc(r.int(4, 12), 0xff) };
}
