/**
 * A load-generator worker process (forked by bench/run.ts through bench/proc.ts). It holds client
 * connections and runs one benchmark phase per request over the IPC channel, so the relay never shares a
 * thread with the clients that drive it. Every phase reports counts and elapsed times measured here with
 * the monotonic clock; the orchestrator adds workers up and divides by floors.
 *
 * Raw phases (`setup`, `flow`, `pingpong`) use bench/client.ts against either relay. End-to-end phases
 * (`e2e-*`, `churn`) use the client library (src/client ChatClient, without its terminal); `handshake`
 * drives two PeerSessions (src/handshake/session.ts) over raw connections so that establishment alone is
 * timed, next to the RSA operations it needs.
 */
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { hrtime } from 'node:process';
import { decodeFrame, encodeWire, frame } from '../src/codec/index.js';
import { oaepDecrypt, oaepEncrypt, pssSign, pssVerify } from '../src/crypto/rsa.js';
import { PeerSession, type SessionEvent } from '../src/handshake/session.js';
import type { RsaPrivateKey, RsaPublicKey } from '../src/crypto/backend.js';
import { nodeBackend, nodePrivateKey, nodePublicKey } from '../src/crypto/node.js';
import { ChatClient } from '../src/client/chat-client.js';
import { nodeClient } from '../src/client/node-client.js';
import { Reservoir, checkReceived } from './harness.js';
import { establishedPair, measureFloor, type FloorResult } from './crypto-floor.js';
import { RawConn, bounded, type Identity, type RelayAddr } from './client.js';
import type { WorkerReply, WorkerRequest } from './proc.js';

/** One client connection of a room: it sends to `peer`. Role `a` sends/pings, role `b` receives/echoes. */
export interface SideSpec {
  readonly nick: string;
  readonly room: string;
  readonly peer: string;
  readonly key: number;
  readonly role: 'a' | 'b';
  /** The room's number: a phase with `busy: n` drives only rooms 0..n-1 (the rest stay connected, idle). */
  readonly index: number;
}

/**
 * Which connections a raw phase drives: those to relay `kind` in rooms numbered below `busy`, and when
 * `tag` is given only those of rooms named `<tag>-<i>` (the cluster benchmark holds several sets of
 * rooms on relays of one kind at once).
 */
export interface Selection {
  readonly kind: 'server' | 'pipe';
  readonly busy: number;
  readonly tag?: string;
}

function selected(sel: Selection): { spec: SideSpec; conn: RawConn }[] {
  const prefix = sel.tag === undefined ? undefined : `${sel.tag}-`;
  return conns.filter((c) => c.conn.addr.kind === sel.kind && c.spec.index < sel.busy && (prefix === undefined || c.spec.room.startsWith(prefix)));
}

export interface FlowResult {
  frames: number;
  seconds: number;
  /** Connections that received nothing in the window though they did in the phase (see checkReceived). */
  starved: number;
  /** Messages over the whole call, warm-up and drain included (end-to-end flow only). */
  total?: number;
  /** End-to-end flow only: frames both clients wrote to the relay, and MSGs they sealed, in the window. */
  sent?: number;
  sealed?: number;
}
export interface RttResult {
  values: number[];
  seen: number;
  seconds: number;
  starved: number;
}
export interface HandshakeResult {
  /** Milliseconds from the initiator's start() to both sides ESTABLISHED, one per iteration. */
  handshakeMs: number[];
  /** Milliseconds of the eight RSA operations a handshake needs, run alone, one per iteration. */
  rsaMs: number[];
}
export interface ChurnResult {
  /** Sessions established in the measuring window, and the window in seconds. */
  handshakes: number;
  seconds: number;
  /** Sessions established over the whole call (warm-up and wind-down included). */
  total: number;
  failures: string[];
}

const now = (): number => Number(hrtime.bigint()) / 1e6; // milliseconds, monotonic
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let keys: Identity[] = [];
let conns: { spec: SideSpec; conn: RawConn }[] = [];
let chats: { spec: SideSpec; client: ChatClient }[] = [];
let floorPair: Awaited<ReturnType<typeof establishedPair>> | null = null;
/** 256 bytes of opaque body, the relay frame payload of every raw benchmark (spec §6 SEND.body). */
const BODY = randomBytes(256);
/** The text of every end-to-end message: 200 ASCII bytes, so a TEXT pads into the 256-byte bucket. */
const TEXT = 'x'.repeat(200);

function keyOf(i: number): Identity {
  const k = keys[i % keys.length];
  if (k === undefined) throw new Error('no keys: init first');
  return k;
}

/**
 * `count` SEND frames to `to`, concatenated (one write per window refill). Each body is BODY with the
 * phase's epoch in its last 8..4 bytes (the last 4 carry a ping number), so a frame still in flight from
 * an earlier phase is recognised and ignored instead of being counted, echoed or credited.
 */
function sendFrames(to: string, epoch: number, count: number): Buffer {
  const body = Buffer.from(BODY);
  body.writeUInt32BE(epoch >>> 0, body.length - 8);
  const one = encodeWire(frame('SEND', { to, body }));
  return Buffer.concat(Array.from({ length: count }, () => one));
}

/** The epoch of a received SEND/DELIVER: the body is the frame's last field (see sendFrames). */
const epochOf = (f: Buffer): number => f.readUInt32BE(f.length - 8);

/**
 * A phase armed on every connection of this worker (handlers installed, nothing sent), waiting for `go`.
 * The orchestrator arms every worker before it lets any start: a room's two sides live in different
 * workers, and a side that started writing before its peer's worker had installed the handler lost its
 * first window (a receiver without a handler drops frames), so the credit never came back and the
 * stream stood still: a repetition of 0 frames/s (issue 16), or a fraction of the window when only part
 * of it was lost. The same race lost a ping-pong's first ping.
 */
let armed: { phase: string; run: () => Promise<unknown> } | null = null;

const sum = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0);

/** The phases `arm` can install: each returns the function `go` runs. */
const phases: Record<string, (args: never) => () => Promise<unknown>> = {
  /**
   * One-way streams: each `a` side keeps at most `window` frames in flight to its `b`, which answers every
   * `ackEvery` frames with one frame back (the credit). Counts frames received (both kinds) in the window;
   * every active connection must receive some.
   */
  flow(args: Selection & { epoch: number; warmupMs: number; durationMs: number; window: number; ackEvery: number }) {
    let running = true;
    const active = selected(args);
    const got = active.map(() => 0);
    const starts: (() => void)[] = [];
    active.forEach(({ spec, conn }, k) => {
      if (spec.role === 'a') {
        const refill = sendFrames(spec.peer, args.epoch, args.ackEvery);
        conn.onBody = (f) => {
          if (epochOf(f) !== args.epoch) return;
          got[k]!++;
          if (running) conn.write(refill);
        };
        starts.push(() => {
          for (let i = 0; i < args.window / args.ackEvery; i++) conn.write(refill);
        });
      } else {
        const ack = sendFrames(spec.peer, args.epoch, 1);
        let n = 0;
        conn.onBody = (f) => {
          if (epochOf(f) !== args.epoch) return;
          got[k]!++;
          if (++n === args.ackEvery) {
            n = 0;
            conn.write(ack);
          }
        };
      }
    });
    return async () => {
      for (const start of starts) start();
      await sleep(args.warmupMs);
      const g0 = [...got];
      const t0 = now();
      await sleep(args.durationMs);
      const g1 = [...got];
      const t1 = now();
      running = false;
      await quiet(() => sum(got), () => got.every((n) => n > 0));
      for (const { conn } of active) conn.onBody = null;
      failIfAny();
      const { starved } = checkReceived('flow', active.map((c) => c.spec), g1.map((g, k) => g - g0[k]!), got, args.durationMs);
      return { frames: sum(g1) - sum(g0), seconds: (t1 - t0) / 1000, starved } satisfies FlowResult;
    };
  },

  /** Closed-loop ping-pong: each `a` sends one frame, its `b` echoes it, `a` times the round trip. */
  pingpong(args: Selection & { epoch: number; warmupMs: number; durationMs: number; sample: number }) {
    const res = new Reservoir(args.sample);
    let measuring = false;
    let running = true;
    const active = selected(args);
    const got = active.map(() => 0);
    const trips = active.map(() => 0);
    const starts: (() => void)[] = [];
    // The last 4 bytes of a frame are the last 4 of its body: `a` numbers its pings there and `b` echoes
    // the number, so only the answer to the ping in flight is timed.
    active.forEach(({ spec, conn }, k) => {
      // One ping is in flight per room, so the previous write has left before the buffer is reused.
      const one = sendFrames(spec.peer, args.epoch, 1);
      if (spec.role === 'a') {
        let sentAt = 0;
        let seq = 0;
        const ping = () => {
          one.writeUInt32BE(++seq, one.length - 4);
          sentAt = now();
          conn.write(one);
        };
        conn.onBody = (f) => {
          if (epochOf(f) !== args.epoch || f.readUInt32BE(f.length - 4) !== seq) return;
          trips[k]!++;
          if (measuring) {
            res.add((now() - sentAt) * 1000);
            got[k]!++;
          }
          if (running) ping();
        };
        starts.push(ping);
      } else {
        conn.onBody = (f) => {
          if (epochOf(f) !== args.epoch) return;
          f.copy(one, one.length - 4, f.length - 4);
          conn.write(one);
        };
      }
    });
    return async () => {
      for (const start of starts) start();
      await sleep(args.warmupMs);
      measuring = true;
      const t0 = now();
      await sleep(args.durationMs);
      measuring = false;
      running = false;
      const t1 = now();
      // The last ping of each room is still in flight; wait for the sockets to drain, then stop listening.
      await quiet(() => sum(trips), () => active.every((c, k) => c.spec.role !== 'a' || trips[k]! > 0));
      for (const { conn } of active) conn.onBody = null;
      failIfAny();
      const pingers = active.flatMap((c, k) => (c.spec.role === 'a' ? [k] : []));
      const { starved } = checkReceived('pingpong', pingers.map((k) => active[k]!.spec), pingers.map((k) => got[k]!), pingers.map((k) => trips[k]!), args.durationMs);
      return { values: res.values, seen: res.seen, seconds: (t1 - t0) / 1000, starved } satisfies RttResult;
    };
  },

  /**
   * Sealed, relayed and opened TEXTs one way in rooms 0..busy-1: each `a` keeps `window` unacknowledged
   * texts in flight. Counts texts opened in the window (and over the whole call, for CPU per message).
   */
  'e2e-flow'(args: { busy: number; warmupMs: number; durationMs: number; window: number }) {
    let running = true;
    const active = chats.filter((c) => c.spec.index < args.busy);
    const got = active.map(() => 0);
    const starts: (() => void)[] = [];
    active.forEach(({ spec, client }, k) => {
      client.removeAllListeners('text').removeAllListeners('delivered');
      if (spec.role === 'a') {
        client.on('delivered', () => {
          if (running) client.send(TEXT);
        });
        starts.push(() => {
          for (let i = 0; i < args.window; i++) client.send(TEXT);
        });
      } else {
        client.on('text', () => void got[k]!++);
      }
    });
    // Frames to the relay and MSG seals of every active client, both directions (TEXTs and their ACKs).
    const counts = () => active.reduce((acc, c) => {
      const w = c.client.wireCounts();
      return { sent: acc.sent + w.framesSent, sealed: acc.sealed + w.msgsSealed };
    }, { sent: 0, sealed: 0 });
    return async () => {
      for (const start of starts) start();
      await sleep(args.warmupMs);
      const g0 = [...got];
      const w0 = counts();
      const t0 = now();
      await sleep(args.durationMs);
      const g1 = [...got];
      const w1 = counts();
      const t1 = now();
      running = false;
      await quiet(() => sum(got), () => active.every((c, k) => c.spec.role !== 'b' || got[k]! > 0));
      failIfAnyChat();
      const receivers = active.flatMap((c, k) => (c.spec.role === 'b' ? [k] : []));
      const { starved } = checkReceived('e2e-flow', receivers.map((k) => active[k]!.spec), receivers.map((k) => g1[k]! - g0[k]!), receivers.map((k) => got[k]!), args.durationMs);
      return { frames: sum(g1) - sum(g0), seconds: (t1 - t0) / 1000, total: sum(got), starved, sent: w1.sent - w0.sent, sealed: w1.sealed - w0.sealed } satisfies FlowResult;
    };
  },

  /**
   * Encrypted ping-pong: `a` sends a TEXT, `b` answers with a TEXT on opening it, `a` times it. Each reply
   * is sent from a microtask, after the 'text' listener returns: ChatClient writes the ACK of the text
   * being handled only after its listeners ran, so a send() from inside the listener would seal the
   * reply with the next number yet put it on the wire before that ACK, and the peer refuses it as
   * OUT_OF_ORDER (found by this benchmark; reported to the client's owner).
   */
  'e2e-pingpong'(args: { warmupMs: number; durationMs: number; sample: number }) {
    const res = new Reservoir(args.sample);
    let measuring = false;
    let running = true;
    const active = chats.filter((c) => c.spec.index < 1);
    const got = active.map(() => 0);
    const trips = active.map(() => 0);
    const starts: (() => void)[] = [];
    active.forEach(({ spec, client }, k) => {
      client.removeAllListeners('text').removeAllListeners('delivered');
      if (spec.role === 'a') {
        // Pings are numbered in their text and echoed, so a late text from an earlier phase is not timed.
        let sentAt = 0;
        let seq = 0;
        const ping = () => {
          sentAt = now();
          client.send(`${++seq} ${TEXT}`);
        };
        client.on('text', (m) => {
          if (!m.text.startsWith(`${seq} `)) return;
          trips[k]!++;
          if (measuring) {
            res.add((now() - sentAt) * 1000);
            got[k]!++;
          }
          if (running) queueMicrotask(ping);
        });
        starts.push(ping);
      } else {
        client.on('text', (m) => queueMicrotask(() => void client.send(m.text)));
      }
    });
    return async () => {
      for (const start of starts) start();
      await sleep(args.warmupMs);
      measuring = true;
      const t0 = now();
      await sleep(args.durationMs);
      measuring = false;
      running = false;
      const t1 = now();
      await quiet(() => sum(trips), () => active.every((c, k) => c.spec.role !== 'a' || trips[k]! > 0));
      failIfAnyChat();
      const pingers = active.flatMap((c, k) => (c.spec.role === 'a' ? [k] : []));
      const { starved } = checkReceived('e2e-pingpong', pingers.map((k) => active[k]!.spec), pingers.map((k) => got[k]!), pingers.map((k) => trips[k]!), args.durationMs);
      return { values: res.values, seen: res.seen, seconds: (t1 - t0) / 1000, starved } satisfies RttResult;
    };
  },
};

const ops: Record<string, (args: never) => Promise<unknown>> = {
  /** Installs phase `phase` (one of `phases`) on this worker's connections; `go` then runs it. */
  async arm(args: { phase: string; args: unknown }) {
    const make = phases[args.phase];
    if (make === undefined) throw new Error(`unknown phase ${args.phase}`);
    if (armed !== null) throw new Error(`phase ${armed.phase} is still armed`);
    armed = { phase: args.phase, run: make(args.args as never) };
    return args.phase;
  },

  /** Forgets an armed phase (another worker failed to arm, so `go` will not come). */
  async disarm() {
    armed = null;
    return true;
  },

  /** Runs the armed phase and answers with its result. */
  async go() {
    const a = armed;
    armed = null;
    if (a === null) throw new Error('go without an armed phase');
    return a.run();
  },

  /** Identity keys, PKCS#8 and SPKI DER as base64 (throwaway keys made for this run, never stored). */
  async init(args: { keys: { pkcs8: string; spki: string }[] }) {
    keys = args.keys.map((k) => ({
      privateKey: createPrivateKey({ key: Buffer.from(k.pkcs8, 'base64'), format: 'der', type: 'pkcs8' }),
      spki: new Uint8Array(Buffer.from(k.spki, 'base64')),
    }));
    return keys.length;
  },

  /** Connects every side and resolves once each knows its peer. At most `limit` connecting at once. */
  async setup(args: { relay: RelayAddr; sides: SideSpec[]; limit: number }) {
    const opened = await bounded(args.sides.length, args.limit, async (i) => {
      const spec = args.sides[i]!;
      const conn = new RawConn(args.relay, spec.nick, spec.room, keyOf(spec.key));
      conns.push({ spec, conn });
      await conn.joined;
      return conn;
    });
    await Promise.all(opened.map((c) => c.ready));
    return opened.length;
  },

  /** Closes the raw connections to relay `kind` (of rooms `<tag>-<i>` when `tag` is given), or all of them. */
  async close(args: { kind?: 'server' | 'pipe'; tag?: string }) {
    const all = conns.filter((c) => (args.kind === undefined || c.conn.addr.kind === args.kind) && (args.tag === undefined || c.spec.room.startsWith(`${args.tag}-`)));
    conns = conns.filter((c) => !all.includes(c));
    for (const { conn } of all) conn.close();
    await Promise.all(all.map(({ conn }) => conn.gone));
    return all.length;
  },

  /**
   * Handshake cost: sides `a` (responder, joined first) and `b` (initiator) of one room, both in this
   * worker. Each iteration times (1) a fresh PeerSession pair establishing through the relay, from the
   * initiator's start() to both ESTABLISHED, and (2) the RSA operations of one handshake run alone with
   * the same keys: two OAEP encryptions, two OAEP decryptions, two PSS signatures, two PSS verifications.
   */
  async handshake(args: { iterations: number; room: string }) {
    const a = conns.find((c) => c.spec.role === 'a' && c.spec.room === args.room);
    const b = conns.find((c) => c.spec.role === 'b' && c.spec.room === args.room);
    if (a === undefined || b === undefined) throw new Error(`room ${args.room} is not set up in this worker`);
    const ida = keyOf(a.spec.key);
    const idb = keyOf(b.spec.key);
    const pubA = createPublicKey({ key: Buffer.from(ida.spki), format: 'der', type: 'spki' });
    const pubB = createPublicKey({ key: Buffer.from(idb.spki), format: 'der', type: 'spki' });
    // Each side's own key and the other's identity key, imported once (as a client does when a member
    // joins); each iteration then times a fresh session pair from start() to both ESTABLISHED.
    const keys = {
      a: { self: nodePrivateKey(ida.privateKey), peer: nodePublicKey(idb.spki) },
      b: { self: nodePrivateKey(idb.privateKey), peer: nodePublicKey(ida.spki) },
    };
    const out: HandshakeResult = { handshakeMs: [], rsaMs: [] };
    for (let i = 0; i < args.iterations; i++) {
      out.rsaMs.push(rsaAlone(ida.privateKey, pubA, idb.privateKey, pubB));
      out.handshakeMs.push(await oneHandshake(args.room, a, b, keys));
    }
    failIfAny();
    return out;
  },

  /** End-to-end setup with the client library: each side connects, joins, and both reach ESTABLISHED. */
  async 'e2e-setup'(args: { relay: RelayAddr; sides: SideSpec[]; limit: number }) {
    const made = await bounded(args.sides.length, args.limit, async (i) => {
      const spec = args.sides[i]!;
      const client = newChat(args.relay, spec);
      chats.push({ spec, client });
      const established = new Promise<void>((resolve, reject) => {
        client.once('established', () => resolve());
        client.once('closed', (c) => reject(new Error(`${spec.nick}: ${c.failure?.message ?? 'closed'}`)));
      });
      established.catch(() => {});
      await client.connect();
      await client.join(spec.room);
      return established;
    });
    await Promise.all(made);
    return made.length;
  },

  /**
   * e2e_crypto_floor: the per-message work of one direction (with its ACK) by a PeerSession pair in this
   * process alone, no sockets (bench/crypto-floor.ts). The pair is made once and reused.
   */
  async 'crypto-floor'(args: { warmupMs: number; durationMs: number }) {
    floorPair ??= await establishedPair('floor', { nick: 'floora', ...keyOf(0) }, { nick: 'floorb', ...keyOf(1) });
    return (await measureFloor(floorPair, TEXT, args.warmupMs, args.durationMs)) satisfies FloorResult;
  },

  async 'e2e-close'() {
    const all = chats;
    chats = [];
    for (const { client } of all) client.close();
    return all.length;
  },

  /**
   * Session churn with the client library: `pairs` pairs in parallel, each repeatedly connecting both
   * clients, authenticating, joining, establishing the end-to-end session and leaving. Counts sessions
   * established (both sides) in the window.
   */
  async churn(args: { relay: RelayAddr; pairs: { a: SideSpec; b: SideSpec }[]; warmupMs: number; durationMs: number }) {
    let done = 0;
    let running = true;
    const failures: string[] = [];
    const loop = async (p: { a: SideSpec; b: SideSpec }) => {
      while (running) {
        const ca = newChat(args.relay, p.a);
        const cb = newChat(args.relay, p.b);
        try {
          const both = Promise.all([ca, cb].map((c) => new Promise<void>((res, rej) => {
            c.once('established', () => res());
            c.once('closed', (x) => rej(new Error(x.failure?.message ?? 'closed')));
          })));
          both.catch(() => {});
          await ca.connect();
          await ca.join(p.a.room);
          await cb.connect();
          await cb.join(p.b.room);
          await both;
          done++;
          await cb.leave();
          await ca.leave();
        } catch (e) {
          if (failures.length < 10) failures.push((e as Error).message);
          ca.close();
          cb.close();
          if (failures.length >= 10) return;
        }
      }
    };
    const loops = args.pairs.map(loop);
    await sleep(args.warmupMs);
    const d0 = done;
    const t0 = now();
    await sleep(args.durationMs);
    const d1 = done;
    const t1 = now();
    running = false;
    await Promise.all(loops);
    return { handshakes: d1 - d0, seconds: (t1 - t0) / 1000, total: done, failures } satisfies ChurnResult;
  },
};

function newChat(addr: RelayAddr, spec: SideSpec): ChatClient {
  const client = nodeClient({ host: addr.host, port: addr.port, nick: spec.nick, identity: keyOf(spec.key) });
  return client;
}

/** The RSA work of one handshake (spec §8.2), alone: milliseconds. Results are checked so none is skipped. */
function rsaAlone(privA: KeyObject, pubA: KeyObject, privB: KeyObject, pubB: KeyObject): number {
  const sI = randomBytes(32);
  const sR = randomBytes(32);
  const th = randomBytes(32);
  const t0 = now();
  const ctI = oaepEncrypt(pubA, sI); // initiator b -> responder a
  const dI = oaepDecrypt(privA, ctI);
  const ctR = oaepEncrypt(pubB, sR);
  const sigR = pssSign(privA, th);
  const dR = oaepDecrypt(privB, ctR);
  const okR = pssVerify(pubA, th, sigR);
  const sigI = pssSign(privB, th);
  const okI = pssVerify(pubB, th, sigI);
  const t1 = now();
  if (!okR || !okI || !Buffer.from(dI).equals(sI) || !Buffer.from(dR).equals(sR)) throw new Error('RSA floor: an operation failed');
  return t1 - t0;
}

/** One session establishment between a (responder) and b (initiator) through the relay: milliseconds. */
type SideKeys = { self: RsaPrivateKey; peer: RsaPublicKey };

function oneHandshake(
  room: string,
  a: { spec: SideSpec; conn: RawConn },
  b: { spec: SideSpec; conn: RawConn },
  keys: { a: SideKeys; b: SideKeys },
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const t0 = now();
    const mk = (self: { spec: SideSpec; conn: RawConn }, k: SideKeys, role: 'initiator' | 'responder') =>
      new PeerSession({
        crypto: nodeBackend,
        room,
        self: { nick: self.spec.nick, key: k.self, spki: keyOf(self.spec.key).spki },
        peerNick: self.spec.peer,
        peerKey: k.peer,
        role,
      });
    const sa = mk(a, keys.a, 'responder');
    const sb = mk(b, keys.b, 'initiator');
    let up = 0;
    const handle = (side: { spec: SideSpec; conn: RawConn }, events: SessionEvent[]) => {
      for (const ev of events) {
        if (ev.kind === 'send') side.conn.write(encodeWire(frame('SEND', { to: side.spec.peer, body: ev.body })));
        else if (ev.kind === 'rejected') reject(new Error(`handshake rejected: ${ev.error.errorName}`));
        else if (ev.kind === 'established' && ++up === 2) {
          const t1 = now();
          a.conn.onBody = null;
          b.conn.onBody = null;
          resolve(t1 - t0);
        }
      }
    };
    // DELIVER{from, body}: the body is the frame's last field; decode it through the strict codec.
    const bodyOf = (f: Buffer) => deliverBody(f);
    // Each session runs its steps in call order, so their results arrive in the order of the frames.
    const fail = (e: unknown) => reject(e instanceof Error ? e : new Error(String(e)));
    a.conn.onBody = (f) => void sa.receive(bodyOf(f)).then((ev) => handle(a, ev), fail);
    b.conn.onBody = (f) => void sb.receive(bodyOf(f)).then((ev) => handle(b, ev), fail);
    void sb.start().then((ev) => handle(b, ev), fail);
  });
}

function deliverBody(f: Buffer): Uint8Array {
  const d = decodeFrame(f, 'relay');
  if (d.type !== 'DELIVER' && d.type !== 'SEND') throw new Error(`expected DELIVER, got ${d.type}`);
  return d.body;
}

/**
 * Waits until `count()` stops moving for 100 ms (at most 50 checks, 5 s), so frames still in flight
 * from a phase are delivered before the next phase starts timing.
 */
async function quiet(count: () => number, started: () => boolean = () => true): Promise<void> {
  let last = count();
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const c = count();
    // Quiet means nothing arrived for 100 ms and nothing of ours is still queued in a socket: on a
    // loaded machine a 100 ms gap alone can be a descheduled process with a window still to deliver.
    // Nor while a connection of the phase has received nothing yet: on an overloaded machine its first
    // frame can still be queued behind everyone's window, and only one that stays silent through the
    // whole drain is a stream that never started (checkReceived).
    if (c === last && unsent() === 0 && started()) return;
    last = c;
  }
}

function unsent(): number {
  let n = 0;
  for (const { conn } of conns) n += conn.sock.writableLength;
  return n;
}

function failIfAny(): void {
  const bad = conns.filter((c) => c.conn.failure !== null);
  if (bad.length > 0) throw new Error(`${bad.length} connection(s) failed, first: ${bad[0]!.spec.nick}: ${bad[0]!.conn.failure}`);
}

function failIfAnyChat(): void {
  const bad = chats.filter((c) => c.client.closed);
  if (bad.length > 0) throw new Error(`${bad.length} client(s) closed during the run, first: ${bad[0]!.spec.nick}`);
}

process.on('message', (m: WorkerRequest) => {
  const op = ops[m.op];
  const reply = (r: WorkerReply) => process.send!(r);
  if (op === undefined) return reply({ id: m.id, ok: false, error: `unknown op ${m.op}` });
  op(m.args as never).then(
    (result) => reply({ id: m.id, ok: true, result }),
    (e: unknown) => reply({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});
process.on('SIGTERM', () => process.exit(0));
