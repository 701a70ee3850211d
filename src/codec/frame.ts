/**
 * Frame encoding and strict decoding (spec/PROTOCOL.md §3-§5).
 *
 * A frame is one msgpack map: `t` (the frame type code) first, then the catalogue's fields in catalogue
 * order, nothing else. `encodeFrame` produces that one canonical byte form; `decodeFrame` accepts only it.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import { ProtocolError } from '../errors.js';
import { LIMITS, NICK_PATTERN, ROOM_PATTERN } from '../limits.js';
import { FRAMES, frameName, type FieldSpec, type Frame, type FrameName, type FrameOf, type Layer, type LayerFrame } from './catalogue.js';
import { checkStrict } from './strict.js';

// The structural check has already bounded every length by the frame size, so these limits are a
// second line of defence only.
const decoder = new Decoder({
  maxStrLength: LIMITS.MAX_FRAME_BYTES,
  maxBinLength: LIMITS.MAX_FRAME_BYTES,
  maxArrayLength: LIMITS.MAX_ROOM_SIZE,
  maxMapLength: LIMITS.MAX_MAP_ENTRIES,
  maxExtLength: 0,
});
const encoder = new Encoder({ initialBufferSize: 2048 });

function invalid(detail: string): never {
  throw new ProtocolError('INVALID_FIELD', detail);
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function checkField(f: FieldSpec, v: unknown, where: string): void {
  switch (f.kind) {
    case 'uint':
      if (typeof v !== 'number') invalid(`${where}: expected an integer`);
      if (v < f.min || v > f.max) invalid(`${where}: expected ${f.min}..${f.max}, got ${v}`);
      return;
    case 'str': {
      if (typeof v !== 'string') invalid(`${where}: expected a string`);
      const n = utf8Length(v);
      if (n < f.min || n > f.max) invalid(`${where}: expected ${f.min}..${f.max} UTF-8 bytes, got ${n}`);
      if (f.alphabet === 'nick' && !NICK_PATTERN.test(v)) invalid(`${where}: characters outside [A-Za-z0-9_-]`);
      if (f.alphabet === 'room' && !ROOM_PATTERN.test(v)) invalid(`${where}: characters outside [A-Za-z0-9_.-]`);
      return;
    }
    case 'bin':
      if (!(v instanceof Uint8Array)) invalid(`${where}: expected binary`);
      if (v.length < f.min || v.length > f.max) invalid(`${where}: expected ${f.min}..${f.max} bytes, got ${v.length}`);
      return;
    case 'members': {
      if (!Array.isArray(v)) invalid(`${where}: expected an array`);
      if (v.length < f.min || v.length > f.max) invalid(`${where}: expected ${f.min}..${f.max} members, got ${v.length}`);
      v.forEach((m: unknown, i) => checkMember(m, `${where}[${i}]`));
      return;
    }
  }
}

const MEMBER_FIELDS = [FRAMES.PEER_JOINED.fields[0], FRAMES.PEER_JOINED.fields[1]] as const;

function checkMember(m: unknown, where: string): void {
  if (typeof m !== 'object' || m === null || Array.isArray(m) || m instanceof Uint8Array) invalid(`${where}: expected a map`);
  checkKeys(Object.keys(m), ['nick', 'key'], where);
  const rec = m as Record<string, unknown>;
  for (const f of MEMBER_FIELDS) checkField(f, rec[f.name], `${where}.${f.name}`);
}

/** Unknown or missing keys are INVALID_FIELD; all known and present but out of order is non-canonical. */
function checkKeys(keys: readonly string[], expected: readonly string[], where: string): void {
  for (const k of keys) if (!expected.includes(k)) invalid(`${where}: unknown field ${JSON.stringify(k)}`);
  for (const k of expected) if (!keys.includes(k)) invalid(`${where}: missing field ${JSON.stringify(k)}`);
  for (let i = 0; i < expected.length; i++) {
    if (keys[i] !== expected[i]) throw new ProtocolError('MALFORMED_FRAME', `${where}: fields out of canonical order`);
  }
}

const KEY_LISTS: Record<FrameName, readonly string[]> = Object.fromEntries(
  (Object.keys(FRAMES) as FrameName[]).map((n) => [n, ['t', ...FRAMES[n].fields.map((f) => f.name)]]),
) as unknown as Record<FrameName, readonly string[]>;

/**
 * Decodes one frame body (the bytes after the length prefix) of the given layer.
 * Throws ProtocolError: MALFORMED_FRAME (not one canonical msgpack map), UNKNOWN_FRAME_TYPE (no frame of
 * this layer has that `t`), INVALID_FIELD (unknown, missing, mistyped or out-of-bounds field).
 * Binary fields of the result are views into `body`: the caller must not reuse that buffer.
 */
export function decodeFrame<Ly extends Layer>(body: Uint8Array, layer: Ly): LayerFrame<Ly> {
  if (body.length > LIMITS.MAX_FRAME_BYTES) throw new ProtocolError('FRAME_TOO_LARGE', `frame of ${body.length} bytes`);
  checkStrict(body);
  let obj: Record<string, unknown>;
  try {
    obj = decoder.decode(body) as Record<string, unknown>;
  } catch (e) {
    // checkStrict admits only what the decoder understands; this is the "__proto__" key and kin.
    throw new ProtocolError('MALFORMED_FRAME', `msgpack: ${(e as Error).message}`);
  }
  const t = obj['t'];
  if (t === undefined) invalid('missing field "t"');
  if (typeof t !== 'number') invalid('"t": expected an integer');
  const name = frameName(t);
  if (name === undefined || FRAMES[name].layer !== layer) {
    throw new ProtocolError('UNKNOWN_FRAME_TYPE', `no ${layer} frame has type ${t}`);
  }
  const spec = FRAMES[name];
  checkKeys(Object.keys(obj), KEY_LISTS[name], name);
  const out: Record<string, unknown> = { type: name };
  for (const f of spec.fields as readonly FieldSpec[]) {
    const v = obj[f.name];
    checkField(f, v, `${name}.${f.name}`);
    out[f.name] = f.kind === 'members' ? (v as Record<string, unknown>[]).map((m) => ({ nick: m['nick'], key: m['key'] })) : v;
  }
  return out as LayerFrame<Ly>;
}

/** Checks a frame against its catalogue entry and returns the msgpack object in canonical key order. */
function toWireObject(frame: Frame): Record<string, unknown> {
  const spec = FRAMES[frame.type];
  if (spec === undefined) invalid(`unknown frame type ${String(frame.type)}`);
  const rec = frame as unknown as Record<string, unknown>;
  for (const k of Object.keys(rec)) {
    if (k !== 'type' && !spec.fields.some((f) => f.name === k)) invalid(`${frame.type}: unknown field ${k}`);
  }
  const obj: Record<string, unknown> = { t: spec.code };
  for (const f of spec.fields as readonly FieldSpec[]) {
    const v = rec[f.name];
    checkField(f, v, `${frame.type}.${f.name}`);
    obj[f.name] = f.kind === 'members' ? (v as { nick: string; key: Uint8Array }[]).map((m) => ({ nick: m.nick, key: m.key })) : v;
  }
  return obj;
}

/**
 * Encodes a frame to its one canonical body (no length prefix). Throws ProtocolError INVALID_FIELD when
 * the frame breaks the catalogue (so an encoder can never emit what a decoder must reject).
 */
export function encodeFrame(frame: Frame): Uint8Array {
  return encoder.encode(toWireObject(frame));
}

/** Encodes a frame with its 4-byte big-endian length prefix, ready for the wire. */
export function encodeWire(frame: Frame): Buffer {
  const body = encoder.encodeSharedRef(toWireObject(frame));
  if (body.length > LIMITS.MAX_FRAME_BYTES) throw new ProtocolError('FRAME_TOO_LARGE', `frame of ${body.length} bytes`);
  const out = Buffer.allocUnsafe(LIMITS.LENGTH_PREFIX_BYTES + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, LIMITS.LENGTH_PREFIX_BYTES);
  return out;
}

/** Builds a typed frame value; a convenience that keeps call sites short and checked. */
export function frame<N extends FrameName>(type: N, fields: Omit<FrameOf<N>, 'type'>): FrameOf<N> {
  return { type, ...fields } as FrameOf<N>;
}
