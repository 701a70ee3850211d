/**
 * One end-to-end session with one peer (spec/PROTOCOL.md §7.2 state machine, §8.2 handshake, §8.3
 * messages). Sans-I/O: the caller feeds DELIVER bodies from this peer into `receive`, and sends every
 * `send` event's body to the peer in a SEND frame. Nothing a peer sends can make these methods reject:
 * every refusal comes back as a `rejected` event carrying a ProtocolError with a spec code.
 *
 * The cryptography is a CryptoBackend's (node:crypto or WebCrypto), so every step is asynchronous. Steps
 * run strictly one at a time, in the order they were called: `start`, `receive`, `sendText` and
 * `timeout` each queue behind the previous call, so a later frame is never processed before an earlier
 * one, and message numbers are assigned in call order (an ACK sent by a `receive` takes its number
 * before a `sendText` called after it).
 *
 * ACKs are cumulative and delayed (§8.3 step 6): a TEXT received is not answered at once. `receive`
 * with `more` true says that the caller's read batch holds further bodies from this peer; the ACK for
 * every TEXT received so far is sealed at the end of the first `receive` without `more` (or by
 * `flushAck`), and at the latest once ACK_BATCH_TEXTS TEXTs are waiting for it.
 *
 * Each handshake state is its own type (`AwaitResp`, `AwaitFinish`, `Established`); a handler takes the
 * state it needs and returns the next one, which the queue installs only when the step completes, so a
 * step cannot run out of order or half-apply. Only a verified signature plus a confirmed MAC turns key
 * material into an `Established` state.
 */
import { decodeFrame, encodeFrame, frame, type E2EFrame, type FrameOf } from '../codec/index.js';
import { ProtocolError, isProtocolError, type ErrorName } from '../protocol/errors.js';
import type { CryptoBackend, RsaPrivateKey, RsaPublicKey, X25519KeyPair } from '../crypto/backend.js';
import { equalSecret, erase } from '../crypto/bytes.js';
import { safetyNumberOf } from '../crypto/fingerprint.js';
import {
  Chain,
  MessageNumbers,
  SECRET_BYTES,
  initiatorSignedMessage,
  keySchedule,
  messageAdPrefix,
  pad,
  responderSignedMessage,
  th0,
  th1,
  th2,
  th3,
  unpad,
} from '../crypto/schedule.js';
import { sessionTransition, type SessionInput, type SessionState } from '../protocol/session-machine.js';
import { LIMITS } from '../protocol/limits.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';

export type { SessionState } from '../protocol/session-machine.js';

/** This client's identity: nickname, its RSA-2048 private key imported by the backend, and its SPKI DER (294 bytes). */
export interface LocalIdentity {
  nick: string;
  key: RsaPrivateKey;
  spki: Uint8Array;
}

/**
 * The RSA operations that consume randomness. The default is the backend's (the platform's CSPRNG draws
 * the OAEP seed and the PSS salt). Vector generators pass an implementation that takes the seed and salt
 * from `random` (node-forge can, OpenSSL's and WebCrypto's APIs cannot); see src/vectors/crypto-forge.ts.
 */
export interface SessionRsa {
  /** RSA-OAEP-SHA-256 of `message` to `publicKey`: 256 bytes. */
  oaepEncrypt(publicKey: RsaPublicKey, message: Uint8Array, random: (n: number) => Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** RSA-PSS-SHA-256 (32-byte salt) of `message`: 256 bytes. */
  pssSign(privateKey: RsaPrivateKey, message: Uint8Array, random: (n: number) => Uint8Array): Uint8Array | Promise<Uint8Array>;
}

export interface SessionParams {
  /** The cryptography: node:crypto (src/crypto/node.ts) or WebCrypto (src/crypto/webcrypto.ts). */
  crypto: CryptoBackend;
  room: string;
  self: LocalIdentity;
  peerNick: string;
  /** The peer's identity key as the relay listed it (JOINED / PEER_JOINED), imported once by `crypto.importPublicKey`. */
  peerKey: RsaPublicKey;
  role: 'initiator' | 'responder';
  /** Optional room secret mixed into the key schedule (§8.2); never sent anywhere. */
  psk?: Uint8Array;
  /**
   * Tests and vectors only: the source of the handshake's random bytes, drawn in this order: initiator
   * s_I (32), x_I (32), then whatever `rsa` draws (OAEP seed 32, PSS salt 32); responder s_R (32),
   * x_R (32), then `rsa`'s draws. Without `rsa`, the backend still draws the OAEP seed and PSS salt.
   */
  random?: (n: number) => Uint8Array;
  /** Tests and vectors only: replaces the RSA operations that consume randomness. */
  rsa?: SessionRsa;
}

export type SessionEvent =
  | { kind: 'send'; body: Uint8Array }
  | { kind: 'established' }
  | { kind: 'text'; seq: number; ts: number; text: string }
  | { kind: 'delivered'; seq: number }
  /** A ROSTER from the peer (§8.6): its commitment to the room's members at `epoch`. */
  | { kind: 'roster'; seq: number; epoch: number; hash: Uint8Array }
  | { kind: 'rejected'; error: ProtocolError };

interface Idle {
  readonly kind: 'IDLE';
}
interface AwaitResp {
  readonly kind: 'AWAIT_RESP';
  readonly sI: Uint8Array;
  readonly x: X25519KeyPair;
  readonly th1: Uint8Array;
}
interface AwaitFinish {
  readonly kind: 'AWAIT_FINISH';
  readonly th3: Uint8Array;
  readonly confI: Uint8Array;
  readonly keys: ChannelKeys;
}
interface Established {
  readonly kind: 'ESTABLISHED';
  readonly sid: Uint8Array;
  readonly send: Chain;
  readonly recv: Chain;
  /** ad_n and nonce_n (§8.3) of what we send and of what we receive, rewritten for each message. */
  readonly sendNumbers: MessageNumbers;
  readonly recvNumbers: MessageNumbers;
}
interface Ended {
  readonly kind: 'FAILED' | 'CLOSED';
}
type Phase = Idle | AwaitResp | AwaitFinish | Established | Ended;

/** What a handler produces: the phase to install and the events to report. */
interface Outcome {
  readonly phase: Phase;
  readonly events: SessionEvent[];
}

/** Keys that become a channel once the peer is confirmed. */
interface ChannelKeys {
  readonly sid: Uint8Array;
  readonly ckIR: Uint8Array;
  readonly ckRI: Uint8Array;
}

const ESTABLISHED_EVENT: SessionEvent = Object.freeze({ kind: 'established' });

/** What a responder's HS_RESP needs that HS_INIT does not decide: s_R, its ephemeral key pair, ct_R. */
interface EarlyResponse {
  readonly sR: Uint8Array;
  readonly x: X25519KeyPair;
  readonly ctR: Uint8Array;
}

type Timers = { setImmediate?: (f: () => void) => unknown; setTimeout?: (f: () => void, ms: number) => unknown };

/** Runs `f` once the current turn and its promise steps are done (setImmediate in Node, a 0 ms timer on a page). */
function afterThisTurn(f: () => void): void {
  const g = globalThis as Timers;
  if (typeof g.setImmediate === 'function') g.setImmediate(f);
  else if (typeof g.setTimeout === 'function') g.setTimeout(f, 0);
  else void Promise.resolve().then(f);
}

export class PeerSession {
  readonly room: string;
  readonly peerNick: string;
  readonly role: 'initiator' | 'responder';
  readonly #c: CryptoBackend;
  readonly #self: LocalIdentity;
  readonly #peer: RsaPublicKey;
  readonly #psk: Uint8Array | undefined;
  readonly #random: (n: number) => Uint8Array;
  readonly #deterministic: boolean;
  readonly #rsa: SessionRsa;
  readonly #th0: Promise<Uint8Array>;
  #phase: Phase = { kind: 'IDLE' };
  /** Bumped when the session is closed from outside (peerLeft, destroy): a step in flight then installs nothing. */
  #epoch = 0;
  /** The last queued step; the next one starts when it has settled. */
  #tail: Promise<unknown> = Promise.resolve();
  #safety: Promise<string> | undefined;
  /** seqs of our TEXT messages the peer has not acknowledged yet, ascending (§8.3 step 6). */
  readonly #pending: number[] = [];
  /** The seq of the peer's latest TEXT not yet acknowledged, and how many TEXTs that ACK will cover. */
  #ackDue: number | undefined;
  #ackDueCount = 0;
  /** MSGs sealed in this session, TEXTs and ACKs (for the end-to-end benchmark's seals per TEXT). */
  #sealed = 0;
  /**
   * The padded plaintext of every MSG whose inner frame fits the smallest bucket (§8.3: every ACK and
   * ROSTER, and a TEXT of up to about 240 bytes), all zero between seals: no array per message.
   */
  readonly #padScratch = new Uint8Array(LIMITS.PAD_MIN_BYTES);
  /** The epoch of the peer's latest ROSTER (§8.6: each one names a later epoch than the one before). */
  #peerRosterEpoch = 0;
  /**
   * Responder with the platform's randomness: s_R, x_R and ct_R = OAEP(peer, s_R) made after the turn
   * that created the session, while HS_INIT is on its way (none of the three depends on it), so the
   * HS_INIT step starts at the Diffie-Hellman (issue 16: session setup within 1.5x of its RSA). Taken by
   * the first HS_INIT; erased when the session ends unused. With `random` or `rsa` (tests, vectors) the
   * draws stay in the documented order, inside the HS_INIT step.
   */
  #early: { result?: Promise<EarlyResponse> } | undefined;

  constructor(p: SessionParams) {
    this.#c = p.crypto;
    this.#peer = p.peerKey;
    this.room = p.room;
    this.peerNick = p.peerNick;
    this.role = p.role;
    this.#self = { nick: p.self.nick, key: p.self.key, spki: Uint8Array.from(p.self.spki) };
    this.#psk = p.psk === undefined ? undefined : Uint8Array.from(p.psk);
    this.#deterministic = p.random !== undefined;
    this.#random = p.random ?? ((n) => this.#c.randomBytes(n));
    const c = this.#c;
    this.#rsa = p.rsa ?? { oaepEncrypt: (k, m) => c.oaepEncrypt(k, m), pssSign: (k, m) => c.pssSign(k, m) };
    const [nickI, keyI, nickR, keyR] =
      p.role === 'initiator' ? [p.self.nick, this.#self.spki, p.peerNick, this.#peer.spki] : [p.peerNick, this.#peer.spki, p.self.nick, this.#self.spki];
    this.#th0 = th0(c, p.room, nickI, keyI, nickR, keyR);
    // Awaited by the first handshake step; a rejection (a backend bug) surfaces there as INTERNAL_ERROR.
    this.#th0.catch(() => {});
    if (p.role === 'responder' && p.random === undefined && p.rsa === undefined) {
      const slot: { result?: Promise<EarlyResponse> } = {};
      this.#early = slot;
      afterThisTurn(() => {
        // Taken (an HS_INIT came first: that step makes its own) or the session ended: nothing to make.
        if (this.#early !== slot) return;
        slot.result = this.#prepareResponse();
        // A failure here (a backend bug, a key of another backend) is met again, and reported, in the HS_INIT step.
        slot.result.catch(() => {});
      });
    }
  }

  async #prepareResponse(): Promise<EarlyResponse> {
    const sR = Uint8Array.from(this.#draw(SECRET_BYTES));
    try {
      const x = await this.#ephemeral();
      const ctR = await this.#rsa.oaepEncrypt(this.#peer, sR, this.#random);
      return { sR, x, ctR };
    } catch (e) {
      erase(sR);
      throw e;
    }
  }

  /** The early response for the HS_INIT step (once), or undefined when there is none or it failed. */
  async #takeEarly(): Promise<EarlyResponse | undefined> {
    const slot = this.#early;
    this.#early = undefined;
    return slot?.result?.catch(() => undefined);
  }

  /** The state after the steps that have completed (a queued step shows once it has run). */
  get state(): SessionState {
    return this.#phase.kind;
  }

  /**
   * The safety number of this pair (§8.4): 60 digits in 12 groups of 5. Computed on first use and kept
   * (about 10 000 SHA-512 blocks, so it is not part of the handshake's critical path).
   */
  safetyNumber(): Promise<string> {
    this.#safety ??= safetyNumberOf(this.#c, this.#self.nick, this.#self.spki, this.peerNick, this.#peer.spki);
    return this.#safety;
  }

  /** How many MSGs (TEXTs and ACKs) this session has sealed: one AEAD seal and one SEND frame each. */
  get sealedCount(): number {
    return this.#sealed;
  }

  /** The seqs of our TEXT messages not yet acknowledged, ascending (to list when the peer left). */
  unacknowledged(): number[] {
    return [...this.#pending];
  }

  /** Initiator: leaves IDLE and resolves with the HS_INIT to send (§8.2). A responder gets UNEXPECTED_FRAME. */
  start(): Promise<SessionEvent[]> {
    return this.#queueStep((epoch) =>
      this.#step(epoch, 'start', async () => {
        if (this.role !== 'initiator') throw new ProtocolError('UNEXPECTED_FRAME', 'a responder does not start');
        const sI = Uint8Array.from(this.#draw(SECRET_BYTES));
        const x = await this.#ephemeral();
        const ct = await this.#rsa.oaepEncrypt(this.#peer, sI, this.#random);
        const init = encodeFrame(frame('HS_INIT', { version: PROTOCOL_VERSION, eph: x.publicKey, ct }));
        return { phase: { kind: 'AWAIT_RESP', sI, x, th1: await th1(this.#c, await this.#th0, init) }, events: [{ kind: 'send', body: init }] };
      }),
    );
  }

  /**
   * A DELIVER body from this peer. Never rejects for peer input; refusals are `rejected` events. `more`:
   * the caller has further bodies from this peer in the same read batch, so the cumulative ACK for the
   * TEXTs received waits for the last of them (§8.3 step 6); without it, the step ends by sending the
   * ACK that is due, if any.
   */
  receive(body: Uint8Array, more = false): Promise<SessionEvent[]> {
    const copy = Uint8Array.from(body);
    return this.#queueStep(async (epoch) => {
      const events = await this.#receive(epoch, copy);
      return more ? events : [...events, ...(await this.#flushAck(epoch))];
    });
  }

  /** Sends the cumulative ACK that is due (§8.3 step 6), if any: the end of a read batch. */
  flushAck(): Promise<SessionEvent[]> {
    return this.#queueStep((epoch) => this.#flushAck(epoch));
  }

  /**
   * Sends a text message (§8.3): only in ESTABLISHED (otherwise rejects with ProtocolError
   * UNEXPECTED_FRAME). `text` must be 1..MAX_TEXT_BYTES UTF-8 bytes (otherwise ProtocolError
   * INVALID_FIELD); `ts` is milliseconds since the Unix epoch. Both errors are local misuse, never peer input.
   */
  sendText(text: string, ts: number = Date.now()): Promise<{ seq: number; events: SessionEvent[] }> {
    return this.#queue(async () => {
      const phase = this.#phase;
      if (phase.kind !== 'ESTABLISHED') throw new ProtocolError('UNEXPECTED_FRAME', `cannot send in ${phase.kind}`);
      const inner = encodeFrame(frame('TEXT', { ts, text }));
      const seq = phase.send.next;
      const body = await this.#seal(phase, inner);
      this.#pending.push(seq);
      return { seq, events: [{ kind: 'send', body }] };
    });
  }

  /**
   * Sends a roster commitment (§8.6) as our next MSG: ROSTER{epoch, hash}, `hash` the 32-byte
   * commitment. Only in ESTABLISHED (otherwise rejects with UNEXPECTED_FRAME); it is no TEXT, so it is
   * never acknowledged and never listed as undelivered.
   */
  sendRoster(epoch: number, hash: Uint8Array): Promise<SessionEvent[]> {
    return this.#queue(async () => {
      const phase = this.#phase;
      if (phase.kind !== 'ESTABLISHED') throw new ProtocolError('UNEXPECTED_FRAME', `cannot send in ${phase.kind}`);
      return [{ kind: 'send', body: await this.#seal(phase, encodeFrame(frame('ROSTER', { epoch, hash }))) }];
    });
  }

  /** The peer left the room (§7.2): erase keys at once; `unacknowledged()` still lists what was not delivered. */
  peerLeft(): void {
    if (this.#phase.kind === 'CLOSED') return;
    this.#close();
  }

  /** The E2E handshake timer expired (§7.2): AWAIT_RESP / AWAIT_FINISH fail with TIMEOUT; otherwise nothing. */
  timeout(): Promise<SessionEvent[]> {
    return this.#queueStep(async () => {
      const t = sessionTransition(this.#phase.kind, 'timeout');
      if (t === undefined) return [];
      return this.#fail(new ProtocolError('TIMEOUT', `no handshake progress in ${this.#phase.kind}`));
    });
  }

  /** Erases every key this session holds (chain keys, handshake secrets, psk) at once and closes it. */
  destroy(): void {
    this.#close();
    erase(this.#psk);
  }

  // ---- steps ------------------------------------------------------------------------------------

  /** Runs `run` after every step queued before it (§7.2 processes one peer's frames in order). */
  #queue<T>(run: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(run);
    this.#tail = p.catch(() => undefined);
    return p;
  }

  /**
   * Queues a step that reports events. A step called before the session was closed from outside
   * (peerLeft, destroy) reports nothing, whether it had started or not; one called after is refused
   * by the table like any input in CLOSED.
   */
  #queueStep(run: (epoch: number) => Promise<SessionEvent[]>): Promise<SessionEvent[]> {
    const epoch = this.#epoch;
    return this.#queue(async () => (epoch === this.#epoch ? run(epoch) : []));
  }

  async #receive(epoch: number, body: Uint8Array): Promise<SessionEvent[]> {
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
    return this.#step(epoch, f.type, () => {
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

  /** Runs one input through the transition table (§7.2), mapping every failure onto a spec code. */
  async #step(epoch: number, input: SessionInput, run: () => Promise<Outcome>): Promise<SessionEvent[]> {
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
    let out: Outcome;
    try {
      out = await run();
      if (out.phase.kind !== t.next) throw new Error(`internal: ${input} in ${from} reached ${out.phase.kind}, table says ${t.next}`);
    } catch (e) {
      if (epoch !== this.#epoch) return [];
      const err = asProtocolError(e);
      // §7.2: a refusal fails the session, except in ESTABLISHED where the MSG is reported and dropped.
      if (from === 'ESTABLISHED' && err.errorName !== 'INTERNAL_ERROR') return [{ kind: 'rejected', error: err }];
      return this.#fail(err);
    }
    if (epoch !== this.#epoch) {
      // Closed while the step ran: the keys it made are erased, not installed, and nothing is reported.
      if (out.phase !== this.#phase) erasePhase(out.phase);
      return [];
    }
    if (out.phase !== this.#phase) erasePhase(this.#phase);
    this.#phase = out.phase;
    return out.events;
  }

  /** Responder, IDLE + HS_INIT (§8.2 "R on HS_INIT"). */
  async #onInit(f: FrameOf<'HS_INIT'>, init: Uint8Array): Promise<Outcome> {
    if (this.role !== 'responder') throw new ProtocolError('UNEXPECTED_FRAME', 'HS_INIT sent to the initiator');
    const early = await this.#takeEarly();
    if (f.version !== PROTOCOL_VERSION) {
      erase(early?.sR);
      throw new ProtocolError('UNSUPPORTED_VERSION', `version ${f.version}`);
    }
    const sR = early?.sR ?? Uint8Array.from(this.#draw(SECRET_BYTES));
    let dh: Uint8Array | undefined;
    let sI: Uint8Array | undefined;
    try {
      const x = early?.x ?? (await this.#ephemeral());
      dh = await this.#c.x25519(x.privateKey, f.eph);
      // sig_R covers TH2, which needs nothing of s_I: the signature is started before s_I is decrypted,
      // so with a backend that signs off the calling thread (node:crypto's thread pool, WebCrypto) this
      // step's two private-key operations run side by side instead of one after the other (issue 16:
      // the handshake within 1.5x of its RSA). What the peer sees is unchanged: a failed decryption is
      // still OAEP_FAILED, and the signature is sent only in the HS_RESP of a step that succeeded.
      const ctR = early?.ctR ?? (await this.#rsa.oaepEncrypt(this.#peer, sR, this.#random));
      const t2 = await th2(this.#c, await th1(this.#c, await this.#th0, init), x.publicKey, ctR);
      const signing = Promise.resolve(this.#rsa.pssSign(this.#self.key, responderSignedMessage(t2), this.#random));
      // Observed when the decryption below throws first; the step then fails with OAEP_FAILED.
      signing.catch(() => {});
      sI = await this.#decryptSecret(f.ct);
      const keys = await keySchedule(this.#c, sI, sR, dh, t2, this.#psk);
      const sig = await signing;
      const mac = await this.#c.hmacSha256(keys.confR, t2);
      const resp = encodeFrame(frame('HS_RESP', { eph: x.publicKey, ct: ctR, sig, mac }));
      erase(keys.prk, keys.confR);
      const phase: AwaitFinish = { kind: 'AWAIT_FINISH', th3: await th3(this.#c, t2, sig, mac), confI: keys.confI, keys };
      return { phase, events: [{ kind: 'send', body: resp }] };
    } finally {
      erase(sR, sI, dh);
    }
  }

  /** Initiator, AWAIT_RESP + HS_RESP (§8.2 "I on HS_RESP"), checks in the spec's order. */
  async #onResp(st: AwaitResp, f: FrameOf<'HS_RESP'>): Promise<Outcome> {
    let dh: Uint8Array | undefined;
    let sR: Uint8Array | undefined;
    try {
      dh = await this.#c.x25519(st.x.privateKey, f.eph);
      // sig_I covers TH3, a hash of what HS_RESP carries: it is started here, beside the decryption of
      // s_R (as the responder does, see #onInit), and used only once every check below has passed, in
      // the spec's order; when one fails the signature is dropped unseen and the step fails as before.
      const t2 = await th2(this.#c, st.th1, f.eph, f.ct);
      const t3 = await th3(this.#c, t2, f.sig, f.mac);
      const signing = Promise.resolve(this.#rsa.pssSign(this.#self.key, initiatorSignedMessage(t3), this.#random));
      signing.catch(() => {});
      sR = await this.#decryptSecret(f.ct);
      if (!(await this.#c.pssVerify(this.#peer, responderSignedMessage(t2), f.sig))) throw new ProtocolError('BAD_SIGNATURE', 'HS_RESP signature');
      const keys = await keySchedule(this.#c, st.sI, sR, dh, t2, this.#psk);
      const macOk = equalSecret(await this.#c.hmacSha256(keys.confR, t2), f.mac);
      erase(keys.prk, keys.confR);
      if (!macOk) {
        erase(keys.confI, keys.ckIR, keys.ckRI, keys.sid);
        throw new ProtocolError('BAD_KEY_CONFIRMATION', 'HS_RESP mac');
      }
      const sig = await signing;
      const mac = await this.#c.hmacSha256(keys.confI, t3);
      erase(keys.confI);
      const finish = encodeFrame(frame('HS_FINISH', { sig, mac }));
      return { phase: this.#establish(keys.sid, keys.ckIR, keys.ckRI), events: [{ kind: 'send', body: finish }, ESTABLISHED_EVENT] };
    } finally {
      erase(dh, sR);
    }
  }

  /** Responder, AWAIT_FINISH + HS_FINISH (§8.2 "R on HS_FINISH"). */
  async #onFinish(st: AwaitFinish, f: FrameOf<'HS_FINISH'>): Promise<Outcome> {
    if (!(await this.#c.pssVerify(this.#peer, initiatorSignedMessage(st.th3), f.sig))) throw new ProtocolError('BAD_SIGNATURE', 'HS_FINISH signature');
    if (!equalSecret(await this.#c.hmacSha256(st.confI, st.th3), f.mac)) throw new ProtocolError('BAD_KEY_CONFIRMATION', 'HS_FINISH mac');
    const { sid, ckIR, ckRI } = st.keys;
    // The chain keys move into the new phase (its Chains own them); the rest of AWAIT_FINISH is erased.
    const next = this.#establish(Uint8Array.from(sid), Uint8Array.from(ckRI), Uint8Array.from(ckIR));
    return { phase: next, events: [ESTABLISHED_EVENT] };
  }

  /** ESTABLISHED + MSG (§8.3 "Receiving"). Every rejection leaves the session as it was. */
  async #onMsg(st: Established, f: FrameOf<'MSG'>): Promise<Outcome> {
    const next = st.recv.next;
    if (f.seq < next) throw new ProtocolError('REPLAY', `seq ${f.seq}, expected ${next}`);
    if (f.seq > next) throw new ProtocolError('OUT_OF_ORDER', `seq ${f.seq}, expected ${next}`);
    // With a backend's synchronous primitives (node:crypto) no promise per primitive (issue 16).
    const sync = this.#c.sync;
    // mk belongs to the chain, which erases it when it advances (a failed open leaves it for the next try).
    const mk = sync !== undefined ? st.recv.peekKeySync(sync) : await st.recv.peekKey();
    const { nonce, ad } = st.recvNumbers;
    st.recvNumbers.number(f.seq);
    const padded = sync !== undefined ? sync.aesGcmOpen(mk, nonce, f.ct, ad) : await this.#c.aesGcmOpen(mk, nonce, f.ct, ad);
    // Authentic: the chain moves on even if what is inside turns out to be unusable (steps 3-5).
    if (sync !== undefined) st.recv.advanceSync(sync);
    else await st.recv.advance();
    try {
      const inner = decodeFrame(unpad(padded), 'inner');
      if (inner.type === 'TEXT') {
        const events: SessionEvent[] = [{ kind: 'text', seq: f.seq, ts: inner.ts, text: inner.text }];
        this.#ackDue = f.seq;
        this.#ackDueCount++;
        // §8.3 step 6: at the latest after ACK_BATCH_TEXTS TEXTs, even in the middle of a read batch.
        if (this.#ackDueCount >= LIMITS.ACK_BATCH_TEXTS) events.push(await this.#sealAck(st));
        return { phase: st, events };
      }
      if (inner.type === 'ROSTER') {
        // §8.6: epochs of one peer's ROSTERs only grow; an earlier or repeated epoch is out of bounds.
        if (inner.epoch <= this.#peerRosterEpoch) throw new ProtocolError('INVALID_FIELD', `ROSTER for epoch ${inner.epoch}, after ${this.#peerRosterEpoch}`);
        this.#peerRosterEpoch = inner.epoch;
        return { phase: st, events: [{ kind: 'roster', seq: f.seq, epoch: inner.epoch, hash: Uint8Array.from(inner.hash) }] };
      }
      // ACK{upto}: upto must be a TEXT of ours still waiting; it acknowledges that TEXT and every earlier
      // one still waiting. Anything else (nothing new, a seq never sent, an ACK's or a ROSTER's seq) is
      // out of bounds.
      const i = this.#pending.indexOf(inner.upto);
      if (i < 0) throw new ProtocolError('INVALID_FIELD', `ACK for ${inner.upto}, not an unacknowledged TEXT`);
      const acked = this.#pending.splice(0, i + 1);
      return { phase: st, events: acked.map((seq): SessionEvent => ({ kind: 'delivered', seq })) };
    } finally {
      erase(padded);
    }
  }

  /** Seals the due ACK at the end of a read batch (a step of its own or the tail of a `receive`). */
  async #flushAck(epoch: number): Promise<SessionEvent[]> {
    const phase = this.#phase;
    if (epoch !== this.#epoch || this.#ackDue === undefined || phase.kind !== 'ESTABLISHED') return [];
    return [await this.#sealAck(phase)];
  }

  /** ACK{upto: the peer's latest TEXT} as our next MSG; nothing is due afterwards. */
  async #sealAck(st: Established): Promise<SessionEvent> {
    const upto = this.#ackDue!;
    this.#ackDue = undefined;
    this.#ackDueCount = 0;
    return { kind: 'send', body: await this.#seal(st, encodeFrame(frame('ACK', { upto }))) };
  }

  // ---- helpers ----------------------------------------------------------------------------------

  /** Pads, seals and frames one inner frame as our next MSG, then ratchets the sending chain. */
  async #seal(st: Established, inner: Uint8Array): Promise<Uint8Array> {
    // With a backend's synchronous primitives (node:crypto) no promise per primitive (issue 16), as #onMsg.
    const sync = this.#c.sync;
    const seq = st.send.next;
    // mk belongs to the chain (erased when it advances); the padded plaintext goes into the session's
    // scratch when it fits the smallest bucket, and is zeroed after the seal either way.
    const mk = sync !== undefined ? st.send.peekKeySync(sync) : await st.send.peekKey();
    const padded = pad(inner, this.#padScratch);
    try {
      const { nonce, ad } = st.sendNumbers;
      st.sendNumbers.number(seq);
      const ct = sync !== undefined ? sync.aesGcmSeal(mk, nonce, padded, ad) : await this.#c.aesGcmSeal(mk, nonce, padded, ad);
      if (sync !== undefined) st.send.advanceSync(sync);
      else await st.send.advance();
      this.#sealed++;
      return encodeFrame(frame('MSG', { seq, ct }));
    } finally {
      erase(padded, inner);
    }
  }

  #establish(sid: Uint8Array, sendCk: Uint8Array, recvCk: Uint8Array): Established {
    return {
      kind: 'ESTABLISHED',
      sid,
      send: new Chain(this.#c, sendCk),
      recv: new Chain(this.#c, recvCk),
      sendNumbers: new MessageNumbers(messageAdPrefix(sid, this.#self.nick, this.peerNick, this.room)),
      recvNumbers: new MessageNumbers(messageAdPrefix(sid, this.peerNick, this.#self.nick, this.room)),
    };
  }

  async #decryptSecret(ct: Uint8Array): Promise<Uint8Array> {
    const s = await this.#c.oaepDecrypt(this.#self.key, ct);
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

  #ephemeral(): Promise<X25519KeyPair> {
    return this.#c.x25519KeyPair(this.#deterministic ? this.#draw(32) : undefined);
  }

  #fail(err: ProtocolError): SessionEvent[] {
    erasePhase(this.#phase);
    this.#phase = { kind: 'FAILED' };
    void this.#takeEarly().then((e) => erase(e?.sR));
    return [{ kind: 'rejected', error: err }];
  }

  #close(): void {
    this.#epoch++;
    erasePhase(this.#phase);
    this.#phase = { kind: 'CLOSED' };
    // An early response never used: its s_R is erased once made (or at once, if made already).
    void this.#takeEarly().then((e) => erase(e?.sR));
  }
}

/** Erases what a phase holds. X25519 private keys are handles of the backend: dropped, not wiped. */
function erasePhase(p: Phase): void {
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

/** Any failure as a ProtocolError; an unexpected exception (a bug, not the peer) is INTERNAL_ERROR. */
function asProtocolError(e: unknown): ProtocolError {
  if (isProtocolError(e)) return e;
  return new ProtocolError('INTERNAL_ERROR' satisfies ErrorName, e instanceof Error ? e.message : String(e));
}
