/**
 * The relay's hot path: DELIVER{from, body} written straight into one buffer with its length prefix.
 *
 * `encodeWire(frame('DELIVER', ...))` builds a map, re-validates every field and copies the body twice;
 * on the relay both fields were already validated when the SEND was decoded (spec §6: `from` is the
 * authenticated nickname, `body` the SEND body of 1..MAX_BODY_BYTES), so only the canonical bytes remain
 * to be laid out (spec §4 rule 3: fixmap, fixstr or str 8, bin 8/16/32, shortest form). A property test
 * (test/server/deliver.test.ts) holds this equal to the codec's encoder for every nick and body length.
 */
import { LIMITS } from '../protocol/limits.js';
import { isNick } from '../protocol/names.js';

// fixmap(3), fixstr "t", 0x0a, fixstr "from"
const HEAD = Buffer.from([0x83, 0xa1, 0x74, 0x0a, 0xa4, 0x66, 0x72, 0x6f, 0x6d]);
// fixstr "body"
const BODY_KEY = Buffer.from([0xa4, 0x62, 0x6f, 0x64, 0x79]);

/**
 * The wire bytes (4-byte big-endian length, then the canonical body) of DELIVER{from, body}.
 * `from`: a nickname (nick alphabet) of NICK_MIN_BYTES..NICK_MAX_BYTES; `body`: 1..MAX_BODY_BYTES bytes.
 * Throws RangeError outside those bounds (a relay bug, never peer input: both come from a decoded SEND).
 */
export function deliverWire(from: string, body: Uint8Array): Buffer {
  const nick = from.length; // the nick alphabet is ASCII: characters = bytes
  if (!isNick(from)) {
    throw new RangeError(`deliverWire: nick of ${nick} characters`);
  }
  const n = body.length;
  if (n < 1 || n > LIMITS.MAX_BODY_BYTES) throw new RangeError(`deliverWire: body of ${n} bytes`);
  const strHead = nick < 32 ? 1 : 2; // fixstr up to 31 bytes, then str 8
  // bin 8 below 256 bytes, else bin 16: MAX_BODY_BYTES (49152) < 65536, so bin 32 never occurs.
  const binHead = n < 0x100 ? 2 : 3;
  const size = HEAD.length + strHead + nick + BODY_KEY.length + binHead + n;
  const out = Buffer.allocUnsafe(LIMITS.LENGTH_PREFIX_BYTES + size);
  let o = out.writeUInt32BE(size, 0);
  o += HEAD.copy(out, o);
  if (nick < 32) {
    out[o++] = 0xa0 | nick;
  } else {
    out[o++] = 0xd9;
    out[o++] = nick;
  }
  o += out.write(from, o, 'latin1');
  o += BODY_KEY.copy(out, o);
  if (n < 0x100) {
    out[o++] = 0xc4;
    out[o++] = n;
  } else {
    out[o++] = 0xc5;
    o = out.writeUInt16BE(n, o);
  }
  out.set(body, o);
  return out;
}
