/**
 * The cases of vectors/codec.json (see codec.ts for the case format). Fixed data only: byte strings are
 * deterministic patterns, so the file is byte-identical on every run. Valid inputs are spelled out with
 * the independent byte builder of msgpack-raw.ts and cross-checked against the encoder at generation time.
 */
import { LIMITS } from '../limits.js';
import { FRAMES, type FieldSpec, type Frame, type FrameName, type Layer } from '../codec/catalogue.js';
import { encodeFrame, encodeWire, frame } from '../codec/frame.js';
import { array, bin, cat, map, pattern, str, strRaw, uint, wire, type Bytes } from './msgpack-raw.js';
import { toHex } from './hex.js';
import { frameToJson, type Framing } from './codec.js';
import type { VectorCase } from './types.js';

const L = LIMITS;

/** Canonical bytes of a frame body built field by field from the catalogue, without the encoder. */
function rawBody(f: Frame): Bytes {
  const spec = FRAMES[f.type];
  const rec = f as unknown as Record<string, unknown>;
  const entries: [string, Bytes][] = [['t', uint(spec.code)]];
  for (const field of spec.fields as readonly FieldSpec[]) {
    const v = rec[field.name];
    if (field.kind === 'uint') entries.push([field.name, uint(v as number)]);
    else if (field.kind === 'str') entries.push([field.name, str(v as string)]);
    else if (field.kind === 'bin') entries.push([field.name, bin(v as Bytes)]);
    else {
      const ms = v as { nick: string; key: Bytes }[];
      entries.push([field.name, array(ms.map((m) => map([['nick', str(m.nick)], ['key', bin(m.key)]])))]);
    }
  }
  return map(entries);
}

function layerOf(name: FrameName): Layer {
  return FRAMES[name].layer;
}

/** Relay frames are exercised as streams (as a relay connection reads them), others as bodies. */
function defaultFraming(layer: Layer): Framing {
  return layer === 'relay' ? 'stream' : 'body';
}

function valid(id: string, description: string, section: string, f: Frame): VectorCase {
  const layer = layerOf(f.type);
  const framing = defaultFraming(layer);
  const body = rawBody(f);
  const input = framing === 'stream' ? wire(body) : body;
  const encoded = framing === 'stream' ? encodeWire(f) : encodeFrame(f);
  // The vectors must hold the one canonical form: if the encoder disagrees with the independent byte
  // builder, generation stops rather than writing a vector that only one of them believes.
  if (!Buffer.from(encoded).equals(Buffer.from(input))) throw new Error(`${id}: encoder and byte builder disagree`);
  return { id, description, section, layer, framing, input: toHex(input), frame: frameToJson(f) };
}

function invalid(id: string, description: string, section: string, layer: Layer, framing: Framing, input: Bytes, error: string): VectorCase {
  return { id, description, section, layer, framing, input: toHex(input), error };
}

/** A relay body case, fed as a stream with a correct length prefix so only the body carries the defect. */
function badRelay(id: string, description: string, section: string, body: Bytes, error: string): VectorCase {
  return invalid(id, description, section, 'relay', 'stream', wire(body), error);
}

function incomplete(id: string, description: string, section: string, input: Bytes): VectorCase {
  return { id, description, section, layer: 'relay', framing: 'stream', input: toHex(input), incomplete: true };
}

const NICK32 = 'n'.repeat(L.NICK_MAX_BYTES);
const ROOM64 = 'r'.repeat(L.ROOM_MAX_BYTES);
const KEY = pattern(294, 0x30);

/** PING {t: 13, n: <value>}: the carrier for single-value defects. */
function ping(value: Bytes): Bytes {
  return map([['t', uint(0x0d)], ['n', value]]);
}

/** ERROR {t: 15, code: 1, detail: <value>}: the carrier for string defects. */
function errorFrame(detail: Bytes): Bytes {
  return map([['t', uint(0x0f)], ['code', uint(1)], ['detail', detail]]);
}

export function buildCodecCases(): VectorCase[] {
  const cases: VectorCase[] = [];
  const v = (id: string, d: string, s: string, f: Frame) => cases.push(valid(id, d, s, f));
  const r = (id: string, d: string, s: string, body: Bytes, e: string) => cases.push(badRelay(id, d, s, body, e));

  // ---- Valid frames: every type of every layer (§5, §6). ----
  v('relay_hello', 'HELLO with a 294-byte key', '§6 HELLO', frame('HELLO', { version: 1, nick: 'alice', key: KEY }));
  v('relay_challenge', 'CHALLENGE with a 32-byte nonce', '§6 CHALLENGE', frame('CHALLENGE', { version: 1, nonce: pattern(32, 1) }));
  v('relay_auth', 'AUTH with a 256-byte signature (bin 16)', '§6 AUTH', frame('AUTH', { sig: pattern(256, 2) }));
  v('relay_welcome', 'WELCOME with the default limits', '§6 WELCOME',
    frame('WELCOME', { idle_ms: L.IDLE_TIMEOUT_MS, max_frame: L.MAX_FRAME_BYTES, room_size: L.DEFAULT_ROOM_SIZE, rate: L.RATE_FRAMES_PER_S }));
  v('relay_join', 'JOIN a room', '§6 JOIN', frame('JOIN', { room: 'lobby' }));
  v('relay_joined', 'JOINED listing one other member', '§6 JOINED', frame('JOINED', { room: 'lobby', members: [{ nick: 'bob', key: KEY }] }));
  v('relay_joined_empty', 'JOINED with no other member', '§6 JOINED', frame('JOINED', { room: 'lobby', members: [] }));
  v('relay_peer_joined', 'PEER_JOINED', '§6 PEER_JOINED', frame('PEER_JOINED', { nick: 'carol', key: KEY }));
  v('relay_peer_left', 'PEER_LEFT', '§6 PEER_LEFT', frame('PEER_LEFT', { nick: 'carol' }));
  v('relay_send', 'SEND with a 256-byte opaque body', '§6 SEND', frame('SEND', { to: 'bob', body: pattern(256, 3) }));
  v('relay_deliver', 'DELIVER with a 5-byte body', '§6 DELIVER', frame('DELIVER', { from: 'alice', body: pattern(5, 4) }));
  v('relay_leave', 'LEAVE (no fields)', '§6 LEAVE', frame('LEAVE', {}));
  v('relay_left', 'LEFT (no fields)', '§6 LEFT', frame('LEFT', {}));
  v('relay_ping', 'PING', '§6 PING', frame('PING', { n: 7 }));
  v('relay_pong', 'PONG', '§6 PONG', frame('PONG', { n: 7 }));
  v('relay_error', 'ERROR with detail', '§6 ERROR', frame('ERROR', { code: 10, detail: 'room full' }));
  v('e2e_hs_init', 'HS_INIT', '§6 HS_INIT', frame('HS_INIT', { version: 1, eph: pattern(32, 5), ct: pattern(256, 6) }));
  v('e2e_hs_resp', 'HS_RESP', '§6 HS_RESP', frame('HS_RESP', { eph: pattern(32, 7), ct: pattern(256, 8), sig: pattern(256, 9), mac: pattern(32, 10) }));
  v('e2e_hs_finish', 'HS_FINISH', '§6 HS_FINISH', frame('HS_FINISH', { sig: pattern(256, 11), mac: pattern(32, 12) }));
  v('e2e_msg', 'MSG with the smallest ciphertext (256-byte bucket + 16-byte tag)', '§6 MSG', frame('MSG', { seq: 0, ct: pattern(272, 13) }));
  v('inner_text', 'TEXT with ASCII text', '§6 TEXT', frame('TEXT', { ts: 1767225600000, text: 'hello' }));
  v('inner_ack', 'ACK', '§6 ACK', frame('ACK', { upto: 0 }));

  // ---- Framing (§3). ----
  cases.push(invalid('frame_zero_length', 'length prefix 0', '§3', 'relay', 'stream', cat('00000000'), 'MALFORMED_FRAME'));
  cases.push(invalid('frame_length_one_past_limit', 'declared length MAX_FRAME_BYTES + 1, no body sent: rejected on the prefix alone', '§3', 'relay', 'stream',
    wire(new Uint8Array(0), L.MAX_FRAME_BYTES + 1), 'FRAME_TOO_LARGE'));
  cases.push(invalid('frame_length_max_u32', 'declared length 2^32 - 1', '§3', 'relay', 'stream', cat('ffffffff'), 'FRAME_TOO_LARGE'));
  cases.push(incomplete('frame_length_at_limit_waits', 'declared length MAX_FRAME_BYTES, no body yet: accepted, the receiver waits', '§3',
    wire(new Uint8Array(0), L.MAX_FRAME_BYTES)));
  cases.push(incomplete('frame_partial_prefix', 'three bytes of a length prefix: the receiver waits', '§3', cat('000000')));
  cases.push(incomplete('frame_partial_body', 'a PING frame missing its last byte: the receiver waits', '§3', wire(ping(uint(7))).subarray(0, 7)));
  r('frame_truncated_body', 'the prefix counts 3 bytes; the map inside needs more', '§3', cat('81', str('t')), 'MALFORMED_FRAME');
  r('frame_trailing_bytes', 'a PING body followed by one extra byte, all counted by the prefix', '§3', cat(ping(uint(7)), '00'), 'MALFORMED_FRAME');
  return cases;
}
