/**
 * One relay connection of the client (spec §7.1, §7.3, §7.4), the `Receiver`/`Sender` half of ChatClient
 * (issue 11 point 2, after ws): it owns the transport (src/client/transport.ts), runs the §7.4 machine of
 * src/protocol/client-machine.ts row by row, paces what it writes (a token bucket inside WELCOME.rate)
 * and keeps the connection alive (PING after idle_ms / KEEPALIVE_DIVISOR, a dead relay noticed within the
 * PONG deadline). Room traffic goes up to its `ConnectionEvents` (the members, src/client/members.ts);
 * it knows nothing of sessions or pins. Node-free: it runs in a page over a WebSocket as over TCP.
 *
 * A connection lives once: after CLOSED it reports nothing more, and a reconnect is a new connection.
 */
import { decodeFrame, encodeFrame, frame, type Frame, type FrameOf, type Member, type RelayFrame } from '../codec/index.js';
import type { CryptoBackend, RsaPrivateKey } from '../crypto/backend.js';
import { authMessage } from '../crypto/identity.js';
import { clientTransition, errorInput, type ClientInput, type ClientState, type ClientTransition } from '../protocol/client-machine.js';
import { ProtocolError, wireErrorName, type ErrorName } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { isRoom, ROOM_RULE } from '../protocol/names.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import type { Transport, TransportFactory } from './transport.js';

/** Why a connection ended or an operation was refused; the CLI maps each kind to an exit status. */
export type FailureKind = 'connect' | 'auth' | 'room' | 'connection' | 'protocol' | 'certificate';

export class ClientFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    detail: string,
    /** The protocol error behind the failure: received in an ERROR frame, or found in the relay's input. */
    readonly error?: ProtocolError,
  ) {
    super(error ? `${detail} (${error.errorName})` : detail);
    this.name = 'ClientFailure';
  }
}

/** The limits the relay announced in WELCOME (spec §6). */
export interface Welcome {
  idleMs: number;
  maxFrame: number;
  roomSize: number;
  rate: number;
}

/**
 * §7.4: after a PING, the relay must be heard from (any frame) within min(PONG_TIMEOUT_MS, the PING
 * interval), or the connection is dead: a frozen relay is noticed even while TCP stays open.
 */
export const PONG_TIMEOUT_MS = 10_000;
/** Local bound on frames waiting for the rate limiter or a slow socket: a local caller's mistake, not a peer's. */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/** The §7.4 states before WELCOME: connect() is still under way in each. */
const BEFORE_WELCOME: ReadonlySet<ClientState> = new Set<ClientState>(['AWAIT_CHALLENGE', 'AWAIT_WELCOME', 'AWAIT_WELCOME_JOINED']);

/** What a connection hands up. Every call but `closed` comes from inside `batch`; a ProtocolError thrown there fails the connection. */
export interface ConnectionEvents {
  /** Runs the handling of one read from the relay (the facade delivers the events it raised afterwards). */
  batch(run: () => void): void;
  /** JOINED, checked against our JOIN and the announced room size; `epoch` the room's (§7.1 "Room epoch"). */
  joined(room: string, members: readonly Member[], epoch: number): void;
  /** PEER_JOINED at `epoch`: the members check it is the next one (§7.4, INVALID_FIELD). */
  peerJoined(nick: string, key: Uint8Array, epoch: number): void;
  peerLeft(nick: string, epoch: number): void;
  deliver(from: string, body: Uint8Array): void;
  /** A non-closing ERROR (§9): the connection stays in its state. */
  relayError(error: ProtocolError): void;
  /** The connection is CLOSED: `failure` null after close(null); called once. */
  closed(failure: ClientFailure | null): void;
}

export interface ConnectionOptions {
  nick: string;
  /** Our identity key, DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
  /** Our private key as a handle of `crypto` (signs AUTH, §7.3). */
  key: Promise<RsaPrivateKey>;
  crypto: CryptoBackend;
  transport: TransportFactory;
  /**
   * The relay's identity as this client addresses it (spec §7.3): CHALLENGE.relay must equal it byte for
   * byte (else WRONG_RELAY, nothing signed) and AUTH signs it. null: sign over the name the relay
   * announces, for a page served by that very relay (it has no other name to compare with).
   */
  relayName: string | null;
  /** Milliseconds from opening the transport to WELCOME (default HANDSHAKE_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /**
   * Take the nickname over (spec §7.5): RECOVER {sig, code, commit} in place of AUTH. The code is zeroed
   * once WELCOME arrives.
   */
  recover?: { code: Uint8Array; commit: Uint8Array };
}

/** Which failure an ERROR code received from the relay means (spec §9). */
function failureKindOf(name: ErrorName | undefined): FailureKind {
  switch (name) {
    case 'AUTH_FAILED':
    case 'NICK_BOUND':
    case 'BAD_PUBLIC_KEY':
      return 'auth';
    case 'ROOM_FULL':
    case 'NICK_IN_ROOM':
      return 'room';
    case 'TIMEOUT':
    case 'SERVER_SHUTDOWN':
    case 'TOO_MANY_CONNECTIONS':
    case 'RATE_LIMITED':
    case 'SLOW_CONSUMER':
    case 'INTERNAL_ERROR':
      return 'connection';
    default:
      return 'protocol';
  }
}

/** The ProtocolError an ERROR frame from the relay carries; an unknown or end-to-end code is UNEXPECTED_FRAME (§9). */
function relayError(f: FrameOf<'ERROR'>): ProtocolError {
  const wire = wireErrorName(f.code);
  return new ProtocolError(wire ?? 'UNEXPECTED_FRAME', wire ? f.detail : `relay sent unknown error code ${f.code}`);
}

type Timer = ReturnType<typeof setTimeout>;

/** Node's timers can be told not to hold the process open; a page's timers are numbers. */
function unref(t: Timer): Timer {
  (t as { unref?: () => void }).unref?.();
  return t;
}

export class RelayConnection {
  /** §7.4: the machine starts in AWAIT_CHALLENGE, entered when connect() sends HELLO. */
  private stateValue: ClientState = 'AWAIT_CHALLENGE';
  private socket: Transport | null = null;
  private welcomeInfo: Welcome | null = null;
  private failureValue: ClientFailure | null = null;
  private announced: string | undefined;
  private started = false;
  /** AUTH (or RECOVER) has been written: a JOIN may follow it (§7.4). */
  private authSent = false;
  /** Frames written to the relay (wireCounts). */
  private sent = 0;

  private pendingConnect: { resolve: (w: Welcome) => void; reject: (e: ClientFailure) => void } | null = null;
  private pendingJoin: { room: string; resolve: (m: readonly Member[]) => void; reject: (e: ClientFailure) => void } | null = null;
  /** A join() made before AUTH was written: its JOIN goes right behind AUTH (§7.4 "JOIN behind AUTH"). */
  private joinBehindAuth = false;
  /** §7.5: SET_RECOVERY sent, RECOVERY_SET awaited. */
  private pendingRecovery: { commit: Uint8Array; resolve: () => void; reject: (e: ClientFailure) => void } | null = null;
  private pendingLeave: (() => void) | null = null;
  private leaveFinal = false;

  // Output pacing (token bucket) and keepalive.
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private tokens = 0;
  private lastRefill = 0;
  private pumpTimer: Timer | null = null;
  private waitingDrain = false;
  private keepalive: Timer | null = null;
  private keepaliveMs = 0;
  /** Armed by a PING, cleared by any frame from the relay: a relay that stays silent is dead (§7.4). */
  private pongTimer: Timer | null = null;
  private pongDeadlineMs = PONG_TIMEOUT_MS;
  private connectTimer: Timer | null = null;
  private pingCounter = 0;

  constructor(
    private readonly opts: ConnectionOptions,
    private readonly up: ConnectionEvents,
  ) {}

  get state(): ClientState {
    return this.stateValue;
  }

  get welcome(): Welcome | null {
    return this.welcomeInfo;
  }

  /** CHALLENGE.relay of the CHALLENGE (untrusted text): what a relay refused as WRONG_RELAY called itself. */
  get announcedRelay(): string | undefined {
    return this.announced;
  }

  /** Why the connection ended, once CLOSED by a failure. */
  get failure(): ClientFailure | null {
    return this.failureValue;
  }

  get framesSent(): number {
    return this.sent;
  }

  /** Opens the transport and authenticates (§7.3). Rejects with ClientFailure `connect`, `auth`, `connection` or `protocol`. */
  connect(): Promise<Welcome> {
    if (this.started) return Promise.reject(new ClientFailure('protocol', 'connect() called twice'));
    this.started = true;
    return new Promise<Welcome>((resolve, reject) => {
      this.pendingConnect = { resolve, reject };
      let connected = false;
      this.connectTimer = unref(setTimeout(() => this.onEvent('timeout'), this.opts.connectTimeoutMs ?? LIMITS.HANDSHAKE_TIMEOUT_MS));
      this.socket = this.opts.transport({
        open: () => {
          if (this.stateValue === 'CLOSED') return;
          connected = true;
          this.write(frame('HELLO', { version: PROTOCOL_VERSION, nick: this.opts.nick, key: this.opts.spki }));
        },
        data: (body) => this.onData(body),
        invalid: (error) => this.onData(null, error),
        drain: () => {
          this.waitingDrain = false;
          this.pump();
        },
        close: (reason, kind) => this.onEvent('disconnect', new ClientFailure(kind ?? (connected ? 'connection' : 'connect'), reason ?? 'connection closed by the relay')),
      });
    });
  }

  /**
   * JOIN (§7.1); resolves with the members JOINED lists, rejects ClientFailure `room` on ROOM_FULL / NICK_IN_ROOM.
   * Called while connect() is under way (before WELCOME), the JOIN is sent right behind AUTH (§7.4 "JOIN
   * behind AUTH": one round trip less) and the promise settles as for a JOIN in READY; a refused AUTH
   * rejects it with connect()'s failure.
   */
  join(room: string): Promise<readonly Member[]> {
    // Checked here, not by the codec: a JOIN behind AUTH is encoded in the signing callback, where a throw
    // would be an unhandled rejection instead of this promise's.
    if (!isRoom(room)) return Promise.reject(new RangeError(`room: ${ROOM_RULE}`));
    // One JOIN at a time: a second join() while one is pending (sent, or held behind AUTH) is refused, or it
    // would replace the first, whose promise would never settle.
    const early = BEFORE_WELCOME.has(this.stateValue);
    const tr = clientTransition(this.stateValue, 'join');
    if (this.pendingJoin !== null || (!early && tr === undefined)) {
      return Promise.reject(this.failureValue ?? new ClientFailure('protocol', `join() in state ${this.stateValue}${this.pendingJoin === null ? '' : ' with a JOIN pending'}`));
    }
    return new Promise((resolve, reject) => {
      this.pendingJoin = { room, resolve, reject };
      if (this.stateValue === 'AWAIT_CHALLENGE' || (this.stateValue === 'AWAIT_WELCOME' && !this.authSent)) this.joinBehindAuth = true;
      else this.run(tr!);
    });
  }

  /**
   * SET_RECOVERY (spec §7.5) with `commit`; resolves on RECOVERY_SET. Only in READY (before JOIN).
   */
  registerRecovery(commit: Uint8Array): Promise<void> {
    const tr = clientTransition(this.stateValue, 'set_recovery');
    if (tr === undefined) return Promise.reject(this.failureValue ?? new ClientFailure('protocol', `registerRecovery() in state ${this.stateValue}`));
    return new Promise<void>((resolve, reject) => {
      this.pendingRecovery = { commit, resolve, reject };
      this.run(tr);
    });
  }

  /** True when LEAVE may be sent now (§7.4). */
  mayLeave(): boolean {
    return clientTransition(this.stateValue, 'leave') !== undefined;
  }

  /**
   * LEAVE, resolved on LEFT, on the end of the connection, or after `timeoutMs` (a relay that never
   * answers). `final`: the connection is to end anyway, so the relay closing it after LEAVE is no failure.
   */
  leave(final: boolean, timeoutMs?: number): Promise<void> {
    const tr = clientTransition(this.stateValue, 'leave');
    if (tr === undefined) return Promise.resolve();
    this.leaveFinal = final;
    return new Promise<void>((resolve) => {
      this.pendingLeave = resolve;
      this.run(tr);
      if (timeoutMs !== undefined) unref(setTimeout(resolve, timeoutMs));
    });
  }

  /**
   * A SEND to one member (§7.1), only IN_ROOM: a handshake step that completes after LEAVE (AWAIT_LEFT)
   * or after LEFT has no member to reach, and the relay fails a connection that sends outside a room.
   */
  send(to: string, body: Uint8Array): void {
    if (this.stateValue !== 'IN_ROOM') return;
    this.write(frame('SEND', { to, body }));
  }

  /** Fails the connection with `err`: the relay is told its code (wire codes only, §9), then the connection closes. */
  abort(err: ProtocolError, detail: string): void {
    this.sendError(err);
    this.close(new ClientFailure('protocol', detail, err));
  }

  /** Ends the connection (no LEAVE); `failure` null for a local close. */
  close(failure: ClientFailure | null): void {
    if (this.stateValue === 'CLOSED') return;
    this.failureValue = failure;
    this.finish(failure);
  }

  // ---- relay input ----

  /** One frame body from the transport (or the framing error it met after the bodies before it, §3). */
  private onData(body: Uint8Array | null, framing?: ProtocolError): void {
    if (this.stateValue === 'CLOSED') return;
    if (this.pongTimer !== null) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
    // One write per read (STYLE.md rule 13): what this frame causes, and what the listeners send when its
    // events are delivered, leaves together when the transport is uncorked.
    const sock = this.socket;
    sock?.cork();
    try {
      this.up.batch(() => this.parse(body, framing));
    } finally {
      sock?.uncork();
    }
  }

  private parse(body: Uint8Array | null, framing?: ProtocolError): void {
    try {
      if (framing !== undefined) throw framing;
      // §3.1, §7.4: one body per message, under the same MAX_FRAME_BYTES.
      if (body === null || body.length === 0) throw new ProtocolError('MALFORMED_FRAME', 'empty message');
      if (body.length > LIMITS.MAX_FRAME_BYTES) throw new ProtocolError('FRAME_TOO_LARGE', `message of ${body.length} bytes`);
      this.onFrame(decodeFrame(body, 'relay'));
    } catch (e) {
      // §3: the first error on a connection is final; tell the relay why (codes 1-31 only) and close.
      this.abort(e instanceof ProtocolError ? e : new ProtocolError('INTERNAL_ERROR', String(e)), 'the relay sent an invalid frame');
    }
  }

  /** §7.4: one table row per frame; a (state, frame) pair not in the table is UNEXPECTED_FRAME. */
  private onFrame(f: RelayFrame): void {
    const input: ClientInput = f.type === 'ERROR' ? errorInput(this.stateValue, f.code) : f.type;
    const tr = clientTransition(this.stateValue, input);
    if (tr === undefined) throw new ProtocolError('UNEXPECTED_FRAME', `${f.type} in client state ${this.stateValue}`);
    this.run(tr, f);
  }

  /** A local event (§7.4 `timeout`, `disconnect`): ignored where the table has no row (the machine is past it). */
  private onEvent(on: 'timeout' | 'disconnect', failure?: ClientFailure): void {
    const tr = clientTransition(this.stateValue, on);
    if (tr !== undefined) this.run(tr, undefined, failure);
  }

  /**
   * Runs one row: the state advances first (a listener called from the step sees the new state), then the
   * step. Rows that end in CLOSED leave that to the step, which closes through finish().
   */
  private run(tr: ClientTransition, f?: RelayFrame, failure?: ClientFailure): void {
    if (tr.next !== 'CLOSED') this.stateValue = tr.next;
    const as = <T extends RelayFrame['type']>(_: T) => f as FrameOf<T>;
    switch (tr.row.step) {
      case 'auth':
        return this.onChallenge(as('CHALLENGE'));
      case 'welcome': {
        const w = as('WELCOME');
        return this.onWelcome({ idleMs: w.idle_ms, maxFrame: w.max_frame, roomSize: w.room_size, rate: w.rate });
      }
      case 'join':
        return this.write(frame('JOIN', { room: this.pendingJoin!.room }));
      case 'set-recovery':
        return this.write(frame('SET_RECOVERY', { commit: this.pendingRecovery!.commit }));
      case 'recovery-set': {
        const r = this.pendingRecovery!;
        this.pendingRecovery = null;
        return r.resolve();
      }
      case 'joined':
        return this.onJoined(as('JOINED').room, as('JOINED').members, as('JOINED').epoch);
      case 'join-refused': {
        const j = this.pendingJoin!;
        this.pendingJoin = null;
        j.reject(new ClientFailure('room', `cannot join room ${j.room}`, relayError(as('ERROR'))));
        return;
      }
      case 'peer-joined':
        return this.up.peerJoined(as('PEER_JOINED').nick, as('PEER_JOINED').key, as('PEER_JOINED').epoch);
      case 'peer-left':
        return this.up.peerLeft(as('PEER_LEFT').nick, as('PEER_LEFT').epoch);
      case 'deliver':
        return this.up.deliver(as('DELIVER').from, as('DELIVER').body);
      case 'leave':
        return this.write(frame('LEAVE', {}));
      case 'ignore':
        // After LEAVE the relay may still have room traffic in flight (§7.1 "Leaving"); a PONG answers our
        // keepalive and needs nothing more.
        return;
      case 'left': {
        const done = this.pendingLeave;
        this.pendingLeave = null;
        done?.();
        return;
      }
      case 'relay-error':
        // Non-closing refusals (§9): the connection stays in its state.
        return this.up.relayError(relayError(as('ERROR')));
      case 'relay-closed': {
        const err = relayError(as('ERROR'));
        const kind = failureKindOf(wireErrorName(as('ERROR').code));
        return this.close(new ClientFailure(kind, kind === 'auth' ? 'the relay refused authentication' : 'the relay closed the connection', err));
      }
      case 'timeout':
        return this.close(
          new ClientFailure('connection', BEFORE_WELCOME.has(tr.state) ? 'no WELCOME from the relay in time' : `the relay did not answer a PING within ${this.pongDeadlineMs} ms`),
        );
      case 'disconnect':
        if (tr.state === 'AWAIT_LEFT' && this.pendingLeave && this.leaveFinal) return this.finish(null);
        return this.close(failure!);
    }
  }

  private onChallenge(c: FrameOf<'CHALLENGE'>): void {
    if (c.version !== PROTOCOL_VERSION) throw new ProtocolError('UNSUPPORTED_VERSION', `relay speaks version ${c.version}`);
    // §7.3: the relay must name itself as the relay this client addressed before anything is signed.
    this.announced = c.relay;
    const relay = this.opts.relayName ?? c.relay;
    if (c.relay !== relay) throw new ProtocolError('WRONG_RELAY', 'CHALLENGE names another relay than the one addressed');
    const cb = this.socket?.channelBinding?.() ?? new Uint8Array(0);
    const { crypto, key, nick, spki } = this.opts;
    const message = authMessage(c.nonce, nick, spki, relay, cb);
    // §7.5: a takeover carries the same signature, the user's code and the next code's commitment.
    const r = this.opts.recover;
    // The signature is the backend's (asynchronous on WebCrypto); the machine is in AWAIT_WELCOME meanwhile.
    key
      .then((k) => crypto.pssSign(k, message))
      .then(
        (sig) => {
          // A join() made meanwhile: its JOIN leaves right behind the AUTH, in the same write (§7.4).
          const sock = this.socket;
          sock?.cork();
          try {
            this.write(r === undefined ? frame('AUTH', { sig }) : frame('RECOVER', { sig, code: r.code, commit: r.commit }));
            this.authSent = true;
            const tr = clientTransition(this.stateValue, 'join');
            if (this.joinBehindAuth && tr !== undefined) {
              this.joinBehindAuth = false;
              this.run(tr);
            }
          } finally {
            sock?.uncork();
          }
        },
        (e: unknown) => this.close(new ClientFailure('protocol', 'cannot sign AUTH with our key', new ProtocolError('INTERNAL_ERROR', String(e)))),
      );
  }

  private onWelcome(w: Welcome): void {
    if (w.maxFrame < minimumMaxFrame()) {
      // The handshake (§8.2) and the smallest padded message (§8.3) could never be relayed.
      throw new ProtocolError('INVALID_FIELD', `WELCOME.max_frame ${w.maxFrame} is below the ${minimumMaxFrame()} bytes a session needs`);
    }
    this.welcomeInfo = w;
    this.opts.recover?.code.fill(0);
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    // HELLO and AUTH (and a JOIN behind it) already spent the relay's tokens.
    this.tokens = Math.max(0, pacingBucket(w.rate) - this.sent);
    this.lastRefill = performance.now();
    // §7.1 "Timeouts": PING when nothing was sent for idle_ms / KEEPALIVE_DIVISOR.
    this.keepaliveMs = Math.max(1, Math.floor(w.idleMs / LIMITS.KEEPALIVE_DIVISOR));
    this.pongDeadlineMs = Math.min(PONG_TIMEOUT_MS, this.keepaliveMs);
    this.keepalive = unref(setTimeout(() => this.ping(), this.keepaliveMs));
    const c = this.pendingConnect;
    this.pendingConnect = null;
    c?.resolve(w);
  }

  private ping(): void {
    if (this.stateValue === 'CLOSED') return;
    this.pingCounter = this.pingCounter >= LIMITS.MAX_UINT ? 0 : this.pingCounter + 1;
    this.write(frame('PING', { n: this.pingCounter }));
    // No frame at all from the relay within the deadline: it is frozen or gone, whatever TCP says.
    if (this.pongTimer === null) {
      this.pongTimer = unref(
        setTimeout(() => {
          this.pongTimer = null;
          this.onEvent('timeout');
        }, this.pongDeadlineMs),
      );
    }
  }

  private onJoined(room: string, members: Member[], epoch: number): void {
    const j = this.pendingJoin!;
    if (room !== j.room) throw new ProtocolError('INVALID_FIELD', `JOINED names room ${room}, we asked for ${j.room}`);
    const seen = new Set<string>();
    for (const m of members) {
      if (m.nick === this.opts.nick || seen.has(m.nick)) throw new ProtocolError('INVALID_FIELD', `JOINED lists ${m.nick} twice or lists us`);
      seen.add(m.nick);
    }
    // The relay announced its room size in WELCOME (§6): a JOINED listing more members than it allows is
    // the relay inventing members (issue 14 point 7).
    if (members.length + 1 > this.welcomeInfo!.roomSize) {
      throw new ProtocolError('INVALID_FIELD', `JOINED lists ${members.length} members; the announced room size is ${this.welcomeInfo!.roomSize}`);
    }
    this.pendingJoin = null;
    this.up.joined(room, members, epoch);
    j.resolve(members);
  }

  // ---- output ----

  private write(f: Frame): void {
    if (this.socket === null || this.stateValue === 'CLOSED') return;
    this.sent++;
    const buf = this.socket.encode(f);
    if (this.queuedBytes + buf.length > MAX_QUEUED_BYTES) throw new Error('client send queue is full');
    this.queue.push(buf);
    this.queuedBytes += buf.length;
    this.pump();
  }

  /** Writes queued frames while the token bucket (WELCOME.rate per second) and the transport allow. */
  private pump(): void {
    const sock = this.socket;
    if (sock === null || this.stateValue === 'CLOSED' || this.waitingDrain) return;
    const w = this.welcomeInfo;
    if (w !== null) {
      const now = performance.now();
      this.tokens = Math.min(pacingBucket(w.rate), this.tokens + ((now - this.lastRefill) * pacingRate(w.rate)) / 1000);
      this.lastRefill = now;
    }
    while (this.queue.length > 0) {
      if (w !== null && this.tokens < 1) break;
      const buf = this.queue.shift()!;
      this.queuedBytes -= buf.length;
      if (w !== null) this.tokens -= 1;
      const ok = sock.write(buf);
      this.refreshKeepalive();
      if (!ok) {
        this.waitingDrain = true;
        return;
      }
    }
    if (this.queue.length > 0 && this.pumpTimer === null && w !== null) {
      const ms = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / pacingRate(w.rate)));
      this.pumpTimer = setTimeout(() => {
        this.pumpTimer = null;
        this.pump();
      }, ms);
    }
  }

  /** The keepalive counts from the last write (§7.1): Node refreshes its timer, elsewhere it is set again. */
  private refreshKeepalive(): void {
    const k = this.keepalive;
    if (k === null) return;
    const refresh = (k as { refresh?: () => void }).refresh;
    if (refresh !== undefined) refresh.call(k);
    else {
      clearTimeout(k);
      this.keepalive = setTimeout(() => this.ping(), this.keepaliveMs);
    }
  }

  private sendError(err: ProtocolError): void {
    const sock = this.socket;
    if (sock === null || err.scope !== 'wire' || this.stateValue === 'CLOSED') return;
    try {
      sock.write(sock.encode(frame('ERROR', { code: err.code, detail: '' })));
    } catch {
      // The connection is being torn down anyway.
    }
  }

  private finish(failure: ClientFailure | null): void {
    if (this.stateValue === 'CLOSED') return;
    this.stateValue = 'CLOSED';
    for (const t of [this.keepalive, this.pumpTimer, this.connectTimer, this.pongTimer]) if (t) clearTimeout(t);
    this.keepalive = this.pumpTimer = this.connectTimer = this.pongTimer = null;
    this.queue.length = 0;
    this.queuedBytes = 0;
    // end() flushes what is written (a LEAVE or an ERROR) before closing.
    this.socket?.end();
    const c = this.pendingConnect;
    this.pendingConnect = null;
    c?.reject(failure ?? new ClientFailure('connection', 'closed before WELCOME'));
    const j = this.pendingJoin;
    this.pendingJoin = null;
    j?.reject(failure ?? new ClientFailure('connection', 'closed before JOINED'));
    const rs = this.pendingRecovery;
    this.pendingRecovery = null;
    rs?.reject(failure ?? new ClientFailure('connection', 'closed before RECOVERY_SET'));
    const l = this.pendingLeave;
    this.pendingLeave = null;
    l?.();
    this.up.closed(failure);
  }
}

/**
 * The client's own token bucket stays inside the relay's (§7.1: `rate` per second, RATE_BURST_FRAMES
 * deep) with a margin: the relay counts frames when they arrive, and the network can bunch frames that
 * left evenly spaced. So: half the relay's bucket, and 95 % of its rate.
 */
function pacingBucket(rate: number): number {
  return Math.max(1, Math.floor(Math.min(rate, LIMITS.RATE_BURST_FRAMES) / 2));
}

function pacingRate(rate: number): number {
  return rate * 0.95;
}

let minMaxFrame = 0;

/** The smallest WELCOME.max_frame a session can work with: a SEND carrying HS_RESP, or the smallest MSG. */
export function minimumMaxFrame(): number {
  if (minMaxFrame === 0) {
    const to = 'n'.repeat(LIMITS.NICK_MAX_BYTES);
    const r = (n: number) => new Uint8Array(n);
    const hsResp = encodeFrame(frame('HS_RESP', { eph: r(LIMITS.X25519_BYTES), ct: r(LIMITS.RSA_BYTES), sig: r(LIMITS.RSA_BYTES), mac: r(LIMITS.MAC_BYTES) }));
    const msg = encodeFrame(frame('MSG', { seq: LIMITS.MAX_UINT, ct: r(LIMITS.PAD_MIN_BYTES + 16) }));
    minMaxFrame = Math.max(...[hsResp, msg].map((body) => encodeFrame(frame('SEND', { to, body })).length));
  }
  return minMaxFrame;
}

const maxTextCache = new Map<number, number>();

/**
 * The largest text whose SEND frame fits in `maxFrame` bytes: the largest padding bucket B (§8.3) whose
 * worst-case SEND{to: 32-byte nick, body: MSG{seq: MAX_UINT, ct: B + 16}} body fits, minus the worst-case
 * TEXT frame overhead. Measured with the real encoder, not estimated.
 */
export function maxTextFor(maxFrame: number): number {
  const hit = maxTextCache.get(maxFrame);
  if (hit !== undefined) return hit;
  const sendSize = (bucket: number) =>
    encodeFrame(
      frame('SEND', {
        to: 'n'.repeat(LIMITS.NICK_MAX_BYTES),
        body: encodeFrame(frame('MSG', { seq: LIMITS.MAX_UINT, ct: new Uint8Array(bucket + 16) })),
      }),
    ).length;
  // TEXT overhead at its largest string header (str 16, for texts of 256 bytes and more).
  const textOverhead = encodeFrame(frame('TEXT', { ts: LIMITS.MAX_UINT, text: 'x'.repeat(256) })).length - 256;
  let result = 0;
  for (let b = LIMITS.PAD_MAX_BYTES; b >= LIMITS.PAD_MIN_BYTES; b /= 2) {
    if (sendSize(b) <= maxFrame) {
      result = Math.min(LIMITS.MAX_TEXT_BYTES, b - 4 - textOverhead);
      break;
    }
  }
  maxTextCache.set(maxFrame, result);
  return result;
}
