/**
 * The fuzz harness: sends mutated and out-of-order frames to a live relay over real connections and
 * checks every answer against the oracle (src/wirekit/relay-model.ts), then, after every batch, that the relay is
 * alive, still serves a fresh legitimate pair, stays under a memory bound and logged no unhandled error.
 *
 * A case is: a connection walked legitimately into one state of spec §7.1 (and, for IN_ROOM, a peer in
 * the same room), then a byte stream (mutants, valid frames out of order, garbage) written in random
 * segments and ended by a PING sentinel, so that every frame has a defined answer and the case ends by
 * itself. Everything follows from (seed, case index): a failing case is replayed and minimised from that.
 */
import { ERROR_CODES } from '../src/protocol/errors.js';
import { LIMITS } from '../src/protocol/limits.js';
import { encodeFrame, frame } from '../src/codec/index.js';
import type { ServerState } from '../src/protocol/relay-machine.js';
import { ConnectionOracle, describe, splitStream, type ConnectionContext, type Expectation } from '../src/wirekit/relay-model.js';
import { garbage, mutate } from './mutate.js';
import { Prng } from './prng.js';
import { retarget, type RawSeed, type Seed, type Target } from './seeds.js';
import { identity, RawConnection, type Identity, type Received, type RelayLink } from '../src/wirekit/relay-conn.js';
import { WsRawConnection } from '../src/wirekit/relay-ws-conn.js';
import { wire } from '../src/wirekit/msgpack.js';
import { closeCodeFor, fragmenter, wsTail, type WsTail } from './ws.js';

export const FUZZ_STATES = ['AWAIT_HELLO', 'AWAIT_AUTH', 'READY', 'IN_ROOM'] as const satisfies readonly ServerState[];
export type FuzzState = (typeof FUZZ_STATES)[number];

/** The transports a case can run over: TCP (§3) and WebSocket (§3.1). */
export const TRANSPORTS = ['tcp', 'ws'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** How a WebSocket case carries its stream, and what it adds at the end (fuzz/ws.ts). */
export interface WsPlan {
  /** Seed of the fragmentation of its binary messages (fragments, pings between them). */
  fragSeed: number;
  /** The peer of an IN_ROOM case joins over WebSocket too (else over TCP: both meet in one room). */
  peerWs: boolean;
  /** A WebSocket-level event after the stream, when the connection is still open. */
  tail?: WsTail;
}

/** One reproducible case: where the connection stands, who it is, and the bytes it sends. */
export interface FuzzCase {
  index: number;
  state: FuzzState;
  target: Target;
  /** The bytes under test. */
  payload: Buffer;
  /** A PING after the payload whose answer (PONG, or UNEXPECTED_FRAME before READY) ends the case. */
  sentinel: Buffer;
  /** Offsets into payload || sentinel where one write() ends and the next begins. */
  cuts: number[];
  ops: string[];
  /** TCP unless the run includes WebSocket (then chosen per case). */
  transport: Transport;
  ws?: WsPlan;
}

/** The write() calls of a case, in order. */
export function segmentsOf(c: FuzzCase): Buffer[] {
  const stream = Buffer.concat([c.payload, c.sentinel]);
  const out: Buffer[] = [];
  let prev = 0;
  for (const cut of c.cuts) {
    if (cut <= prev || cut >= stream.length) continue;
    out.push(stream.subarray(prev, cut));
    prev = cut;
  }
  out.push(stream.subarray(prev));
  return out;
}

export interface CaseResult {
  ok: boolean;
  /** What went wrong, when not ok. */
  failure?: string;
  framesSent: number;
  connections: number;
  /** The WebSocket tail that was sent (the stream left the connection open for it). */
  tail?: string;
}

export interface Endpoint {
  host: string;
  port: number;
  /** The web listener's port, for the WebSocket transport (§3.1). */
  wsPort?: number | undefined;
}

/** Opens a kit connection over `transport` (WebSocket messages fragmented as `fragSeed` says). */
export async function openLink(ep: Endpoint, transport: Transport, fragSeed?: number, localAddress?: string): Promise<RelayLink> {
  if (transport === 'tcp') return RawConnection.open(ep.host, ep.port, localAddress);
  if (ep.wsPort === undefined) throw new Error('a WebSocket case against a relay without a web listener');
  return WsRawConnection.open(ep.host, ep.wsPort, localAddress, fragSeed !== undefined ? { fragmenting: fragmenter(fragSeed) } : {});
}

/** Timing bounds of the harness (liveness deadlines, not speed assertions) and how strict it is. */
export interface Deadlines {
  /** Longest wait for one expected frame from the relay. */
  replyMs: number;
  /**
   * Also accept a framing error answered ahead of the complete frames before it in the same read (the
   * relay's behaviour before FrameReader kept those frames). Spec §3 forbids it; off by default.
   */
  framingMayPreempt?: boolean;
}

/** Identities by nickname, so a replayed case authenticates with the same key (the relay binds nicks). */
export class IdentityBook {
  private readonly ids = new Map<string, Identity>();
  get(nick: string): Identity {
    let id = this.ids.get(nick);
    if (id === undefined) {
      id = identity(nick);
      this.ids.set(nick, id);
    }
    return id;
  }
}

/** Nicknames and room of case `index` of run `seed`: unique per run, valid per spec §6 alphabets. */
export function caseNames(seed: number, index: number): { nick: string; peer: string; room: string } {
  const tag = `${(seed >>> 0).toString(36)}_${index.toString(36)}`;
  return { nick: `f${tag}`, peer: `p${tag}`, room: `r${tag}` };
}

/** 0..7 offsets that split a stream of `length` bytes into write() calls (spec §3: segmentation changes nothing). */
function cutsFor(length: number, r: Prng): number[] {
  if (length < 2 || r.chance(0.4)) return [];
  const cuts = new Set<number>();
  const n = r.int(1, Math.min(7, length - 1));
  for (let i = 0; i < n; i++) cuts.add(r.int(1, length - 1));
  return [...cuts].sort((a, b) => a - b);
}

/**
 * Builds case `index` of the run with `seed`: deterministic in (seed, index, seeds, transports). The
 * WebSocket choices come from a generator of their own, so a TCP-only run makes the same cases as
 * before WebSocket existed.
 */
export function makeCase(seed: number, index: number, seeds: readonly Seed[], raw: readonly RawSeed[], book: IdentityBook, transports: readonly Transport[] = ['tcp']): FuzzCase {
  const r = new Prng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
  const names = caseNames(seed, index);
  const me = book.get(names.nick);
  const target: Target = { nick: names.nick, spki: me.spki, room: names.room, peer: names.peer };
  const state = r.pick(FUZZ_STATES);
  const parts: Buffer[] = [];
  const ops: string[] = [];
  const kind = r.below(10);
  if (kind < 6) {
    // Mutants of valid frames, sometimes with valid frames around them.
    const count = r.int(1, 3);
    for (let i = 0; i < count; i++) {
      const s = r.pick(seeds);
      const body = r.chance(0.7) ? retarget(s, target) : s.body;
      if (r.chance(0.3)) {
        const v = r.pick(seeds);
        parts.push(wire(r.chance(0.7) ? retarget(v, target) : v.body));
        ops.push(`valid:${v.id}`);
      }
      const m = mutate(body, r);
      parts.push(m.wire);
      ops.push(`${s.id}:${m.ops.join('+')}`);
    }
  } else if (kind < 8) {
    // Valid frames in an arbitrary order (spec §7.1: anything not in the table is UNEXPECTED_FRAME).
    const count = r.int(1, 6);
    for (let i = 0; i < count; i++) {
      const v = r.pick(seeds);
      parts.push(wire(retarget(v, target)));
      ops.push(`valid:${v.id}`);
    }
  } else if (kind < 9 && raw.length > 0) {
    const v = r.pick(raw);
    parts.push(v.wire);
    ops.push(`raw:${v.id}`);
  } else {
    // Garbage before, between or after valid frames.
    const v = r.pick(seeds);
    const valid = wire(retarget(v, target));
    const g = garbage(r);
    const where = r.below(3);
    if (where === 0) parts.push(g.wire, valid);
    else if (where === 1) parts.push(valid.subarray(0, r.int(0, valid.length)), g.wire);
    else parts.push(valid, g.wire);
    ops.push(`${g.ops[0]!}-${['before', 'inside', 'after'][where]!}:${v.id}`);
  }
  const payload = Buffer.concat(parts);
  const sentinel = wire(encodeFrame(frame('PING', { n: r.int(0, 1_000_000) })));
  const c: FuzzCase = { index, state, target, payload, sentinel, cuts: cutsFor(payload.length + sentinel.length, r), ops, transport: 'tcp' };
  if (transports.includes('ws')) {
    const w = new Prng(((seed >>> 0) ^ Math.imul(index + 1, 0xcc9e2d51) ^ 0x5bd1e995) >>> 0);
    c.transport = transports.length === 1 ? 'ws' : w.pick(transports);
    if (c.transport === 'ws') {
      c.ws = { fragSeed: w.u32(), peerWs: w.chance(0.5), ...(w.chance(0.35) ? { tail: wsTail(w, LIMITS.MAX_FRAME_BYTES) } : {}) };
      if (c.ws.tail !== undefined && w.chance(0.5)) {
        // Most mutated streams end the connection before the tail: half the tails follow a few PINGs.
        c.payload = Buffer.concat(Array.from({ length: w.int(0, 2) }, () => wire(encodeFrame(frame('PING', { n: w.int(0, 1000) })))));
        c.cuts = [];
        ops.length = 0;
        ops.push('pings');
      }
      if (c.ws.tail !== undefined) ops.push(`ws-tail:${c.ws.tail.name}`);
    }
  }
  return c;
}

/** Walks a connection to `state`; for IN_ROOM the peer joins first, so the connection's JOINED lists it. */
async function prepare(
  ep: Endpoint,
  c: FuzzCase,
  book: IdentityBook,
  registry: Map<string, Buffer>,
  d: Deadlines,
): Promise<{ conn: RelayLink; peer?: RelayLink; ctx: ConnectionContext; frames: number }> {
  const me = book.get(c.target.nick);
  // §3: before WELCOME the relay reads nothing larger than the largest HELLO.
  const ctx: ConnectionContext = { state: 'AWAIT_HELLO', maxFrame: LIMITS.MAX_PRELOGIN_FRAME_BYTES, peers: new Set(), registry };
  let peer: RelayLink | undefined;
  let frames = 0;
  if (c.state === 'IN_ROOM') {
    peer = await openLink(ep, c.ws?.peerWs === true ? 'ws' : 'tcp');
    const pid = book.get(c.target.peer);
    await peer.authenticate(pid, d.replyMs);
    registry.set(pid.nick, Buffer.from(pid.spki));
    await peer.join(c.target.room, d.replyMs);
    frames += 3;
  }
  const conn = await openLink(ep, c.transport, c.ws?.fragSeed);
  ctx.nick = me.nick;
  ctx.spki = me.spki;
  if (c.state === 'AWAIT_AUTH') {
    conn.send(frame('HELLO', { version: 2, nick: me.nick, key: me.spki }));
    ctx.nonce = (await conn.expect('CHALLENGE', d.replyMs)).nonce;
    ctx.state = 'AWAIT_AUTH';
    frames += 1;
  } else if (c.state === 'READY' || c.state === 'IN_ROOM') {
    const { nonce, welcome } = await conn.authenticate(me, d.replyMs);
    registry.set(me.nick, Buffer.from(me.spki));
    ctx.nonce = nonce;
    ctx.maxFrame = welcome.max_frame;
    ctx.state = 'READY';
    frames += 2;
    if (c.state === 'IN_ROOM') {
      const joined = await conn.join(c.target.room, d.replyMs);
      ctx.state = 'IN_ROOM';
      ctx.room = joined.room;
      ctx.peers = new Set(joined.members.map((m) => m.nick));
      frames += 1;
    }
  }
  return { conn, ...(peer !== undefined ? { peer } : {}), ctx, frames };
}

/** The next frame that is not a room event (PEER_JOINED/PEER_LEFT may interleave while in a room). */
async function nextAnswer(conn: RelayLink, d: Deadlines): Promise<Received> {
  for (let i = 0; i < 1000; i++) {
    const f = await conn.next(d.replyMs);
    if (f.type !== 'PEER_JOINED' && f.type !== 'PEER_LEFT') return f;
  }
  throw new Error('more than 1000 room events in a row');
}

/** Runs one case against the relay at `ep` and checks every answer. Never throws. */
export async function runCase(ep: Endpoint, c: FuzzCase, book: IdentityBook, registry: Map<string, Buffer>, d: Deadlines): Promise<CaseResult> {
  let conn: RelayLink | undefined;
  let peer: RelayLink | undefined;
  let framesSent = 0;
  let connections = 0;
  const fail = (failure: string): CaseResult => ({ ok: false, failure, framesSent, connections });
  try {
    const p = await prepare(ep, c, book, registry, d);
    conn = p.conn;
    peer = p.peer;
    connections = peer ? 2 : 1;
    framesSent += p.frames;
    const oracle = new ConnectionOracle(p.ctx);
    // Before READY the sentinel PING would close the connection (UNEXPECTED_FRAME) before a WebSocket
    // tail: there the tail ends the case instead.
    const tailEnds = c.ws?.tail !== undefined && (c.state === 'AWAIT_HELLO' || c.state === 'AWAIT_AUTH');
    const segments = tailEnds ? [c.payload] : segmentsOf(c);
    for (const s of segments) conn.write(s);
    const items = splitStream(Buffer.concat(segments), p.ctx.maxFrame);
    framesSent += items.filter((i) => i.kind === 'frame').length;
    const deliveries: Buffer[] = [];
    let joins = 0;
    // Only with framingMayPreempt (an old relay's behaviour, kept for comparison) may a framing error be
    // answered ahead of the frames before it; spec §3 forbids it.
    const framing = items.find((i) => i.kind === 'framing-error');
    const framingCode = framing?.kind === 'framing-error' ? ERROR_CODES[framing.code].code : undefined;
    const mayPreempt = d.framingMayPreempt === true && framingCode !== undefined;
    const ws = conn instanceof WsRawConnection ? conn : undefined;
    /** False once the connection ended in the stream (the WebSocket tail then has nothing to follow). */
    let open = true;
    for (const item of items) {
      const exp: Expectation = oracle.expect(item);
      if (exp.kind === 'deliver') {
        deliveries.push(exp.body);
        continue;
      }
      open = false;
      if (exp.kind === 'partial') {
        conn.endStream();
        const got = await nextAnswer(conn, d);
        if (got.type !== 'closed') return fail(`after an unfinished frame: expected a silent close, got ${got.type}`);
        break;
      }
      if (exp.kind === 'close') {
        const got = await nextAnswer(conn, d);
        if (got.type === 'closed') break;
        if (mayPreempt && got.type === 'ERROR' && got.code === framingCode && (await nextAnswer(conn, d)).type === 'closed') break;
        return fail(`after the client's ERROR: expected a silent close, got ${got.type}${got.type === 'ERROR' ? ' ' + got.code : ''}`);
      }
      if (ws !== undefined && item.kind === 'framing-error' && item.code === 'FRAME_TOO_LARGE' && ws.bareHeaders.length > 0) {
        // §3.1: a message over max_frame is refused on its header with close code 1009 and no ERROR.
        const got = await nextAnswer(conn, d);
        if (got.type !== 'closed') return fail(`after a WebSocket header declaring ${ws.bareHeaders[0]} bytes: expected close code 1009, got ${got.type}${got.type === 'ERROR' ? ' ' + got.code : ''}`);
        if (ws.closeCode !== 1009) return fail(`after a WebSocket header declaring ${ws.bareHeaders[0]} bytes: close code ${String(ws.closeCode)}, expected 1009`);
        break;
      }
      const got = await nextAnswer(conn, d);
      const mismatch = oracle.observe(exp, got.type === 'closed' ? undefined : got);
      if (mismatch !== undefined) {
        // The framing error further on may have pre-empted this frame (see Deadlines.framingMayPreempt).
        if (mayPreempt && got.type === 'ERROR' && got.code === framingCode) {
          const after = await nextAnswer(conn, d);
          if (after.type !== 'closed') return fail(`after a pre-empting framing error: relay sent ${after.type} instead of closing`);
          break;
        }
        return fail(mismatch);
      }
      if (exp.kind === 'join' && got.type === 'JOINED') joins++;
      if (oracle.ctx.state === 'CLOSED') {
        // §3: after a closing ERROR the relay closes and sends nothing more.
        const after = await nextAnswer(conn, d);
        if (after.type !== 'closed') return fail(`after ${describe(exp)}: relay sent ${after.type} instead of closing`);
        // §3.1: and over WebSocket its close frame carries 4000 + the code.
        if (ws !== undefined && got.type === 'ERROR' && ws.closeCode !== 4000 + got.code) return fail(`after ERROR ${got.code} over WebSocket: close code ${String(ws.closeCode)}, expected ${4000 + got.code}`);
        break;
      }
      open = true;
    }
    const tail = c.ws?.tail;
    let tailSent: string | undefined;
    if (open && ws !== undefined && tail !== undefined) {
      tailSent = tail.name;
      ws.raw(tail.bytes);
      if (tail.end === true) ws.endStream();
      const got = await nextAnswer(conn, d);
      if (tail.error !== undefined) {
        if (!(got.type === 'ERROR' && got.code === ERROR_CODES[tail.error].code)) return fail(`after WebSocket ${tail.name}: expected ERROR ${tail.error}, got ${got.type}${got.type === 'ERROR' ? ' ' + got.code : ''}`);
        const after = await nextAnswer(conn, d);
        if (after.type !== 'closed') return fail(`after WebSocket ${tail.name} and its ERROR: relay sent ${after.type} instead of closing`);
        if (ws.closeCode !== closeCodeFor(tail.error)) return fail(`after WebSocket ${tail.name}: close code ${String(ws.closeCode)}, expected ${closeCodeFor(tail.error)}`);
      } else {
        if (got.type !== 'closed') return fail(`after WebSocket ${tail.name}: expected the connection closed, got ${got.type}${got.type === 'ERROR' ? ' ' + got.code : ''}`);
        if (tail.closeCodes.length > 0 && !tail.closeCodes.includes(ws.closeCode ?? -1)) return fail(`after WebSocket ${tail.name}: close code ${String(ws.closeCode)}, expected ${tail.closeCodes.join(' or ')}`);
      }
    }
    // Without a close, the last item answered was the sentinel PING: every frame got its answer.
    if (conn.violations.length > 0) return fail(conn.violations.join('; '));
    if (peer !== undefined) {
      // Exactly the accepted SENDs reach the peer, in order, from the relay-stamped nick, then PEER_LEFT.
      conn.close();
      const got: Buffer[] = [];
      for (let i = 0; i < 10_000; i++) {
        const f = await peer.next(d.replyMs);
        if (f.type === 'DELIVER') {
          if (f.from !== c.target.nick) return fail(`peer got DELIVER from ${f.from}, expected ${c.target.nick}`);
          got.push(Buffer.from(f.body));
          continue;
        }
        if (f.type === 'PEER_LEFT' && f.nick === c.target.nick) break;
        if (f.type === 'PEER_JOINED' && f.nick === c.target.nick) continue;
        return fail(`peer got ${f.type}${f.type === 'ERROR' ? ' ' + f.code : ''} while waiting for DELIVERs`);
      }
      if (joins === 0) {
        // Pre-empted, the SENDs of the dropped read never count: the peer gets a prefix of them.
        const fewer = mayPreempt && got.length < deliveries.length;
        if (got.length !== deliveries.length && !fewer) return fail(`peer got ${got.length} DELIVERs, relay accepted ${deliveries.length} SENDs`);
        for (let i = 0; i < got.length; i++) if (!got[i]!.equals(deliveries[i]!)) return fail(`DELIVER ${i} body differs from the SEND body`);
      }
      if (peer.violations.length > 0) return fail(peer.violations.join('; '));
    }
    return { ok: true, framesSent, connections, ...(tailSent !== undefined ? { tail: tailSent } : {}) };
  } catch (e) {
    return fail(`harness: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    conn?.close();
    peer?.close();
  }
}

/** A fresh legitimate pair: both authenticate and join a new room, A's SEND reaches B intact. */
export async function legitimatePair(
  ep: Endpoint,
  book: IdentityBook,
  tag: string,
  d: Deadlines,
  localAddress?: string,
  transports: readonly [Transport, Transport] = ['tcp', 'tcp'],
): Promise<string | undefined> {
  let a: RelayLink | undefined;
  let b: RelayLink | undefined;
  try {
    a = await openLink(ep, transports[0], undefined, localAddress);
    b = await openLink(ep, transports[1], undefined, localAddress);
    const ia = book.get(`la${tag}`);
    const ib = book.get(`lb${tag}`);
    await Promise.all([a.authenticate(ia, d.replyMs), b.authenticate(ib, d.replyMs)]);
    await a.join(`lr${tag}`, d.replyMs);
    const joined = await b.join(`lr${tag}`, d.replyMs);
    if (!joined.members.some((m) => m.nick === ia.nick)) return 'JOINED does not list the member already present';
    const body = Buffer.from(`legit ${tag}`);
    a.send(frame('SEND', { to: ib.nick, body }));
    const got = await b.expect('DELIVER', d.replyMs);
    if (got.from !== ia.nick || !Buffer.from(got.body).equals(body)) return 'DELIVER differs from the SEND';
    return undefined;
  } catch (e) {
    return `legitimate pair failed: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    a?.close();
    b?.close();
  }
}

/**
 * A frame flood on one READY connection: `count` PINGs in one write. Every answer is the matching PONG
 * in order, until possibly ERROR RATE_LIMITED and a close (spec §7.1 "Resource limits").
 */
export async function frameFlood(ep: Endpoint, book: IdentityBook, nick: string, count: number, d: Deadlines): Promise<{ failure?: string; frames: number }> {
  const conn = await RawConnection.open(ep.host, ep.port);
  try {
    await conn.authenticate(book.get(nick), d.replyMs);
    const one = (n: number): Buffer => wire(encodeFrame(frame('PING', { n })));
    conn.write(Buffer.concat(Array.from({ length: count }, (_, i) => one(i))));
    for (let i = 0; i < count; i++) {
      const f = await conn.next(d.replyMs);
      if (f.type === 'PONG' && f.n === i) continue;
      if (f.type === 'ERROR' && f.code === ERROR_CODES.RATE_LIMITED.code) {
        const after = await conn.next(d.replyMs);
        return after.type === 'closed' ? { frames: count + 2 } : { failure: `after RATE_LIMITED the relay sent ${after.type}`, frames: count + 2 };
      }
      return { failure: `flood: answer ${i} is ${f.type}${f.type === 'ERROR' ? ' ' + f.code : ''}${f.type === 'PONG' ? ' n=' + f.n : ''}`, frames: count + 2 };
    }
    return { frames: count + 2 };
  } catch (e) {
    return { failure: `flood: ${e instanceof Error ? e.message : String(e)}`, frames: count + 2 };
  } finally {
    conn.close();
  }
}

