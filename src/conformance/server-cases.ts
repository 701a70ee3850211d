/**
 * The server cases: one per server-side MUST of spec/PROTOCOL.md, each named `<area>_<defect>` and tagged
 * with the section it exercises. A case passes when the target does exactly what the spec requires; it
 * fails with a CaseFailure naming what was expected and what arrived. Cases never assume anything of the
 * target beyond the spec and the values it announces in WELCOME (or the kit is told with flags).
 */
import { constants, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { FRAMES, type FrameName, type FrameOf, type RelayFrame } from '../codec/index.js';
import { authMessage, lp, pssSign } from '../crypto/rsa.js';
import { authOf } from './context.js';
import { ERROR_CODES, type ErrorName } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import type { ServerState } from '../protocol/relay-machine.js';
import { ConnectionOracle, frameItem, type Expectation } from '../wirekit/relay-model.js';
import { CaseFailure, CaseSkip, describe, type Conn } from './conn.js';
import { makeIdentity, sameMembers, type Ctx, type Identity } from './context.js';
import * as mp from '../wirekit/msgpack.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { sha256 } from '../crypto/primitives.js';
import { recoveryCommitInput } from '../crypto/recovery.js';

export interface ServerCase {
  /** Stable id, `<area>_<defect>`. */
  readonly id: string;
  /** The spec section it exercises, e.g. "§4 rule 3" or "§7.1". */
  readonly section: string;
  /** What the spec requires, in one line. */
  readonly title: string;
  /** True for cases that wait for a timeout of the target. */
  readonly slow?: boolean;
  /** Identity keys the case leases (default KEYS_PER_CASE, 2); made before the case starts. */
  readonly keys?: number;
  run(ctx: Ctx): Promise<void>;
}

const cases: ServerCase[] = [];
function add(c: ServerCase): void {
  if (cases.some((x) => x.id === c.id)) throw new Error(`duplicate case id ${c.id}`);
  cases.push(c);
}

type LiveState = Exclude<ServerState, 'CLOSED'>;
const LIVE: readonly LiveState[] = ['AWAIT_HELLO', 'AWAIT_AUTH', 'READY', 'IN_ROOM'];

/** Brings a fresh connection into `state` by the spec's own steps. */
async function reach(ctx: Ctx, state: LiveState): Promise<Conn> {
  switch (state) {
    case 'AWAIT_HELLO':
      return ctx.open();
    case 'AWAIT_AUTH':
      return (await ctx.challenged()).conn;
    case 'READY':
      return (await ctx.authed()).conn;
    case 'IN_ROOM':
      return (await ctx.joined(ctx.room())).conn;
  }
}

/** LEAVE from `conn`, answered with LEFT (§7.1 IN_ROOM LEAVE -> READY). */
async function leave(conn: Conn): Promise<void> {
  conn.send({ type: 'LEAVE' });
  await conn.expect('LEFT', 'LEFT after LEAVE');
}

/** The next frames are one PONG per `ns` entry, echoing each in order (§7.1 PING). */
async function pongs(conn: Conn, ns: readonly number[]): Promise<void> {
  for (const n of ns) {
    const p = await conn.expect('PONG', `PONG {n: ${n}}`);
    if (p.n !== n) throw new CaseFailure(`PONG {n: ${n}}`, `PONG {n: ${p.n}}`);
  }
}

/** The entries of a valid HELLO body for a fresh nick, as raw msgpack, so one entry can be spoiled. */
function helloEntries(ctx: Ctx, ident: Identity = ctx.ident()): Array<[string, Buffer]> {
  return [
    ['t', mp.uint(FRAMES.HELLO.code)],
    ['version', mp.uint(PROTOCOL_VERSION)],
    ['nick', mp.str(ctx.nick())],
    ['key', mp.bin(ident.spki)],
  ];
}

function withEntry(entries: Array<[string, Buffer]>, name: string, value: Buffer): Array<[string, Buffer]> {
  return entries.map(([k, v]) => [k, k === name ? value : v]);
}

/** A case that sends one body as the first frame of a connection and expects ERROR `code` (and close). */
function firstFrame(id: string, section: string, title: string, body: (ctx: Ctx) => Buffer, code: ErrorName): void {
  add({
    id,
    section,
    title,
    async run(ctx) {
      const c = await ctx.open();
      c.body(body(ctx));
      await c.expectError(code);
    },
  });
}

/** A case that spoils one entry of an otherwise valid HELLO. */
function badHello(id: string, section: string, title: string, field: string, value: (ctx: Ctx) => Buffer, code: ErrorName): void {
  firstFrame(id, section, title, (ctx) => mp.map(withEntry(helloEntries(ctx), field, value(ctx))), code);
}

// ---------------------------------------------------------------------------------------------------
// §3 Transport and framing

firstFrame('framing_zero_length', '§3', 'a length prefix of 0 is refused with MALFORMED_FRAME', () => Buffer.alloc(0), 'MALFORMED_FRAME');

add({
  id: 'framing_too_large_refused_unread',
  section: '§3',
  title: 'a declared length of MAX_FRAME_BYTES + 1 is refused with FRAME_TOO_LARGE as soon as the 4 prefix bytes arrive',
  async run(ctx) {
    const c = await ctx.open();
    c.raw(mp.prefix(LIMITS.MAX_FRAME_BYTES + 1)); // no body byte follows: the relay must not wait for one
    await c.expectError('FRAME_TOO_LARGE');
  },
});

add({
  id: 'framing_too_large_max_u32',
  section: '§3',
  title: 'a declared length of 2^32 - 1 is refused with FRAME_TOO_LARGE without reading the body',
  async run(ctx) {
    const c = await ctx.open();
    c.raw(mp.prefix(0xffff_ffff));
    await c.expectError('FRAME_TOO_LARGE');
  },
});

add({
  id: 'framing_announced_max_frame_applies',
  section: '§3',
  title: "after WELCOME, a declared length of the announced max_frame + 1 is refused with FRAME_TOO_LARGE",
  async run(ctx) {
    const a = await ctx.authed();
    a.conn.raw(mp.prefix(a.welcome.max_frame + 1));
    await a.conn.expectError('FRAME_TOO_LARGE');
  },
});

add({
  id: 'framing_at_max_frame_is_read',
  section: '§3',
  title: 'a frame of exactly the announced max_frame bytes is read and decoded (JOIN with a too-long room: INVALID_FIELD, not FRAME_TOO_LARGE)',
  async run(ctx) {
    const a = await ctx.authed();
    const max = a.welcome.max_frame;
    // {t: 5, room: str(L)}: 1 (fixmap) + 2 (key "t") + 1 (value) + 5 (key "room") + header + L bytes.
    let body: Buffer | undefined;
    for (const hl of [1, 2, 3, 5]) {
      const l = max - 9 - hl;
      if (l > 0 && mp.strHeader(l).length === hl) body = mp.map([['t', mp.uint(5)], ['room', mp.str('r'.repeat(l))]]);
    }
    if (body !== undefined && body.length !== max) throw new Error(`kit bug: probe of ${body.length} bytes for max_frame ${max}`);
    if (body === undefined || max < 100) throw new CaseSkip(`announced max_frame ${max} leaves no room for the probe`);
    a.conn.body(body);
    await a.conn.expectError('INVALID_FIELD');
  },
});

add({
  id: 'framing_split_segments',
  section: '§3',
  title: 'a HELLO split across many TCP segments (one byte of prefix at a time) is the same frame: CHALLENGE',
  async run(ctx) {
    const c = await ctx.open();
    const bytes = mp.wire(mp.map(helloEntries(ctx)));
    const cuts = [1, 2, 3, 4, 5, 9, 17, 40, 100, 200, bytes.length];
    let from = 0;
    for (const to of cuts) {
      c.raw(bytes.subarray(from, to));
      from = to;
      await new Promise((r) => setTimeout(r, 5));
    }
    const ch = await c.expect('CHALLENGE', 'CHALLENGE for a HELLO delivered in 11 pieces');
    if (ch.version !== PROTOCOL_VERSION) throw new CaseFailure(`CHALLENGE {version: ${PROTOCOL_VERSION}}`, `CHALLENGE {version: ${ch.version}}`);
  },
});

add({
  id: 'framing_coalesced_frames',
  section: '§3',
  title: 'several frames in one TCP segment are each handled, in order (3 PINGs: 3 PONGs)',
  async run(ctx) {
    const a = await ctx.authed();
    a.conn.raw(Buffer.concat([1, 2, 3].map((n) => mp.wire(mp.map([['t', mp.uint(13)], ['n', mp.uint(n)]])))));
    await pongs(a.conn, [1, 2, 3]);
  },
});

add({
  id: 'framing_first_error_final',
  section: '§3',
  title: 'the first error is final: a PING that follows a bad frame in the same segment is never answered',
  async run(ctx) {
    const a = await ctx.authed();
    a.conn.raw(Buffer.concat([mp.prefix(0), mp.wire(mp.map([['t', mp.uint(13)], ['n', mp.uint(7)]]))]));
    await a.conn.expectError('MALFORMED_FRAME');
  },
});

firstFrame(
  'framing_trailing_bytes',
  '§3',
  'a body with a byte after the one msgpack value is refused with MALFORMED_FRAME',
  (ctx) => Buffer.concat([mp.map(helloEntries(ctx)), Buffer.from([0x00])]),
  'MALFORMED_FRAME',
);

firstFrame(
  'framing_value_beyond_body',
  '§3',
  'a value that ends beyond the declared length is refused with MALFORMED_FRAME',
  (ctx) => {
    const b = mp.map(helloEntries(ctx));
    return b.subarray(0, b.length - 1);
  },
  'MALFORMED_FRAME',
);

// ---------------------------------------------------------------------------------------------------
// §4 Encoding rules (all sent as the first frame: a HELLO with one defect)

const r1: Array<[string, string, Buffer]> = [
  ['nil', 'nil', Buffer.from([0xc0])],
  ['false', 'false', Buffer.from([0xc2])],
  ['true', 'true', Buffer.from([0xc3])],
  ['float32', 'float 32', Buffer.from([0xca, 0x3f, 0x80, 0x00, 0x00])],
  ['float64', 'float 64', Buffer.from([0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0])],
  ['negative_fixint', 'negative fixint', Buffer.from([0xff])],
  ['int8', 'int 8 (even for a positive value)', Buffer.from([0xd0, 0x01])],
  ['int64', 'int 64 (even for a positive value)', Buffer.from([0xd3, 0, 0, 0, 0, 0, 0, 0, 1])],
  ['fixext1', 'fixext 1', Buffer.from([0xd4, 0x01, 0x00])],
  ['ext8', 'ext 8', Buffer.from([0xc7, 0x01, 0x05, 0x00])],
];
for (const [tag, what, bytes] of r1) {
  badHello(`encoding_type_${tag}`, '§4 rule 1', `a ${what} value (HELLO.version) is refused with MALFORMED_FRAME`, 'version', () => bytes, 'MALFORMED_FRAME');
}
firstFrame(
  'encoding_type_nil_in_unknown_field',
  '§4 rule 1',
  'a disallowed type is refused wherever it occurs, even in a field the frame does not have (MALFORMED_FRAME before INVALID_FIELD)',
  (ctx) => mp.map([...helloEntries(ctx), ['extra', Buffer.from([0xc0])]]),
  'MALFORMED_FRAME',
);

badHello('encoding_uint_above_max', '§4 rule 2', 'a uint 64 of 2^53 is refused with MALFORMED_FRAME', 'version', () => mp.uint64(2n ** 53n), 'MALFORMED_FRAME');
badHello(
  'encoding_uint_at_max_decodes',
  '§4 rule 2',
  'a uint 64 of 2^53 - 1 decodes (so HELLO.version out of bounds: INVALID_FIELD, not MALFORMED_FRAME)',
  'version',
  () => mp.uint64(2n ** 53n - 1n),
  'INVALID_FIELD',
);

const r3: Array<[string, string, string, (ctx: Ctx) => Buffer]> = [
  ['uint8_for_fixint', 'version', 'uint 8 for 1', () => Buffer.from([0xcc, 0x01])],
  ['uint16_for_fixint', 'version', 'uint 16 for 1', () => Buffer.from([0xcd, 0x00, 0x01])],
  ['uint32_for_fixint', 'version', 'uint 32 for 1', () => Buffer.from([0xce, 0, 0, 0, 0x01])],
  ['uint64_for_fixint', 'version', 'uint 64 for 1', () => Buffer.from([0xcf, 0, 0, 0, 0, 0, 0, 0, 0x01])],
  ['str8_for_fixstr', 'nick', 'str 8 for a 5-byte nick', () => Buffer.concat([Buffer.from([0xd9, 5]), Buffer.from('abcde')])],
  ['str16_for_fixstr', 'nick', 'str 16 for a 5-byte nick', () => Buffer.concat([Buffer.from([0xda, 0, 5]), Buffer.from('abcde')])],
  ['bin32_for_bin16', 'key', 'bin 32 for the 294-byte key', (ctx) => Buffer.concat([Buffer.from([0xc6]), mp.prefix(ctx.ident().spki.length), Buffer.from(ctx.ident().spki)])],
  ['array16_for_fixarray', 'version', 'array 16 holding one element', () => Buffer.from([0xdc, 0x00, 0x01, 0x01])],
];
for (const [tag, field, what, value] of r3) {
  badHello(`encoding_noncanonical_${tag}`, '§4 rule 3', `a longer form than needed (${what}) is refused with MALFORMED_FRAME`, field, value, 'MALFORMED_FRAME');
}
firstFrame(
  'encoding_noncanonical_map16_for_fixmap',
  '§4 rule 3',
  'a top-level map 16 holding 4 entries is refused with MALFORMED_FRAME',
  (ctx) => mp.rawMap(helloEntries(ctx).map(([k, v]) => [mp.str(k), v]), Buffer.from([0xde, 0x00, 0x04])),
  'MALFORMED_FRAME',
);
firstFrame(
  'encoding_noncanonical_bin16_for_bin8',
  '§4 rule 3',
  'a key written as bin 16 when bin 8 holds it is refused with MALFORMED_FRAME (not BAD_PUBLIC_KEY)',
  (ctx) => mp.map(withEntry(helloEntries(ctx), 'key', Buffer.from([0xc5, 0x00, 0x03, 1, 2, 3]))),
  'MALFORMED_FRAME',
);

const r4: Array<[string, string, number[]]> = [
  ['invalid_byte', 'the byte 0xff', [0x61, 0xff]],
  ['overlong', 'an overlong form (0xc0 0xaf)', [0x61, 0xc0, 0xaf]],
  ['surrogate', 'an encoded surrogate (U+D800)', [0x61, 0xed, 0xa0, 0x80]],
  ['above_max', 'a code point above U+10FFFF', [0x61, 0xf4, 0x90, 0x80, 0x80]],
  ['truncated', 'a truncated multi-byte sequence', [0x61, 0xc3]],
  ['stray_continuation', 'a stray continuation byte', [0x61, 0x80, 0x62]],
];
for (const [tag, what, bytes] of r4) {
  badHello(`encoding_utf8_${tag}`, '§4 rule 4', `a string with ${what} is refused with MALFORMED_FRAME`, 'nick', () => mp.str(Uint8Array.from(bytes)), 'MALFORMED_FRAME');
}
firstFrame(
  'encoding_utf8_invalid_in_key',
  '§4 rule 4',
  'a map key that is not valid UTF-8 is refused with MALFORMED_FRAME',
  (ctx) => mp.rawMap([...helloEntries(ctx).map(([k, v]) => [mp.str(k), v] as const), [mp.str(Uint8Array.from([0x6b, 0xff])), mp.uint(1)]]),
  'MALFORMED_FRAME',
);

firstFrame(
  'encoding_map_integer_key',
  '§4 rule 5',
  'a map key that is not a string is refused with MALFORMED_FRAME',
  (ctx) => mp.rawMap([...helloEntries(ctx).map(([k, v]) => [mp.str(k), v] as const), [mp.uint(1), mp.uint(1)]]),
  'MALFORMED_FRAME',
);
firstFrame(
  'encoding_map_duplicate_key',
  '§4 rule 5',
  'a map with a duplicate key is refused with MALFORMED_FRAME',
  (ctx) => mp.map([...helloEntries(ctx), ['nick', mp.str('dup')]]),
  'MALFORMED_FRAME',
);
firstFrame(
  'encoding_map_too_many_entries',
  '§4 rule 5',
  `a map of MAX_MAP_ENTRIES + 1 (${LIMITS.MAX_MAP_ENTRIES + 1}) entries is refused with MALFORMED_FRAME`,
  (ctx) => mp.map([...helloEntries(ctx), ...Array.from({ length: LIMITS.MAX_MAP_ENTRIES - 3 }, (_, i): [string, Buffer] => [`x${i}`, mp.uint(i)])]),
  'MALFORMED_FRAME',
);
firstFrame(
  'encoding_map_at_max_entries_decodes',
  '§4 rule 5',
  `a map of exactly MAX_MAP_ENTRIES entries decodes (extra fields: INVALID_FIELD, not MALFORMED_FRAME)`,
  (ctx) => mp.map([...helloEntries(ctx), ...Array.from({ length: LIMITS.MAX_MAP_ENTRIES - 4 }, (_, i): [string, Buffer] => [`x${i}`, mp.uint(i)])]),
  'INVALID_FIELD',
);

badHello(
  'encoding_depth_beyond_max',
  '§4 rule 6',
  `nesting of depth MAX_DEPTH + 1 (${LIMITS.MAX_DEPTH + 1}) is refused with MALFORMED_FRAME`,
  'key',
  () => mp.array([mp.array([mp.array([mp.uint(1)])])]),
  'MALFORMED_FRAME',
);
badHello(
  'encoding_depth_at_max_decodes',
  '§4 rule 6',
  `nesting of depth exactly MAX_DEPTH decodes (HELLO.key not bin: INVALID_FIELD, not MALFORMED_FRAME)`,
  'key',
  () => mp.array([mp.array([mp.uint(1)])]),
  'INVALID_FIELD',
);

const r7: Array<[string, string, Buffer]> = [
  ['str32', 'str 32 declaring 2^32 - 1 bytes', Buffer.from([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61])],
  ['bin32', 'bin 32 declaring 2^32 - 1 bytes', Buffer.from([0xc6, 0xff, 0xff, 0xff, 0xff, 0x61])],
  ['array32', 'array 32 declaring 2^32 - 1 elements', Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01])],
  ['map32', 'map 32 declaring 2^32 - 1 entries', Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x61, 0x01])],
  ['str8', 'str 8 declaring more bytes than remain', Buffer.from([0xd9, 0xf0, 0x61])],
];
for (const [tag, what, bytes] of r7) {
  badHello(`encoding_declared_size_${tag}`, '§4 rule 7', `a ${what} is refused with MALFORMED_FRAME`, 'key', () => bytes, 'MALFORMED_FRAME');
}

const r8: Array<[string, string, Buffer]> = [
  ['array', 'an array', mp.array([mp.uint(1)])],
  ['uint', 'an integer', mp.uint(1)],
  ['str', 'a string', mp.str('HELLO')],
  ['bin', 'a byte string', mp.bin(Buffer.from([1, 2, 3]))],
];
for (const [tag, what, bytes] of r8) {
  firstFrame(`encoding_top_level_${tag}`, '§4 rule 8', `a body that is ${what}, not a map, is refused with MALFORMED_FRAME`, () => bytes, 'MALFORMED_FRAME');
}

firstFrame('shape_t_missing', '§4 rule 9', 'a map without `t` is refused with INVALID_FIELD', (ctx) => mp.map(helloEntries(ctx).slice(1)), 'INVALID_FIELD');
firstFrame(
  'shape_t_not_integer',
  '§4 rule 9',
  'a `t` that is a string is refused with INVALID_FIELD',
  (ctx) => mp.map(withEntry(helloEntries(ctx), 't', mp.str('1'))),
  'INVALID_FIELD',
);
firstFrame('shape_t_unknown', '§4 rule 9', 'a `t` that names no frame (0x7f) is refused with UNKNOWN_FRAME_TYPE', () => mp.map([['t', mp.uint(0x7f)]]), 'UNKNOWN_FRAME_TYPE');
firstFrame('shape_t_zero', '§4 rule 9', 'a `t` of 0 is refused with UNKNOWN_FRAME_TYPE', () => mp.map([['t', mp.uint(0)]]), 'UNKNOWN_FRAME_TYPE');
firstFrame('shape_t_large', '§4 rule 9', 'a `t` of 2^40 is refused with UNKNOWN_FRAME_TYPE', () => mp.map([['t', mp.uint(2 ** 40)]]), 'UNKNOWN_FRAME_TYPE');
firstFrame(
  'shape_e2e_frame_on_relay',
  '§5',
  'an e2e frame (HS_INIT, valid fields) sent to the relay is refused with UNKNOWN_FRAME_TYPE',
  () => mp.map([['t', mp.uint(0x21)], ['version', mp.uint(1)], ['eph', mp.bin(Buffer.alloc(32, 9))], ['ct', mp.bin(Buffer.alloc(256, 7))]]),
  'UNKNOWN_FRAME_TYPE',
);
firstFrame(
  'shape_inner_frame_on_relay',
  '§5',
  'an inner frame (TEXT, valid fields) sent to the relay is refused with UNKNOWN_FRAME_TYPE',
  () => mp.map([['t', mp.uint(0x31)], ['ts', mp.uint(1)], ['text', mp.str('hi')]]),
  'UNKNOWN_FRAME_TYPE',
);
firstFrame(
  'shape_rules_1_8_before_rule_9',
  '§4',
  'an unknown `t` in a body that also breaks rule 1 is MALFORMED_FRAME (rules 1-8 are checked first)',
  () => mp.map([['t', mp.uint(0x7f)], ['x', Buffer.from([0xc0])]]),
  'MALFORMED_FRAME',
);
firstFrame(
  'shape_unknown_field',
  '§4 rule 9',
  'a HELLO with a field it does not have is refused with INVALID_FIELD',
  (ctx) => mp.map([...helloEntries(ctx), ['extra', mp.uint(1)]]),
  'INVALID_FIELD',
);
firstFrame(
  'shape_missing_field',
  '§4 rule 9',
  'a HELLO without its key field is refused with INVALID_FIELD',
  (ctx) => mp.map(helloEntries(ctx).filter(([k]) => k !== 'key')),
  'INVALID_FIELD',
);
firstFrame(
  'shape_fields_out_of_order',
  '§4 rule 9',
  'a HELLO with every field present but nick before version is non-canonical: MALFORMED_FRAME',
  (ctx) => {
    const [t, v, n, k] = helloEntries(ctx);
    return mp.map([t!, n!, v!, k!]);
  },
  'MALFORMED_FRAME',
);
firstFrame(
  'shape_unknown_type_before_fields',
  '§4 rule 9',
  'an unknown `t` with fields no frame has is UNKNOWN_FRAME_TYPE (rule 9.2 before 9.3)',
  () => mp.map([['t', mp.uint(0x7f)], ['foo', mp.uint(1)], ['bar', mp.str('x')]]),
  'UNKNOWN_FRAME_TYPE',
);
firstFrame(
  'shape_unknown_field_before_order',
  '§4 rule 9',
  'a HELLO with fields out of order and an unknown field is INVALID_FIELD (unknown key before order, rule 9.3)',
  (ctx) => {
    const [t, v, n, k] = helloEntries(ctx);
    return mp.map([t!, n!, v!, k!, ['extra', mp.uint(1)]]);
  },
  'INVALID_FIELD',
);
firstFrame(
  'shape_missing_field_before_order',
  '§4 rule 9',
  'a HELLO with fields out of order and a missing field is INVALID_FIELD (missing before order, rule 9.3)',
  (ctx) => {
    const [t, v, n] = helloEntries(ctx);
    return mp.map([t!, n!, v!]);
  },
  'INVALID_FIELD',
);
firstFrame(
  'shape_t_not_first',
  '§4 rule 9',
  'a HELLO whose `t` is not the first key is non-canonical: MALFORMED_FRAME',
  (ctx) => {
    const [t, v, n, k] = helloEntries(ctx);
    return mp.map([v!, t!, n!, k!]);
  },
  'MALFORMED_FRAME',
);

const bounds: Array<[string, string, string, (ctx: Ctx) => Buffer]> = [
  ['nick_is_bin', 'nick', 'a nick of type bin', () => mp.bin(Buffer.from('abc'))],
  ['version_is_str', 'version', 'a version of type str', () => mp.str('1')],
  ['key_is_str', 'key', 'a key of type str', () => mp.str('key')],
  ['version_256', 'version', 'a version of 256', () => mp.uint(256)],
  ['nick_empty', 'nick', 'an empty nick', () => mp.str('')],
  ['nick_33_bytes', 'nick', 'a nick of NICK_MAX_BYTES + 1 bytes', () => mp.str('n'.repeat(LIMITS.NICK_MAX_BYTES + 1))],
  ['nick_space', 'nick', 'a nick with a space', () => mp.str('a b')],
  ['nick_dot', 'nick', 'a nick with a dot (room alphabet only)', () => mp.str('a.b')],
  ['nick_non_ascii', 'nick', 'a nick with a non-ASCII letter (valid UTF-8)', () => mp.str('caf\u00e9')],
  ['key_empty', 'key', 'an empty key', () => mp.bin(Buffer.alloc(0))],
  ['key_513_bytes', 'key', 'a key of KEY_MAX_BYTES + 1 bytes', () => mp.bin(Buffer.alloc(LIMITS.KEY_MAX_BYTES + 1, 0x30))],
];
for (const [tag, field, what, value] of bounds) {
  badHello(`field_${tag}`, '§6 HELLO', `${what} is refused with INVALID_FIELD`, field, value, 'INVALID_FIELD');
}
add({
  id: 'field_nick_32_bytes_accepted',
  section: '§6 HELLO',
  title: 'a nick of exactly NICK_MAX_BYTES bytes is accepted (CHALLENGE)',
  async run(ctx) {
    const nick = (ctx.nick() + 'x'.repeat(32)).slice(0, LIMITS.NICK_MAX_BYTES);
    await ctx.challenged(nick);
  },
});

// ---------------------------------------------------------------------------------------------------
// §7.1 every (state, frame) pair outside the relay's table: UNEXPECTED_FRAME and close. Which pairs, and
// what the relay must do, is the wire kit's relay model's word (src/wirekit/relay-model.ts, the fuzzer's
// oracle, which test/server/transitions.test.ts also judges every pair with).

function sampleFrame(name: FrameName, ctx: Pick<Ctx, 'nick' | 'room'>, key: Uint8Array): RelayFrame {
  const f: Record<FrameName, RelayFrame | undefined> = {
    HELLO: { type: 'HELLO', version: PROTOCOL_VERSION, nick: ctx.nick(), key },
    CHALLENGE: { type: 'CHALLENGE', version: PROTOCOL_VERSION, nonce: new Uint8Array(32), relay: 'r' },
    AUTH: { type: 'AUTH', sig: new Uint8Array(256) },
    WELCOME: { type: 'WELCOME', idle_ms: 1000, max_frame: 65536, room_size: 2, rate: 1000 },
    JOIN: { type: 'JOIN', room: ctx.room() },
    JOINED: { type: 'JOINED', room: ctx.room(), epoch: 1, members: [] },
    PEER_JOINED: { type: 'PEER_JOINED', nick: ctx.nick(), key, epoch: 2 },
    PEER_LEFT: { type: 'PEER_LEFT', nick: ctx.nick(), epoch: 3 },
    SEND: { type: 'SEND', to: ctx.nick(), body: new Uint8Array([1]) },
    DELIVER: { type: 'DELIVER', from: ctx.nick(), body: new Uint8Array([1]) },
    LEAVE: { type: 'LEAVE' },
    LEFT: { type: 'LEFT' },
    PING: { type: 'PING', n: 1 },
    PONG: { type: 'PONG', n: 1 },
    ERROR: { type: 'ERROR', code: ERROR_CODES.INTERNAL_ERROR.code, detail: '' },
    RECOVER: { type: 'RECOVER', sig: new Uint8Array(256), code: new Uint8Array(16), commit: new Uint8Array(32) },
    SET_RECOVERY: { type: 'SET_RECOVERY', commit: new Uint8Array(32) },
    RECOVERY_SET: { type: 'RECOVERY_SET' },
    HS_INIT: undefined,
    HS_RESP: undefined,
    HS_FINISH: undefined,
    MSG: undefined,
    TEXT: undefined,
    ACK: undefined,
    ROSTER: undefined,
  };
  return f[name]!;
}

const RELAY_FRAMES = (Object.keys(FRAMES) as FrameName[]).filter((n) => FRAMES[n].layer === 'relay');

/** What the relay model says the relay must do with `f` on a fresh connection in `state`. */
function modelVerdict(state: LiveState, f: RelayFrame): Expectation {
  return new ConnectionOracle({ state, maxFrame: LIMITS.MAX_FRAME_BYTES, peers: new Set(), registry: new Map() }).expect(frameItem(f));
}

/** The connection does what the model expects: the ERROR (and the close its code requires), or a close with no frame. */
async function meets(c: Conn, exp: Expectation): Promise<void> {
  if (exp.kind === 'error' && exp.codes.length === 1) return c.expectError(exp.codes[0]!);
  if (exp.kind === 'close') return c.expectClosed('connection closed with no frame (§7.1 ERROR -> CLOSED; §9 unknown codes are fatal)');
  throw new Error(`kit: no check written for the model's verdict ${exp.kind}`);
}

/** A frame of `name` with placeholder names, to ask the model which pairs it refuses before any case runs. */
const placeholder = (name: FrameName) => sampleFrame(name, { nick: () => 'placeholder', room: () => 'placeholder' }, new Uint8Array(294));
const refused = (e: Expectation) => e.kind === 'error' && e.codes.length === 1 && e.codes[0] === 'UNEXPECTED_FRAME';

for (const state of LIVE) {
  for (const name of RELAY_FRAMES) {
    if (!refused(modelVerdict(state, placeholder(name)))) continue;
    add({
      id: `transition_${state.toLowerCase()}_${name.toLowerCase()}`,
      section: '§7.1',
      title: `${name} in ${state} is not in the table: UNEXPECTED_FRAME and close`,
      async run(ctx) {
        const c = await reach(ctx, state);
        const f = sampleFrame(name, ctx, ctx.ident().spki);
        const exp = modelVerdict(state, f);
        c.send(f);
        await meets(c, exp);
      },
    });
  }
}

for (const state of LIVE) {
  add({
    id: `transition_${state.toLowerCase()}_error_closes`,
    section: '§7.1',
    title: `ERROR from the client in ${state}: the relay closes (and sends nothing)`,
    async run(ctx) {
      const c = await reach(ctx, state);
      const f: RelayFrame = { type: 'ERROR', code: state === 'READY' ? 200 : ERROR_CODES.INTERNAL_ERROR.code, detail: 'conformance' };
      const exp = modelVerdict(state, f);
      if (exp.kind !== 'close') throw new Error(`kit: the relay model does not close on ${f.type} in ${state}`);
      c.send(f);
      await meets(c, exp);
    },
  });
}

// ---------------------------------------------------------------------------------------------------
// §7.5 recovery codes: SET_RECOVERY registers a commitment, RECOVER moves the nickname with its code

const recoveryCode = () => new Uint8Array(randomBytes(16));
const commitOf = (nick: string, code: Uint8Array) => sha256(recoveryCommitInput(nick, code));

/** HELLO with `ident`, then RECOVER signed as AUTH would be (or with `sig`), presenting `code`. */
async function sendRecover(ctx: Ctx, nick: string, ident: Identity, code: Uint8Array, next = recoveryCode(), sig?: Uint8Array): Promise<Conn> {
  const { conn, challenge } = await ctx.challenged(nick, ident);
  conn.send({ type: 'RECOVER', sig: sig ?? pssSign(ident.privateKey, authMessage(challenge.nonce, nick, ident.spki, challenge.relay, new Uint8Array(0))), code, commit: commitOf(nick, next) });
  return conn;
}

/** Binds a fresh nickname to ident(0) and registers the commitment of a fresh code; returns both. */
async function registered(ctx: Ctx): Promise<{ nick: string; code: Uint8Array; first: Conn }> {
  const a = await ctx.authed(ctx.nick(), ctx.ident(0));
  const code = recoveryCode();
  a.conn.send({ type: 'SET_RECOVERY', commit: commitOf(a.nick, code) });
  await a.conn.expect('RECOVERY_SET', 'RECOVERY_SET after SET_RECOVERY (§7.5)');
  return { nick: a.nick, code, first: a.conn };
}

add({
  id: 'recovery_takeover_with_code',
  section: '§7.5',
  title: 'RECOVER with the registered code moves the nickname to a new key (WELCOME); the old key then gets NICK_BOUND',
  async run(ctx) {
    const { nick, code } = await registered(ctx);
    const conn = await sendRecover(ctx, nick, ctx.ident(1), code);
    await conn.expect('WELCOME', 'WELCOME after RECOVER with the right code (§7.5 step 2)');
    const { conn: old, challenge, ident } = await ctx.challenged(nick, ctx.ident(0));
    old.send({ type: 'AUTH', sig: pssSign(ident.privateKey, authMessage(challenge.nonce, nick, ident.spki, challenge.relay, new Uint8Array(0))) });
    await old.expectError('NICK_BOUND');
  },
});

add({
  id: 'recovery_wrong_code',
  section: '§7.5',
  title: 'RECOVER with another code is refused with NICK_BOUND, and the binding stays',
  async run(ctx) {
    const { nick } = await registered(ctx);
    const conn = await sendRecover(ctx, nick, ctx.ident(1), recoveryCode());
    await conn.expectError('NICK_BOUND');
    await ctx.authed(nick, ctx.ident(0));
  },
});

add({
  id: 'recovery_no_commitment',
  section: '§7.5',
  title: 'RECOVER for a nickname bound without a registered code is refused with NICK_BOUND',
  async run(ctx) {
    const a = await ctx.authed(ctx.nick(), ctx.ident(0));
    const conn = await sendRecover(ctx, a.nick, ctx.ident(1), recoveryCode());
    await conn.expectError('NICK_BOUND');
  },
});

add({
  id: 'recovery_code_spent',
  section: '§7.5',
  keys: 3,
  title: 'a code works once: after a takeover it is refused (NICK_BOUND), and the fresh code sent with the takeover works',
  async run(ctx) {
    const { nick, code } = await registered(ctx);
    const next = recoveryCode();
    const conn = await sendRecover(ctx, nick, ctx.ident(1), code, next);
    await conn.expect('WELCOME', 'WELCOME after RECOVER with the right code');
    const again = await sendRecover(ctx, nick, ctx.ident(2), code);
    await again.expectError('NICK_BOUND');
    const fresh = await sendRecover(ctx, nick, ctx.ident(2), next);
    await fresh.expect('WELCOME', 'WELCOME with the code whose commitment the takeover registered');
  },
});

add({
  id: 'recovery_signature_first',
  section: '§7.5, §7.3',
  title: 'RECOVER with the right code but a bad signature is AUTH_FAILED and moves nothing (the key is proven before the code is looked at)',
  async run(ctx) {
    const { nick, code } = await registered(ctx);
    const conn = await sendRecover(ctx, nick, ctx.ident(1), code, recoveryCode(), new Uint8Array(randomBytes(256)));
    await conn.expectError('AUTH_FAILED');
    await ctx.authed(nick, ctx.ident(0));
  },
});

add({
  id: 'recovery_free_nick_binds',
  section: '§7.5',
  title: 'RECOVER for a free nickname binds it, with the commitment it carries',
  async run(ctx) {
    const nick = ctx.nick();
    const next = recoveryCode();
    const conn = await sendRecover(ctx, nick, ctx.ident(0), recoveryCode(), next);
    await conn.expect('WELCOME', 'WELCOME: a free nickname is bound');
    const moved = await sendRecover(ctx, nick, ctx.ident(1), next);
    await moved.expect('WELCOME', 'WELCOME: the commitment sent with it was registered');
  },
});

add({
  id: 'recovery_set_after_takeover',
  section: '§7.5',
  title: 'SET_RECOVERY on a connection whose nickname was taken over since its AUTH is refused with NICK_BOUND',
  async run(ctx) {
    const { nick, code, first } = await registered(ctx);
    const conn = await sendRecover(ctx, nick, ctx.ident(1), code);
    await conn.expect('WELCOME', 'WELCOME after RECOVER with the right code');
    first.send({ type: 'SET_RECOVERY', commit: commitOf(nick, recoveryCode()) });
    await first.expectError('NICK_BOUND');
  },
});

// ---------------------------------------------------------------------------------------------------
// §7.1 HELLO rules: version and key

badHello('hello_version_1', '§2.1, §7.1 Version', 'HELLO version 1 (a v1 client) is refused with UNSUPPORTED_VERSION', 'version', () => mp.uint(1), 'UNSUPPORTED_VERSION');
badHello('hello_version_3', '§7.1 Version', 'HELLO version 3 is refused with UNSUPPORTED_VERSION', 'version', () => mp.uint(3), 'UNSUPPORTED_VERSION');
badHello('hello_version_0', '§7.1 Version', 'HELLO version 0 is refused with UNSUPPORTED_VERSION', 'version', () => mp.uint(0), 'UNSUPPORTED_VERSION');

let oddKeys: Promise<{ rsa1024: Uint8Array; rsaE3: Uint8Array; ec: Uint8Array; pkcs1: Uint8Array }> | undefined;
function badKeys(ctx: Ctx) {
  oddKeys ??= (async () => {
    const [k1024, kE3] = await Promise.all([makeIdentity(1024), makeIdentity(2048, 3)]);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
    const pkcs1 = createPublicKey({ key: Buffer.from(ctx.ident().spki), format: 'der', type: 'spki' }).export({ format: 'der', type: 'pkcs1' });
    return { rsa1024: k1024.spki, rsaE3: kE3.spki, ec: new Uint8Array(ec), pkcs1: new Uint8Array(pkcs1) };
  })();
  return oddKeys;
}

const keyCases: Array<[string, string, (ctx: Ctx) => Promise<Uint8Array>]> = [
  ['random_bytes', '294 random bytes', async () => randomBytes(294)],
  ['rsa_1024', 'an RSA-1024 key', async (ctx) => (await badKeys(ctx)).rsa1024],
  ['rsa_exponent_3', 'an RSA-2048 key with exponent 3', async (ctx) => (await badKeys(ctx)).rsaE3],
  ['ec_p256', 'an EC P-256 key', async (ctx) => (await badKeys(ctx)).ec],
  ['pkcs1_not_spki', 'an RSAPublicKey (PKCS#1) instead of SubjectPublicKeyInfo', async (ctx) => (await badKeys(ctx)).pkcs1],
  ['trailing_byte', 'a valid SPKI followed by one byte', async (ctx) => Buffer.concat([ctx.ident().spki, Buffer.from([0])])],
  [
    'long_form_length',
    'a valid SPKI with its outer DER length in a non-minimal long form',
    async (ctx) => {
      const spki = Buffer.from(ctx.ident().spki); // 30 82 01 22 ...
      return Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), spki.subarray(2)]);
    },
  ],
];
for (const [tag, what, key] of keyCases) {
  add({
    id: `hello_key_${tag}`,
    section: '§7.1 Key, §8.1',
    title: `HELLO with ${what} is refused with BAD_PUBLIC_KEY`,
    async run(ctx) {
      const k = await key(ctx);
      const c = await ctx.open();
      c.body(mp.map(withEntry(helloEntries(ctx), 'key', mp.bin(k))));
      await c.expectError('BAD_PUBLIC_KEY');
    },
  });
}

// ---------------------------------------------------------------------------------------------------
// §7.1 / §7.3 handshake with the relay and authentication

add({
  id: 'auth_challenge_fresh',
  section: '§7.3',
  title: 'CHALLENGE carries version 2, a 32-byte nonce, fresh for every connection, and a relay name',
  async run(ctx) {
    const a = await ctx.challenged();
    const b = await ctx.challenged();
    for (const x of [a, b]) {
      if (x.challenge.version !== PROTOCOL_VERSION) throw new CaseFailure(`CHALLENGE {version: ${PROTOCOL_VERSION}}`, `version ${x.challenge.version}`);
    }
    if (Buffer.from(a.challenge.nonce).equals(Buffer.from(b.challenge.nonce))) {
      throw new CaseFailure('two different nonces', 'the same nonce on two connections');
    }
  },
});

add({
  id: 'auth_welcome_announces_limits',
  section: '§6 WELCOME, §3',
  title: 'a valid AUTH gets WELCOME whose max_frame is at most MAX_FRAME_BYTES and room_size at least 2',
  async run(ctx) {
    const a = await ctx.authed();
    // The strict decoder already checked the bounds of every WELCOME field (§6).
    if (a.welcome.max_frame > LIMITS.MAX_FRAME_BYTES) throw new CaseFailure(`max_frame <= ${LIMITS.MAX_FRAME_BYTES}`, String(a.welcome.max_frame));
  },
});

function badAuth(id: string, title: string, sig: (ctx: Ctx, ch: FrameOf<'CHALLENGE'>, nick: string, ident: Identity) => Promise<Uint8Array> | Uint8Array): void {
  add({
    id,
    section: '§7.3',
    title,
    async run(ctx) {
      const { conn, nick, ident, challenge } = await ctx.challenged();
      conn.send({ type: 'AUTH', sig: await sig(ctx, challenge, nick, ident) });
      await conn.expectError('AUTH_FAILED');
    },
  });
}

badAuth('auth_random_signature', 'AUTH with 256 random bytes is refused with AUTH_FAILED', () => randomBytes(256));
badAuth('auth_signed_by_other_key', 'AUTH signed with a key other than the HELLO key is refused with AUTH_FAILED', (ctx, ch, nick, ident) =>
  pssSign(ctx.ident(1).privateKey, authOf(ch, nick, ident.spki)),
);
badAuth('auth_other_nonce', "AUTH signed over another connection's nonce is refused with AUTH_FAILED", async (ctx, _ch, nick, ident) => {
  const other = await ctx.challenged();
  return pssSign(ident.privateKey, authOf(other.challenge, nick, ident.spki));
});
badAuth('auth_other_nick', 'AUTH signed over a different nick is refused with AUTH_FAILED', (ctx, ch, _nick, ident) =>
  pssSign(ident.privateKey, authOf(ch, ctx.nick(), ident.spki)),
);
badAuth('auth_wrong_label', 'AUTH signed with the v1 label "e2ee-chat/1 auth" over the v2 fields is refused with AUTH_FAILED', (_ctx, ch, nick, ident) =>
  pssSign(ident.privateKey, Buffer.concat([Buffer.from('e2ee-chat/1 auth'), lp(ch.nonce), lp(nick), lp(ident.spki), lp(Buffer.from(ch.relay)), lp(new Uint8Array(0))])),
);
badAuth('auth_v1_message', 'AUTH signed over the version 1 message (no relay name, no channel binding) is refused with AUTH_FAILED', (_ctx, ch, nick, ident) =>
  pssSign(ident.privateKey, Buffer.concat([Buffer.from('e2ee-chat/1 auth'), lp(ch.nonce), lp(nick), lp(ident.spki)])),
);
badAuth('auth_other_relay_name', 'AUTH signed over another relay name than the one the relay announced (an AUTH made for another relay) is refused with AUTH_FAILED', (_ctx, ch, nick, ident) =>
  pssSign(ident.privateKey, authMessage(ch.nonce, nick, ident.spki, `${ch.relay}.other`, new Uint8Array(0))),
);
badAuth('auth_pkcs1v15_signature', 'AUTH signed with RSA PKCS#1 v1.5 instead of PSS is refused with AUTH_FAILED', (_ctx, ch, nick, ident) =>
  sign('sha256', authOf(ch, nick, ident.spki), ident.privateKey),
);
for (const n of [20, 0, 64]) {
  badAuth(`auth_pss_salt_${n}`, `AUTH signed with RSA-PSS and a ${n}-byte salt is refused with AUTH_FAILED (§8.1: salt length exactly 32, no auto-detection)`, (_ctx, ch, nick, ident) =>
    sign('sha256', authOf(ch, nick, ident.spki), { key: ident.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: n }),
  );
}

add({
  id: 'auth_nick_bound_other_key',
  section: '§7.1 Nickname binding',
  title: 'a nick bound to one key, authenticated with another valid key, is refused with NICK_BOUND',
  async run(ctx) {
    const nick = ctx.nick();
    await ctx.authed(nick, ctx.ident(0));
    const { conn, challenge, ident } = await ctx.challenged(nick, ctx.ident(1));
    conn.send({ type: 'AUTH', sig: pssSign(ident.privateKey, authOf(challenge, nick, ident.spki)) });
    await conn.expectError('NICK_BOUND');
  },
});

add({
  id: 'auth_nick_bound_same_key',
  section: '§7.1 Nickname binding',
  title: 'the key a nick is bound to authenticates again on a new connection (WELCOME)',
  async run(ctx) {
    const nick = ctx.nick();
    const first = await ctx.authed(nick, ctx.ident(0));
    first.conn.destroy();
    await ctx.authed(nick, ctx.ident(0));
  },
});

add({
  id: 'auth_signature_checked_before_binding',
  section: '§7.3',
  title: 'a bad signature for a bound nick with another key is AUTH_FAILED, not NICK_BOUND (signature first)',
  async run(ctx) {
    const nick = ctx.nick();
    await ctx.authed(nick, ctx.ident(0));
    const { conn } = await ctx.challenged(nick, ctx.ident(1));
    conn.send({ type: 'AUTH', sig: randomBytes(256) });
    await conn.expectError('AUTH_FAILED');
  },
});

add({
  id: 'auth_failure_does_not_bind',
  section: '§7.1 Nickname binding',
  title: 'a failed AUTH does not bind the nick: the first key that authenticates binds it',
  async run(ctx) {
    const nick = ctx.nick();
    const bad = await ctx.challenged(nick, ctx.ident(1));
    bad.conn.send({ type: 'AUTH', sig: randomBytes(256) });
    await bad.conn.expectError('AUTH_FAILED');
    await ctx.authed(nick, ctx.ident(0));
    const again = await ctx.challenged(nick, ctx.ident(1));
    again.conn.send({ type: 'AUTH', sig: pssSign(again.ident.privateKey, authOf(again.challenge, nick, again.ident.spki)) });
    await again.conn.expectError('NICK_BOUND');
  },
});

add({
  id: 'auth_join_behind_auth',
  section: '§7.1 JOIN behind AUTH',
  title: 'a JOIN sent right behind AUTH, before WELCOME, is handled after it: WELCOME, then JOINED',
  async run(ctx) {
    const nick = ctx.nick();
    const room = ctx.room();
    const { conn, ident, challenge } = await ctx.challenged(nick);
    conn.send({ type: 'AUTH', sig: pssSign(ident.privateKey, authOf(challenge, nick, ident.spki)) });
    conn.send({ type: 'JOIN', room });
    await conn.expect('WELCOME', 'WELCOME for the AUTH first (§7.1: frames handled in order)');
    const joined = await conn.expect('JOINED', 'then JOINED for the JOIN behind it, handled in READY');
    if (joined.room !== room) throw new CaseFailure(`JOINED {room: ${room}}`, describe({ kind: 'frame', frame: joined }));
  },
});

add({
  id: 'auth_join_behind_refused_auth',
  section: '§7.1 JOIN behind AUTH',
  title: 'a JOIN behind a refused AUTH is never handled: ERROR AUTH_FAILED, close, and a member of the room sees no PEER_JOINED',
  async run(ctx) {
    const room = ctx.room();
    // A member already in the room: a relay that joined the refused connection would send it PEER_JOINED
    // (and PEER_LEFT at the close), which an empty room checked afterwards would not show.
    const member = await ctx.joined(room);
    const { conn } = await ctx.challenged();
    conn.send({ type: 'AUTH', sig: randomBytes(256) });
    conn.send({ type: 'JOIN', room });
    await conn.expectError('AUTH_FAILED');
    await member.conn.barrier(1, 'no PEER_JOINED for the JOIN behind a refused AUTH');
  },
});

// ---------------------------------------------------------------------------------------------------
// §7.1 in-table steps: PING, JOIN, LEAVE

add({
  id: 'ping_ready',
  section: '§7.1',
  title: 'PING in READY gets PONG echoing n (0 and MAX_UINT)',
  async run(ctx) {
    const a = await ctx.authed();
    for (const n of [0, LIMITS.MAX_UINT]) {
      a.conn.send({ type: 'PING', n });
      await pongs(a.conn, [n]);
    }
  },
});

add({
  id: 'ping_in_room',
  section: '§7.1',
  title: 'PING in IN_ROOM gets PONG echoing n',
  async run(ctx) {
    const m = await ctx.joined(ctx.room());
    await m.conn.barrier(424242, 'PONG');
  },
});

add({
  id: 'join_new_room',
  section: '§7.1 Joining',
  title: 'JOIN of a new room gets JOINED with that room and no members',
  async run(ctx) {
    const room = ctx.room();
    const m = await ctx.joined(room);
    if (m.joined.room !== room || m.joined.members.length !== 0) {
      throw new CaseFailure(`JOINED {room: ${room}, members: []}`, describe({ kind: 'frame', frame: m.joined }));
    }
  },
});

add({
  id: 'join_room_name_at_max',
  section: '§6 JOIN',
  title: 'a room name of exactly ROOM_MAX_BYTES bytes using every room character class is accepted',
  async run(ctx) {
    const room = (ctx.room() + '_-.Zz9'.repeat(12)).slice(0, LIMITS.ROOM_MAX_BYTES);
    await ctx.joined(room);
  },
});

const roomBounds: Array<[string, string, () => string]> = [
  ['too_long', 'a room name of ROOM_MAX_BYTES + 1 bytes', () => 'r'.repeat(LIMITS.ROOM_MAX_BYTES + 1)],
  ['empty', 'an empty room name', () => ''],
  ['slash', 'a room name with "/"', () => 'a/b'],
];
for (const [tag, what, room] of roomBounds) {
  add({
    id: `join_room_${tag}`,
    section: '§6 JOIN',
    title: `JOIN with ${what} is refused with INVALID_FIELD`,
    async run(ctx) {
      const a = await ctx.authed();
      a.conn.body(mp.map([['t', mp.uint(5)], ['room', mp.str(room())]]));
      await a.conn.expectError('INVALID_FIELD');
    },
  });
}

add({
  id: 'join_members_and_peer_joined',
  section: '§7.1 Joining',
  title: 'the joiner gets JOINED listing every other member with its key; every member gets PEER_JOINED with the joiner',
  keys: 3,
  async run(ctx) {
    const a0 = await ctx.authed();
    const n = Math.min(a0.welcome.room_size, 3);
    a0.conn.destroy();
    const room = ctx.room();
    const members = await ctx.roomOf(n - 1, room);
    const nick = ctx.nick();
    const ident = ctx.ident(n - 1);
    const j = await ctx.joined(room, nick, ident);
    if (!sameMembers(j.joined.members, members)) {
      throw new CaseFailure(
        `JOINED members [${members.map((m) => m.nick).join(', ')}] with their keys`,
        describe({ kind: 'frame', frame: j.joined }),
      );
    }
    for (const m of members) {
      const pj = await m.conn.expect('PEER_JOINED', `PEER_JOINED {nick: ${nick}}`);
      if (pj.nick !== nick || !Buffer.from(pj.key).equals(Buffer.from(ident.spki))) {
        throw new CaseFailure(`PEER_JOINED {nick: ${nick}, key: the joiner's key}`, describe({ kind: 'frame', frame: pj }));
      }
    }
  },
});

add({
  id: 'join_peer_joined_before_deliver',
  section: '§7.1 Joining',
  title: "a member gets PEER_JOINED before any frame the joiner sends right after JOIN (same segment)",
  async run(ctx) {
    const room = ctx.room();
    const [a] = await ctx.roomOf(1, room);
    const b = await ctx.authed(ctx.nick(), ctx.ident(1));
    b.conn.raw(Buffer.concat([mp.wire(mp.map([['t', mp.uint(5)], ['room', mp.str(room)]])), mp.wire(mp.map([['t', mp.uint(9)], ['to', mp.str(a!.nick)], ['body', mp.bin(Buffer.from('hello'))]]))]));
    await b.conn.expect('JOINED', 'JOINED');
    const pj = await a!.conn.expect('PEER_JOINED', `PEER_JOINED {nick: ${b.nick}} first`);
    if (pj.nick !== b.nick) throw new CaseFailure(`PEER_JOINED {nick: ${b.nick}}`, `PEER_JOINED {nick: ${pj.nick}}`);
    const d = await a!.conn.expect('DELIVER', `DELIVER from ${b.nick}`);
    if (d.from !== b.nick) throw new CaseFailure(`DELIVER {from: ${b.nick}}`, describe({ kind: 'frame', frame: d }));
  },
});

add({
  id: 'join_nick_in_room',
  section: '§7.1 Joining',
  title: 'a second connection of a member joining the same room is refused with NICK_IN_ROOM, and stays open',
  async run(ctx) {
    const room = ctx.room();
    const [a] = await ctx.roomOf(1, room);
    const twin = await ctx.authed(a!.nick, a!.ident);
    twin.conn.send({ type: 'JOIN', room });
    await twin.conn.expectError('NICK_IN_ROOM');
    await twin.conn.barrier(1, 'the connection stays in READY after NICK_IN_ROOM (§9 closes = no)');
  },
});

/** Fills a fresh room to the announced room_size; skips when that needs more connections than the budget. */
async function fullRoom(ctx: Ctx) {
  const probe = await ctx.authed();
  const size = probe.welcome.room_size;
  probe.conn.destroy();
  if (size + 1 > ctx.opts.connectionBudget) throw new CaseSkip(`room_size ${size} needs more than the connection budget of ${ctx.opts.connectionBudget}`);
  const room = ctx.room();
  return { room, size, members: await ctx.roomOf(size, room) };
}

add({
  id: 'join_room_full',
  section: '§7.1 Joining',
  title: 'a JOIN beyond the announced room_size is refused with ROOM_FULL; the connection stays in READY and can join another room',
  async run(ctx) {
    const { room } = await fullRoom(ctx);
    const late = await ctx.authed(ctx.nick(), ctx.spare());
    late.conn.send({ type: 'JOIN', room });
    await late.conn.expectError('ROOM_FULL');
    await late.conn.barrier(2, 'the connection stays open after ROOM_FULL (§9 closes = no)');
    const other = ctx.room();
    late.conn.send({ type: 'JOIN', room: other });
    await late.conn.expect('JOINED', `JOINED for ${other} after ROOM_FULL`);
  },
});

add({
  id: 'join_room_full_nobody_notified',
  section: '§7.1 Joining',
  title: 'members of a full room receive nothing when a JOIN is refused with ROOM_FULL',
  async run(ctx) {
    const { room, members } = await fullRoom(ctx);
    const late = await ctx.authed(ctx.nick(), ctx.spare());
    late.conn.send({ type: 'JOIN', room });
    await late.conn.expectError('ROOM_FULL');
    let n = 10;
    for (const m of members) await m.conn.barrier(n++, 'no PEER_JOINED for a refused join');
  },
});

add({
  id: 'join_race_exactly_k',
  section: '§7.1 Joining',
  // 3 rounds of room_size + 2 connections at 4 per key: 4 keys at the defaults.
  keys: 4,
  title: 'of room_size + 2 simultaneous JOINs to an empty room, exactly room_size succeed and 2 get ROOM_FULL (3 rounds)',
  async run(ctx) {
    const probe = await ctx.authed();
    const size = probe.welcome.room_size;
    probe.conn.destroy();
    const n = size + 2;
    if (n > ctx.opts.connectionBudget) throw new CaseSkip(`room_size ${size} needs more than the connection budget of ${ctx.opts.connectionBudget}`);
    for (let round = 0; round < 3; round++) {
      const room = ctx.room();
      const conns = await Promise.all(Array.from({ length: n }, () => ctx.authed(ctx.nick(), ctx.spare())));
      const join = mp.wire(mp.map([['t', mp.uint(5)], ['room', mp.str(room)]]));
      for (const c of conns) c.conn.raw(join);
      let ok = 0;
      let full = 0;
      const other: string[] = [];
      for (const c of conns) {
        const a = await c.conn.next();
        if (a.kind === 'frame' && a.frame.type === 'JOINED') ok++;
        else if (a.kind === 'frame' && a.frame.type === 'ERROR' && a.frame.code === ERROR_CODES.ROOM_FULL.code) full++;
        else other.push(describe(a));
      }
      if (ok !== size || full !== 2) {
        throw new CaseFailure(`${size} JOINED and 2 ROOM_FULL`, `${ok} JOINED, ${full} ROOM_FULL${other.length ? `, ${other.join('; ')}` : ''} (round ${round + 1})`);
      }
      for (const c of conns) c.conn.destroy();
    }
  },
});

add({
  id: 'join_place_freed_by_leave',
  section: '§7.1 Leaving',
  title: 'after a member of a full room leaves, a new JOIN succeeds',
  async run(ctx) {
    const { room, members } = await fullRoom(ctx);
    await leave(members[0]!.conn);
    const late = await ctx.authed(ctx.nick(), ctx.spare());
    late.conn.send({ type: 'JOIN', room });
    await late.conn.expect('JOINED', 'JOINED in the place the leaver freed');
  },
});

add({
  id: 'join_place_freed_by_disconnect',
  section: '§7.1 Leaving',
  title: 'after a member of a full room disconnects, a new JOIN succeeds',
  async run(ctx) {
    const { room, members } = await fullRoom(ctx);
    members[0]!.conn.destroy();
    await members[1]!.conn.expect('PEER_LEFT', `PEER_LEFT {nick: ${members[0]!.nick}}`);
    const late = await ctx.authed(ctx.nick(), ctx.spare());
    late.conn.send({ type: 'JOIN', room });
    await late.conn.expect('JOINED', 'JOINED in the place the disconnected member freed');
  },
});

add({
  id: 'join_empty_room_removed',
  section: '§7.1 Joining',
  title: 'a room whose last member left is gone: the next JOIN gets JOINED with no members',
  async run(ctx) {
    const room = ctx.room();
    const [a] = await ctx.roomOf(1, room);
    await leave(a!.conn);
    const b = await ctx.joined(room, ctx.nick(), ctx.ident(1));
    if (b.joined.members.length !== 0) throw new CaseFailure('JOINED {members: []}', describe({ kind: 'frame', frame: b.joined }));
  },
});

// ---------------------------------------------------------------------------------------------------
// §7.1 Room epoch: JOINED, PEER_JOINED and PEER_LEFT carry the epoch after the change they announce

/** The epoch a membership event carries must be `want`. */
function epochIs(f: FrameOf<'JOINED'> | FrameOf<'PEER_JOINED'> | FrameOf<'PEER_LEFT'>, want: number, what: string): void {
  if (f.epoch !== want) throw new CaseFailure(`${what} with epoch ${want} (§7.1 Room epoch)`, describe({ kind: 'frame', frame: f }));
}

add({
  id: 'epoch_join_leave_numbering',
  section: '§7.1 Room epoch',
  title: 'a new room is at epoch 1; each join and each leave (LEAVE or disconnect) adds one, a JOIN refused with NICK_IN_ROOM none, and the joiner and the members are told the same epoch',
  async run(ctx) {
    const room = ctx.room();
    const a = await ctx.joined(room, ctx.nick(), ctx.ident(0));
    epochIs(a.joined, 1, 'JOINED of a new room');
    const b = await ctx.joined(room, ctx.nick(), ctx.ident(1));
    epochIs(b.joined, 2, 'JOINED of the second member');
    epochIs(await a.conn.expect('PEER_JOINED', `PEER_JOINED {nick: ${b.nick}}`), 2, 'PEER_JOINED of the second member');
    // The barriers keep a, which otherwise only listens, from reaching idle_ms on a slow run.
    await a.conn.barrier(1, 'nothing after PEER_JOINED');
    // A refused JOIN (NICK_IN_ROOM) is no membership change: the LEAVE after it is still epoch 3.
    const twin = await ctx.authed(a.nick, a.ident);
    twin.conn.send({ type: 'JOIN', room });
    await twin.conn.expectError('NICK_IN_ROOM');
    await leave(b.conn);
    epochIs(await a.conn.expect('PEER_LEFT', `PEER_LEFT {nick: ${b.nick}}`), 3, 'PEER_LEFT after a LEAVE (and a JOIN refused with NICK_IN_ROOM)');
    await a.conn.barrier(2, 'nothing after PEER_LEFT');
    b.conn.send({ type: 'JOIN', room });
    epochIs(await b.conn.expect('JOINED', 'JOINED after joining again'), 4, 'JOINED of a member joining again');
    epochIs(await a.conn.expect('PEER_JOINED', `PEER_JOINED {nick: ${b.nick}}`), 4, 'PEER_JOINED of a member joining again');
    await a.conn.barrier(3, 'nothing after PEER_JOINED');
    b.conn.destroy();
    epochIs(await a.conn.expect('PEER_LEFT', `PEER_LEFT {nick: ${b.nick}} after its disconnect`), 5, 'PEER_LEFT after a disconnect');
  },
});

add({
  id: 'epoch_refused_join_unchanged',
  section: '§7.1 Room epoch',
  title: 'a JOIN refused with ROOM_FULL changes no epoch: the next leave is announced with the epoch after the last change',
  async run(ctx) {
    const { room, size, members } = await fullRoom(ctx);
    const late = await ctx.authed(ctx.nick(), ctx.spare());
    late.conn.send({ type: 'JOIN', room });
    await late.conn.expectError('ROOM_FULL');
    let n = 1;
    for (const m of members) await m.conn.barrier(n++, 'no PEER_JOINED for a refused join');
    const first = members[0]!;
    const last = members[members.length - 1]!;
    await leave(last.conn);
    // size joins: epochs 1..size; the leave is size + 1.
    epochIs(await first.conn.expect('PEER_LEFT', `PEER_LEFT {nick: ${last.nick}}`), size + 1, 'PEER_LEFT after a JOIN refused with ROOM_FULL');
  },
});

add({
  id: 'epoch_empty_room_restarts',
  section: '§7.1 Room epoch',
  title: 'a room whose last member left is removed with its epoch: created again, its JOINED says epoch 1',
  async run(ctx) {
    const room = ctx.room();
    const a = await ctx.joined(room, ctx.nick(), ctx.ident(0));
    await leave(a.conn);
    a.conn.send({ type: 'JOIN', room });
    epochIs(await a.conn.expect('JOINED', 'JOINED of the room created again'), 1, 'JOINED of a room created again');
  },
});

// ---------------------------------------------------------------------------------------------------
// §7.1 Relaying

add({
  id: 'relay_deliver_stamped_unchanged',
  section: '§7.1 Relaying, §6',
  title: 'SEND to a member is DELIVERed to it with from = the authenticated sender and the body unchanged; the sender gets nothing',
  async run(ctx) {
    const [a, b] = await ctx.roomOf(2);
    const body = randomBytes(Math.min(1000, a!.welcome.max_frame - 64));
    a!.conn.send({ type: 'SEND', to: b!.nick, body });
    const d = await b!.conn.expect('DELIVER', `DELIVER {from: ${a!.nick}}`);
    if (d.from !== a!.nick) throw new CaseFailure(`DELIVER {from: ${a!.nick}}`, describe({ kind: 'frame', frame: d }));
    if (!Buffer.from(d.body).equals(body)) throw new CaseFailure('the SEND body unchanged', 'a different body');
    await a!.conn.barrier(5, 'no echo to the sender');
    b!.conn.send({ type: 'SEND', to: a!.nick, body: Buffer.from([0]) });
    const back = await a!.conn.expect('DELIVER', `DELIVER {from: ${b!.nick}}`);
    if (back.from !== b!.nick || back.body.length !== 1 || back.body[0] !== 0) throw new CaseFailure(`DELIVER {from: ${b!.nick}, body: 0x00}`, describe({ kind: 'frame', frame: back }));
  },
});

add({
  id: 'relay_to_no_one_else',
  section: '§7.1 Relaying',
  title: 'a SEND in a room of three reaches the addressee and no one else',
  async run(ctx) {
    const probe = await ctx.authed();
    const size = probe.welcome.room_size;
    probe.conn.destroy();
    if (size < 3) throw new CaseSkip(`room_size ${size} < 3: a third member cannot join (the sender-side half is relay_deliver_stamped_unchanged)`);
    const [a, b, c] = await ctx.roomOf(3);
    a!.conn.send({ type: 'SEND', to: b!.nick, body: Buffer.from('for b only') });
    await b!.conn.expect('DELIVER', 'DELIVER to the addressee');
    a!.conn.send({ type: 'SEND', to: c!.nick, body: Buffer.from('for c') });
    const d = await c!.conn.expect('DELIVER', 'only the DELIVER addressed to c');
    if (Buffer.from(d.body).toString() !== 'for c') throw new CaseFailure('DELIVER {body: "for c"}', 'the frame addressed to another member');
    await c!.conn.barrier(3);
  },
});

add({
  id: 'relay_forged_from_field',
  section: '§6 SEND, §7.1 Relaying',
  title: 'a SEND carrying a `from` field is refused with INVALID_FIELD and nothing reaches the addressee',
  async run(ctx) {
    const [a, b] = await ctx.roomOf(2);
    a!.conn.body(
      mp.map([
        ['t', mp.uint(9)],
        ['to', mp.str(b!.nick)],
        ['body', mp.bin(Buffer.from('forged'))],
        ['from', mp.str('somebody-else')],
      ]),
    );
    const answer = await a!.conn.next();
    if (!(answer.kind === 'frame' && answer.frame.type === 'ERROR' && answer.frame.code === ERROR_CODES.INVALID_FIELD.code)) {
      const atB = await b!.conn.next(Math.min(ctx.opts.waitMs, 200));
      throw new CaseFailure('ERROR INVALID_FIELD to the sender, nothing to the addressee', `${describe(answer)}; the addressee got ${describe(atB)}`);
    }
    await a!.conn.expectClosed('connection closed after ERROR INVALID_FIELD');
    // a is gone (b may see its PEER_LEFT, which §7.1 Leaving governs, not this case); no DELIVER may reach b.
    b!.conn.send({ type: 'PING', n: 77 });
    for (let k = 0; k < 3; k++) {
      const x = await b!.conn.next();
      if (x.kind === 'frame' && x.frame.type === 'PONG' && x.frame.n === 77) return;
      if (x.kind === 'frame' && x.frame.type === 'PEER_LEFT' && x.frame.nick === a!.nick) continue;
      throw new CaseFailure('no DELIVER of the refused SEND (PEER_LEFT then PONG {n: 77})', describe(x));
    }
    throw new CaseFailure('PONG {n: 77}', 'more than one PEER_LEFT');
  },
});

add({
  id: 'relay_order_preserved',
  section: '§7.1 Relaying',
  title: 'frames from one sender to one addressee are delivered in the order received (40 SENDs in one segment)',
  async run(ctx) {
    const [a, b] = await ctx.roomOf(2);
    const frames = Array.from({ length: 40 }, (_, i) => mp.wire(mp.map([['t', mp.uint(9)], ['to', mp.str(b!.nick)], ['body', mp.bin(Buffer.from(`m${i}`))]])));
    a!.conn.raw(Buffer.concat(frames));
    for (let i = 0; i < 40; i++) {
      const d = await b!.conn.expect('DELIVER', `DELIVER m${i}`);
      const got = Buffer.from(d.body).toString();
      if (got !== `m${i}`) throw new CaseFailure(`DELIVER m${i}`, `DELIVER ${got}`);
    }
  },
});

add({
  id: 'relay_body_at_max',
  section: '§6 SEND, §10',
  title: 'a SEND body of exactly MAX_BODY_BYTES is delivered unchanged',
  async run(ctx) {
    const [a, b] = await ctx.roomOf(2);
    const body = randomBytes(LIMITS.MAX_BODY_BYTES);
    const f = mp.map([['t', mp.uint(9)], ['to', mp.str(b!.nick)], ['body', mp.bin(body)]]);
    if (f.length > a!.welcome.max_frame) throw new CaseSkip(`announced max_frame ${a!.welcome.max_frame} is below this SEND (${f.length} bytes)`);
    a!.conn.body(f);
    const d = await b!.conn.expect('DELIVER', `DELIVER of ${LIMITS.MAX_BODY_BYTES} bytes`);
    if (!Buffer.from(d.body).equals(body)) throw new CaseFailure('the body unchanged', `a different body of ${d.body.length} bytes`);
  },
});

add({
  id: 'relay_body_too_long',
  section: '§6 SEND, §10',
  title: 'a SEND body of MAX_BODY_BYTES + 1 is refused with INVALID_FIELD',
  async run(ctx) {
    const [a] = await ctx.roomOf(2);
    const f = mp.map([['t', mp.uint(9)], ['to', mp.str(ctx.nick())], ['body', mp.bin(Buffer.alloc(LIMITS.MAX_BODY_BYTES + 1))]]);
    if (f.length > a!.welcome.max_frame) throw new CaseSkip(`announced max_frame ${a!.welcome.max_frame} is below this SEND (${f.length} bytes)`);
    a!.conn.body(f);
    await a!.conn.expectError('INVALID_FIELD');
  },
});

add({
  id: 'relay_empty_body',
  section: '§6 SEND',
  title: 'a SEND with an empty body is refused with INVALID_FIELD',
  async run(ctx) {
    const [a, b] = await ctx.roomOf(2);
    a!.conn.body(mp.map([['t', mp.uint(9)], ['to', mp.str(b!.nick)], ['body', mp.bin(Buffer.alloc(0))]]));
    await a!.conn.expectError('INVALID_FIELD');
  },
});

const noPeer: Array<[string, string, (ctx: Ctx, a: { nick: string }) => Promise<string>]> = [
  ['unknown', 'a nick nobody uses', async (ctx) => ctx.nick()],
  ['self', 'the sender itself', async (_ctx, a) => a.nick],
  ['other_room', 'a member of another room', async (ctx) => (await ctx.joined(ctx.room(), ctx.nick(), ctx.spare())).nick],
];
for (const [tag, what, to] of noPeer) {
  add({
    id: `relay_no_such_peer_${tag}`,
    section: '§7.1 Relaying',
    title: `SEND to ${what} is refused with NO_SUCH_PEER; the connection stays and can still SEND`,
    async run(ctx) {
      const [a, b] = await ctx.roomOf(2);
      a!.conn.send({ type: 'SEND', to: await to(ctx, a!), body: Buffer.from('x') });
      await a!.conn.expectError('NO_SUCH_PEER');
      await a!.conn.barrier(8, 'the connection stays in IN_ROOM after NO_SUCH_PEER (§9 closes = no)');
      a!.conn.send({ type: 'SEND', to: b!.nick, body: Buffer.from('y') });
      await b!.conn.expect('DELIVER', 'DELIVER after a refused SEND');
    },
  });
}

add({
  id: 'relay_nothing_after_leave',
  section: '§7.1 Leaving',
  title: 'after LEAVE, SEND to the leaver is NO_SUCH_PEER and nothing is delivered to it',
  async run(ctx) {
    const [a, b] = await ctx.roomOf(2);
    await leave(b!.conn);
    await a!.conn.expect('PEER_LEFT', `PEER_LEFT {nick: ${b!.nick}}`);
    a!.conn.send({ type: 'SEND', to: b!.nick, body: Buffer.from('late') });
    await a!.conn.expectError('NO_SUCH_PEER');
    await b!.conn.barrier(9, 'no DELIVER after leaving');
  },
});

// ---------------------------------------------------------------------------------------------------
// §7.1 Leaving and disconnects

add({
  id: 'leave_left_and_peer_left',
  section: '§7.1 Leaving',
  title: 'LEAVE gets LEFT, every other member gets PEER_LEFT, and the leaver is back in READY (can JOIN again)',
  async run(ctx) {
    const room = ctx.room();
    const [a, b] = await ctx.roomOf(2, room);
    await leave(a!.conn);
    const pl = await b!.conn.expect('PEER_LEFT', `PEER_LEFT {nick: ${a!.nick}}`);
    if (pl.nick !== a!.nick) throw new CaseFailure(`PEER_LEFT {nick: ${a!.nick}}`, describe({ kind: 'frame', frame: pl }));
    a!.conn.send({ type: 'JOIN', room });
    const j = await a!.conn.expect('JOINED', 'JOINED on rejoin');
    if (!sameMembers(j.members, [b!])) throw new CaseFailure(`JOINED {members: [${b!.nick}]}`, describe({ kind: 'frame', frame: j }));
  },
});

add({
  id: 'disconnect_peer_left',
  section: '§7.1 Leaving',
  title: 'a member that closes its connection is announced to the others with PEER_LEFT',
  async run(ctx) {
    const [a, b] = await ctx.roomOf(2);
    a!.conn.destroy();
    const pl = await b!.conn.expect('PEER_LEFT', `PEER_LEFT {nick: ${a!.nick}}`);
    if (pl.nick !== a!.nick) throw new CaseFailure(`PEER_LEFT {nick: ${a!.nick}}`, describe({ kind: 'frame', frame: pl }));
  },
});

add({
  id: 'disconnect_truncated_frame',
  section: '§3, §7.1 Leaving',
  title: 'a member that closes in the middle of a SEND is a disconnect: PEER_LEFT and no DELIVER',
  async run(ctx) {
    const [a, b] = await ctx.roomOf(2);
    const f = mp.wire(mp.map([['t', mp.uint(9)], ['to', mp.str(b!.nick)], ['body', mp.bin(Buffer.alloc(100, 1))]]));
    a!.conn.raw(f.subarray(0, f.length - 10));
    await new Promise((r) => setTimeout(r, 20));
    a!.conn.end();
    const x = await b!.conn.next();
    if (!(x.kind === 'frame' && x.frame.type === 'PEER_LEFT' && x.frame.nick === a!.nick)) throw new CaseFailure(`PEER_LEFT {nick: ${a!.nick}}, no DELIVER`, describe(x));
  },
});

add({
  id: 'disconnect_nick_can_rejoin',
  section: '§7.1 Leaving',
  title: 'after a member disconnects, the same nick can join the same room again (no stale NICK_IN_ROOM)',
  async run(ctx) {
    const room = ctx.room();
    const [a, b] = await ctx.roomOf(2, room);
    a!.conn.destroy();
    await b!.conn.expect('PEER_LEFT', `PEER_LEFT {nick: ${a!.nick}}`);
    await ctx.joined(room, a!.nick, a!.ident);
  },
});

// ---------------------------------------------------------------------------------------------------
// §7.1 Timeouts (slow: they wait for the target's configured or announced values)

function grace(ms: number, ctx: Ctx): number {
  return ms + Math.max(ctx.opts.waitMs, Math.ceil(ms / 2));
}

add({
  id: 'timeout_await_hello',
  section: '§7.1 Timeouts',
  title: 'a connection that sends nothing gets ERROR TIMEOUT and is closed within the handshake timeout',
  slow: true,
  async run(ctx) {
    const c = await ctx.open();
    await c.expectError('TIMEOUT', grace(ctx.opts.handshakeMs, ctx));
  },
});

add({
  id: 'timeout_await_auth',
  section: '§7.1 Timeouts',
  title: 'a connection that sends HELLO and never AUTH gets ERROR TIMEOUT within the handshake timeout',
  slow: true,
  async run(ctx) {
    const { conn } = await ctx.challenged();
    await conn.expectError('TIMEOUT', grace(ctx.opts.handshakeMs, ctx));
  },
});

add({
  id: 'timeout_idle_ready',
  section: '§7.1 Timeouts',
  title: 'an authenticated connection that sends nothing for the announced idle_ms gets ERROR TIMEOUT',
  slow: true,
  async run(ctx) {
    const a = await ctx.authed();
    await a.conn.expectError('TIMEOUT', grace(a.welcome.idle_ms, ctx));
  },
});

add({
  id: 'timeout_idle_in_room_peer_left',
  section: '§7.1 Timeouts',
  title: 'a silent member gets ERROR TIMEOUT after idle_ms, and the member that keeps alive gets PEER_LEFT',
  slow: true,
  async run(ctx) {
    const [a, b] = await ctx.roomOf(2);
    const idle = a!.welcome.idle_ms;
    const step = Math.max(1, Math.floor(idle / LIMITS.KEEPALIVE_DIVISOR));
    const deadline = grace(idle, ctx);
    const silent = a!.conn.expectError('TIMEOUT', deadline).then(
      () => undefined,
      (e: unknown) => e,
    );
    // b keeps alive as a client must (§7.1 Timeouts: PING after idle_ms / KEEPALIVE_DIVISOR of silence).
    let left = false;
    const rounds = Math.ceil(deadline / step) + 2;
    for (let i = 0; i < rounds && !left; i++) {
      b!.conn.send({ type: 'PING', n: i });
      for (let k = 0; k < 3; k++) {
        const x = await b!.conn.next();
        if (x.kind === 'frame' && x.frame.type === 'PONG' && x.frame.n === i) break;
        if (x.kind === 'frame' && x.frame.type === 'PEER_LEFT' && x.frame.nick === a!.nick) {
          left = true;
          continue;
        }
        throw new CaseFailure(`PONG {n: ${i}} or PEER_LEFT {nick: ${a!.nick}}`, describe(x));
      }
      if (!left) await new Promise((r) => setTimeout(r, step));
    }
    const err = await silent;
    if (err !== undefined) throw err;
    if (!left) throw new CaseFailure(`PEER_LEFT {nick: ${a!.nick}} after its TIMEOUT`, 'only PONGs');
  },
});

add({
  id: 'timeout_keepalive_holds',
  section: '§7.1 Timeouts',
  title: 'a connection that sends PING every idle_ms / KEEPALIVE_DIVISOR stays open for twice idle_ms',
  slow: true,
  async run(ctx) {
    const a = await ctx.authed();
    const idle = a.welcome.idle_ms;
    const step = Math.max(1, Math.floor(idle / LIMITS.KEEPALIVE_DIVISOR));
    const rounds = 2 * LIMITS.KEEPALIVE_DIVISOR + 1;
    for (let i = 0; i < rounds; i++) {
      await new Promise((r) => setTimeout(r, step));
      await a.conn.barrier(i, `the connection alive after ${i + 1} keepalive PINGs`);
    }
  },
});

/** Every server case, in spec order. */
export const SERVER_CASES: readonly ServerCase[] = cases;
