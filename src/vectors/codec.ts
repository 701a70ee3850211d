/**
 * The codec vector suite (vectors/codec.json, spec/VECTORS.md "codec.json"): valid frames of every type
 * of every layer as object <-> exact bytes, and one-defect invalid inputs for every decoder error path of
 * spec/PROTOCOL.md §3-§6, each with the error code name it must produce.
 *
 * Case fields beyond id/description/section:
 * - `layer`: "relay" | "e2e" | "inner", the layer the input is decoded at (§2, §5).
 * - `framing`: "stream" (input is a byte stream with 4-byte length prefixes, read as a relay connection
 *   reads it, §3) or "body" (input is one frame body without prefix, as carried inside SEND/DELIVER or
 *   an AEAD).
 * - `input`: hex.
 * - exactly one expected outcome: `frame` (decodes to exactly this one frame, and encoding that frame
 *   gives exactly `input`), `error` (rejected with this code name of §9), or `incomplete: true` (stream
 *   only: no frame and no error, the receiver waits for more bytes).
 */
import { isDeepStrictEqual } from 'node:util';
import { ProtocolError } from '../protocol/errors.js';
import { FRAMES, type FieldSpec, type Frame, type FrameName, type Layer } from '../protocol/frames.js';
import { decodeFrame, encodeFrame, encodeWire } from '../codec/frame.js';
import { FrameReader } from '../codec/reader.js';
import { fromHex, toHex } from './hex.js';
import { buildCodecCases } from './codec-cases.js';
import { verifyCases } from './verify-cases.js';
import type { VectorDocument, VectorFailure, VectorSuite } from './types.js';

export type Framing = 'stream' | 'body';

/** A frame as it appears in a vector file: binary fields as hex, members as `{nick, key}` with hex keys. */
export type JsonFrame = { type: FrameName } & Record<string, unknown>;

const LAYERS: readonly Layer[] = ['relay', 'e2e', 'inner'];

/** Converts a typed frame to its vector-file form (hex for every byte string). */
export function frameToJson(f: Frame): JsonFrame {
  const spec = FRAMES[f.type];
  const rec = f as unknown as Record<string, unknown>;
  const out: JsonFrame = { type: f.type };
  for (const field of spec.fields as readonly FieldSpec[]) {
    const v = rec[field.name];
    if (field.kind === 'bin') out[field.name] = toHex(v as Uint8Array);
    else if (field.kind === 'members') {
      out[field.name] = (v as { nick: string; key: Uint8Array }[]).map((m) => ({ nick: m.nick, key: toHex(m.key) }));
    } else out[field.name] = v;
  }
  return out;
}

/** Converts a vector-file frame back to a typed frame; throws TypeError when its shape is wrong. */
export function frameFromJson(j: unknown): Frame {
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new TypeError('frame: expected an object');
  const rec = j as Record<string, unknown>;
  const type = rec['type'];
  if (typeof type !== 'string' || !Object.hasOwn(FRAMES, type)) throw new TypeError(`frame: unknown type ${String(type)}`);
  const spec = FRAMES[type as FrameName];
  const names = (spec.fields as readonly FieldSpec[]).map((f) => f.name);
  for (const k of Object.keys(rec)) if (k !== 'type' && !names.includes(k)) throw new TypeError(`frame: unknown field ${k}`);
  const out: Record<string, unknown> = { type };
  for (const field of spec.fields as readonly FieldSpec[]) {
    const v = rec[field.name];
    const where = `frame.${field.name}`;
    switch (field.kind) {
      case 'uint':
        if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new TypeError(`${where}: expected an integer`);
        out[field.name] = v;
        break;
      case 'str':
        if (typeof v !== 'string') throw new TypeError(`${where}: expected a string`);
        out[field.name] = v;
        break;
      case 'bin':
        out[field.name] = fromHex(v, where);
        break;
      case 'members':
        if (!Array.isArray(v)) throw new TypeError(`${where}: expected an array`);
        out[field.name] = v.map((m: unknown, i) => {
          if (typeof m !== 'object' || m === null) throw new TypeError(`${where}[${i}]: expected an object`);
          const mr = m as Record<string, unknown>;
          for (const k of Object.keys(mr)) if (k !== 'nick' && k !== 'key') throw new TypeError(`${where}[${i}]: unknown field ${k}`);
          if (typeof mr['nick'] !== 'string') throw new TypeError(`${where}[${i}].nick: expected a string`);
          return { nick: mr['nick'], key: fromHex(mr['key'], `${where}[${i}].key`) };
        });
        break;
    }
  }
  return out as unknown as Frame;
}

/** The outcome of running one input through the runtime codec, in vector terms. */
export type Outcome = { frame: Frame } | { error: string } | { incomplete: true } | { frames: number };

/**
 * Runs `input` through the runtime codec as `framing` at `layer`. A stream is fed to a fresh FrameReader
 * in pieces of `piece` bytes (default: all at once) and every complete body is decoded in order, as a
 * relay connection would; a body is decoded directly.
 */
export function runCodec(input: Uint8Array, layer: Layer, framing: Framing, piece = Infinity): Outcome {
  try {
    if (framing === 'body') return { frame: decodeFrame(input, layer) };
    const reader = new FrameReader();
    const frames: Frame[] = [];
    const step = Math.max(1, Math.min(piece, input.length));
    for (let i = 0; i < input.length; i += step) {
      for (const b of reader.push(input.subarray(i, i + step))) frames.push(decodeFrame(b, layer));
    }
    if (frames.length === 0 && !reader.atBoundary) return { incomplete: true };
    if (frames.length === 1 && reader.atBoundary) return { frame: frames[0]! };
    return { frames: frames.length };
  } catch (e) {
    if (e instanceof ProtocolError) return { error: e.errorName };
    return { error: `not a ProtocolError: ${String(e)}` };
  }
}

function describe(o: Outcome): string {
  if ('frame' in o) return `frame ${JSON.stringify(frameToJson(o.frame))}`;
  if ('error' in o) return `error ${o.error}`;
  if ('incomplete' in o) return 'incomplete';
  return `${o.frames} frames`;
}

const CASE_FIELDS = ['id', 'description', 'section', 'layer', 'framing', 'input', 'frame', 'error', 'incomplete'];

function verifyCase(c: Record<string, unknown>): string | undefined {
  // A runner never skips what it does not understand (spec/VECTORS.md §3): an unknown field fails.
  const unknown = Object.keys(c).filter((k) => !CASE_FIELDS.includes(k));
  if (unknown.length > 0) return `unknown case field(s): ${unknown.join(', ')}`;
  for (const k of ['description', 'section']) if (typeof c[k] !== 'string') return `${k}: expected a string`;
  const layer = c['layer'];
  const framing = c['framing'];
  if (typeof layer !== 'string' || !LAYERS.includes(layer as Layer)) return 'layer: expected relay, e2e or inner';
  if (framing !== 'stream' && framing !== 'body') return 'framing: expected stream or body';
  const input = fromHex(c['input'], 'input');
  const expectations = ['frame', 'error', 'incomplete'].filter((k) => c[k] !== undefined);
  if (expectations.length !== 1) return 'expected exactly one of frame, error, incomplete';
  const got = runCodec(input, layer as Layer, framing);
  if (framing === 'stream') {
    // The outcome of a stream must not depend on how it is split (spec §3): check small pieces too (one
    // byte at a time up to 2 KiB; beyond, 997-byte pieces keep the cost linear in few pushes).
    const piece = input.length <= 2048 ? 1 : 997;
    const split = runCodec(input, layer as Layer, framing, piece);
    if (describe(split) !== describe(got)) return `split-dependent: all at once ${describe(got)}, in ${piece}-byte pieces ${describe(split)}`;
  }
  if (c['frame'] !== undefined) {
    const want = frameFromJson(c['frame']);
    if (!('frame' in got) || !isDeepStrictEqual(frameToJson(got.frame), frameToJson(want))) {
      return `decode: expected frame ${JSON.stringify(frameToJson(want))}, got ${describe(got)}`;
    }
    let bytes: Uint8Array;
    try {
      bytes = framing === 'stream' ? encodeWire(want) : encodeFrame(want);
    } catch (e) {
      return `encode: threw ${String(e)}`;
    }
    if (!Buffer.from(bytes).equals(Buffer.from(input))) return `encode: expected ${toHex(input)}, got ${toHex(bytes)}`;
    return undefined;
  }
  if (c['error'] !== undefined) {
    if (!('error' in got) || got.error !== c['error']) return `expected error ${String(c['error'])}, got ${describe(got)}`;
    return undefined;
  }
  if (c['incomplete'] !== true) return 'incomplete: expected true';
  if (framing !== 'stream') return 'incomplete applies to stream framing only';
  if (!('incomplete' in got)) return `expected incomplete, got ${describe(got)}`;
  return undefined;
}

export const codecSuite: VectorSuite = {
  file: 'codec.json',
  generate(): VectorDocument {
    return {
      title: 'e2ee-chat codec vectors',
      spec: 'spec/PROTOCOL.md §3-§6, format in spec/VECTORS.md',
      description:
        'Frames of every type of every layer (object <-> exact bytes) and one-defect invalid inputs for every ' +
        'decoder error path. layer: the layer decoded at; framing: "stream" (4-byte length prefixes, read as a ' +
        'relay connection reads) or "body" (one frame body, no prefix); input: hex. Expected: frame (decode gives ' +
        'it and encoding it gives input), error (code name of §9), or incomplete (no frame and no error yet).',
      cases: buildCodecCases(),
    };
  },
  verify(doc: unknown): Promise<VectorFailure[]> {
    return verifyCases(doc, (c) => verifyCase(c));
  },
};
