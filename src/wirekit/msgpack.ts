/**
 * A msgpack tree that the mutation engine can bend out of shape.
 *
 * `parseTree` reads a canonical frame body (the protocol's msgpack subset, spec §4) into nodes that remember
 * their values; `writeTree` writes nodes back, by default canonically, but each node may force a longer
 * header form (non-canonical, §4 rule 3), lie about its declared size (§4 rule 7), or be replaced by raw
 * bytes of a forbidden type (§4 rule 1). The reference decoder (src/codec) then says what the relay must
 * answer; this module never decides that.
 */

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

function header(fix: number | undefined, tags: Partial<Record<Form, number>>, form: Form, n: number): Buffer {
  switch (form) {
    case 'fix':
      if (fix === undefined) throw new RangeError('no fix form');
      return Buffer.from([fix + (n & 0x1f)]);
    case '8':
      return Buffer.from([tags['8']!, n & 0xff]);
    case '16': {
      const h = Buffer.alloc(3);
      h[0] = tags['16']!;
      h.writeUInt16BE(n & 0xffff, 1);
      return h;
    }
    case '32': {
      const h = Buffer.alloc(5);
      h[0] = tags['32']!;
      h.writeUInt32BE(n >>> 0, 1);
      return h;
    }
    default:
      throw new RangeError(`no ${form} header form`);
  }
}

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
      return shortestUint(n.value);
    case 'str':
      return shortestLen(n.bytes.length, 31, true);
    case 'bin':
      return shortestLen(n.bytes.length, -1, true) === 'fix' ? '8' : shortestLen(n.bytes.length, -1, true);
    case 'array':
      return shortestLen(n.items.length, 15, false);
    case 'map':
      return shortestLen(n.entries.length, 15, false);
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
      case 'uint': {
        const form = x.form ?? shortestUint(x.value);
        if (form === 'fix') parts.push(Buffer.from([x.value & 0x7f]));
        else if (form === '8') parts.push(Buffer.from([0xcc, x.value & 0xff]));
        else if (form === '16') {
          const h = Buffer.alloc(3);
          h[0] = 0xcd;
          h.writeUInt16BE(x.value & 0xffff, 1);
          parts.push(h);
        } else if (form === '32') {
          const h = Buffer.alloc(5);
          h[0] = 0xce;
          h.writeUInt32BE(x.value >>> 0, 1);
          parts.push(h);
        } else {
          const h = Buffer.alloc(9);
          h[0] = 0xcf;
          h.writeBigUInt64BE(BigInt(x.value), 1);
          parts.push(h);
        }
        return;
      }
      case 'str': {
        const n = x.declared ?? x.bytes.length;
        parts.push(header(0xa0, { '8': 0xd9, '16': 0xda, '32': 0xdb }, x.form ?? shortestLen(x.bytes.length, 31, true), n), x.bytes);
        return;
      }
      case 'bin': {
        const n = x.declared ?? x.bytes.length;
        const form = x.form ?? (x.bytes.length <= 0xff ? '8' : x.bytes.length <= 0xffff ? '16' : '32');
        parts.push(header(undefined, { '8': 0xc4, '16': 0xc5, '32': 0xc6 }, form === 'fix' ? '8' : form, n), x.bytes);
        return;
      }
      case 'array': {
        const n = x.declared ?? x.items.length;
        parts.push(header(0x90, { '16': 0xdc, '32': 0xdd }, x.form ?? shortestLen(x.items.length, 15, false), n));
        x.items.forEach(walk);
        return;
      }
      case 'map': {
        const n = x.declared ?? x.entries.length;
        parts.push(header(0x80, { '16': 0xde, '32': 0xdf }, x.form ?? shortestLen(x.entries.length, 15, false), n));
        for (const [k, v] of x.entries) {
          walk(k);
          walk(v);
        }
        return;
      }
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
