/**
 * One end-to-end session with one peer (spec/PROTOCOL.md §7.2 state machine, §8.2 handshake, §8.3
 * messages). Sans-I/O: the caller feeds DELIVER bodies from this peer into `receive`, and sends every
 * `send` event's body to the peer in a SEND frame. Nothing a peer sends can make these methods throw:
 * every rejection comes back as a `rejected` event carrying a ProtocolError with a spec code.
 *
 * Each handshake state is its own type (`AwaitResp`, `AwaitFinish`, `Established`); a handler takes the
 * state it needs and produces the next one, so a step cannot run out of order. Only a verified signature
 * plus a confirmed MAC turns key material into an `Established` state.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { decodeFrame, encodeFrame, frame, type E2EFrame, type FrameOf } from '../codec/index.js';
import { ProtocolError, isProtocolError, type ErrorName } from '../protocol/errors.js';
import { equalSecret, hmac, x25519, x25519KeyPair, type X25519KeyPair } from '../crypto/primitives.js';
import { oaepDecrypt, oaepEncrypt, parsePublicKey, pssSign, pssVerify, type PublicIdentity } from '../crypto/rsa.js';
import { safetyNumber } from '../crypto/safety.js';
import {
  Chain,
  SECRET_BYTES,
  initiatorSignedMessage,
  keySchedule,
  messageAdFor,
  messageAdPrefix,
  openMessage,
  pad,
  responderSignedMessage,
  sealMessage,
  th0,
  th1,
  th2,
  th3,
  unpad,
} from '../crypto/schedule.js';
import { sessionTransition, type SessionInput, type SessionState } from '../protocol/session-machine.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';

export type { SessionState } from '../protocol/session-machine.js';

/** This client's identity: nickname, RSA-2048 private key, and its public key as SPKI DER (294 bytes). */
export interface LocalIdentity {
  nick: string;
  privateKey: KeyObject;
  spki: Uint8Array;
}

/**
 * The RSA operations that consume randomness. The default uses node:crypto (OpenSSL's CSPRNG draws the
 * OAEP seed and the PSS salt). Vector generators pass an implementation that takes the seed and salt
 * from `random` (node-forge can, OpenSSL's API cannot); see src/vectors/crypto-forge.ts.
 */
export interface SessionRsa {
  /** RSA-OAEP-SHA-256 of `message` to `publicKey`: 256 bytes. */
  oaepEncrypt(publicKey: KeyObject, message: Uint8Array, random: (n: number) => Uint8Array): Uint8Array;
  /** RSA-PSS-SHA-256 (32-byte salt) of `message`: 256 bytes. */
  pssSign(privateKey: KeyObject, message: Uint8Array, random: (n: number) => Uint8Array): Uint8Array;
}

export const NODE_RSA: SessionRsa = {
  oaepEncrypt: (publicKey, message) => oaepEncrypt(publicKey, message),
  pssSign: (privateKey, message) => pssSign(privateKey, message),
};

export interface SessionParams {
  room: string;
  self: LocalIdentity;
  peerNick: string;
  /** The peer's identity key, SPKI DER, as the relay listed it (JOINED / PEER_JOINED). */
  peerKey: Uint8Array;
  role: 'initiator' | 'responder';
  /** Optional room secret mixed into the key schedule (§8.2); never sent anywhere. */
  psk?: Uint8Array;
  /**
   * Tests and vectors only: the source of the handshake's random bytes, drawn in this order: initiator
   * s_I (32), x_I (32), then whatever `rsa` draws (OAEP seed 32, PSS salt 32); responder s_R (32),
   * x_R (32), then `rsa`'s draws. Without `rsa`, OpenSSL still draws the OAEP seed and PSS salt.
   */
  random?: (n: number) => Uint8Array;
  /** Tests and vectors only: replaces the RSA operations that consume randomness. */
  rsa?: SessionRsa;
}

export type SessionEvent =
  | { kind: 'send'; body: Uint8Array }
  | { kind: 'established'; safetyNumber: string }
  | { kind: 'text'; seq: number; ts: number; text: string }
  | { kind: 'delivered'; seq: number }
  | { kind: 'rejected'; error: ProtocolError };

interface Idle {
  readonly kind: 'IDLE';
}
interface AwaitResp {
  readonly kind: 'AWAIT_RESP';
  readonly sI: Buffer;
  readonly x: X25519KeyPair;
  readonly th1: Buffer;
}
interface AwaitFinish {
  readonly kind: 'AWAIT_FINISH';
  readonly th3: Buffer;
  readonly confI: Buffer;
  readonly keys: ChannelKeys;
}
interface Established {
  readonly kind: 'ESTABLISHED';
  readonly sid: Buffer;
  readonly send: Chain;
  readonly recv: Chain;
  /** The fixed parts of ad_n (§8.3) for what we send and what we receive. */
  readonly adSend: Buffer;
  readonly adRecv: Buffer;
}
interface Ended {
  readonly kind: 'FAILED' | 'CLOSED';
}
type Phase = Idle | AwaitResp | AwaitFinish | Established | Ended;

/** Keys that become a channel once the peer is confirmed. */
interface ChannelKeys {
  readonly sid: Buffer;
  readonly ckIR: Buffer;
  readonly ckRI: Buffer;
}

function erase(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}

export class PeerSession {
  readonly room: string;
  readonly peerNick: string;
  readonly role: 'initiator' | 'responder';
  readonly #self: LocalIdentity;
  readonly #peer: PublicIdentity;
  readonly #psk: Buffer | undefined;
  readonly #random: (n: number) => Uint8Array;
  readonly #deterministic: boolean;
  readonly #rsa: SessionRsa;
  readonly #th0: Buffer;
  #phase: Phase = { kind: 'IDLE' };
  #safety: string | undefined;
  /** seqs of our TEXT messages the peer has not acknowledged yet (§8.3 step 6). */
  readonly #pending = new Set<number>();

  /** Throws ProtocolError BAD_PUBLIC_KEY when `peerKey` is not a canonical RSA-2048 e=65537 SPKI (§8.1). */
  constructor(p: SessionParams) {
    this.#peer = parsePublicKey(p.peerKey);
    this.room = p.room;
    this.peerNick = p.peerNick;
    this.role = p.role;
    this.#self = { nick: p.self.nick, privateKey: p.self.privateKey, spki: Uint8Array.from(p.self.spki) };
    this.#psk = p.psk === undefined ? undefined : Buffer.from(p.psk);
    this.#deterministic = p.random !== undefined;
    this.#random = p.random ?? ((n) => randomBytes(n));
    this.#rsa = p.rsa ?? NODE_RSA;
    const [nickI, keyI, nickR, keyR] =
      p.role === 'initiator' ? [p.self.nick, this.#self.spki, p.peerNick, this.#peer.spki] : [p.peerNick, this.#peer.spki, p.self.nick, this.#self.spki];
    this.#th0 = th0(p.room, nickI, keyI, nickR, keyR);
  }

  get state(): SessionState {
    return this.#phase.kind;
  }

  /**
   * The safety number of this pair (§8.4): 60 digits in 12 groups of 5. Computed on first use and kept
   * (about 10 000 SHA-512 blocks, so it is not part of the handshake's critical path).
   */
  get safetyNumber(): string {
    this.#safety ??= safetyNumber(this.#self.nick, this.#self.spki, this.peerNick, this.#peer.spki);
    return this.#safety;
  }

  /** The seqs of our TEXT messages not yet acknowledged, ascending (to list when the peer left). */
  unacknowledged(): number[] {
    return [...this.#pending].sort((a, b) => a - b);
  }

  /** Initiator: leaves IDLE and returns the HS_INIT to send (§8.2). A responder gets UNEXPECTED_FRAME. */
  start(): SessionEvent[] {
    return this.#step('start', () => {
      if (this.role !== 'initiator') throw new ProtocolError('UNEXPECTED_FRAME', 'a responder does not start');
      const sI = Buffer.from(this.#draw(SECRET_BYTES));
      const x = this.#ephemeral();
      const ct = this.#rsa.oaepEncrypt(this.#peer.key, sI, this.#random);
      const init = encodeFrame(frame('HS_INIT', { version: PROTOCOL_VERSION, eph: x.publicKey, ct }));
      this.#phase = { kind: 'AWAIT_RESP', sI, x, th1: th1(this.#th0, init) };
      return [{ kind: 'send', body: init }];
    });
  }

  /** A DELIVER body from this peer. Never throws for peer input; rejections are `rejected` events. */
  receive(body: Uint8Array): SessionEvent[] {
    let f: E2EFrame;
    try {
      f = decodeFrame(body, 'e2e');
    } catch (e) {
      const err = asProtocolError(e);
      const k = this.#phase.kind;
      // §7.2: a bad frame is reported in ESTABLISHED (and after the end); before, it fails the handshake.
      if (k === 'ESTABLISHED' || k === 'FAILED' || k === 'CLOSED') return [{ kind: 'rejected', error: err }];
      return this.#fail(err);
    }
    const phase = this.#phase;
    return this.#step(f.type, () => {
      switch (f.type) {
        case 'HS_INIT':
          return this.#onInit(f, body);
        case 'HS_RESP':
          return this.#onResp(phase as AwaitResp, f);
        case 'HS_FINISH':
          return this.#onFinish(phase as AwaitFinish, f);
        case 'MSG':
          return this.#onMsg(phase as Established, f);
      }
    });
  }

  /**
   * Sends a text message (§8.3): only in ESTABLISHED (otherwise ProtocolError UNEXPECTED_FRAME). `text`
   * must be 1..MAX_TEXT_BYTES UTF-8 bytes (otherwise ProtocolError INVALID_FIELD); `ts` is milliseconds
   * since the Unix epoch. Both errors are local misuse, never peer input.
   */
  sendText(text: string, ts: number = Date.now()): { seq: number; events: SessionEvent[] } {
    const phase = this.#phase;
    if (phase.kind !== 'ESTABLISHED') throw new ProtocolError('UNEXPECTED_FRAME', `cannot send in ${phase.kind}`);
    const inner = encodeFrame(frame('TEXT', { ts, text }));
    const seq = phase.send.next;
    const body = this.#seal(phase, inner);
    this.#pending.add(seq);
    return { seq, events: [{ kind: 'send', body }] };
  }

  /** The peer left the room (§7.2): erase keys; `unacknowledged()` still lists what was not delivered. */
  peerLeft(): void {
    if (this.#phase.kind === 'CLOSED') return;
    this.#erasePhase();
    this.#phase = { kind: 'CLOSED' };
  }

  /** The E2E handshake timer expired (§7.2): AWAIT_RESP / AWAIT_FINISH fail with TIMEOUT; otherwise nothing. */
  timeout(): SessionEvent[] {
    const t = sessionTransition(this.#phase.kind, 'timeout');
    if (t === undefined) return [];
    return this.#fail(new ProtocolError('TIMEOUT', `no handshake progress in ${this.#phase.kind}`));
  }

  /** Erases every key this session holds (chain keys, handshake secrets, psk) and closes it. */
  destroy(): void {
    this.#erasePhase();
    erase(this.#psk);
    this.#phase = { kind: 'CLOSED' };
  }

  // ---- steps ------------------------------------------------------------------------------------

  /** Runs one input through the transition table (§7.2), mapping every failure onto a spec code. */
  #step(input: SessionInput, run: () => SessionEvent[]): SessionEvent[] {
    const from = this.#phase.kind;
    const t = sessionTransition(from, input);
    if (t === undefined) {
      const err = new ProtocolError('UNEXPECTED_FRAME', `${input} in ${from}`);
      if (from === 'FAILED' || from === 'CLOSED' || from === 'ESTABLISHED') {
        // A late or duplicated frame in a finished session is reported. In ESTABLISHED the table makes
        // it fatal: a handshake frame there means the peer (or the relay) started over.
        if (from === 'ESTABLISHED') return this.#fail(err);
        return [{ kind: 'rejected', error: err }];
      }
      return this.#fail(err);
    }
    try {
      const events = run();
      if (this.#phase.kind !== t.next) throw new Error(`internal: ${input} in ${from} reached ${this.#phase.kind}, table says ${t.next}`);
      return events;
    } catch (e) {
      const err = asProtocolError(e);
      // §7.2: a refusal fails the session, except in ESTABLISHED where the MSG is reported and dropped.
      if (from === 'ESTABLISHED' && err.errorName !== 'INTERNAL_ERROR') return [{ kind: 'rejected', error: err }];
      return this.#fail(err);
    }
  }

  /** Responder, IDLE + HS_INIT (§8.2 "R on HS_INIT"). */
  #onInit(f: FrameOf<'HS_INIT'>, init: Uint8Array): SessionEvent[] {
    if (this.role !== 'responder') throw new ProtocolError('UNEXPECTED_FRAME', 'HS_INIT sent to the initiator');
    if (f.version !== PROTOCOL_VERSION) throw new ProtocolError('UNSUPPORTED_VERSION', `version ${f.version}`);
    const sR = Buffer.from(this.#draw(SECRET_BYTES));
    const x = this.#ephemeral();
    let dh: Buffer | undefined;
    let sI: Uint8Array | undefined;
    try {
      dh = x25519(x.privateKey, f.eph);
      sI = this.#decryptSecret(f.ct);
      const ctR = this.#rsa.oaepEncrypt(this.#peer.key, sR, this.#random);
      const t2 = th2(th1(this.#th0, init), x.publicKey, ctR);
      const keys = keySchedule(sI, sR, dh, t2, this.#psk);
      const sig = this.#rsa.pssSign(this.#self.privateKey, responderSignedMessage(t2), this.#random);
      const mac = hmac(keys.confR, t2);
      const resp = encodeFrame(frame('HS_RESP', { eph: x.publicKey, ct: ctR, sig, mac }));
      erase(keys.prk, keys.confR);
      this.#phase = { kind: 'AWAIT_FINISH', th3: th3(t2, sig, mac), confI: keys.confI, keys };
      return [{ kind: 'send', body: resp }];
    } finally {
      erase(sR, sI, dh);
    }
  }

  /** Initiator, AWAIT_RESP + HS_RESP (§8.2 "I on HS_RESP"), checks in the spec's order. */
  #onResp(st: AwaitResp, f: FrameOf<'HS_RESP'>): SessionEvent[] {
    let dh: Buffer | undefined;
    let sR: Uint8Array | undefined;
    try {
      dh = x25519(st.x.privateKey, f.eph);
      sR = this.#decryptSecret(f.ct);
      const t2 = th2(st.th1, f.eph, f.ct);
      if (!pssVerify(this.#peer.key, responderSignedMessage(t2), f.sig)) throw new ProtocolError('BAD_SIGNATURE', 'HS_RESP signature');
      const keys = keySchedule(st.sI, sR, dh, t2, this.#psk);
      const macOk = equalSecret(hmac(keys.confR, t2), f.mac);
      erase(keys.prk, keys.confR);
      if (!macOk) {
        erase(keys.confI, keys.ckIR, keys.ckRI, keys.sid);
        throw new ProtocolError('BAD_KEY_CONFIRMATION', 'HS_RESP mac');
      }
      const t3 = th3(t2, f.sig, f.mac);
      const sig = this.#rsa.pssSign(this.#self.privateKey, initiatorSignedMessage(t3), this.#random);
      const mac = hmac(keys.confI, t3);
      erase(keys.confI);
      const finish = encodeFrame(frame('HS_FINISH', { sig, mac }));
      this.#erasePhase();
      this.#phase = this.#establish(keys.sid, keys.ckIR, keys.ckRI);
      return [{ kind: 'send', body: finish }, this.#established()];
    } finally {
      erase(dh, sR);
    }
  }

  /** Responder, AWAIT_FINISH + HS_FINISH (§8.2 "R on HS_FINISH"). */
  #onFinish(st: AwaitFinish, f: FrameOf<'HS_FINISH'>): SessionEvent[] {
    if (!pssVerify(this.#peer.key, initiatorSignedMessage(st.th3), f.sig)) throw new ProtocolError('BAD_SIGNATURE', 'HS_FINISH signature');
    if (!equalSecret(hmac(st.confI, st.th3), f.mac)) throw new ProtocolError('BAD_KEY_CONFIRMATION', 'HS_FINISH mac');
    erase(st.confI);
    const { sid, ckIR, ckRI } = st.keys;
    this.#phase = this.#establish(sid, ckRI, ckIR);
    return [this.#established()];
  }

  /** ESTABLISHED + MSG (§8.3 "Receiving"). Every rejection leaves the session as it was. */
  #onMsg(st: Established, f: FrameOf<'MSG'>): SessionEvent[] {
    const next = st.recv.next;
    if (f.seq < next) throw new ProtocolError('REPLAY', `seq ${f.seq}, expected ${next}`);
    if (f.seq > next) throw new ProtocolError('OUT_OF_ORDER', `seq ${f.seq}, expected ${next}`);
    const mk = st.recv.peekKey();
    let padded: Buffer;
    try {
      padded = openMessage(mk, f.seq, f.ct, messageAdFor(st.adRecv, f.seq));
    } finally {
      erase(mk);
    }
    // Authentic: the chain moves on even if what is inside turns out to be unusable (steps 3-5).
    st.recv.advance();
    try {
      const inner = decodeFrame(unpad(padded), 'inner');
      if (inner.type === 'TEXT') {
        const ack = this.#seal(st, encodeFrame(frame('ACK', { upto: f.seq })));
        return [
          { kind: 'text', seq: f.seq, ts: inner.ts, text: inner.text },
          { kind: 'send', body: ack },
        ];
      }
      // ACK: only for a TEXT of ours still waiting for one; anything else is a field out of bounds.
      if (!this.#pending.delete(inner.upto)) throw new ProtocolError('INVALID_FIELD', `ACK for ${inner.upto}, not an unacknowledged TEXT`);
      return [{ kind: 'delivered', seq: inner.upto }];
    } finally {
      erase(padded);
    }
  }

  // ---- helpers ----------------------------------------------------------------------------------

  /** Pads, seals and frames one inner frame as our next MSG, then ratchets the sending chain. */
  #seal(st: Established, inner: Uint8Array): Uint8Array {
    const seq = st.send.next;
    const mk = st.send.peekKey();
    const padded = pad(inner);
    try {
      const ct = sealMessage(mk, seq, padded, messageAdFor(st.adSend, seq));
      st.send.advance();
      return encodeFrame(frame('MSG', { seq, ct }));
    } finally {
      erase(mk, padded, inner);
    }
  }

  #establish(sid: Buffer, sendCk: Buffer, recvCk: Buffer): Established {
    return {
      kind: 'ESTABLISHED',
      sid,
      send: new Chain(sendCk),
      recv: new Chain(recvCk),
      adSend: messageAdPrefix(sid, this.#self.nick, this.peerNick, this.room),
      adRecv: messageAdPrefix(sid, this.peerNick, this.#self.nick, this.room),
    };
  }

  #established(): SessionEvent {
    // The safety number is computed when first read (it costs more than the RSA work of the handshake).
    const session = this;
    return {
      kind: 'established',
      get safetyNumber(): string {
        return session.safetyNumber;
      },
    };
  }

  #decryptSecret(ct: Uint8Array): Uint8Array {
    const s = oaepDecrypt(this.#self.privateKey, ct);
    if (s.length !== SECRET_BYTES) {
      erase(s);
      throw new ProtocolError('OAEP_FAILED', `secret of ${s.length} bytes`);
    }
    return s;
  }

  #draw(n: number): Uint8Array {
    const b = this.#random(n);
    if (b.length !== n) throw new RangeError(`random source returned ${b.length} bytes, expected ${n}`);
    return b;
  }

  #ephemeral(): X25519KeyPair {
    return this.#deterministic ? x25519KeyPair(this.#draw(32)) : x25519KeyPair();
  }

  #fail(err: ProtocolError): SessionEvent[] {
    this.#erasePhase();
    this.#phase = { kind: 'FAILED' };
    return [{ kind: 'rejected', error: err }];
  }

  /** Erases what the current phase holds. KeyObjects (X25519 private keys) are dropped, not wiped. */
  #erasePhase(): void {
    const p = this.#phase;
    switch (p.kind) {
      case 'AWAIT_RESP':
        erase(p.sI, p.th1);
        break;
      case 'AWAIT_FINISH':
        erase(p.confI, p.th3, p.keys.sid, p.keys.ckIR, p.keys.ckRI);
        break;
      case 'ESTABLISHED':
        erase(p.sid);
        p.send.erase();
        p.recv.erase();
        break;
      default:
        break;
    }
  }
}

/** Any failure as a ProtocolError; an unexpected exception (a bug, not the peer) is INTERNAL_ERROR. */
function asProtocolError(e: unknown): ProtocolError {
  if (isProtocolError(e)) return e;
  return new ProtocolError('INTERNAL_ERROR' satisfies ErrorName, e instanceof Error ? e.message : String(e));
}

/**
 * The RSA operations that session establishment needs, run alone (for the benchmark of issue 3 "Speed").
 * Prepares, for two identities A and B, an OAEP ciphertext and a PSS signature in each direction; then
 * `side()` runs what one side of a handshake runs (1 OAEP encrypt of a 32-byte secret, 1 OAEP decrypt,
 * 1 PSS sign and 1 PSS verify of a 63-byte message, as in §8.2) and `both()` runs both sides' (8 ops).
 */
export function establishmentRsaOps(
  a: { privateKey: KeyObject; publicKey: KeyObject },
  b: { privateKey: KeyObject; publicKey: KeyObject },
): { side(): void; both(): void } {
  const msg = responderSignedMessage(randomBytes(32));
  const secret = randomBytes(SECRET_BYTES);
  const ctToA = oaepEncrypt(a.publicKey, secret);
  const ctToB = oaepEncrypt(b.publicKey, secret);
  const sigA = pssSign(a.privateKey, msg);
  const sigB = pssSign(b.privateKey, msg);
  const one = (self: typeof a, peer: typeof b, ctToSelf: Uint8Array, peerSig: Uint8Array): void => {
    oaepEncrypt(peer.publicKey, secret);
    oaepDecrypt(self.privateKey, ctToSelf);
    pssSign(self.privateKey, msg);
    if (!pssVerify(peer.publicKey, msg, peerSig)) throw new Error('establishmentRsaOps: signature did not verify');
  };
  return {
    side: () => one(a, b, ctToA, sigB),
    both: () => {
      one(a, b, ctToA, sigB);
      one(b, a, ctToB, sigA);
    },
  };
}
