/**
 * Saved crashers (fuzz/corpus/*.json): each file is one case that once made the relay answer wrongly,
 * hang or crash, minimised, with everything needed to replay it against any relay. `npm test` replays
 * every file (test/fuzz/corpus.test.ts); a file stays after the bug is fixed, as a regression case.
 *
 * Format (JSON, hex for every byte string, like the vectors):
 *   id           file name without .json: "<state>_<first op>_<sha256 prefix of the bytes>"
 *   description  what went wrong when it was found (the harness's failure text)
 *   found        { seed, index, ops }: the run and case that found it (`npm run fuzz -- --seed S`)
 *   state        AWAIT_HELLO | AWAIT_AUTH | READY | IN_ROOM: where the connection stood
 *   target       { nick, peer, room }: the names the bytes refer to
 *   payload      hex: the bytes under test;  sentinel: hex, the PING that ends the case
 *   cuts         offsets into payload || sentinel where one write() ends and the next begins
 *   transport    "tcp" (when absent) or "ws": the WebSocket transport (spec §3.1)
 *   ws           for "ws": { fragSeed, peerWs, tail?: { name, bytes (hex), error?, closeCodes, end? } }
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FUZZ_STATES, type FuzzCase, type FuzzState, type Transport } from './harness.js';
import type { ErrorName } from '../src/protocol/errors.js';
import type { Target } from './seeds.js';
import type { IdentityBook } from './harness.js';

export interface CorpusEntry {
  id: string;
  description: string;
  found: { seed: number; index: number; ops: string[] };
  state: FuzzState;
  target: { nick: string; peer: string; room: string };
  payload: string;
  sentinel: string;
  cuts: number[];
  transport?: Transport;
  ws?: { fragSeed: number; peerWs: boolean; tail?: { name: string; bytes: string; error?: ErrorName; closeCodes: number[]; end?: boolean } };
}

/** Saves a minimised failing case; returns the file path. Same bytes and state, same file. */
export function saveCrasher(dir: string, seed: number, c: FuzzCase, description: string): string {
  const digest = createHash('sha256').update(c.state).update(c.payload).update(JSON.stringify(c.cuts)).update(c.transport === 'ws' ? JSON.stringify(c.ws) : '').digest('hex').slice(0, 12);
  const op = (c.ops[0] ?? 'case').split(':').pop()!.split('+')[0]!.replace(/[^a-z0-9-]/gi, '');
  const id = `${c.state.toLowerCase()}_${op}_${digest}`;
  const entry: CorpusEntry = {
    id,
    description,
    found: { seed, index: c.index, ops: c.ops },
    state: c.state,
    target: { nick: c.target.nick, peer: c.target.peer, room: c.target.room },
    payload: c.payload.toString('hex'),
    sentinel: c.sentinel.toString('hex'),
    cuts: c.cuts,
    ...(c.transport === 'ws' && c.ws !== undefined
      ? {
          transport: 'ws' as const,
          ws: {
            fragSeed: c.ws.fragSeed,
            peerWs: c.ws.peerWs,
            ...(c.ws.tail !== undefined ? { tail: { ...c.ws.tail, bytes: c.ws.tail.bytes.toString('hex') } } : {}),
          },
        }
      : {}),
  };
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${id}.json`);
  writeFileSync(path, JSON.stringify(entry, null, 2) + '\n');
  return path;
}

/** Reads and checks every corpus file; throws on a malformed one (a corpus file is data for strangers). */
export function loadCorpus(dir: string): CorpusEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return names.map((n) => {
    const e = JSON.parse(readFileSync(join(dir, n), 'utf8')) as CorpusEntry;
    const hex = /^([0-9a-f]{2})*$/;
    if (typeof e.id !== 'string' || `${e.id}.json` !== n) throw new Error(`${n}: id does not match the file name`);
    if (!(FUZZ_STATES as readonly string[]).includes(e.state)) throw new Error(`${n}: unknown state ${String(e.state)}`);
    if (!hex.test(e.payload) || !hex.test(e.sentinel) || e.sentinel.length === 0) throw new Error(`${n}: payload and sentinel must be hex`);
    if (!Array.isArray(e.cuts) || !e.cuts.every((x) => Number.isSafeInteger(x) && x > 0)) throw new Error(`${n}: cuts must be positive integers`);
    for (const k of ['nick', 'peer', 'room'] as const) if (typeof e.target?.[k] !== 'string') throw new Error(`${n}: target.${k} missing`);
    if (e.transport !== undefined && e.transport !== 'tcp' && e.transport !== 'ws') throw new Error(`${n}: unknown transport ${String(e.transport)}`);
    if (e.transport === 'ws' && (typeof e.ws?.fragSeed !== 'number' || typeof e.ws.peerWs !== 'boolean')) throw new Error(`${n}: ws.fragSeed and ws.peerWs required`);
    if (e.ws?.tail !== undefined && (!hex.test(e.ws.tail.bytes) || !Array.isArray(e.ws.tail.closeCodes))) throw new Error(`${n}: ws.tail.bytes must be hex, closeCodes a list`);
    return e;
  });
}

/** The case a corpus entry describes, with identities from `book` (the relay binds the nicknames anew). */
export function caseOf(e: CorpusEntry, book: IdentityBook): FuzzCase {
  const target: Target = { ...e.target, spki: book.get(e.target.nick).spki };
  return {
    index: e.found.index,
    state: e.state,
    target,
    payload: Buffer.from(e.payload, 'hex'),
    sentinel: Buffer.from(e.sentinel, 'hex'),
    cuts: e.cuts,
    ops: e.found.ops,
    transport: e.transport ?? 'tcp',
    ...(e.transport === 'ws' && e.ws !== undefined
      ? { ws: { fragSeed: e.ws.fragSeed, peerWs: e.ws.peerWs, ...(e.ws.tail !== undefined ? { tail: { ...e.ws.tail, bytes: Buffer.from(e.ws.tail.bytes, 'hex') } } : {}) } }
      : {}),
  };
}
