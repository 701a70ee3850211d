/**
 * The cryptographic floor of the end-to-end path (issue 16, `e2e_crypto_floor`): messages per second one
 * process achieves doing exactly one direction's per-message work of the protocol and nothing else, no
 * socket, no relay, no event emitter. Per message that is what spec §8.3 asks of the two PeerSessions:
 *
 *   sender    TEXT encoded, chain step, padded, sealed (AES-256-GCM), framed as MSG
 *   receiver  MSG decoded, chain step, opened, unpadded, TEXT decoded
 *   ACK       protocol v2's rule (§8.3 step 6): one cumulative ACK per read batch, and at the latest
 *             after ACK_BATCH_TEXTS (64) TEXTs. The floor takes the fewest ACKs the rule allows: texts
 *             go in batches of ACK_BATCH_TEXTS, the receiver is told `more` for all but the last, so it
 *             seals one ACK per batch and the sender opens it (one ACK{upto} acknowledging all 64). The
 *             ACK's share is 1/64 of a seal and an open per text; the end-to-end path, whose read
 *             batches are smaller, sends more (`e2e_frames_per_text`).
 *
 * Until protocol v2 (158077a) the floor answered every TEXT with its own ACK, as v1 required; counting
 * that here after v2 would have asked the end-to-end path to beat a floor doing almost twice the
 * cryptography of the protocol's best case.
 *
 * The work is done by the real PeerSession pair (src/handshake/session.ts) established in this process,
 * so the floor follows the session's code as it changes. `primitivesPerS` measures the same chain steps,
 * paddings, seals and opens called directly, to show what the session layer adds around them.
 */
import type { KeyObject } from 'node:crypto';
import { hrtime } from 'node:process';
import { PeerSession, type SessionEvent } from '../src/handshake/session.js';
import { Chain, messageAdFor, openMessage, pad, sealMessage, unpad } from '../src/crypto/schedule.js';
import { nodeBackend, nodePrivateKey, nodePublicKey } from '../src/crypto/node.js';
import { decodeFrame, encodeFrame, frame } from '../src/codec/index.js';
import { LIMITS } from '../src/protocol/limits.js';

/** Texts per cumulative ACK in the floor: the most the rule lets a receiver wait (§8.3 step 6). */
export const FLOOR_BATCH = LIMITS.ACK_BATCH_TEXTS;

const now = (): number => Number(hrtime.bigint()) / 1e6; // milliseconds, monotonic

export interface FloorIdentity {
  readonly nick: string;
  readonly privateKey: KeyObject;
  readonly spki: Uint8Array;
}

/** Bodies of the `send` events in `events`, in order. */
function sends(events: readonly SessionEvent[]): Uint8Array[] {
  return events.flatMap((e) => (e.kind === 'send' ? [e.body] : []));
}

/** Two sessions of one room, established by pumping their handshake frames into each other. */
export async function establishedPair(room: string, a: FloorIdentity, b: FloorIdentity): Promise<{ sender: PeerSession; receiver: PeerSession }> {
  // The node:crypto backend, as the end-to-end path uses in Node; every session call is awaited.
  const c = nodeBackend;
  const self = (x: FloorIdentity) => ({ nick: x.nick, key: nodePrivateKey(x.privateKey), spki: x.spki });
  const sender = new PeerSession({ crypto: c, room, self: self(a), peerNick: b.nick, peerKey: nodePublicKey(b.spki), role: 'initiator' });
  const receiver = new PeerSession({ crypto: c, room, self: self(b), peerNick: a.nick, peerKey: nodePublicKey(a.spki), role: 'responder' });
  let toReceiver = sends(await sender.start());
  for (let round = 0; round < 8 && (sender.state !== 'ESTABLISHED' || receiver.state !== 'ESTABLISHED'); round++) {
    const toSender: Uint8Array[] = [];
    for (const body of toReceiver) toSender.push(...sends(await receiver.receive(body)));
    toReceiver = [];
    for (const body of toSender) toReceiver.push(...sends(await sender.receive(body)));
  }
  if (sender.state !== 'ESTABLISHED' || receiver.state !== 'ESTABLISHED') {
    throw new Error(`crypto floor: handshake did not complete (${sender.state} / ${receiver.state})`);
  }
  return { sender, receiver };
}

/**
 * One batch of `n` messages one way through the pair under v2's ACK rule: n sendTexts, the receiver's
 * receives (`more` for all but the last: one read batch), which must give n texts and exactly one ACK,
 * and the sender's receive of that ACK, which must report all n delivered. Throws unless exactly that
 * happened, so no step can be skipped. n is 1..ACK_BATCH_TEXTS.
 */
export async function oneBatch(sender: PeerSession, receiver: PeerSession, text: string, n: number = FLOOR_BATCH): Promise<void> {
  if (!Number.isInteger(n) || n < 1 || n > LIMITS.ACK_BATCH_TEXTS) throw new RangeError(`crypto floor: batch of ${n}`);
  const msgs: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const [msg] = sends((await sender.sendText(text)).events);
    if (msg === undefined) throw new Error('crypto floor: sendText produced no MSG');
    msgs.push(msg);
  }
  let texts = 0;
  const acks: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const got = await receiver.receive(msgs[i]!, i < n - 1);
    for (const e of got) {
      if (e.kind === 'text') texts++;
      else if (e.kind === 'send') acks.push(e.body);
      else throw new Error(`crypto floor: receiver gave ${e.kind}`);
    }
  }
  if (texts !== n || acks.length !== 1) throw new Error(`crypto floor: ${texts} texts and ${acks.length} ACKs for a batch of ${n}`);
  const done = await sender.receive(acks[0]!);
  const delivered = done.filter((e) => e.kind === 'delivered').length;
  if (delivered !== n) throw new Error(`crypto floor: the ACK delivered ${delivered} of ${n}`);
}

export interface FloorResult {
  /** Messages per second through the session pair, one cumulative ACK per FLOOR_BATCH of them. */
  msgsPerS: number;
  /** The same chain steps, paddings, seals and opens called directly, per second. */
  primitivesPerS: number;
  messages: number;
  seconds: number;
}

/**
 * Runs `oneBatch` in a loop for `durationMs` after `warmupMs`, then the primitives alone for the same
 * time. `text` is the end-to-end benchmark's text (it pads into the same bucket).
 */
export async function measureFloor(
  pair: { sender: PeerSession; receiver: PeerSession },
  text: string,
  warmupMs: number,
  durationMs: number,
): Promise<FloorResult> {
  const loop = async (ms: number): Promise<{ n: number; ms: number }> => {
    const t0 = now();
    let n = 0;
    let t = t0;
    while (t - t0 < ms) {
      // Check the clock once per batch, not every message.
      await oneBatch(pair.sender, pair.receiver, text);
      n += FLOOR_BATCH;
      t = now();
    }
    return { n, ms: t - t0 };
  };
  await loop(warmupMs);
  const r = await loop(durationMs);
  const primitivesPerS = await primitivesRate(text, warmupMs, durationMs);
  return { msgsPerS: (r.n / r.ms) * 1000, primitivesPerS, messages: r.n, seconds: r.ms / 1000 };
}

/**
 * The per-message primitives of §8.3 without the session around them: for each TEXT the sender's chain
 * step, pad + seal, and the receiver's open + unpad + inner decode, with the MSG framing; for each batch
 * of FLOOR_BATCH TEXTs one ACK the same way back. Messages per second.
 */
export async function primitivesRate(text: string, warmupMs: number, durationMs: number): Promise<number> {
  const c = nodeBackend;
  const key = () => new Uint8Array(32).fill(7);
  const ab = { send: new Chain(c, key()), recv: new Chain(c, key()) };
  const ba = { send: new Chain(c, key()), recv: new Chain(c, key()) };
  const adPrefix = new Uint8Array(64).fill(1);
  const batch = async (ts: number) => {
    for (let i = 0; i < FLOOR_BATCH; i++) {
      const msg = await seal(ab.send, adPrefix, encodeFrame(frame('TEXT', { ts: ts + i, text })));
      const inner = await open(ab.recv, adPrefix, msg);
      if (inner.type !== 'TEXT') throw new Error('crypto floor: primitives lost the TEXT');
    }
    const ack = await seal(ba.send, adPrefix, encodeFrame(frame('ACK', { upto: ab.recv.next - 1 })));
    if ((await open(ba.recv, adPrefix, ack)).type !== 'ACK') throw new Error('crypto floor: primitives lost the ACK');
  };
  const loop = async (ms: number) => {
    const t0 = now();
    let n = 0;
    let t = t0;
    while (t - t0 < ms) {
      await batch(n);
      n += FLOOR_BATCH;
      t = now();
    }
    return (n / (t - t0)) * 1000;
  };
  await loop(warmupMs);
  return loop(durationMs);
}

async function seal(chain: Chain, adPrefix: Uint8Array, inner: Uint8Array): Promise<Uint8Array> {
  const seq = chain.next;
  const mk = await chain.peekKey();
  const ct = await sealMessage(nodeBackend, mk, seq, pad(inner), messageAdFor(adPrefix, seq));
  await chain.advance();
  return encodeFrame(frame('MSG', { seq, ct }));
}

async function open(chain: Chain, adPrefix: Uint8Array, body: Uint8Array) {
  const f = decodeFrame(body, 'e2e');
  if (f.type !== 'MSG') throw new Error(`crypto floor: expected MSG, got ${f.type}`);
  const padded = await openMessage(nodeBackend, await chain.peekKey(), f.seq, f.ct, messageAdFor(adPrefix, f.seq));
  await chain.advance();
  return decodeFrame(unpad(padded), 'inner');
}
