/**
 * One test per decoder rule of spec/PROTOCOL.md §4: the strict pass (rules 1-8) and the frame shape
 * (rule 9), each asserting the error code, and the precedence between them.
 */
import t from 'tap';
import { ProtocolError, type ErrorName } from '../../src/protocol/errors.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { checkStrict, decodeStrict, StrictMap } from '../../src/codec/strict.js';
import { decodeFrame } from '../../src/codec/frame.js';
import type { Layer } from '../../src/protocol/frames.js';
import { array, bin, cat, map, pattern, str, uint, type Bytes } from '../../src/wirekit/msgpack.js';

function codeOf(fn: () => unknown): ErrorName | 'ok' | 'other' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return e instanceof ProtocolError ? e.errorName : 'other';
  }
}
const decode = (b: Bytes, layer: Layer = 'relay') => codeOf(() => decodeFrame(b, layer));
const ping = (n: Bytes) => map([['t', uint(13)], ['n', n]]);

t.test('rule 1: every disallowed msgpack type is MALFORMED_FRAME, wherever it occurs', async (t) => {
  const disallowed = ['c0', 'c1', 'c2', 'c3', 'ca00000000', 'cb0000000000000000', 'e0', 'ff', 'd001', 'd10001', 'd200000001', 'd30000000000000001',
    'd40100', 'd5010000', 'd60100000000', 'd7010000000000000000', 'd801' + '00'.repeat(16), 'c70101ff', 'c8000101ff', 'c900000001 01ff'];
  for (const h of disallowed) {
    t.equal(decode(ping(cat(h))), 'MALFORMED_FRAME', `0x${h.slice(0, 2)} as a field value`);
    t.equal(codeOf(() => checkStrict(map([['t', uint(6)], ['members', array([map([['nick', cat(h)]])])]]))), 'MALFORMED_FRAME', `0x${h.slice(0, 2)} at depth 3`);
  }
  // Every single tag byte: allowed leading bytes never produce another exception type.
  for (let tag = 0; tag < 256; tag++) {
    const r = codeOf(() => decodeStrict(ping(cat(Buffer.from([tag])))));
    t.not(r, 'other', `tag 0x${tag.toString(16)} gives a ProtocolError or a value`);
  }
});

t.test('rule 2: integers above 2^53 - 1 are MALFORMED_FRAME; 2^53 - 1 is accepted exactly', async (t) => {
  t.equal(decode(ping(cat('cf0020000000000000'))), 'MALFORMED_FRAME');
  t.equal(decode(ping(cat('cfffffffffffffffff'))), 'MALFORMED_FRAME');
  const f = decodeFrame(ping(cat('cf001fffffffffffff')), 'relay');
  t.same(f, { type: 'PING', n: LIMITS.MAX_UINT });
});

t.test('rule 3: each non-shortest form is MALFORMED_FRAME and each shortest form at its edge decodes', async (t) => {
  const nonShortest: [string, Bytes][] = [
    ['uint 8 for 0', ping(cat('cc00'))],
    ['uint 8 for 127', ping(cat('cc7f'))],
    ['uint 16 for 255', ping(cat('cd00ff'))],
    ['uint 32 for 65535', ping(cat('ce0000ffff'))],
    ['uint 64 for 2^32 - 1', ping(cat('cf00000000ffffffff'))],
    ['str 8 for 31 bytes', map([['t', uint(15)], ['code', uint(1)], ['detail', cat('d91f', Buffer.alloc(31, 0x61))]])],
    ['str 16 for 255 bytes', map([['t', uint(15)], ['code', uint(1)], ['detail', cat('da00ff', Buffer.alloc(255, 0x61))]])],
    ['str 32 for 256 bytes', map([['t', uint(15)], ['code', uint(1)], ['detail', cat('db00000100', Buffer.alloc(256, 0x61))]])],
    ['bin 16 for 255 bytes', map([['t', uint(10)], ['from', str('a')], ['body', cat('c500ff', pattern(255, 1))]])],
    ['bin 32 for 1 byte', map([['t', uint(10)], ['from', str('a')], ['body', cat('c60000000101')]])],
    ['array 16 for 15 elements', ping(cat('dc000f', Buffer.alloc(15, 1)))],
    ['array 32 for 0 elements', ping(cat('dd00000000'))],
    ['map 16 for 2 entries', cat('de0002', str('t'), uint(13), str('n'), uint(1))],
    ['map 32 for 2 entries', cat('df00000002', str('t'), uint(13), str('n'), uint(1))],
    ['str 8 key', cat('82', 'd90174', uint(13), str('n'), uint(1))],
  ];
  for (const [what, b] of nonShortest) t.equal(decode(b), 'MALFORMED_FRAME', what);
  for (const n of [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, LIMITS.MAX_UINT]) {
    t.same(decodeFrame(ping(uint(n)), 'relay'), { type: 'PING', n }, `shortest form of ${n}`);
  }
});

t.test('rule 4: invalid UTF-8 in values and keys is MALFORMED_FRAME; valid edge cases are kept as is', async (t) => {
  const detail = (payload: Bytes) => map([['t', uint(15)], ['code', uint(1)], ['detail', str(payload)]]);
  for (const h of ['c0af', 'e080af', 'f08080af', 'eda080', 'edbfbf', 'c3', 'e282', 'f09f98', 'f4908080', '80', 'ff', 'fe', 'f8888080 80']) {
    t.equal(decode(detail(cat('61', h))), 'MALFORMED_FRAME', `detail with ${h}`);
    // Long strings take the TextDecoder path, short ones the ASCII fast path; both must reject.
    t.equal(decode(detail(cat(Buffer.alloc(40, 0x61), h))), 'MALFORMED_FRAME', `long detail with ${h}`);
  }
  t.equal(codeOf(() => checkStrict(map([['t', uint(13)], [str(cat('eda080')), uint(1)]]))), 'MALFORMED_FRAME', 'surrogate in a key');
  for (const s of ['\uFEFFbom', 'nul\u0000', '\u{10FFFF}', '\u00e9\u20ac\u{1F600}']) {
    t.same(decodeFrame(detail(Buffer.from(s, 'utf8')), 'relay'), { type: 'ERROR', code: 1, detail: s }, JSON.stringify(s));
  }
});

t.test('rule 5: duplicate keys, non-string keys and more than MAX_MAP_ENTRIES entries are MALFORMED_FRAME', async (t) => {
  t.equal(decode(map([['t', uint(13)], ['n', uint(1)], ['n', uint(2)]])), 'MALFORMED_FRAME', 'duplicate key');
  t.equal(decode(map([['t', uint(13)], ['t', uint(13)]])), 'MALFORMED_FRAME', 'duplicate t');
  t.equal(decode(map([['t', uint(13)], [uint(1), uint(1)]])), 'MALFORMED_FRAME', 'integer key');
  t.equal(decode(map([['t', uint(13)], [bin(cat('6e')), uint(1)]])), 'MALFORMED_FRAME', 'binary key');
  t.equal(decode(map([['t', uint(13)], [array([]), uint(1)]])), 'MALFORMED_FRAME', 'array key');
  const entries = (k: number): [string, Bytes][] => [['t', uint(13)], ['n', uint(1)], ...Array.from({ length: k - 2 }, (_, i) => [`k${i}`, uint(i)] as [string, Bytes])];
  t.equal(decode(map(entries(LIMITS.MAX_MAP_ENTRIES))), 'INVALID_FIELD', 'at the limit: passes rules 1-8, unknown fields');
  t.equal(decode(map(entries(LIMITS.MAX_MAP_ENTRIES + 1))), 'MALFORMED_FRAME', 'one past the limit');
});

t.test('rule 6: containers nested beyond MAX_DEPTH are MALFORMED_FRAME', async (t) => {
  t.equal(LIMITS.MAX_DEPTH, 3);
  t.equal(decode(ping(cat('9190'))), 'INVALID_FIELD', 'depth 3 (array in array in the frame map) passes rules 1-8');
  t.equal(decode(ping(cat('919190'))), 'MALFORMED_FRAME', 'depth 4 array');
  t.equal(decode(ping(cat('919180'))), 'MALFORMED_FRAME', 'depth 4 map');
  t.equal(decode(ping(cat('81', str('a'), '80'))), 'INVALID_FIELD', 'a map at depth 2 with a map at depth 3');
  t.equal(decode(ping(cat('81', str('a'), '81', str('b'), '80'))), 'MALFORMED_FRAME', 'a map at depth 4');
  // A deep nest far beyond the limit is rejected without recursing through it.
  t.equal(decode(ping(cat(Buffer.alloc(10000, 0x91), '00'))), 'MALFORMED_FRAME', '10000 nested arrays');
});

t.test('rule 7: declared sizes beyond the body are MALFORMED_FRAME', async (t) => {
  const tail = (h: string) => cat('82', str('t'), uint(13), str('n'), h);
  for (const h of ['a5616263', 'd9c86162', 'da01006162', 'dbffffffff6162', 'c4ff0102', 'c5ffff0102', 'c6ffffffff0102', '9f01', 'dcffff01', 'ddffffffff01', '85a16101', 'deffff']) {
    t.equal(decode(tail(h)), 'MALFORMED_FRAME', h);
  }
  t.equal(decode(cat('83', str('t'), uint(13), str('n'), uint(1))), 'MALFORMED_FRAME', 'top map declares one entry too many');
});

t.test('rule 8: a body that is not exactly one map is MALFORMED_FRAME', async (t) => {
  for (const b of [cat('920d01'), cat('0d'), str('t'), bin(cat('0d')), cat('c0'), cat('')]) t.equal(decode(b), 'MALFORMED_FRAME', Buffer.from(b).toString('hex') || 'empty');
  t.equal(decode(cat(ping(uint(1)), '00')), 'MALFORMED_FRAME', 'trailing byte');
  t.equal(decode(cat(ping(uint(1)), ping(uint(1)))), 'MALFORMED_FRAME', 'two maps');
});

t.test('rule 9: frame shape', async (t) => {
  t.equal(decode(map([['n', uint(1)]])), 'INVALID_FIELD', 'missing t');
  t.equal(decode(map([['t', str('13')], ['n', uint(1)]])), 'INVALID_FIELD', 't is a string');
  t.equal(decode(map([['t', array([])], ['n', uint(1)]])), 'INVALID_FIELD', 't is an array');
  t.equal(decode(map([['t', uint(0x13)]])), 'UNKNOWN_FRAME_TYPE', 'unassigned code');
  t.equal(decode(map([['t', uint(0x21)], ['n', uint(1)]])), 'UNKNOWN_FRAME_TYPE', 'an e2e code at the relay layer');
  t.equal(decode(map([['t', uint(0x09)], ['to', str('a')], ['body', bin(cat('00'))]]), 'e2e'), 'UNKNOWN_FRAME_TYPE', 'SEND inside a relayed body');
  t.equal(decode(map([['t', uint(0x32)], ['upto', uint(0)]]), 'e2e'), 'UNKNOWN_FRAME_TYPE', 'ACK at the e2e layer');
  t.equal(decode(map([['t', uint(0x32)], ['upto', uint(0)]]), 'inner'), 'ok', 'ACK at the inner layer');
  t.equal(decode(map([['n', uint(1)], ['t', uint(13)]])), 'MALFORMED_FRAME', 't not first');
  t.equal(decode(map([['t', uint(13)]])), 'INVALID_FIELD', 'missing field');
  t.equal(decode(map([['t', uint(13)], ['n', uint(1)], ['x', uint(1)]])), 'INVALID_FIELD', 'unknown field');
  t.equal(decode(map([['t', uint(13)], ['x', uint(1)]])), 'INVALID_FIELD', 'renamed field');
  t.equal(decode(map([['t', uint(13)], ['n', str('1')]])), 'INVALID_FIELD', 'mistyped field');
  // Unknown fields are reported before order: a frame both unordered and with an extra key is INVALID_FIELD.
  t.equal(decode(map([['t', uint(9)], ['body', bin(cat('00'))], ['to', str('a')], ['x', uint(1)]])), 'INVALID_FIELD', 'unknown beats order');
  t.equal(decode(map([['t', uint(9)], ['body', bin(cat('00'))], ['to', str('a')]])), 'MALFORMED_FRAME', 'out of order');
});

t.test('rule 9: keys that name prototype properties are ordinary unknown fields and touch no prototype', async (t) => {
  for (const k of ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty']) {
    t.equal(decode(map([['t', uint(13)], ['n', uint(1)], [k, uint(1)]])), 'INVALID_FIELD', k);
    t.equal(decode(map([['t', uint(13)], [k, uint(1)]])), 'INVALID_FIELD', `${k} instead of n`);
  }
  const m = decodeStrict(map([['__proto__', map([['polluted', uint(1)]])]]));
  t.ok(m instanceof StrictMap);
  t.same(m.keys, ['__proto__']);
  t.equal(({} as Record<string, unknown>)['polluted'], undefined, 'Object.prototype untouched');
});

t.test('precedence: rules 1-8 are checked over the whole body before rule 9', async (t) => {
  // An unknown field (rule 9) followed by a nil (rule 1): MALFORMED_FRAME, not INVALID_FIELD.
  t.equal(decode(map([['t', uint(13)], ['x', uint(1)], ['n', cat('c0')]])), 'MALFORMED_FRAME');
  // An unknown frame type (rule 9) with invalid UTF-8 later in the body.
  t.equal(decode(map([['t', uint(0x7f)], ['d', str(cat('ff'))]])), 'MALFORMED_FRAME');
  // A missing t with a non-shortest integer.
  t.equal(decode(map([['n', cat('cc01')]])), 'MALFORMED_FRAME');
});

t.test('bounds and alphabets: at each bound accepted, one past rejected with INVALID_FIELD', async (t) => {
  const hello = (nick: Bytes, key: Bytes = bin(pattern(294, 1)), version: Bytes = uint(1)) =>
    map([['t', uint(1)], ['version', version], ['nick', nick], ['key', key]]);
  t.equal(decode(hello(str('a'.repeat(32)))), 'ok');
  t.equal(decode(hello(str('a'.repeat(33)))), 'INVALID_FIELD');
  t.equal(decode(hello(str(''))), 'INVALID_FIELD');
  t.equal(decode(hello(str('a'), bin(pattern(512, 1)))), 'ok');
  t.equal(decode(hello(str('a'), bin(pattern(513, 1)))), 'INVALID_FIELD');
  t.equal(decode(hello(str('a'), bin(new Uint8Array(0)))), 'INVALID_FIELD');
  t.equal(decode(hello(str('a'), undefined, uint(255))), 'ok');
  t.equal(decode(hello(str('a'), undefined, uint(256))), 'INVALID_FIELD');
  for (const bad of ['a b', 'a.b', 'a/b', '\u00e9', 'a\u0000', 'a\n', '-\u0301']) t.equal(decode(hello(str(bad))), 'INVALID_FIELD', `nick ${JSON.stringify(bad)}`);
  for (const good of ['A', 'z', '0', '_', '-', 'Az09_-']) t.equal(decode(hello(str(good))), 'ok', `nick ${good}`);
  const join = (room: string) => map([['t', uint(5)], ['room', str(room)]]);
  t.equal(decode(join('a.b')), 'ok', 'room may contain "."');
  t.equal(decode(join('r'.repeat(64))), 'ok');
  t.equal(decode(join('r'.repeat(65))), 'INVALID_FIELD');
  t.equal(decode(join('a b')), 'INVALID_FIELD');
  const err = (detail: string) => map([['t', uint(15)], ['code', uint(1)], ['detail', str(detail)]]);
  t.equal(decode(err('\u00e9'.repeat(128))), 'ok', '256 UTF-8 bytes in 128 characters');
  t.equal(decode(err('\u00e9'.repeat(128) + 'x')), 'INVALID_FIELD', '257 UTF-8 bytes: bounds count bytes, not characters');
  const joined = (n: number) => map([['t', uint(6)], ['room', str('r')], ['epoch', uint(1)], ['members', array(Array.from({ length: n }, (_, i) => map([['nick', str(`m${i}`)], ['key', bin(cat('01'))]])))]]);
  t.equal(decode(joined(LIMITS.MAX_ROOM_SIZE - 1)), 'ok');
  t.equal(decode(joined(LIMITS.MAX_ROOM_SIZE)), 'INVALID_FIELD');
});

t.test('decodeFrame refuses a body over MAX_FRAME_BYTES with FRAME_TOO_LARGE before reading it', async (t) => {
  t.equal(decode(new Uint8Array(LIMITS.MAX_FRAME_BYTES + 1)), 'FRAME_TOO_LARGE');
});

t.test('binary fields are views into the body, decoded without copying', async (t) => {
  const body = map([['t', uint(10)], ['from', str('a')], ['body', bin(cat('0102'))]]);
  const f = decodeFrame(body, 'relay');
  t.equal(f.type, 'DELIVER');
  if (f.type === 'DELIVER') {
    t.equal(f.body.buffer, body.buffer);
    t.same([...f.body], [1, 2]);
  }
});
