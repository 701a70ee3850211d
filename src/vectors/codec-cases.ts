/**
 * The cases of vectors/codec.json (see codec.ts for the case format). Fixed data only: byte strings are
 * deterministic patterns, so the file is byte-identical on every run. Valid inputs are spelled out with
 * the independent byte builder of src/wirekit/msgpack.ts and cross-checked against the encoder at generation time.
 */
import { LIMITS } from '../protocol/limits.js';
import { FRAMES, type FieldSpec, type Frame, type FrameName, type Layer } from '../protocol/frames.js';
import { encodeFrame, encodeWire, frame } from '../codec/frame.js';
import { array, bin, cat, map, pattern, str, uint, wire, type Bytes } from '../wirekit/msgpack.js';
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

const KEY = pattern(294, 0x30);

/** One valid frame of every type: the carriers that invalid cases change in exactly one place. */
const SAMPLES: { [N in FrameName]: Frame & { type: N } } = {
  HELLO: frame('HELLO', { version: 1, nick: 'alice', key: KEY }),
  CHALLENGE: frame('CHALLENGE', { version: 2, nonce: pattern(32, 1), relay: 'relay.example:55555' }),
  AUTH: frame('AUTH', { sig: pattern(256, 2) }),
  WELCOME: frame('WELCOME', { idle_ms: L.IDLE_TIMEOUT_MS, max_frame: L.MAX_FRAME_BYTES, room_size: L.DEFAULT_ROOM_SIZE, rate: L.RATE_FRAMES_PER_S }),
  JOIN: frame('JOIN', { room: 'lobby' }),
  JOINED: frame('JOINED', { room: 'lobby', epoch: 2, members: [{ nick: 'bob', key: KEY }] }),
  PEER_JOINED: frame('PEER_JOINED', { nick: 'carol', key: KEY, epoch: 3 }),
  PEER_LEFT: frame('PEER_LEFT', { nick: 'carol', epoch: 4 }),
  SEND: frame('SEND', { to: 'bob', body: pattern(256, 3) }),
  DELIVER: frame('DELIVER', { from: 'alice', body: pattern(5, 4) }),
  LEAVE: frame('LEAVE', {}),
  LEFT: frame('LEFT', {}),
  PING: frame('PING', { n: 7 }),
  PONG: frame('PONG', { n: 7 }),
  ERROR: frame('ERROR', { code: 10, detail: 'room full' }),
  RECOVER: frame('RECOVER', { sig: pattern(256, 14), code: pattern(16, 15), commit: pattern(32, 16) }),
  SET_RECOVERY: frame('SET_RECOVERY', { commit: pattern(32, 17) }),
  RECOVERY_SET: frame('RECOVERY_SET', {}),
  HS_INIT: frame('HS_INIT', { version: 1, eph: pattern(32, 5), ct: pattern(256, 6) }),
  HS_RESP: frame('HS_RESP', { eph: pattern(32, 7), ct: pattern(256, 8), sig: pattern(256, 9), mac: pattern(32, 10) }),
  HS_FINISH: frame('HS_FINISH', { sig: pattern(256, 11), mac: pattern(32, 12) }),
  MSG: frame('MSG', { seq: 0, ct: pattern(272, 13) }),
  TEXT: frame('TEXT', { ts: 1767225600000, text: 'hello' }),
  ACK: frame('ACK', { upto: 0 }),
  ROSTER: frame('ROSTER', { epoch: 3, hash: pattern(32, 14) }),
};

/** The canonical entries of a sample frame, as [key, encoded value] pairs in catalogue order. */
function entriesOf(name: FrameName): [string, Bytes][] {
  const f = SAMPLES[name] as unknown as Record<string, unknown>;
  const out: [string, Bytes][] = [['t', uint(FRAMES[name].code)]];
  for (const field of FRAMES[name].fields as readonly FieldSpec[]) {
    const v = f[field.name];
    if (field.kind === 'uint') out.push([field.name, uint(v as number)]);
    else if (field.kind === 'str') out.push([field.name, str(v as string)]);
    else if (field.kind === 'bin') out.push([field.name, bin(v as Bytes)]);
    else out.push([field.name, array((v as { nick: string; key: Bytes }[]).map((m) => map([['nick', str(m.nick)], ['key', bin(m.key)]])))]);
  }
  return out;
}

/** The sample body of `name` with the encoded value of `field` replaced by `value` (bytes as given). */
function withField(name: FrameName, field: string, value: Bytes): Bytes {
  const entries = entriesOf(name);
  const i = entries.findIndex(([k]) => k === field);
  if (i < 0) throw new Error(`${name} has no field ${field}`);
  entries[i] = [field, value];
  return map(entries);
}

/** The sample body of `name` with its map header and entries spelled out by the caller. */
function entries(name: FrameName): [string | Bytes, Bytes][] {
  return entriesOf(name);
}

/** A JOINED body whose single member map is given as raw bytes. */
function joinedWithMember(member: Bytes): Bytes {
  return withField('JOINED', 'members', cat('91', member));
}

const utf8Bad = (hex: string): Bytes => str(cat('6869', hex)); // "hi" then the defect

export function buildCodecCases(): VectorCase[] {
  const cases: VectorCase[] = [];
  const v = (id: string, d: string, s: string, f: Frame) => cases.push(valid(id, d, s, f));
  const r = (id: string, d: string, s: string, body: Bytes, e: string) => cases.push(badRelay(id, d, s, body, e));
  const b = (id: string, d: string, s: string, layer: Layer, body: Bytes, e: string) => cases.push(invalid(id, d, s, layer, 'body', body, e));
  const M = 'MALFORMED_FRAME';
  const I = 'INVALID_FIELD';
  const U = 'UNKNOWN_FRAME_TYPE';

  // ---- Valid frames: every type of every layer (§5, §6). ----
  v('relay_hello', 'HELLO with a 294-byte key (bin 16)', '§6 HELLO', SAMPLES.HELLO);
  v('relay_challenge', 'CHALLENGE with a 32-byte nonce', '§6 CHALLENGE', SAMPLES.CHALLENGE);
  v('relay_auth', 'AUTH with a 256-byte signature (bin 16)', '§6 AUTH', SAMPLES.AUTH);
  v('relay_welcome', 'WELCOME with the default limits', '§6 WELCOME', SAMPLES.WELCOME);
  v('relay_join', 'JOIN a room', '§6 JOIN', SAMPLES.JOIN);
  v('relay_joined', 'JOINED listing one other member (nesting depth 3, the limit)', '§6 JOINED', SAMPLES.JOINED);
  v('relay_joined_empty', 'JOINED with no other member', '§6 JOINED', frame('JOINED', { room: 'lobby', epoch: 1, members: [] }));
  v('relay_peer_joined', 'PEER_JOINED', '§6 PEER_JOINED', SAMPLES.PEER_JOINED);
  v('relay_peer_left', 'PEER_LEFT', '§6 PEER_LEFT', SAMPLES.PEER_LEFT);
  v('relay_send', 'SEND with a 256-byte opaque body', '§6 SEND', SAMPLES.SEND);
  v('relay_deliver', 'DELIVER with a 5-byte body', '§6 DELIVER', SAMPLES.DELIVER);
  v('relay_leave', 'LEAVE (no fields)', '§6 LEAVE', SAMPLES.LEAVE);
  v('relay_left', 'LEFT (no fields)', '§6 LEFT', SAMPLES.LEFT);
  v('relay_ping', 'PING', '§6 PING', SAMPLES.PING);
  v('relay_pong', 'PONG', '§6 PONG', SAMPLES.PONG);
  v('relay_error', 'ERROR with detail', '§6 ERROR', SAMPLES.ERROR);
  v('relay_recover', 'RECOVER: a 256-byte signature, a 16-byte recovery code, a 32-byte commitment', '§6 RECOVER', SAMPLES.RECOVER);
  v('relay_set_recovery', 'SET_RECOVERY with a 32-byte commitment', '§6 SET_RECOVERY', SAMPLES.SET_RECOVERY);
  v('relay_recovery_set', 'RECOVERY_SET (no fields)', '§6 RECOVERY_SET', SAMPLES.RECOVERY_SET);
  v('e2e_hs_init', 'HS_INIT', '§6 HS_INIT', SAMPLES.HS_INIT);
  v('e2e_hs_resp', 'HS_RESP', '§6 HS_RESP', SAMPLES.HS_RESP);
  v('e2e_hs_finish', 'HS_FINISH', '§6 HS_FINISH', SAMPLES.HS_FINISH);
  v('e2e_msg', 'MSG with the smallest ciphertext (256-byte bucket + 16-byte tag)', '§6 MSG', SAMPLES.MSG);
  v('inner_text', 'TEXT with ASCII text', '§6 TEXT', SAMPLES.TEXT);
  v('inner_ack', 'ACK', '§6 ACK', SAMPLES.ACK);
  v('inner_roster', 'ROSTER: a roster commitment (§8.6)', '§6 ROSTER', SAMPLES.ROSTER);

  // ---- Valid: every integer form at its edges (§4 rules 2, 3). ----
  for (const [n, what] of [
    [127, 'largest positive fixint'],
    [128, 'smallest uint 8'],
    [255, 'largest uint 8'],
    [256, 'smallest uint 16'],
    [65535, 'largest uint 16'],
    [65536, 'smallest uint 32'],
    [4294967295, 'largest uint 32'],
    [4294967296, 'smallest uint 64'],
    [L.MAX_UINT, 'MAX_UINT (2^53 - 1), the largest integer allowed'],
  ] as const) {
    v(`uint_${n === L.MAX_UINT ? 'max_uint' : n}`, `PING.n = ${n}: ${what}`, '§4 rule 3', frame('PING', { n }));
  }

  // ---- Valid: every bound at its limit (§6, §10). ----
  v('bound_hello_version_255', 'HELLO.version at its maximum 255', '§6 HELLO', frame('HELLO', { version: 255, nick: 'alice', key: KEY }));
  v('bound_hello_nick_31', 'HELLO.nick of 31 bytes: the longest fixstr', '§6 HELLO', frame('HELLO', { version: 1, nick: 'n'.repeat(31), key: KEY }));
  v('bound_hello_nick_32', 'HELLO.nick of NICK_MAX_BYTES (32): str 8', '§6 HELLO', frame('HELLO', { version: 1, nick: 'n'.repeat(L.NICK_MAX_BYTES), key: KEY }));
  v('bound_hello_nick_1', 'HELLO.nick of one byte', '§6 HELLO', frame('HELLO', { version: 1, nick: 'a', key: KEY }));
  v('bound_hello_key_1', 'HELLO.key of one byte (the codec does not parse keys)', '§6 HELLO', frame('HELLO', { version: 1, nick: 'alice', key: pattern(1, 9) }));
  v('bound_hello_key_512', 'HELLO.key of KEY_MAX_BYTES (512)', '§6 HELLO', frame('HELLO', { version: 1, nick: 'alice', key: pattern(L.KEY_MAX_BYTES, 9) }));
  v('alphabet_nick_all_classes', 'nick using every character class of [A-Za-z0-9_-]', '§6', frame('PEER_LEFT', { nick: 'Az09_-', epoch: 1 }));
  v('alphabet_room_all_classes', 'room using every character class of [A-Za-z0-9_.-]', '§6', frame('JOIN', { room: 'Az09_.-' }));
  v('bound_challenge_relay_255', 'CHALLENGE.relay of RELAY_NAME_MAX_BYTES (255): str 8', '§6 CHALLENGE', frame('CHALLENGE', { version: 2, nonce: pattern(32, 1), relay: 'r'.repeat(L.RELAY_NAME_MAX_BYTES) }));
  v('bound_challenge_relay_multibyte', 'CHALLENGE.relay is any UTF-8 (an IDN host name kept as typed)', '§6 CHALLENGE', frame('CHALLENGE', { version: 2, nonce: pattern(32, 1), relay: 'b\u00fccher.example:55555' }));
  v('bound_join_room_64', 'JOIN.room of ROOM_MAX_BYTES (64)', '§6 JOIN', frame('JOIN', { room: 'r'.repeat(L.ROOM_MAX_BYTES) }));
  v('bound_welcome_max', 'WELCOME with every field at its maximum', '§6 WELCOME',
    frame('WELCOME', { idle_ms: L.MAX_UINT, max_frame: L.MAX_FRAME_BYTES, room_size: L.MAX_ROOM_SIZE, rate: L.MAX_UINT }));
  v('bound_welcome_min', 'WELCOME with every field at its minimum', '§6 WELCOME', frame('WELCOME', { idle_ms: 1, max_frame: 1, room_size: 2, rate: 1 }));
  v('bound_joined_members_255', 'JOINED with MAX_ROOM_SIZE - 1 (255) members: array 16', '§6 JOINED',
    frame('JOINED', { room: 'big', epoch: L.MAX_UINT, members: Array.from({ length: L.MAX_ROOM_SIZE - 1 }, (_, i) => ({ nick: `m${i}`, key: pattern(1, i) })) }));
  v('bound_send_body_1', 'SEND.body of one byte', '§6 SEND', frame('SEND', { to: 'bob', body: pattern(1, 3) }));
  v('bound_send_body_49152', 'SEND.body of MAX_BODY_BYTES (49152)', '§6 SEND', frame('SEND', { to: 'bob', body: pattern(L.MAX_BODY_BYTES, 3) }));
  v('bound_error_code_255', 'ERROR.code at its maximum 255', '§6 ERROR', frame('ERROR', { code: 255, detail: '' }));
  v('bound_error_detail_0', 'ERROR.detail empty (fixstr of length 0)', '§6 ERROR', frame('ERROR', { code: 1, detail: '' }));
  v('bound_error_detail_256', 'ERROR.detail of DETAIL_MAX_BYTES (256): str 16', '§6 ERROR', frame('ERROR', { code: 1, detail: 'd'.repeat(L.DETAIL_MAX_BYTES) }));
  v('utf8_valid_multibyte', 'ERROR.detail with 2-, 3- and 4-byte UTF-8 sequences and U+10FFFF', '§4 rule 4',
    frame('ERROR', { code: 1, detail: '\u00e9\u20ac\u{1F600}\u{10FFFF}' }));
  v('utf8_valid_bom', 'a leading U+FEFF is an ordinary character: it is kept, not stripped', '§4 rule 4', frame('ERROR', { code: 1, detail: '\uFEFFx' }));
  v('utf8_valid_nul', 'U+0000 inside a string is valid UTF-8', '§4 rule 4', frame('ERROR', { code: 1, detail: 'a\u0000b' }));
  v('bound_msg_ct_32784', 'MSG.ct of PAD_MAX_BYTES + 16 (32784)', '§6 MSG', frame('MSG', { seq: L.MAX_UINT, ct: pattern(L.PAD_MAX_BYTES + 16, 13) }));
  v('bound_text_text_16384', 'TEXT.text of MAX_TEXT_BYTES (16384)', '§6 TEXT', frame('TEXT', { ts: 0, text: 't'.repeat(L.MAX_TEXT_BYTES) }));

  // ---- Framing (§3). ----
  cases.push(invalid('frame_zero_length', 'length prefix 0', '§3', 'relay', 'stream', cat('00000000'), M));
  cases.push(invalid('frame_length_one_past_limit', 'declared length MAX_FRAME_BYTES + 1, no body sent: rejected on the prefix alone', '§3', 'relay', 'stream',
    wire(new Uint8Array(0), L.MAX_FRAME_BYTES + 1), 'FRAME_TOO_LARGE'));
  cases.push(invalid('frame_length_max_u32', 'declared length 2^32 - 1', '§3', 'relay', 'stream', cat('ffffffff'), 'FRAME_TOO_LARGE'));
  cases.push(incomplete('frame_length_at_limit_waits', 'declared length MAX_FRAME_BYTES, no body yet: accepted, the receiver waits', '§3',
    wire(new Uint8Array(0), L.MAX_FRAME_BYTES)));
  {
    // A body of exactly MAX_FRAME_BYTES passes framing and rules 1-8, and fails only on SEND.body's bound.
    const n = L.MAX_FRAME_BYTES - (map([['t', uint(9)], ['to', str('bob')], ['body', bin(new Uint8Array(0x100))]]).length - 0x100);
    r('frame_length_at_limit', `a frame of exactly MAX_FRAME_BYTES: accepted by framing; SEND.body of ${n} bytes is over MAX_BODY_BYTES`, '§3',
      withField('SEND', 'body', bin(pattern(n, 3))), I);
  }
  cases.push(incomplete('frame_partial_prefix', 'three bytes of a length prefix: the receiver waits', '§3', cat('000000')));
  cases.push(incomplete('frame_partial_body', 'a PING frame missing its last byte: the receiver waits', '§3', wire(rawBody(SAMPLES.PING)).subarray(0, 7)));
  r('frame_truncated_body', 'the prefix counts 3 bytes; the map inside needs more', '§3', cat('81', str('t')), M);
  r('frame_trailing_bytes', 'a PING body followed by one extra byte, all counted by the prefix', '§3', cat(rawBody(SAMPLES.PING), '00'), M);
  r('frame_two_values', 'two complete PING maps under one length prefix', '§3', cat(rawBody(SAMPLES.PING), rawBody(SAMPLES.PING)), M);

  // ---- Rule 1: disallowed msgpack types, wherever they occur. ----
  for (const [id, hex, what] of [
    ['type_nil', 'c0', 'nil'],
    ['type_false', 'c2', 'false'],
    ['type_true', 'c3', 'true'],
    ['type_never_used', 'c1', 'the never-used byte 0xc1'],
    ['type_float32', 'ca3f800000', 'float 32 (1.0)'],
    ['type_float64', 'cb3ff0000000000000', 'float 64 (1.0)'],
    ['type_negative_fixint', 'ff', 'negative fixint (-1)'],
    ['type_int8', 'd0ff', 'int 8 (-1)'],
    ['type_int8_positive', 'd007', 'int 8 holding 7: a signed type even for a positive value'],
    ['type_int16', 'd1ffff', 'int 16 (-1)'],
    ['type_int32', 'd2ffffffff', 'int 32 (-1)'],
    ['type_int64', 'd3ffffffffffffffff', 'int 64 (-1)'],
    ['type_fixext1', 'd40100', 'fixext 1'],
    ['type_fixext2', 'd5010000', 'fixext 2'],
    ['type_fixext4', 'd601' + '00'.repeat(4), 'fixext 4'],
    ['type_fixext8', 'd701' + '00'.repeat(8), 'fixext 8'],
    ['type_fixext16', 'd801' + '00'.repeat(16), 'fixext 16'],
    ['type_ext8', 'c7010100', 'ext 8'],
    ['type_ext16', 'c800010100', 'ext 16'],
    ['type_ext32', 'c9000000010100', 'ext 32'],
    ['type_timestamp', 'd6ff00000000', 'the timestamp extension (type -1)'],
  ] as const) {
    r(id, `PING.n is ${what}`, '§4 rule 1', withField('PING', 'n', cat(hex)), M);
  }
  r('type_nil_nested', 'nil as the key of a JOINED member, at depth 3', '§4 rule 1', joinedWithMember(map([['nick', str('bob')], ['key', cat('c0')]])), M);

  // ---- Rule 2: integer range. ----
  r('uint_one_past_max_uint', 'PING.n = 2^53 (uint 64), one past MAX_UINT', '§4 rule 2', withField('PING', 'n', cat('cf0020000000000000')), M);
  r('uint_max_u64', 'PING.n = 2^64 - 1', '§4 rule 2', withField('PING', 'n', cat('cfffffffffffffffff')), M);

  // ---- Rule 3: shortest form. ----
  r('nonshortest_uint8', 'PING.n = 7 as uint 8', '§4 rule 3', withField('PING', 'n', cat('cc07')), M);
  r('nonshortest_uint8_127', 'PING.n = 127 as uint 8', '§4 rule 3', withField('PING', 'n', cat('cc7f')), M);
  r('nonshortest_uint16', 'PING.n = 255 as uint 16', '§4 rule 3', withField('PING', 'n', cat('cd00ff')), M);
  r('nonshortest_uint32', 'PING.n = 65535 as uint 32', '§4 rule 3', withField('PING', 'n', cat('ce0000ffff')), M);
  r('nonshortest_uint64', 'PING.n = 2^32 - 1 as uint 64', '§4 rule 3', withField('PING', 'n', cat('cf00000000ffffffff')), M);
  r('nonshortest_type_code', 'the t value 13 as uint 8', '§4 rule 3', map([['t', cat('cc0d')], ['n', uint(7)]]), M);
  r('nonshortest_str8', 'PEER_LEFT.nick "carol" as str 8', '§4 rule 3', withField('PEER_LEFT', 'nick', cat('d905', Buffer.from('carol'))), M);
  r('nonshortest_str8_31', 'a 31-byte nick as str 8', '§4 rule 3', withField('PEER_LEFT', 'nick', cat('d91f', Buffer.from('n'.repeat(31)))), M);
  r('nonshortest_str16', 'a 200-byte ERROR.detail as str 16', '§4 rule 3', withField('ERROR', 'detail', cat('da00c8', Buffer.from('d'.repeat(200)))), M);
  r('nonshortest_str32', 'a 256-byte ERROR.detail as str 32', '§4 rule 3', withField('ERROR', 'detail', cat('db00000100', Buffer.from('d'.repeat(256)))), M);
  r('nonshortest_key_str8', 'the key "t" as str 8', '§4 rule 3', map([[cat('d90174'), uint(13)], ['n', uint(7)]]), M);
  r('nonshortest_bin16', 'a 5-byte DELIVER.body as bin 16', '§4 rule 3', withField('DELIVER', 'body', cat('c50005', pattern(5, 4))), M);
  r('nonshortest_bin32', 'a 5-byte DELIVER.body as bin 32', '§4 rule 3', withField('DELIVER', 'body', cat('c600000005', pattern(5, 4))), M);
  r('nonshortest_array16', 'JOINED.members with one member as array 16', '§4 rule 3',
    withField('JOINED', 'members', cat('dc0001', map([['nick', str('bob')], ['key', bin(KEY)]]))), M);
  r('nonshortest_array32', 'empty JOINED.members as array 32', '§4 rule 3', withField('JOINED', 'members', cat('dd00000000')), M);
  r('nonshortest_map16', 'the PING map as map 16', '§4 rule 3', cat('de0002', str('t'), uint(13), str('n'), uint(7)), M);
  r('nonshortest_map32', 'the PING map as map 32', '§4 rule 3', cat('df00000002', str('t'), uint(13), str('n'), uint(7)), M);

  // ---- Rule 4: UTF-8. Each case: ERROR.detail = "hi" followed by the defect. ----
  for (const [id, hex, what] of [
    ['utf8_overlong_2byte', 'c0af', 'an overlong 2-byte form of "/"'],
    ['utf8_overlong_3byte', 'e080af', 'an overlong 3-byte form of "/"'],
    ['utf8_overlong_4byte', 'f08080af', 'an overlong 4-byte form of "/"'],
    ['utf8_surrogate_high', 'eda080', 'the UTF-16 high surrogate U+D800 encoded as UTF-8'],
    ['utf8_surrogate_low', 'edbfbf', 'the UTF-16 low surrogate U+DFFF encoded as UTF-8'],
    ['utf8_truncated_2byte', 'c3', 'a 2-byte sequence cut after its lead byte'],
    ['utf8_truncated_3byte', 'e282', 'a 3-byte sequence cut after two bytes'],
    ['utf8_truncated_4byte', 'f09f98', 'a 4-byte sequence cut after three bytes'],
    ['utf8_above_max', 'f4908080', 'U+110000, above U+10FFFF'],
    ['utf8_lone_continuation', '80', 'a continuation byte with no lead byte'],
    ['utf8_byte_ff', 'ff', 'the byte 0xff'],
  ] as const) {
    r(id, `ERROR.detail contains ${what}`, '§4 rule 4', withField('ERROR', 'detail', utf8Bad(hex)), M);
  }
  r('utf8_in_key', 'a map key that is not valid UTF-8 (0xc0 0xaf)', '§4 rule 4', map([['t', uint(13)], ['n', uint(7)], [str(cat('c0af')), uint(1)]]), M);

  // ---- Rule 5: maps. ----
  r('map_duplicate_key', 'PING with the key "n" twice', '§4 rule 5', map([['t', uint(13)], ['n', uint(7)], ['n', uint(7)]]), M);
  r('map_key_uint', 'a map key that is an integer', '§4 rule 5', map([['t', uint(13)], ['n', uint(7)], [uint(1), uint(1)]]), M);
  r('map_key_bin', 'a map key that is binary', '§4 rule 5', map([['t', uint(13)], ['n', uint(7)], [bin(cat('6e')), uint(1)]]), M);
  {
    const extra = (k: number): [string, Bytes][] => Array.from({ length: k }, (_, i) => [`x${i}`, uint(i)] as [string, Bytes]);
    r('map_entries_at_limit', 'PING with MAX_MAP_ENTRIES (8) entries: rules 1-8 pass, the 6 extra keys are unknown fields', '§4 rule 5',
      map([...entries('PING'), ...extra(L.MAX_MAP_ENTRIES - 2)]), I);
    r('map_entries_one_past', 'PING with MAX_MAP_ENTRIES + 1 (9) entries', '§4 rule 5', map([...entries('PING'), ...extra(L.MAX_MAP_ENTRIES - 1)]), M);
  }

  // ---- Rule 6: nesting depth (the frame map is depth 1). ----
  r('depth_at_limit', 'PING.n = [[1]]: arrays at depth 2 and 3 pass rules 1-8; n is not an integer', '§4 rule 6', withField('PING', 'n', cat('919101')), I);
  r('depth_one_past', 'PING.n = [[[1]]]: an array at depth 4', '§4 rule 6', withField('PING', 'n', cat('91919101')), M);
  r('depth_one_past_map', 'a JOINED member whose key is an empty map at depth 4', '§4 rule 6', joinedWithMember(map([['nick', str('bob')], ['key', cat('80')]])), M);

  // ---- Rule 7: declared sizes beyond the body. ----
  r('declared_fixstr_beyond', 'the last value, a fixstr, declares 5 bytes; 2 remain', '§4 rule 7', cat('83', str('t'), uint(15), str('code'), uint(1), str('detail'), 'a56869'), M);
  r('declared_str8_beyond', 'ERROR.detail declares 200 bytes (str 8); 2 remain', '§4 rule 7', cat('83', str('t'), uint(15), str('code'), uint(1), str('detail'), 'd9c86869'), M);
  r('declared_str32_huge', 'ERROR.detail declares 2^32 - 1 bytes (str 32)', '§4 rule 7', cat('83', str('t'), uint(15), str('code'), uint(1), str('detail'), 'dbffffffff6869'), M);
  r('declared_bin8_beyond', 'DELIVER.body declares 255 bytes (bin 8); 3 remain', '§4 rule 7', cat('83', str('t'), uint(10), str('from'), str('alice'), str('body'), 'c4ff010203'), M);
  r('declared_bin32_huge', 'DELIVER.body declares 2^32 - 1 bytes (bin 32)', '§4 rule 7', cat('83', str('t'), uint(10), str('from'), str('alice'), str('body'), 'c6ffffffff010203'), M);
  r('declared_array16_beyond', 'JOINED.members declares 65535 elements (array 16); 1 byte remains', '§4 rule 7', cat('84', str('t'), uint(6), str('room'), str('lobby'), str('epoch'), uint(2), str('members'), 'dcffff90'), M);
  r('declared_array32_huge', 'JOINED.members declares 2^32 - 1 elements (array 32)', '§4 rule 7', cat('84', str('t'), uint(6), str('room'), str('lobby'), str('epoch'), uint(2), str('members'), 'ddffffffff90'), M);
  r('declared_map_beyond', 'a fixmap declaring 3 entries with 2 present', '§4 rule 7', cat('83', str('t'), uint(13), str('n'), uint(7)), M);

  // ---- Rule 8: the top level is a map. ----
  r('top_array', 'the body is the array [13, 7]', '§4 rule 8', cat('920d07'), M);
  r('top_uint', 'the body is the integer 13', '§4 rule 8', cat('0d'), M);
  r('top_str', 'the body is the string "t"', '§4 rule 8', str('t'), M);
  r('top_bin', 'the body is a 1-byte bin', '§4 rule 8', bin(cat('0d')), M);
  r('top_nil', 'the body is nil', '§4 rule 8', cat('c0'), M);

  // ---- Rule 9: frame shape. ----
  r('shape_missing_t', 'a map without "t"', '§4 rule 9', map([['n', uint(7)]]), I);
  r('shape_t_string', '"t" is the string "13"', '§4 rule 9', map([['t', str('13')], ['n', uint(7)]]), I);
  r('shape_t_bin', '"t" is binary', '§4 rule 9', map([['t', bin(cat('0d'))], ['n', uint(7)]]), I);
  r('shape_t_not_first', 'PING with "n" before "t"', '§4 rule 9', map([['n', uint(7)], ['t', uint(13)]]), M);
  r('shape_fields_out_of_order', 'SEND with "body" before "to"', '§4 rule 9', map([['t', uint(9)], ['body', bin(pattern(3, 3))], ['to', str('bob')]]), M);
  r('shape_member_out_of_order', 'a JOINED member with "key" before "nick"', '§4 rule 9', joinedWithMember(map([['key', bin(KEY)], ['nick', str('bob')]])), M);
  r('shape_missing_field', 'PING without "n"', '§4 rule 9', map([['t', uint(13)]]), I);
  r('shape_unknown_field', 'PING with an extra field "x"', '§4 rule 9', map([...entries('PING'), ['x', uint(1)]]), I);
  r('shape_proto_key', 'PING with an extra field "__proto__"', '§4 rule 9', map([...entries('PING'), ['__proto__', uint(1)]]), I);
  r('shape_constructor_key', 'PING with an extra field "constructor"', '§4 rule 9', map([...entries('PING'), ['constructor', uint(1)]]), I);
  r('shape_field_for_empty_frame', 'LEAVE with a field', '§4 rule 9', map([['t', uint(11)], ['n', uint(1)]]), I);
  r('shape_member_missing_key', 'a JOINED member without "key"', '§4 rule 9', joinedWithMember(map([['nick', str('bob')]])), I);
  r('shape_member_unknown_field', 'a JOINED member with an extra field', '§4 rule 9', joinedWithMember(map([['nick', str('bob')], ['key', bin(KEY)], ['x', uint(1)]])), I);
  r('shape_member_proto_key', 'a JOINED member with "__proto__" instead of "key"', '§4 rule 9', joinedWithMember(map([['nick', str('bob')], ['__proto__', bin(KEY)]])), I);
  r('shape_member_not_map', 'a JOINED member that is a string', '§4 rule 9', joinedWithMember(str('bob')), I);
  r('type_uint_as_str', 'PING.n is the string "7"', '§6 PING', withField('PING', 'n', str('7')), I);
  r('type_uint_as_bin', 'PING.n is binary', '§6 PING', withField('PING', 'n', bin(cat('07'))), I);
  r('type_str_as_bin', 'PEER_LEFT.nick is binary', '§6 PEER_LEFT', withField('PEER_LEFT', 'nick', bin(Buffer.from('carol'))), I);
  r('type_str_as_uint', 'PEER_LEFT.nick is an integer', '§6 PEER_LEFT', withField('PEER_LEFT', 'nick', uint(5)), I);
  r('type_bin_as_str', 'DELIVER.body is a string', '§6 DELIVER', withField('DELIVER', 'body', str('hello')), I);
  r('type_members_as_map', 'JOINED.members is a map', '§6 JOINED', withField('JOINED', 'members', map([['nick', str('bob')], ['key', bin(KEY)]])), I);
  r('type_members_as_bin', 'JOINED.members is binary', '§6 JOINED', withField('JOINED', 'members', bin(cat('00'))), I);

  // ---- Frame types and layers (§5). ----
  for (const [id, code, what] of [
    ['unknown_type_0', 0, 'type 0'],
    ['unknown_type_0x13', 0x13, 'type 0x13, one past the last relay frame'],
    ['unknown_type_0x7f', 0x7f, 'type 0x7f'],
    ['unknown_type_0xff', 0xff, 'type 0xff (uint 8)'],
    ['unknown_type_large', L.MAX_UINT, 'type MAX_UINT'],
  ] as const) {
    r(id, `a map whose t is ${what}`, '§5', map([['t', uint(code)]]), U);
  }
  r('layer_e2e_at_relay', 'an HS_INIT body read from a relay connection', '§5', rawBody(SAMPLES.HS_INIT), U);
  r('layer_inner_at_relay', 'a TEXT body read from a relay connection', '§5', rawBody(SAMPLES.TEXT), U);
  b('layer_relay_at_e2e', 'a SEND body decoded as an e2e frame', '§5', 'e2e', rawBody(SAMPLES.SEND), U);
  b('layer_inner_at_e2e', 'a TEXT body decoded as an e2e frame', '§5', 'e2e', rawBody(SAMPLES.TEXT), U);
  b('layer_e2e_at_inner', 'a MSG body decoded as an inner frame', '§5', 'inner', rawBody(SAMPLES.MSG), U);
  b('layer_relay_at_inner', 'a PING body decoded as an inner frame', '§5', 'inner', rawBody(SAMPLES.PING), U);
  b('e2e_malformed_body', 'an e2e body with trailing bytes: the same rules apply at every layer', '§4', 'e2e', cat(rawBody(SAMPLES.HS_FINISH), '00'), M);
  b('inner_text_invalid_utf8', 'TEXT.text with a surrogate', '§4 rule 4', 'inner', withField('TEXT', 'text', utf8Bad('eda080')), M);

  // ---- Bounds one past each limit (§6, §10). ----
  const bound = (id: string, name: FrameName, field: string, value: Bytes, d: string) => {
    const layer = FRAMES[name].layer;
    const body = withField(name, field, value);
    if (layer === 'relay') r(id, d, `§6 ${name}`, body, I);
    else b(id, d, `§6 ${name}`, layer, body, I);
  };
  bound('bound_hello_version_256', 'HELLO', 'version', uint(256), 'HELLO.version = 256, one past 255');
  bound('bound_hello_nick_0', 'HELLO', 'nick', str(''), 'HELLO.nick empty');
  bound('bound_hello_nick_33', 'HELLO', 'nick', str('n'.repeat(L.NICK_MAX_BYTES + 1)), 'HELLO.nick of 33 bytes');
  bound('bound_hello_key_0', 'HELLO', 'key', bin(new Uint8Array(0)), 'HELLO.key empty');
  bound('bound_hello_key_513', 'HELLO', 'key', bin(pattern(L.KEY_MAX_BYTES + 1, 9)), 'HELLO.key of 513 bytes');
  bound('bound_challenge_nonce_31', 'CHALLENGE', 'nonce', bin(pattern(31, 1)), 'CHALLENGE.nonce of 31 bytes');
  bound('bound_challenge_nonce_33', 'CHALLENGE', 'nonce', bin(pattern(33, 1)), 'CHALLENGE.nonce of 33 bytes');
  bound('bound_auth_sig_255', 'AUTH', 'sig', bin(pattern(255, 2)), 'AUTH.sig of 255 bytes');
  bound('bound_auth_sig_257', 'AUTH', 'sig', bin(pattern(257, 2)), 'AUTH.sig of 257 bytes');
  bound('bound_recover_sig_255', 'RECOVER', 'sig', bin(pattern(255, 14)), 'RECOVER.sig of 255 bytes');
  bound('bound_recover_code_15', 'RECOVER', 'code', bin(pattern(15, 15)), 'RECOVER.code of 15 bytes');
  bound('bound_recover_code_17', 'RECOVER', 'code', bin(pattern(17, 15)), 'RECOVER.code of 17 bytes');
  bound('bound_recover_code_empty', 'RECOVER', 'code', bin(new Uint8Array(0)), 'RECOVER.code empty (there is no "no code": a client that has none sends AUTH)');
  bound('bound_recover_commit_31', 'RECOVER', 'commit', bin(pattern(31, 16)), 'RECOVER.commit of 31 bytes');
  bound('bound_set_recovery_commit_31', 'SET_RECOVERY', 'commit', bin(pattern(31, 17)), 'SET_RECOVERY.commit of 31 bytes');
  bound('bound_set_recovery_commit_33', 'SET_RECOVERY', 'commit', bin(pattern(33, 17)), 'SET_RECOVERY.commit of 33 bytes');
  bound('bound_welcome_idle_ms_0', 'WELCOME', 'idle_ms', uint(0), 'WELCOME.idle_ms = 0');
  bound('bound_welcome_max_frame_0', 'WELCOME', 'max_frame', uint(0), 'WELCOME.max_frame = 0');
  bound('bound_welcome_max_frame_65537', 'WELCOME', 'max_frame', uint(L.MAX_FRAME_BYTES + 1), 'WELCOME.max_frame = MAX_FRAME_BYTES + 1');
  bound('bound_welcome_room_size_1', 'WELCOME', 'room_size', uint(1), 'WELCOME.room_size = 1');
  bound('bound_welcome_room_size_257', 'WELCOME', 'room_size', uint(L.MAX_ROOM_SIZE + 1), 'WELCOME.room_size = MAX_ROOM_SIZE + 1');
  bound('bound_welcome_rate_0', 'WELCOME', 'rate', uint(0), 'WELCOME.rate = 0');
  bound('bound_challenge_relay_0', 'CHALLENGE', 'relay', str(''), 'CHALLENGE.relay empty');
  bound('bound_challenge_relay_256', 'CHALLENGE', 'relay', str('r'.repeat(L.RELAY_NAME_MAX_BYTES + 1)), 'CHALLENGE.relay of 256 bytes');
  bound('bound_join_room_0', 'JOIN', 'room', str(''), 'JOIN.room empty');
  bound('bound_join_room_65', 'JOIN', 'room', str('r'.repeat(L.ROOM_MAX_BYTES + 1)), 'JOIN.room of 65 bytes');
  bound('bound_joined_members_256', 'JOINED', 'members',
    array(Array.from({ length: L.MAX_ROOM_SIZE }, (_, i) => map([['nick', str(`m${i}`)], ['key', bin(pattern(1, i))]]))), 'JOINED with MAX_ROOM_SIZE (256) members');
  bound('bound_joined_member_nick_33', 'JOINED', 'members', array([map([['nick', str('n'.repeat(33))], ['key', bin(KEY)]])]), 'a JOINED member nick of 33 bytes');
  bound('bound_joined_member_key_empty', 'JOINED', 'members', array([map([['nick', str('bob')], ['key', bin(new Uint8Array(0))]])]), 'a JOINED member key empty');
  bound('bound_peer_joined_key_513', 'PEER_JOINED', 'key', bin(pattern(L.KEY_MAX_BYTES + 1, 9)), 'PEER_JOINED.key of 513 bytes');
  bound('bound_send_body_0', 'SEND', 'body', bin(new Uint8Array(0)), 'SEND.body empty');
  bound('bound_send_body_49153', 'SEND', 'body', bin(pattern(L.MAX_BODY_BYTES + 1, 3)), 'SEND.body of MAX_BODY_BYTES + 1');
  bound('bound_send_to_33', 'SEND', 'to', str('n'.repeat(L.NICK_MAX_BYTES + 1)), 'SEND.to of 33 bytes');
  bound('bound_deliver_from_0', 'DELIVER', 'from', str(''), 'DELIVER.from empty');
  bound('bound_error_code_0', 'ERROR', 'code', uint(0), 'ERROR.code = 0');
  bound('bound_error_code_256', 'ERROR', 'code', uint(256), 'ERROR.code = 256');
  bound('bound_error_detail_257', 'ERROR', 'detail', str('d'.repeat(L.DETAIL_MAX_BYTES + 1)), 'ERROR.detail of 257 bytes');
  bound('bound_error_detail_257_multibyte', 'ERROR', 'detail', str('\u00e9'.repeat(128) + 'x'), 'ERROR.detail of 129 characters but 257 UTF-8 bytes');
  bound('bound_hs_init_version_256', 'HS_INIT', 'version', uint(256), 'HS_INIT.version = 256');
  bound('bound_hs_init_eph_31', 'HS_INIT', 'eph', bin(pattern(31, 5)), 'HS_INIT.eph of 31 bytes');
  bound('bound_hs_init_eph_33', 'HS_INIT', 'eph', bin(pattern(33, 5)), 'HS_INIT.eph of 33 bytes');
  bound('bound_hs_init_ct_255', 'HS_INIT', 'ct', bin(pattern(255, 6)), 'HS_INIT.ct of 255 bytes');
  bound('bound_hs_resp_sig_257', 'HS_RESP', 'sig', bin(pattern(257, 9)), 'HS_RESP.sig of 257 bytes');
  bound('bound_hs_resp_mac_31', 'HS_RESP', 'mac', bin(pattern(31, 10)), 'HS_RESP.mac of 31 bytes');
  bound('bound_hs_finish_mac_33', 'HS_FINISH', 'mac', bin(pattern(33, 12)), 'HS_FINISH.mac of 33 bytes');
  bound('bound_msg_ct_271', 'MSG', 'ct', bin(pattern(L.PAD_MIN_BYTES + 15, 13)), 'MSG.ct of PAD_MIN_BYTES + 15 (271)');
  bound('bound_msg_ct_32785', 'MSG', 'ct', bin(pattern(L.PAD_MAX_BYTES + 17, 13)), 'MSG.ct of PAD_MAX_BYTES + 17 (32785)');
  bound('bound_text_text_0', 'TEXT', 'text', str(''), 'TEXT.text empty');
  bound('bound_text_text_16385', 'TEXT', 'text', str('t'.repeat(L.MAX_TEXT_BYTES + 1)), 'TEXT.text of MAX_TEXT_BYTES + 1');

  // ---- Name alphabets (§6, §10). ----
  bound('alphabet_nick_space', 'HELLO', 'nick', str('al ice'), 'HELLO.nick with a space');
  bound('alphabet_nick_dot', 'HELLO', 'nick', str('al.ice'), 'HELLO.nick with "." (allowed in rooms, not in nicks)');
  bound('alphabet_nick_non_ascii', 'HELLO', 'nick', str('al\u00efce'), 'HELLO.nick with U+00EF (valid UTF-8, outside the alphabet)');
  bound('alphabet_nick_nul', 'HELLO', 'nick', str('al\u0000ce'), 'HELLO.nick with U+0000');
  bound('alphabet_nick_newline_end', 'HELLO', 'nick', str('alice\n'), 'HELLO.nick ending in a newline');
  bound('alphabet_send_to_slash', 'SEND', 'to', str('b/ob'), 'SEND.to with "/"');
  bound('alphabet_room_slash', 'JOIN', 'room', str('lo/bby'), 'JOIN.room with "/"');
  bound('alphabet_room_space', 'JOIN', 'room', str('lob by'), 'JOIN.room with a space');
  bound('alphabet_room_non_ascii', 'JOIN', 'room', str('l\u00f6bby'), 'JOIN.room with U+00F6');

  // ---- Every bound of every field, systematically: at min and max (valid), one below and one above
  // (INVALID_FIELD). Cases already written above under the same id are not repeated. ----
  const have = new Set(cases.map((c) => c.id));
  for (const name of Object.keys(FRAMES) as FrameName[]) {
    for (const f of FRAMES[name].fields as readonly FieldSpec[]) {
      if (f.kind === 'members') continue; // JOINED.members: 0 and 255 valid, 256 invalid, above
      const id = (n: number) => `bound_${name.toLowerCase()}_${f.name}_${n === L.MAX_UINT ? 'max_uint' : n}`;
      const unit = f.kind === 'uint' ? '' : ' bytes';
      for (const n of [...new Set([f.min, f.max])]) {
        if (have.has(id(n))) continue;
        const value = f.kind === 'uint' ? n : f.kind === 'str' ? 'a'.repeat(n) : pattern(n, 0x50);
        const fr = { ...SAMPLES[name], [f.name]: value } as Frame;
        v(id(n), `${name}.${f.name} = ${n}${unit}, at its ${n === f.min ? 'minimum' : 'maximum'}`, `§6 ${name}`, fr);
        have.add(id(n));
      }
      const past: number[] = [];
      if (f.min > 0) past.push(f.min - 1);
      if (f.max < L.MAX_UINT) past.push(f.max + 1); // above MAX_UINT is rule 2, covered by uint_ cases
      for (const n of past) {
        if (have.has(id(n))) continue;
        const value = f.kind === 'uint' ? uint(n) : f.kind === 'str' ? str('a'.repeat(n)) : bin(pattern(n, 0x50));
        bound(id(n), name, f.name, value, `${name}.${f.name} = ${n}${unit}, one ${n < f.min ? 'below its minimum' : 'above its maximum'}`);
        have.add(id(n));
      }
    }
  }
  return cases;
}
