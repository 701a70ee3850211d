/**
 * Seed frames for the fuzzer: every valid case of vectors/codec.json (the codec vectors, spec/VECTORS.md),
 * plus one built-in frame per relay frame type so a checkout without vectors still fuzzes every type.
 * Seeds are frame bodies (no length prefix); `retarget` points a seed at the connection under test
 * (its own nickname and key, its room, its peer) so mutations reach the relay's deeper checks.
 */
import { readFileSync } from 'node:fs';
import { decodeFrame, encodeFrame, frame, type Frame, type Layer } from '../src/codec/index.js';
import { ProtocolError } from '../src/protocol/errors.js';
import { LIMITS } from '../src/protocol/limits.js';

export interface Seed {
  id: string;
  layer: Layer;
  body: Buffer;
}

/** Raw streams from the vectors that are framing cases (zero length, lying prefixes, partial frames). */
export interface RawSeed {
  id: string;
  wire: Buffer;
}

const KEY = Buffer.alloc(294, 0x30); // not a valid key: seeds that keep it test BAD_PUBLIC_KEY paths

function builtins(): Seed[] {
  const frames: Frame[] = [
    frame('HELLO', { version: 2, nick: 'alice', key: KEY }),
    frame('AUTH', { sig: Buffer.alloc(LIMITS.RSA_BYTES, 7) }),
    frame('JOIN', { room: 'lobby' }),
    frame('SEND', { to: 'bob', body: Buffer.from('0123456789abcdef') }),
    frame('LEAVE', {}),
    frame('PING', { n: 1 }),
    frame('PONG', { n: 1 }),
    frame('ERROR', { code: 1, detail: 'x' }),
    frame('CHALLENGE', { version: 2, nonce: Buffer.alloc(32, 1), relay: '127.0.0.1:55555' }),
    frame('WELCOME', { idle_ms: 60000, max_frame: 65536, room_size: 2, rate: 1000 }),
    frame('JOINED', { room: 'lobby', epoch: 2, members: [{ nick: 'bob', key: KEY }] }),
    frame('PEER_JOINED', { nick: 'bob', key: KEY, epoch: 2 }),
    frame('PEER_LEFT', { nick: 'bob', epoch: 3 }),
    frame('DELIVER', { from: 'bob', body: Buffer.from('hi') }),
    frame('LEFT', {}),
    frame('HS_INIT', { version: 2, eph: Buffer.alloc(32, 9), ct: Buffer.alloc(256, 1) }),
    frame('MSG', { seq: 0, ct: Buffer.alloc(272, 2) }),
    frame('TEXT', { ts: 1, text: 'héllo' }),
    frame('ACK', { upto: 0 }),
  ];
  return frames.map((f) => ({ id: `builtin_${f.type.toLowerCase()}`, layer: layerOf(f), body: Buffer.from(encodeFrame(f)) }));
}

function layerOf(f: Frame): Layer {
  if (['HS_INIT', 'HS_RESP', 'HS_FINISH', 'MSG'].includes(f.type)) return 'e2e';
  if (['TEXT', 'ACK'].includes(f.type)) return 'inner';
  return 'relay';
}

/** Loads the seeds: the vectors' valid frames (when the file exists) and the built-ins. */
export function loadSeeds(vectorsFile: string): { seeds: Seed[]; raw: RawSeed[]; fromVectors: number } {
  const seeds = builtins();
  const raw: RawSeed[] = [];
  let fromVectors = 0;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(vectorsFile, 'utf8'));
  } catch {
    return { seeds, raw, fromVectors };
  }
  const cases = (doc as { cases?: unknown }).cases;
  if (!Array.isArray(cases)) return { seeds, raw, fromVectors };
  for (const c of cases as Record<string, unknown>[]) {
    const id = String(c['id']);
    const input = typeof c['input'] === 'string' ? Buffer.from(c['input'], 'hex') : undefined;
    const layer = c['layer'];
    if (input === undefined || (layer !== 'relay' && layer !== 'e2e' && layer !== 'inner')) continue;
    const body = c['framing'] === 'stream' ? input.subarray(LIMITS.LENGTH_PREFIX_BYTES) : input;
    if (c['framing'] === 'stream' && (c['error'] !== undefined || c['incomplete'] !== undefined)) {
      raw.push({ id, wire: input });
      continue;
    }
    try {
      decodeFrame(body, layer);
    } catch (e) {
      if (e instanceof ProtocolError) continue; // an invalid-case vector: its bytes are covered as raw input
      throw e;
    }
    seeds.push({ id, layer, body: Buffer.from(body) });
    fromVectors++;
  }
  return { seeds, raw, fromVectors };
}

/** Who the connection under test is, for `retarget`. */
export interface Target {
  nick: string;
  spki: Uint8Array;
  room: string;
  peer: string;
}

/**
 * A relay seed rewritten for one connection: HELLO carries its own nickname and key, JOIN its room,
 * SEND goes to its peer. e2e and inner seeds become the body of a SEND to the peer, which is how they
 * travel (spec §3). Other seeds are returned unchanged.
 */
export function retarget(seed: Seed, t: Target): Buffer {
  if (seed.layer !== 'relay') return Buffer.from(encodeFrame(frame('SEND', { to: t.peer, body: seed.body })));
  const f = decodeFrame(seed.body, 'relay');
  switch (f.type) {
    case 'HELLO':
      return Buffer.from(encodeFrame({ ...f, nick: t.nick, key: t.spki }));
    case 'JOIN':
      return Buffer.from(encodeFrame({ ...f, room: t.room }));
    case 'SEND':
      return Buffer.from(encodeFrame({ ...f, to: t.peer }));
    default:
      return seed.body;
  }
}
