/**
 * Deterministic handshakes for vectors and tests: two PeerSessions driven with fixed randomness and
 * node-forge's seeded OAEP / salted PSS, plus an independent recomputation of every intermediate value
 * of spec/PROTOCOL.md §8.2 (TH0-TH3, dh, PRK and the derived keys) from the frames and the secrets, and
 * a sealer that builds any MSG (including deliberately defective ones) under those keys (§8.3).
 */
import { decodeFrame, encodeFrame, frame } from '../codec/index.js';
import { LIMITS } from '../protocol/limits.js';
import { PeerSession, type SessionEvent } from '../handshake/session.js';
import type { CryptoBackend } from '../crypto/backend.js';
import { nodeBackend } from '../crypto/node.js';
import { hmac } from '../crypto/primitives.js';
import { chainStep, keySchedule, messageAd, pad, sealMessage, th0, th1, th2, th3, type SessionKeys } from '../crypto/schedule.js';
import { clampScalar, fixedIdentity, type FixedIdentity, type FixedName } from './crypto-keys.js';
export { clampScalar, isClamped } from './crypto-keys.js';
import { forgeRsa } from './crypto-forge.js';

/** One side's randomness, in the order PeerSession draws it: secret, X25519 scalar, OAEP seed, PSS salt. */
export interface SideRandomness {
  secret: Uint8Array;
  eph: Uint8Array;
  oaepSeed: Uint8Array;
  pssSalt: Uint8Array;
}

export interface HandshakeSetup {
  room: string;
  initiator: FixedName;
  responder: FixedName;
  psk?: Uint8Array;
  /** The responder's psk when it differs from the initiator's (a mismatch); null: the responder has none. */
  responderPsk?: Uint8Array | null;
  randI: SideRandomness;
  randR: SideRandomness;
}

/** A random source that hands out the given chunks in order and refuses any other request. */
export function scripted(chunks: Uint8Array[]): (n: number) => Uint8Array {
  let i = 0;
  return (n) => {
    const c = chunks[i++];
    if (c === undefined || c.length !== n) throw new RangeError(`scripted randomness: draw ${i} of ${n} bytes not scripted`);
    return Uint8Array.from(c);
  };
}

/** Randomness derived from a label, so vectors are reproducible by anyone: SHA-256-based, 32 bytes each. */
export function labelledRandomness(label: string): SideRandomness {
  const f = (what: string) => new Uint8Array(hmac(Buffer.from('e2ee-chat/1 vector randomness', 'ascii'), Buffer.from(`${label}/${what}`, 'utf8')));
  return { secret: f('secret'), eph: clampScalar(f('eph')), oaepSeed: f('oaep-seed'), pssSalt: f('pss-salt') };
}



function sideRandom(r: SideRandomness): (n: number) => Uint8Array {
  return scripted([r.secret, r.eph, r.oaepSeed, r.pssSalt]);
}

export interface HandshakeRun {
  I: PeerSession;
  R: PeerSession;
  idI: FixedIdentity;
  idR: FixedIdentity;
  init: Uint8Array;
  resp: Uint8Array;
  finish: Uint8Array | undefined;
  eventsI: SessionEvent[];
  eventsR: SessionEvent[];
}

function sendBody(events: SessionEvent[]): Uint8Array | undefined {
  const e = events.find((x) => x.kind === 'send');
  return e?.kind === 'send' ? e.body : undefined;
}

/** Runs the handshake of `s` with fixed randomness through backend `c`; stops at the first side that does not send. */
export async function runHandshake(s: HandshakeSetup, c: CryptoBackend = nodeBackend): Promise<HandshakeRun> {
  const idI = fixedIdentity(s.initiator);
  const idR = fixedIdentity(s.responder);
  const common = { room: s.room, crypto: c };
  const I = new PeerSession({
    ...common,
    rsa: forgeRsa(idI.pkcs8),
    self: { nick: idI.nick, key: await c.importPrivateKey(idI.pkcs8), spki: idI.spki },
    peerNick: idR.nick,
    peerKey: await c.importPublicKey(idR.spki),
    role: 'initiator',
    random: sideRandom(s.randI),
    ...(s.psk === undefined ? {} : { psk: s.psk }),
  });
  const rPsk = s.responderPsk === undefined ? s.psk : (s.responderPsk ?? undefined);
  const R = new PeerSession({
    ...common,
    rsa: forgeRsa(idR.pkcs8),
    self: { nick: idR.nick, key: await c.importPrivateKey(idR.pkcs8), spki: idR.spki },
    peerNick: idI.nick,
    peerKey: await c.importPublicKey(idI.spki),
    role: 'responder',
    random: sideRandom(s.randR),
    ...(rPsk === undefined ? {} : { psk: rPsk }),
  });
  const init = sendBody(await I.start());
  if (init === undefined) throw new Error('initiator did not send HS_INIT');
  const eventsR = await R.receive(init);
  const resp = sendBody(eventsR);
  if (resp === undefined) throw new Error('responder did not send HS_RESP');
  const eventsI = await I.receive(resp);
  const finish = sendBody(eventsI);
  if (finish !== undefined) eventsR.push(...(await R.receive(finish)));
  return { I, R, idI, idR, init, resp, finish, eventsI, eventsR };
}

/** Every intermediate value of §8.2, recomputed from the frames and the secrets (not from the sessions). */
export interface Transcript {
  th0: Uint8Array;
  th1: Uint8Array;
  th2: Uint8Array;
  th3: Uint8Array;
  dh: Uint8Array;
  ephI: Uint8Array;
  ephR: Uint8Array;
  keys: SessionKeys;
}

export async function recompute(
  s: HandshakeSetup,
  run: Pick<HandshakeRun, 'idI' | 'idR' | 'init' | 'resp'>,
  psk: Uint8Array | undefined = s.psk,
  c: CryptoBackend = nodeBackend,
): Promise<Transcript> {
  const init = decodeFrame(run.init, 'e2e');
  const resp = decodeFrame(run.resp, 'e2e');
  if (init.type !== 'HS_INIT' || resp.type !== 'HS_RESP') throw new Error('not a handshake');
  const t0 = await th0(c, s.room, run.idI.nick, run.idI.spki, run.idR.nick, run.idR.spki);
  const t1 = await th1(c, t0, run.init);
  const t2 = await th2(c, t1, resp.eph, resp.ct);
  const dh = await c.x25519((await c.x25519KeyPair(s.randR.eph)).privateKey, init.eph);
  const keys = await keySchedule(c, s.randI.secret, s.randR.secret, dh, t2, psk);
  return { th0: t0, th1: t1, th2: t2, th3: await th3(c, t2, resp.sig, resp.mac), dh, ephI: init.eph, ephR: resp.eph, keys };
}

/** Direction of a message: initiator to responder (chain ck_IR) or back (ck_RI). */
export type Direction = 'I->R' | 'R->I';

/** The chain key after `n` steps of §8.3's ratchet: 32 bytes. */
export async function chainKeyAt(ck0: Uint8Array, n: number, c: CryptoBackend = nodeBackend): Promise<Uint8Array> {
  let ck: Uint8Array = Uint8Array.from(ck0);
  for (let i = 0; i < n; i++) ck = (await chainStep(c, ck)).next;
  return ck;
}

/** mk_n of a direction (§8.3): 32 bytes. */
export async function messageKeyAt(keys: SessionKeys, dir: Direction, n: number, c: CryptoBackend = nodeBackend): Promise<Uint8Array> {
  return (await chainStep(c, await chainKeyAt(dir === 'I->R' ? keys.ckIR : keys.ckRI, n, c))).mk;
}

export interface SealOptions {
  /** Seal these exact padded bytes instead of padding `inner`. */
  padded?: Uint8Array;
  /** Key with this message number (defaults to seq). */
  keyIndex?: number;
  /** Sender and recipient nicks written into the AD (default: the real ones for `dir`). */
  sender?: string;
  recipient?: string;
  room?: string;
}

/** An encoded MSG body with `seq`, sealing `inner` (an encoded inner frame) as §8.3 says, or defectively. */
export async function sealMsg(
  keys: SessionKeys,
  names: { room: string; nickI: string; nickR: string },
  dir: Direction,
  seq: number,
  inner: Uint8Array,
  o: SealOptions = {},
  c: CryptoBackend = nodeBackend,
): Promise<Uint8Array> {
  const n = o.keyIndex ?? seq;
  const [from, to] = dir === 'I->R' ? [names.nickI, names.nickR] : [names.nickR, names.nickI];
  const padded = o.padded ?? pad(inner);
  const ad = messageAd(keys.sid, o.sender ?? from, o.recipient ?? to, o.room ?? names.room, seq);
  const ct = await sealMessage(c, await messageKeyAt(keys, dir, n, c), seq, padded, ad);
  if (ct.length < LIMITS.PAD_MIN_BYTES + 16 || ct.length > LIMITS.PAD_MAX_BYTES + 16) throw new RangeError('sealed size outside MSG.ct bounds');
  return encodeFrame(frame('MSG', { seq, ct }));
}

/** The encoded inner TEXT frame. */
export function textFrame(ts: number, text: string): Uint8Array {
  return encodeFrame(frame('TEXT', { ts, text }));
}

/** The encoded inner ACK frame. */
export function ackFrame(upto: number): Uint8Array {
  return encodeFrame(frame('ACK', { upto }));
}
