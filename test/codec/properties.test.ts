/**
 * fast-check properties of the codec (spec/PROTOCOL.md §3, §4): round trip and canonical re-encoding for
 * arbitrary valid frames of every type; total decoding (any bytes give a frame or a ProtocolError, never
 * another exception); FrameReader chunking invariance for good and bad streams. Every run is bounded by
 * numRuns; nothing here reads a clock.
 */
import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { ProtocolError } from '../../src/protocol/errors.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { FRAMES, type FieldSpec, type Frame, type FrameName, type Layer } from '../../src/protocol/frames.js';
import { decodeFrame, encodeFrame, encodeWire } from '../../src/codec/frame.js';
import { FrameReader } from '../../src/codec/reader.js';
import { frameToJson } from '../../src/vectors/codec.js';

const NICK_CHARS = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-'];
const ROOM_CHARS = [...NICK_CHARS, '.'];
// Sizes in properties are capped so a run stays small; the limits themselves are covered by vectors.
const CAP = 600;

function uintArb(min: number, max: number): fc.Arbitrary<number> {
  const edges = [min, max, Math.min(max, min + 1), 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32].filter((n) => n >= min && n <= max);
  const wide = max > 2 ** 31 - 1 ? [fc.maxSafeNat().map((n) => Math.min(max, Math.max(min, n)))] : [];
  return fc.oneof(fc.constantFrom(...edges), fc.integer({ min, max: Math.min(max, 2 ** 31 - 1) }), ...wide);
}

function fieldArb(f: FieldSpec): fc.Arbitrary<unknown> {
  switch (f.kind) {
    case 'uint':
      return uintArb(f.min, f.max);
    case 'str':
      if (f.alphabet !== undefined) {
        return fc.string({ unit: fc.constantFrom(...(f.alphabet === 'nick' ? NICK_CHARS : ROOM_CHARS)), minLength: f.min, maxLength: f.max });
      }
      // Any Unicode scalar values (4 UTF-8 bytes at most each), then cut to the byte bound.
      return fc
        .string({ unit: 'binary', minLength: f.min, maxLength: Math.min(CAP, Math.floor(f.max / 4)) })
        .filter((s) => Buffer.byteLength(s) >= f.min && Buffer.byteLength(s) <= f.max);
    case 'bin':
      return fc.uint8Array({ minLength: f.min, maxLength: Math.min(f.max, Math.max(f.min, CAP)) });
    case 'members':
      return fc.array(
        fc.record({
          nick: fieldArb(FRAMES.PEER_JOINED.fields[0]) as fc.Arbitrary<string>,
          key: fieldArb(FRAMES.PEER_JOINED.fields[1]) as fc.Arbitrary<Uint8Array>,
        }),
        { minLength: f.min, maxLength: Math.min(f.max, 6) },
      );
  }
}

function frameArb(name: FrameName): fc.Arbitrary<Frame> {
  const rec: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of FRAMES[name].fields as readonly FieldSpec[]) rec[f.name] = fieldArb(f);
  return fc.record(rec).map((fields) => ({ type: name, ...fields }) as unknown as Frame);
}

const NAMES = Object.keys(FRAMES) as FrameName[];
const anyFrame = fc.oneof(...NAMES.map(frameArb));
const relayFrame = fc.oneof(...NAMES.filter((n) => FRAMES[n].layer === 'relay').map(frameArb));

t.test('decode(encode(f)) equals f and re-encodes to the same bytes, for every frame type', async (t) => {
  for (const name of NAMES) {
    fc.assert(
      fc.property(frameArb(name), (f) => {
        const bytes = encodeFrame(f);
        const back = decodeFrame(bytes, FRAMES[name].layer);
        if (!isDeepStrictEqual(frameToJson(back), frameToJson(f))) return false;
        return Buffer.from(encodeFrame(back)).equals(Buffer.from(bytes));
      }),
      { numRuns: 150 },
    );
    t.pass(`${name}: 150 arbitrary frames round-trip canonically`);
  }
});

/** Decodes and classifies: 'frame', an error name, or 'THREW <something else>' (the failure being hunted). */
function outcome(bytes: Uint8Array, layer: Layer): string {
  try {
    return `frame ${decodeFrame(bytes, layer).type}`;
  } catch (e) {
    if (e instanceof ProtocolError) return e.errorName;
    return `THREW ${String(e)}`;
  }
}

t.test('any byte string decodes only to a frame or a ProtocolError, at every layer', async (t) => {
  const layers: Layer[] = ['relay', 'e2e', 'inner'];
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...layers), (b, layer) => !outcome(b, layer).startsWith('THREW')),
    { numRuns: 3000 },
  );
  // Random bytes rarely get past the first byte; mutations of valid frames reach every later check.
  const mutation = fc.record({
    f: anyFrame,
    edits: fc.array(fc.record({ at: fc.nat(), op: fc.constantFrom('set', 'insert', 'delete'), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 }),
  });
  fc.assert(
    fc.property(mutation, ({ f, edits }) => {
      const b = [...encodeFrame(f)];
      for (const e of edits) {
        const i = e.at % (b.length + 1);
        if (e.op === 'set' && i < b.length) b[i] = e.byte;
        else if (e.op === 'insert') b.splice(i, 0, e.byte);
        else if (e.op === 'delete' && i < b.length) b.splice(i, 1);
      }
      const o = outcome(Uint8Array.from(b), FRAMES[f.type].layer);
      return !o.startsWith('THREW');
    }),
    { numRuns: 3000 },
  );
  t.pass('6000 inputs: no exception other than ProtocolError');
});

/** Feeds `stream` to a fresh reader in chunks ending at `cuts`, decoding each body as a relay would. */
function readAll(stream: Uint8Array, cuts: number[]): { frames: string[]; error: string | null } {
  const r = new FrameReader();
  const frames: string[] = [];
  const bounds = [...new Set(cuts.filter((c) => c > 0 && c < stream.length))].sort((a, b) => a - b);
  let prev = 0;
  try {
    for (const end of [...bounds, stream.length]) {
      for (const body of r.push(stream.subarray(prev, end))) frames.push(JSON.stringify(frameToJson(decodeFrame(body, 'relay'))));
      prev = end;
    }
  } catch (e) {
    return { frames, error: e instanceof ProtocolError ? e.errorName : `THREW ${String(e)}` };
  }
  if (r.failure !== undefined) return { frames, error: r.failure.errorName };
  return { frames, error: r.atBoundary ? null : 'incomplete' };
}

const everyByte = (n: number) => Array.from({ length: n }, (_, i) => i);

t.test('FrameReader: one byte at a time, random splits and all at once give the same frames', async (t) => {
  fc.assert(
    fc.property(fc.array(relayFrame, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (frames, cuts) => {
      const stream = Buffer.concat(frames.map((f) => encodeWire(f)));
      const whole = readAll(stream, []);
      const expected = frames.map((f) => JSON.stringify(frameToJson(f)));
      return (
        isDeepStrictEqual(whole, { frames: expected, error: null }) &&
        isDeepStrictEqual(readAll(stream, everyByte(stream.length)), whole) &&
        isDeepStrictEqual(readAll(stream, cuts.map((c) => c % stream.length)), whole)
      );
    }),
    { numRuns: 300 },
  );
  t.pass('300 streams');
});

t.test('FrameReader: a bad body gives the same frames before it and the same error, however the stream is split', async (t) => {
  const badBodies = [Buffer.from('82a1740dc0', 'hex') /* nil */, Buffer.from('81a17410', 'hex') /* unknown type */, Buffer.from('82a1740da16e', 'hex') /* truncated */];
  fc.assert(
    fc.property(fc.array(relayFrame, { maxLength: 6 }), fc.constantFrom(...badBodies), fc.array(relayFrame, { maxLength: 3 }), fc.array(fc.nat(), { maxLength: 20 }), (before, bad, after, cuts) => {
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(bad.length);
      const stream = Buffer.concat([...before.map((f) => encodeWire(f)), prefix, bad, ...after.map((f) => encodeWire(f))]);
      const whole = readAll(stream, []);
      return (
        whole.frames.length === before.length &&
        whole.error !== null &&
        !whole.error.startsWith('THREW') &&
        isDeepStrictEqual(readAll(stream, everyByte(stream.length)), whole) &&
        isDeepStrictEqual(readAll(stream, cuts.map((c) => c % stream.length)), whole)
      );
    }),
    { numRuns: 200 },
  );
  t.pass('200 streams with a bad body');
});

t.test('FrameReader: a bad length prefix gives every frame before it, then the same error, however split', async (t) => {
  // Spec §3: errors never overtake frames, whatever the TCP segmentation.
  const badPrefixes = [['00000000', 'MALFORMED_FRAME'], ['00010001', 'FRAME_TOO_LARGE'], ['ffffffff', 'FRAME_TOO_LARGE']] as const;
  fc.assert(
    fc.property(fc.array(relayFrame, { maxLength: 6 }), fc.constantFrom(...badPrefixes), fc.array(fc.nat(), { maxLength: 20 }), (before, [hex, code], cuts) => {
      const stream = Buffer.concat([...before.map((f) => encodeWire(f)), Buffer.from(hex, 'hex'), Buffer.alloc(8, 0x41)]);
      const expected = before.map((f) => JSON.stringify(frameToJson(f)));
      const byByte = readAll(stream, everyByte(stream.length));
      if (!isDeepStrictEqual(byByte, { frames: expected, error: code })) return false;
      for (const r of [readAll(stream, []), readAll(stream, cuts.map((c) => c % stream.length))]) {
        if (!isDeepStrictEqual(r, { frames: expected, error: code })) return false;
      }
      return true;
    }),
    { numRuns: 200 },
  );
  t.pass('200 streams with a bad prefix');
});

t.test('the encoder refuses what the decoder would reject (INVALID_FIELD), so it can only emit canonical frames', async (t) => {
  const bad: unknown[] = [
    { type: 'PING', n: 1.5 },
    { type: 'PING', n: -1 },
    { type: 'PING', n: LIMITS.MAX_UINT + 1 },
    { type: 'PING', n: Number.NaN },
    { type: 'PING' },
    { type: 'PING', n: 1, extra: 1 },
    { type: 'HELLO', version: 2, nick: 'a b', key: new Uint8Array(1) },
    { type: 'SEND', to: 'bob', body: new Uint8Array(0) },
    { type: 'SEND', to: 'bob', body: 'text' },
    { type: 'JOINED', room: 'r', members: [{ nick: 'a', key: new Uint8Array(1), x: 1 }] },
    { type: 'JOINED', room: 'r', members: [{ nick: 'a' }] },
    { type: 'NOPE' },
    { type: '__proto__' },
    { type: 'toString' },
    { type: 'ERROR', code: 1, detail: 'a\uD800' },
    { type: 'TEXT', ts: 0, text: '\uDC00x' },
    { type: 'TEXT', ts: 0, text: '\uDE00\uD83D' },
  ];
  for (const f of bad) {
    let code = 'ok';
    try {
      encodeFrame(f as Frame);
    } catch (e) {
      code = e instanceof ProtocolError ? e.errorName : `THREW ${String(e)}`;
    }
    t.equal(code, 'INVALID_FIELD', JSON.stringify(f, (_k, v) => (v instanceof Uint8Array ? `bin(${v.length})` : v)));
  }
});

t.test('the encoder refuses a frame whose body would exceed MAX_FRAME_BYTES (FRAME_TOO_LARGE)', async (t) => {
  // Every field within its bounds, the whole over the frame limit: 255 members with 512-byte keys.
  const members = Array.from({ length: LIMITS.MAX_ROOM_SIZE - 1 }, (_, i) => ({ nick: `m${i}`, key: new Uint8Array(LIMITS.KEY_MAX_BYTES) }));
  const big = { type: 'JOINED', room: 'r', epoch: 1, members } as Frame;
  for (const enc of [encodeFrame, encodeWire]) {
    let code = 'ok';
    try {
      enc(big);
    } catch (e) {
      code = e instanceof ProtocolError ? e.errorName : `THREW ${String(e)}`;
    }
    t.equal(code, 'FRAME_TOO_LARGE', enc.name);
  }
});

t.test('well-formed surrogate pairs encode and round-trip', async (t) => {
  const f = { type: 'TEXT', ts: 1, text: '\u{1F600}\uD83D\uDE00' } as Frame;
  t.same(frameToJson(decodeFrame(encodeFrame(f), 'inner')), frameToJson(f));
});
