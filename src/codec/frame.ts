/**
 * Frame encoding and strict decoding (spec/PROTOCOL.md §3-§5).
 *
 * A frame is one msgpack map: `t` (the frame type code) first, then the catalogue's fields in catalogue
 * order, nothing else. `encodeFrame` produces that one canonical byte form; `decodeFrame` accepts only it.
 */
import { Encoder } from '@msgpack/msgpack';
import { ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { NICK_PATTERN, ROOM_PATTERN } from '../protocol/names.js';
import { FRAMES, frameName, type FieldSpec, type Frame, type FrameName, type FrameOf, type Layer, type LayerFrame, type Member } from '../protocol/frames.js';
import { decodeStrict, StrictMap } from './strict.js';

// The encoder only ever sees values checked against the catalogue (toWireObject), and for those
// @msgpack/msgpack writes the shortest forms of §4 rule 3; the vector generator cross-checks its output
// against an independent byte builder (src/wirekit/msgpack.ts).
const encoder = new Encoder({ initialBufferSize: 2048 });

function invalid(detail: string): never {
  throw new ProtocolError('INVALID_FIELD', detail);
}

/** `frame.field` (or `where` alone) for an error message: built only when a check fails. */
function fieldName(where: string, field: string | undefined): string {
  return field === undefined ? where : `${where}.${field}`;
}

/**
 * Checks a uint, str or bin value against its field spec (§6 bounds are inclusive). The field is named
 * `where` or `where.field` in an error; the name is built only then (every frame's fields pass here).
 * With `encoding`, a str must also have a UTF-8 form (no lone UTF-16 surrogate, §4 rule 4).
 */
function checkScalar(f: FieldSpec, v: unknown, frameOrWhere: string, field?: string, encoding = false): void {
  switch (f.kind) {
    case 'uint':
      // Number.isSafeInteger also keeps an encoder from emitting a float for 1.5 or NaN.
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) invalid(`${fieldName(frameOrWhere, field)}: expected an integer`);
      if (v < f.min || v > f.max) invalid(`${fieldName(frameOrWhere, field)}: expected ${f.min}..${f.max}, got ${v}`);
      return;
    case 'str': {
      if (typeof v !== 'string') invalid(`${fieldName(frameOrWhere, field)}: expected a string`);
      if (f.alphabet !== undefined) {
        // Both alphabets are ASCII, so once the pattern holds, UTF-16 length = UTF-8 byte length.
        const ok = f.alphabet === 'nick' ? NICK_PATTERN.test(v) : ROOM_PATTERN.test(v);
        if (!ok && v.length > 0) invalid(`${fieldName(frameOrWhere, field)}: characters outside the ${f.alphabet} alphabet`);
        if (v.length < f.min || v.length > f.max) invalid(`${fieldName(frameOrWhere, field)}: expected ${f.min}..${f.max} bytes, got ${v.length}`);
        return;
      }
      const n = encoding ? wellFormedUtf8Length(v) : utf8Length(v);
      // A JS string may hold a lone UTF-16 surrogate, which has no UTF-8 form (§4 rule 4); the msgpack
      // encoder would write it as invalid UTF-8 that every decoder must reject.
      if (n < 0) invalid(`${fieldName(frameOrWhere, field)}: lone UTF-16 surrogate`);
      if (n < f.min || n > f.max) invalid(`${fieldName(frameOrWhere, field)}: expected ${f.min}..${f.max} UTF-8 bytes, got ${n}`);
      return;
    }
    case 'bin':
      if (!(v instanceof Uint8Array)) invalid(`${fieldName(frameOrWhere, field)}: expected binary`);
      if (v.length < f.min || v.length > f.max) invalid(`${fieldName(frameOrWhere, field)}: expected ${f.min}..${f.max} bytes, got ${v.length}`);
      return;
    case 'members':
      // Checked by the callers: the wire form (StrictMap) and the typed form ({nick, key}) differ.
      return;
  }
}

const MEMBER_NICK = FRAMES.PEER_JOINED.fields[0];
const MEMBER_KEY = FRAMES.PEER_JOINED.fields[1];
const MEMBER_KEYS = ['nick', 'key'] as const;

function checkMembersCount(f: FieldSpec, v: unknown, where: string): asserts v is unknown[] {
  if (!Array.isArray(v)) invalid(`${where}: expected an array`);
  if (v.length < f.min || v.length > f.max) invalid(`${where}: expected ${f.min}..${f.max} members, got ${v.length}`);
}

/**
 * Unknown or missing keys are INVALID_FIELD; all known and present but out of order is non-canonical,
 * MALFORMED_FRAME (§4 rule 9).
 */
function checkKeys(keys: readonly string[], expected: readonly string[], where: string): void {
  let inOrder = keys.length === expected.length;
  for (let i = 0; inOrder && i < keys.length; i++) if (keys[i] !== expected[i]) inOrder = false;
  if (inOrder) return;
  for (const k of keys) if (!expected.includes(k)) invalid(`${where}: unknown field ${JSON.stringify(k)}`);
  for (const k of expected) if (!keys.includes(k)) invalid(`${where}: missing field ${JSON.stringify(k)}`);
  throw new ProtocolError('MALFORMED_FRAME', `${where}: fields out of canonical order`);
}

/** A member map from the wire: exactly {nick, key} in that order, with PEER_JOINED's bounds. */
function memberFromWire(m: unknown, where: string): Member {
  if (!(m instanceof StrictMap)) invalid(`${where}: expected a map`);
  checkKeys(m.keys, MEMBER_KEYS, where);
  const nick = m.values[0];
  const key = m.values[1];
  checkScalar(MEMBER_NICK, nick, `${where}.nick`);
  checkScalar(MEMBER_KEY, key, `${where}.key`);
  return { nick: nick as string, key: key as Uint8Array };
}

const KEY_LISTS: Record<FrameName, readonly string[]> = Object.fromEntries(
  (Object.keys(FRAMES) as FrameName[]).map((n) => [n, ['t', ...FRAMES[n].fields.map((f) => f.name)]]),
) as unknown as Record<FrameName, readonly string[]>;

/**
 * Decodes one frame body (the bytes after the length prefix, at most MAX_FRAME_BYTES bytes) of the given
 * layer (§4, §5, §6). Throws ProtocolError: FRAME_TOO_LARGE (body over MAX_FRAME_BYTES), MALFORMED_FRAME
 * (not one canonical msgpack map of the §4 subset, or fields out of order), INVALID_FIELD (missing or
 * non-integer `t`; unknown, missing, mistyped or out-of-bounds field), UNKNOWN_FRAME_TYPE (no frame of
 * this layer has that `t`). Binary fields of the result are views into `body`: the caller must not
 * reuse that buffer.
 */
export function decodeFrame<Ly extends Layer>(body: Uint8Array, layer: Ly): LayerFrame<Ly> {
  if (body.length > LIMITS.MAX_FRAME_BYTES) throw new ProtocolError('FRAME_TOO_LARGE', `frame of ${body.length} bytes`);
  const m = decodeStrict(body);
  const t = m.get('t');
  if (t === undefined) invalid('missing field "t"');
  if (typeof t !== 'number') invalid('"t": expected an integer');
  const name = frameName(t);
  if (name === undefined || FRAMES[name].layer !== layer) {
    throw new ProtocolError('UNKNOWN_FRAME_TYPE', `no ${layer} frame has type ${t}`);
  }
  checkKeys(m.keys, KEY_LISTS[name], name);
  const out: Record<string, unknown> = { type: name };
  const fields = FRAMES[name].fields as readonly FieldSpec[];
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    // checkKeys proved keys[i + 1] === f.name.
    const v = m.values[i + 1];
    if (f.kind === 'members') {
      const where = `${name}.${f.name}`;
      checkMembersCount(f, v, where);
      out[f.name] = v.map((x, j) => memberFromWire(x, `${where}[${j}]`));
    } else {
      checkScalar(f, v, name, f.name);
      out[f.name] = v;
    }
  }
  return out as LayerFrame<Ly>;
}

/** Checks a frame against its catalogue entry and returns the msgpack object in canonical key order. */
function toWireObject(frame: Frame): Record<string, unknown> {
  const spec = (FRAMES as Record<string, (typeof FRAMES)[FrameName] | undefined>)[frame.type];
  if (spec === undefined || !Object.hasOwn(FRAMES, frame.type)) invalid(`unknown frame type ${String(frame.type)}`);
  const rec = frame as unknown as Record<string, unknown>;
  const fields = spec.fields as readonly FieldSpec[];
  // for-in over own keys: the same keys as Object.keys, without an array per frame.
  for (const k in rec) {
    if (Object.hasOwn(rec, k) && k !== 'type' && !fields.some((f) => f.name === k)) invalid(`${frame.type}: unknown field ${k}`);
  }
  const obj: Record<string, unknown> = { t: spec.code };
  for (const f of fields) {
    const v = rec[f.name];
    if (f.kind === 'members') {
      const where = `${frame.type}.${f.name}`;
      checkMembersCount(f, v, where);
      obj[f.name] = v.map((m, j) => {
        if (typeof m !== 'object' || m === null) invalid(`${where}[${j}]: expected a member`);
        const mr = m as Record<string, unknown>;
        for (const k of Object.keys(mr)) if (k !== 'nick' && k !== 'key') invalid(`${where}[${j}]: unknown field ${k}`);
        checkScalar(MEMBER_NICK, mr['nick'], `${where}[${j}].nick`);
        checkScalar(MEMBER_KEY, mr['key'], `${where}[${j}].key`);
        return { nick: mr['nick'], key: mr['key'] };
      });
    } else {
      checkScalar(f, v, frame.type, f.name, true);
      obj[f.name] = v;
    }
  }
  return obj;
}

/**
 * Encodes a frame to its one canonical body (no length prefix, at most MAX_FRAME_BYTES bytes). Throws
 * ProtocolError INVALID_FIELD when the frame breaks the catalogue, FRAME_TOO_LARGE when its body would
 * exceed MAX_FRAME_BYTES (a JOINED with many members can), so an encoder never emits what a decoder
 * must reject.
 */
export function encodeFrame(frame: Frame): Uint8Array {
  const body = encoder.encode(toWireObject(frame));
  if (body.length > LIMITS.MAX_FRAME_BYTES) throw new ProtocolError('FRAME_TOO_LARGE', `frame of ${body.length} bytes`);
  return body;
}

/**
 * Encodes a frame with its 4-byte big-endian length prefix, ready for the wire (4 + at most
 * MAX_FRAME_BYTES bytes). Throws as encodeFrame.
 */
export function encodeWire(frame: Frame): Buffer {
  // A Buffer still: the relay, the cluster and the client's TCP queue hold it as one (the last Buffer in
  // the codec; encodeFrame, decodeFrame and the validators are Buffer-free).
  const body = encoder.encodeSharedRef(toWireObject(frame));
  if (body.length > LIMITS.MAX_FRAME_BYTES) throw new ProtocolError('FRAME_TOO_LARGE', `frame of ${body.length} bytes`);
  const out = Buffer.allocUnsafe(LIMITS.LENGTH_PREFIX_BYTES + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, LIMITS.LENGTH_PREFIX_BYTES);
  return out;
}

/**
 * The UTF-8 length of `s` in bytes, as TextEncoder would encode it (a lone surrogate becomes U+FFFD,
 * 3 bytes), without encoding it.
 */
export function utf8Length(s: string): number {
  return utf8Bytes(s, false);
}

/** utf8Length of a string that has a UTF-8 form, or -1 when `s` holds a lone UTF-16 surrogate (one pass). */
function wellFormedUtf8Length(s: string): number {
  return utf8Bytes(s, true);
}

/** The one UTF-8 length loop: a lone surrogate counts as U+FFFD (3 bytes), or ends it with -1 if `strict`. */
function utf8Bytes(s: string, strict: boolean): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c < 0xd800 || c > 0xdfff) n += 3;
    else if (c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else if (strict) return -1;
    else n += 3;
  }
  return n;
}

/** Builds a typed frame value; a convenience that keeps call sites short and checked. */
export function frame<N extends FrameName>(type: N, fields: Omit<FrameOf<N>, 'type'>): FrameOf<N> {
  return { type, ...fields } as FrameOf<N>;
}
