/**
 * What the fuzzer sends only over the WebSocket transport (spec/PROTOCOL.md §3.1), and what a conforming
 * relay must answer, from the spec and RFC 6455 alone:
 * - tails: one WebSocket-level event after a case's stream (a text message, an empty message, an
 *   oversized one, an RFC 6455 violation, a client close), each with the ERROR it must get (a text or
 *   empty message is MALFORMED_FRAME, then close code 4001) or the close code that fails the connection
 *   without an ERROR (1009 over the limit, 1002 or 1007 for protocol violations);
 * - fragmenting: how a case's binary messages are cut into fragments, with pings between them (valid
 *   RFC 6455: the relay must reassemble each message into one frame body and answer as on TCP);
 * - upgrades: hostile or malformed upgrade requests (another Origin, no or another subprotocol, another
 *   path or Host, huge or garbage heads, a bad key or version) and the HTTP status each must get.
 */
import { ERROR_CODES, type ErrorName } from '../src/protocol/errors.js';
import { LIMITS } from '../src/protocol/limits.js';
import { encodeFrame, frame } from '../src/codec/index.js';
import { closePayload, OP, upgrade, WS_SUBPROTOCOL, wsFrame, type Fragmenting, type UpgradeOptions } from '../src/wirekit/ws.js';
import { Prng } from './prng.js';

/** Close code after a closing ERROR with §9 code c (§3.1). */
export const closeCodeFor = (code: ErrorName): number => 4000 + ERROR_CODES[code].code;

/** One WebSocket-level event at the end of a case and its required answer. */
export interface WsTail {
  name: string;
  /** Raw WebSocket frames, written as they are. */
  bytes: Buffer;
  /** The ERROR the relay must send first (then close with closeCodeFor), or none. */
  error?: ErrorName;
  /** Close codes the relay may close with; empty: any (a client-initiated close). */
  closeCodes: number[];
  /** The client ends its side after the bytes (the relay then closes without a word). */
  end?: boolean;
}

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

/** The tails, each built from the case's generator. */
export function wsTail(r: Prng, maxFrame: number): WsTail {
  const ping = Buffer.from(encodeFrame(frame('PING', { n: r.int(0, 1000) })));
  const kind = r.below(19);
  switch (kind) {
    case 0:
      // §3.1: a text message is MALFORMED_FRAME, even when it holds a valid frame's bytes.
      return { name: 'text-frame-bytes', bytes: wsFrame({ opcode: OP.TEXT, payload: Buffer.from(ping.toString('latin1').replace(/[^\x20-\x7e]/g, 'a')) }), error: 'MALFORMED_FRAME', closeCodes: [closeCodeFor('MALFORMED_FRAME')] };
    case 1: {
      const text = utf8('héllo '.repeat(r.int(0, 40)) + 'x');
      const cut = r.int(1, text.length - 1);
      return {
        name: 'text-fragmented',
        bytes: Buffer.concat([wsFrame({ fin: false, opcode: OP.TEXT, payload: text.subarray(0, cut) }), wsFrame({ opcode: OP.CONT, payload: text.subarray(cut) })]),
        error: 'MALFORMED_FRAME',
        closeCodes: [closeCodeFor('MALFORMED_FRAME')],
      };
    }
    case 2:
      // Invalid UTF-8 in a text message fails the connection (RFC 6455 §8.1: 1007).
      return { name: 'text-bad-utf8', bytes: wsFrame({ opcode: OP.TEXT, payload: Buffer.from([0x61, 0xc0, 0x80]) }), closeCodes: [1007] };
    case 3:
      return { name: 'empty-binary', bytes: wsFrame({ opcode: OP.BINARY }), error: 'MALFORMED_FRAME', closeCodes: [closeCodeFor('MALFORMED_FRAME')] };
    case 4: {
      // Over max_frame, refused on the header (§3.1: 1009, no ERROR): declared, never sent.
      const n = r.pick([maxFrame + 1, 0x10000 + 1, 0xffffffff, 2 ** 40]);
      return { name: `oversize-header-${n}`, bytes: wsFrame({ opcode: OP.BINARY, declared: n }), closeCodes: [1009] };
    }
    case 5: {
      // Fragments each within the limit whose sum is over it (the limit is on the message, §3.1).
      const part = Buffer.alloc(Math.ceil(maxFrame / 2) + 1, 0x41);
      return {
        name: 'oversize-fragments',
        bytes: Buffer.concat([wsFrame({ fin: false, opcode: OP.BINARY, payload: part }), wsFrame({ fin: false, opcode: OP.CONT, payload: part }), wsFrame({ opcode: OP.CONT, payload: part })]),
        closeCodes: [1009],
      };
    }
    case 6:
      return { name: `rsv-${r.int(1, 7)}`, bytes: wsFrame({ rsv: r.int(1, 7), opcode: OP.BINARY, payload: ping }), closeCodes: [1002] };
    case 7:
      return { name: 'bad-opcode', bytes: wsFrame({ opcode: r.pick([3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]), payload: ping }), closeCodes: [1002] };
    case 8:
      // RFC 6455 §5.1: a server MUST close on an unmasked client frame.
      return { name: 'unmasked', bytes: wsFrame({ opcode: OP.BINARY, payload: ping, masked: false }), closeCodes: [1002] };
    case 9:
      return { name: 'control-too-long', bytes: wsFrame({ opcode: r.pick([OP.PING, OP.PONG, OP.CLOSE]), payload: Buffer.alloc(r.int(126, 300), 0x30) }), closeCodes: [1002] };
    case 10:
      return { name: 'control-fragmented', bytes: wsFrame({ fin: false, opcode: OP.PING, payload: Buffer.from('p') }), closeCodes: [1002] };
    case 11:
      return { name: 'continuation-first', bytes: wsFrame({ opcode: OP.CONT, payload: ping }), closeCodes: [1002] };
    case 12:
      // A new data message while a fragmented one is open.
      return {
        name: 'data-inside-fragments',
        bytes: Buffer.concat([wsFrame({ fin: false, opcode: OP.BINARY, payload: ping.subarray(0, 1) }), wsFrame({ opcode: r.pick([OP.BINARY, OP.TEXT]), payload: ping })]),
        closeCodes: [1002],
      };
    case 13:
      return { name: 'close-bad-code', bytes: wsFrame({ opcode: OP.CLOSE, payload: closePayload(r.pick([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])) }), closeCodes: [1002] };
    case 14:
      return { name: 'close-one-byte', bytes: wsFrame({ opcode: OP.CLOSE, payload: Buffer.from([0x03]) }), closeCodes: [1002] };
    case 15:
      return { name: 'close-bad-utf8', bytes: wsFrame({ opcode: OP.CLOSE, payload: closePayload(1000, Buffer.from([0xed, 0xa0, 0x80])) }), closeCodes: [1007] };
    case 16:
      // A client's orderly close: the relay closes too; no ERROR (§3.1, §7.1 disconnect).
      return { name: 'client-close', bytes: wsFrame({ opcode: OP.CLOSE, payload: r.chance(0.5) ? closePayload(r.pick([1000, 1001, 3000, 4000, 4999]), utf8('bye')) : Buffer.alloc(0) }), closeCodes: [] };
    case 17: {
      // One whole message a byte over max_frame (§3.1: the limit is on the message; 1009, no ERROR).
      const n = Math.min(maxFrame, LIMITS.MAX_FRAME_BYTES) + 1;
      return { name: 'oversize-message', bytes: wsFrame({ opcode: OP.BINARY, payload: Buffer.alloc(n, 0x90) }), closeCodes: [1009] };
    }
    default:
      // A header that promises more body than follows, then the client ends the connection: a truncated
      // message is a disconnect (§3), answered by nothing.
      return { name: 'truncated-header', bytes: wsFrame({ opcode: OP.BINARY, declared: ping.length + r.int(1, 100), payload: ping }).subarray(0, 6 + ping.length), closeCodes: [], end: true };
  }
}

/** How the messages of a case are fragmented (deterministic in the seed): mostly whole, sometimes cut. */
export function fragmenter(seed: number): (index: number, body: Buffer) => Fragmenting {
  return (index, body) => {
    const r = new Prng((seed ^ Math.imul(index + 1, 0x27d4eb2d)) >>> 0);
    if (body.length < 2 || r.chance(0.6)) return r.chance(0.15) ? { pingsBefore: new Set([0]) } : {};
    const cuts = Array.from({ length: r.int(1, Math.min(4, body.length - 1)) }, () => r.int(1, body.length - 1));
    const pings = new Set<number>();
    for (let i = 0; i <= cuts.length; i++) if (r.chance(0.3)) pings.add(i);
    return { cuts, pingsBefore: pings };
  };
}

/** A hostile or malformed upgrade request and the statuses a conforming relay may answer. */
export interface UpgradeCase {
  name: string;
  options: Partial<UpgradeOptions>;
  /** Allowed HTTP statuses (never 101). */
  expect: number[];
}

/** The upgrade cases (§3.1 and the web listener's limits); `origin` is the relay's own origin. */
export function upgradeCase(r: Prng, origin: string): UpgradeCase {
  const junk = (n: number): string => r.bytes(n).toString('base64').replace(/[^A-Za-z0-9]/g, 'x');
  switch (r.below(14)) {
    case 0:
      return { name: 'foreign-origin', options: { origin: r.pick(['https://evil.example', 'http://127.0.0.1:1', 'null', `${origin}.evil.example`, origin.replace('http', 'https')]) }, expect: [403] };
    case 1:
      return { name: 'no-subprotocol', options: { protocols: [] }, expect: [400] };
    case 2:
      return { name: 'wrong-subprotocol', options: { protocols: [r.pick(['e2ee-chat.v2', 'E2EE-CHAT.V1', 'chat', 'e2ee-chat.v1x', junk(8)])] }, expect: [400] };
    case 3:
      return { name: 'wrong-path', options: { path: r.pick(['/', '/v1/ws/', '/v2/ws', '/V1/WS', `/v1/ws/${junk(4)}`, '//v1/ws']) }, expect: [404] };
    case 4:
      return { name: 'wrong-host', options: { hostHeader: r.pick(['evil.example', 'localhost:1', `${junk(6)}.example:80`, '']) }, expect: [421, 400] };
    case 5: {
      // A head beyond the listener's limit (8 KiB here; Node's default is 16 KiB). The relay may answer
      // and close while the rest is still arriving, which resets the connection before the answer can be
      // read: status 0 (closed, no 101) is conforming too.
      const n = r.int(9_000, 70_000);
      return { name: `huge-header-${n}`, options: { extraHeaders: [`X-Junk: ${'a'.repeat(n)}`] }, expect: [431, 400, 0] };
    }
    case 6: {
      const n = r.int(700, 1500);
      return { name: `many-headers-${n}`, options: { extraHeaders: Array.from({ length: n }, (_, i) => `X-H${i}: ${junk(6)}`) }, expect: [431, 400, 0] };
    }
    case 7:
      return { name: 'garbage-head', options: { rawRequest: Buffer.concat([r.bytes(r.int(1, 200)), Buffer.from('\r\n\r\n')]) }, expect: [400] };
    case 8:
      return { name: 'bad-key', options: {}, expect: [400] };
    case 9:
      return { name: 'bad-version', options: {}, expect: [400, 426] };
    case 10:
      return { name: 'post-method', options: {}, expect: [400, 405] };
    case 11:
      return { name: 'subprotocol-smuggled', options: { protocols: [`${WS_SUBPROTOCOL}x`, `x${WS_SUBPROTOCOL}`] }, expect: [400] };
    case 12:
      return { name: 'double-origin', options: { origin, extraHeaders: ['Origin: https://evil.example'] }, expect: [403, 400] };
    default:
      return { name: 'http10', options: {}, expect: [400, 426] };
  }
}

/** Builds the raw request for the cases that rewrite a valid one (key, version, method, HTTP/1.0). */
function rewrite(c: UpgradeCase, host: string, port: number): Buffer | undefined {
  const base = [
    `GET /v1/ws HTTP/1.1`,
    `Host: ${host}:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Protocol: ${WS_SUBPROTOCOL}`,
  ];
  const out = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
  if (c.name === 'bad-key') return out(base.map((l) => (l.startsWith('Sec-WebSocket-Key') ? 'Sec-WebSocket-Key: not-a-key' : l)));
  if (c.name === 'bad-version') return out(base.map((l) => (l.startsWith('Sec-WebSocket-Version') ? 'Sec-WebSocket-Version: 99' : l)));
  if (c.name === 'post-method') return out(base.map((l, i) => (i === 0 ? 'POST /v1/ws HTTP/1.1' : l)));
  if (c.name === 'http10') return out(base.map((l, i) => (i === 0 ? 'GET /v1/ws HTTP/1.0' : l)));
  return undefined;
}

/** Sends one upgrade case; undefined when the relay answered one of the allowed statuses, else why not. */
export async function runUpgradeCase(host: string, port: number, c: UpgradeCase, replyMs: number): Promise<string | undefined> {
  const raw = rewrite(c, host, port);
  let res: Awaited<ReturnType<typeof upgrade>>;
  try {
    res = await upgrade({ host, port, ...c.options, ...(raw !== undefined ? { rawRequest: raw } : {}) }, replyMs);
  } catch (e) {
    return `upgrade ${c.name}: ${e instanceof Error ? e.message : String(e)}`;
  }
  res.socket.destroy();
  if (!c.expect.includes(res.status)) return `upgrade ${c.name}: expected HTTP ${c.expect.join(' or ')}, got ${res.status === 0 ? 'a close without a response' : res.status}`;
  return undefined;
}
