/**
 * The reference client as a library: one relay connection (spec §7.1, §7.3), one room, and one
 * end-to-end session per other member (spec §7.2, §8). No terminal here: the CLI (src/cli/client.ts),
 * the demo, the benchmarks and the tests all drive this class and listen to its events.
 *
 * What it does, in the order a connection lives:
 * - `connect()`: TCP, HELLO, CHALLENGE, AUTH signed per §7.3, WELCOME (limits in force).
 * - `join(room)`: JOIN, then JOINED (we are the initiator towards every member listed) or ERROR
 *   ROOM_FULL / NICK_IN_ROOM. Members arriving later (PEER_JOINED) are responders (§7.2).
 * - Every member's identity key is checked against the trust-on-first-use pins first (PinStore) and pinned
 *   once a session with it is established; a key
 *   that differs from the pin blocks all traffic with that member and emits `key-changed` until `trust()`.
 * - `send(text)`: to every member through its own session; queued until the session is established,
 *   and kept as unacknowledged until the peer's ACK (§8.3 step 6) arrives. When a member leaves or the
 *   connection drops, whatever it never acknowledged is reported, never dropped silently.
 * - Keepalive: PING once nothing has been sent for `idle_ms / KEEPALIVE_DIVISOR` (§7.1 "Timeouts").
 * - Pacing: frames leave through a token bucket of WELCOME.rate frames per second (§7.1 "Resource limits").
 *
 * Nothing the relay or a peer sends throws out of this class: relay violations end the connection with a
 * `closed` event carrying a ClientFailure; peer violations are `rejected` events for that peer only.
 */
import { EventEmitter } from 'node:events';
import type { KeyObject } from 'node:crypto';
import { decodeFrame, encodeFrame, encodeWire, frame, FrameReader, type Frame, type FrameOf, type Member, type RelayFrame } from '../codec/index.js';
import { ProtocolError, wireErrorName, type ErrorName } from '../protocol/errors.js';
import { clientTransition, errorInput, type ClientInput, type ClientState, type ClientTransition } from '../protocol/client-machine.js';
import { LIMITS } from '../protocol/limits.js';
import { isNick, isRoom, NICK_RULE, ROOM_RULE } from '../protocol/names.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { authMessage, pssSign } from '../crypto/rsa.js';
import { fingerprint, safetyNumber } from '../crypto/safety.js';
import type { CryptoBackend, RsaPrivateKey, RsaPublicKey } from '../crypto/backend.js';
import { nodeBackend, nodePrivateKey } from '../crypto/node.js';
import { PeerSession, type SessionEvent } from '../handshake/session.js';
import { PinStore, type PinCheck } from './pins.js';
import { RosterAgreement, type RosterReport } from './roster.js';
import { relayIdentity } from '../protocol/relay-id.js';
import { tcpTransport } from './tcp.js';
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

export interface ChatClientOptions {
  host: string;
  port: number;
  nick: string;
  /** The identity key pair; `spki` is the public key as DER SubjectPublicKeyInfo (294 bytes). */
  identity: { privateKey: KeyObject; spki: Uint8Array };
  /** Trust-on-first-use pins; default an in-memory store (every key is new to it). */
  pins?: PinStore;
  /**
   * The relay's identity as this client addresses it (spec §7.3): CHALLENGE.relay must equal it byte for
   * byte (else WRONG_RELAY) and AUTH signs it. Default relayIdentity(host, port): what was dialled, canonical.
   */
  relayName?: string;
  /** Room secret (spec §8.2 `psk`), any length from 1 byte. */
  psk?: Uint8Array;
  /** Milliseconds an end-to-end handshake may take (default E2E_HANDSHAKE_TIMEOUT_MS). */
  handshakeTimeoutMs?: number;
  /**
   * What carries the relay connection (src/client/transport.ts): default TCP to host:port. A message
   * transport (one frame body per message, spec §3.1) works the same.
   */
  transport?: TransportFactory;
  /** Milliseconds from TCP connect to WELCOME before giving up (default HANDSHAKE_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /** The cryptography of the end-to-end sessions (default node:crypto, src/crypto/node.ts). */
  crypto?: CryptoBackend;
  /**
   * Reconnect after a lost connection (ReconnectPolicy); default off: a lost connection is `closed`. Only a
   * connection that had joined its room is re-established, and only after a `connect` or `connection`
   * failure (a relay gone, frozen or shutting down); a refusal of AUTH or a protocol violation is final.
   */
  reconnect?: ReconnectPolicy;
  /** Milliseconds a peer's roster commitment for an epoch we have not reached waits (default ROSTER_WAIT_MS, §8.6). */
  rosterWaitMs?: number;
  /**
   * Take the nickname over (spec §7.5): the first connection sends RECOVER with `code` (the user's
   * recovery code, 16 bytes) and `commit` (the commitment of a fresh code, which the caller shows once
   * WELCOME arrives) instead of AUTH; later connections (reconnects) send AUTH.
   */
  recover?: { code: Uint8Array; commit: Uint8Array };
}

/**
 * How a lost connection is re-established: attempt n waits a random time between half and all of
 * min(maxMs, baseMs * 2^(n-1)) (exponential back-off with jitter, so clients dropped together do not
 * come back together), then connects, authenticates with the key already held, and joins the same room.
 * A join refused while reconnecting (NICK_IN_ROOM: the relay has not yet noticed our old connection;
 * ROOM_FULL) is retried the same way. After `giveUpMs` without success the client is `closed`.
 */
export interface ReconnectPolicy {
  /** First delay ceiling in ms (default RECONNECT.BASE_MS). */
  baseMs?: number;
  /** Largest delay ceiling in ms (default RECONNECT.MAX_MS). */
  maxMs?: number;
  /** Give up this many ms after the drop (default Infinity: until close()). */
  giveUpMs?: number;
  /** Uniform [0, 1) source for the jitter (default Math.random; a test may fix it). */
  random?: () => number;
}

export const RECONNECT = { BASE_MS: 500, MAX_MS: 30_000, MAX_HELD_TEXTS: 1000 } as const;

/** The delay before reconnect attempt `attempt` (1, 2, ...): jittered in [ceiling / 2, ceiling). */
export function reconnectDelay(attempt: number, policy: ReconnectPolicy = {}): number {
  const base = policy.baseMs ?? RECONNECT.BASE_MS;
  const max = policy.maxMs ?? RECONNECT.MAX_MS;
  const ceiling = Math.min(max, base * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(ceiling / 2 + (policy.random ?? Math.random)() * (ceiling / 2));
}

/** The limits the relay announced in WELCOME (spec §6). */
export interface Welcome {
  idleMs: number;
  maxFrame: number;
  roomSize: number;
  rate: number;
}

export interface Undelivered {
  /** The member it was for (null is no longer produced: a text is never queued for a future member, issue 14). */
  to: string | null;
  /** The session sequence number, or null when the text never left (no session yet). */
  seq: number | null;
  text: string;
}

export type PeerStatus = 'handshake' | 'established' | 'failed' | 'key-changed' | 'bad-key' | 'throttled';

/**
 * Join churn (issue 14 point 7): a nickname that joins more than CHURN_JOINS times within CHURN_WINDOW_MS
 * is throttled: its joins in the next back-off period are shown only as one collapsed `peer-churn` event,
 * and no handshake is started or answered with it (each costs RSA operations). The back-off starts at
 * CHURN_WINDOW_MS and doubles with each new strike, up to CHURN_MAX_BACKOFF_MS. At most CHURN_TRACKED
 * nicknames are tracked (the oldest forgotten first), so the record itself cannot be flooded.
 */
export const CHURN = { JOINS: 5, WINDOW_MS: 10_000, MAX_BACKOFF_MS: 300_000, TRACKED: 256 } as const;

export interface PeerInfo {
  nick: string;
  fingerprint: string;
  status: PeerStatus;
  verified: boolean;
}

/**
 * What a failed handshake most likely means, when the client can tell (refusalNotice):
 * - `room-secret`: the room secrets differ (or only one side has one): our check of the peer's key
 *   confirmation failed after its signature verified (§8.2), or the peer's notice came after our HS_RESP;
 * - `key-not-accepted`: the peer's client has another key pinned for our nickname and will not start a
 *   session until its user accepts ours (§8.5 step 3).
 */
export type FailureCause = 'room-secret' | 'key-not-accepted';

/**
 * The refusal notice (issue 15 point 2, within v1): v1 has no end-to-end abort frame (§7.2), so a client
 * that refuses a handshake sends its peer one MSG {seq 0, random ct} before the session is established.
 * By the §7.2 table any MSG before ESTABLISHED fails the receiver's machine at once (UNEXPECTED_FRAME)
 * instead of a timeout 30 s later, and the state it arrives in says why: after our HS_RESP (AWAIT_FINISH)
 * the peer refused our key confirmation (room secrets differ); before (IDLE, AWAIT_RESP) the peer refused
 * to start (our key is not the one it pinned). It is not authenticated: a relay can send it too, as it can
 * already fail any handshake by altering it.
 */
function refusalNotice(crypto: CryptoBackend): Uint8Array {
  return encodeFrame(frame('MSG', { seq: 0, ct: crypto.randomBytes(LIMITS.PAD_MIN_BYTES + 16) }));
}

export interface ChatClientEvents {
  /** JOINED: `rejoin` when it re-entered the room after a lost connection (ReconnectPolicy). */
  joined: [{ room: string; members: string[]; rejoin: boolean }];
  'peer-joined': [{ nick: string; fingerprint: string; verified: boolean; firstSeen: boolean }];
  'peer-left': [{ nick: string; undelivered: Undelivered[] }];
  established: [{ nick: string; safetyNumber: string; verified: boolean }];
  text: [{ from: string; seq: number; ts: number; text: string; verified: boolean }];
  sent: [{ to: string; seq: number; text: string }];
  delivered: [{ to: string; seq: number; text: string }];
  /** A peer's frame was refused (spec §7.2 refusals); `fatal` when the session failed because of it. */
  rejected: [{ from: string; error: ProtocolError; fatal: boolean; cause?: FailureCause }];
  /** §8.5 step 3: a valid key that differs from the pin; `error` is KEY_CHANGED (§9). */
  'key-changed': [{ nick: string; pinnedFingerprint: string; offeredFingerprint: string; error: ProtocolError }];
  /**
   * The fingerprint index across relays (issue 14 point 6): `nick` is verified on the relays `elsewhere`
   * with other keys than the `offeredFingerprint` here. Each relay has its own nicknames, so it need not be
   * the same person; but the user who verified one should know before trusting this one.
   */
  'key-elsewhere': [{ nick: string; offeredFingerprint: string; elsewhere: { relay: string; fingerprint: string }[] }];
  /**
   * A member joining and leaving over and over (CHURN): `joins` joins in the last `windowMs` ms; until
   * `until` (epoch ms) its joins and leaves raise no peer-joined / peer-left and it gets no session.
   */
  'peer-churn': [{ nick: string; joins: number; windowMs: number; until: number }];
  /**
   * §8.6: the room this client sees and the room a peer sees differ (`mismatch` at `epoch`), a peer is
   * at an epoch the relay never brought us to (`withheld`), or a peer's commitment cannot be checked
   * (`unverifiable`). The relay shows members different rooms; the connection and sessions carry on.
   */
  'roster-mismatch': [RosterReport];
  /** A non-fatal ERROR from the relay (NO_SUCH_PEER, or a refusal outside a request). */
  'relay-error': [{ error: ProtocolError }];
  /** The connection is gone: `failure` null after close()/leave(), else why; `undelivered` what never got acknowledged. */
  closed: [{ failure: ClientFailure | null; undelivered: Undelivered[] }];
  /**
   * With a ReconnectPolicy: the connection was lost and will be re-established. `undelivered` is what was
   * not acknowledged before the drop: kept by the client for resend() (see there), never sent again by itself.
   */
  'connection-lost': [{ failure: ClientFailure; undelivered: Undelivered[] }];
  /** The next reconnect attempt (1, 2, ...) starts in `delayMs`; `failure` is why the last one ended. */
  reconnecting: [{ attempt: number; delayMs: number; failure: ClientFailure }];
  /** Back in the room (after `joined` with rejoin): `attempts` tried, `downMs` since the drop. */
  reconnected: [{ room: string; members: string[]; attempts: number; downMs: number }];
  /**
   * A listener of `event` threw while the client delivered it (STYLE.md rule 13): the application's own
   * error, never the relay's or a peer's; the connection and the sessions carry on. Without a listener
   * for this event the error is thrown again outside the client (an uncaught exception, as Node reports
   * an application's errors).
   */
  'listener-error': [{ event: keyof ChatClientEvents; error: unknown }];
}

interface Peer {
  nick: string;
  spki: Uint8Array;
  /** The identity key, imported once (the session gets this handle); null until imported. */
  key: RsaPublicKey | null;
  /**
   * Everything done for this peer (key import, session steps, sends) runs as one chain, in arrival
   * order: a session step may be asynchronous (WebCrypto), and a later frame must never overtake it.
   */
  chain: Promise<void>;
  role: 'initiator' | 'responder';
  session: PeerSession | null;
  blocked: boolean;
  badKey: boolean;
  verified: boolean;
  established: boolean;
  /** Texts waiting for the session (sent in order once established). */
  outbox: string[];
  /** Texts sent and not yet acknowledged, by seq. */
  unacked: Map<number, string>;
  /** While there is no session (blocked by a key change), the first few bodies (the peer's HS_INIT) kept for after /trust. */
  held: Uint8Array[];
  timer: NodeJS.Timeout | null;
  /** Joined while throttled (CHURN): no session, no notices, skipped by send(). */
  throttled: boolean;
  /** DELIVER bodies from this peer queued on the chain and not yet handled: the read batch (§8.3 step 6). */
  queued: number;
  /** We sent this peer's machine our refusal notice (refusalNotice): its side is FAILED now. */
  refused: boolean;
}

function newPeer(nick: string, key: Uint8Array, role: 'initiator' | 'responder'): Peer {
  return {
    nick,
    spki: Uint8Array.from(key),
    key: null,
    chain: Promise.resolve(),
    role,
    session: null,
    blocked: false,
    badKey: false,
    verified: false,
    established: false,
    outbox: [],
    unacked: new Map(),
    held: [],
    timer: null,
    throttled: false,
    queued: 0,
    refused: false,
  };
}

const MAX_HELD_BODIES = 4;
/**
 * §7.4: after a PING, the relay must be heard from (any frame) within min(PONG_TIMEOUT_MS, the PING
 * interval), or the connection is dead: a frozen relay is noticed even while TCP stays open.
 */
export const PONG_TIMEOUT_MS = 10_000;
/** Local bound on frames waiting for the rate limiter or a slow socket: a local caller's mistake, not a peer's. */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
const LONE_SURROGATE = /[\ud800-\udfff]/u;

export class ChatClient extends EventEmitter<ChatClientEvents> {
  readonly nick: string;
  readonly serverName: string;
  /** The relay identity checked in CHALLENGE and signed in AUTH (§7.3); see ChatClientOptions.relayName. */
  readonly relayName: string;
  /** CHALLENGE.relay of the last CHALLENGE (untrusted text): what a relay refused as WRONG_RELAY called itself. */
  announcedRelay: string | undefined;
  readonly spki: Uint8Array;
  private readonly opts: ChatClientOptions;
  private readonly pins: PinStore;
  private readonly crypto: CryptoBackend;
  /** Our private key as a handle of `crypto`, imported once. */
  private readonly sessionKey: Promise<RsaPrivateKey>;
  private socket: Transport | null = null;
  private reader = new FrameReader(LIMITS.MAX_FRAME_BYTES);
  /** §7.4: the machine starts in AWAIT_CHALLENGE, entered when connect() sends HELLO. */
  private state: ClientState = 'AWAIT_CHALLENGE';
  private started = false;
  private welcomeInfo: Welcome | null = null;
  private roomName: string | null = null;
  /** §8.6 roster agreement of the room joined on this connection (src/client/roster.ts). */
  private readonly rosters: RosterAgreement;
  /** The latest ROSTER due to each peer and not sealed yet (sendRoster). */
  private readonly rosterDue = new WeakMap<Peer, { epoch: number; hash: Promise<Uint8Array> }>();
  private readonly peers = new Map<string, Peer>();
  /**
   * Members that left while DELIVERs they sent before leaving were still queued on their chain, each
   * with what ends its departure (drop the session, report peer-left; runs at most once).
   */
  private readonly departing = new Map<Peer, () => void>();
  /** A rejoin() is under way (LEAVE, LEFT, JOIN on the same connection). */
  private rejoining = false;
  /** Recent joins per nickname and its back-off (CHURN), oldest first (Map order). */
  private readonly churn = new Map<string, { joins: number[]; until: number; strikes: number; suppressed: number }>();
  private failure: ClientFailure | null = null;
  /** While a lost connection is being re-established (ReconnectPolicy): since when, attempts, the timer. */
  /** leave() or close() was called: a failure from now on is final, never a reason to reconnect. */
  private stopping = false;
  /** Counts connections (transports opened): only the newest one's reports are taken. */
  private generation = 0;
  private recon: { since: number; attempt: number; timer: NodeJS.Timeout | null; room: string } | null = null;
  /** Texts not acknowledged before a drop (and sent while reconnecting), kept for resend(); bounded. */
  private held: Undelivered[] = [];
  /** The members (with a usable key) when the connection dropped: whom a text sent while reconnecting is for. */
  private rosterAtDrop: string[] = [];

  private pendingConnect: { resolve: (w: Welcome) => void; reject: (e: ClientFailure) => void } | null = null;
  private pendingJoin: { room: string; resolve: (m: string[]) => void; reject: (e: ClientFailure) => void } | null = null;
  /** §7.5: SET_RECOVERY sent, RECOVERY_SET awaited. */
  private pendingRecovery: { commit: Uint8Array; resolve: () => void; reject: (e: ClientFailure) => void } | null = null;
  /** §7.5: the takeover still to send (cleared at the first WELCOME). */
  private recoverOnce: { code: Uint8Array; commit: Uint8Array } | undefined;
  private pendingLeave: (() => void) | null = null;
  private settleWaiters = new Set<() => void>();
  /** While a chunk from the relay is parsed: the events it produced, delivered once it is fully handled. */
  private deferred: (() => void)[] | null = null;

  // Output pacing (token bucket) and keepalive.
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  /** Frames written to the relay (wireCounts). */
  private framesSent = 0;
  private tokens = 0;
  private lastRefill = 0;
  private pumpTimer: NodeJS.Timeout | null = null;
  private waitingDrain = false;
  private keepalive: NodeJS.Timeout | null = null;
  /** Armed by a PING, cleared by any frame from the relay: a relay that stays silent is dead (§7.4). */
  private pongTimer: NodeJS.Timeout | null = null;
  private pongDeadlineMs = PONG_TIMEOUT_MS;
  private connectTimer: NodeJS.Timeout | null = null;
  private pingCounter = 0;

  constructor(opts: ChatClientOptions) {
    super();
    if (!isNick(opts.nick)) {
      throw new RangeError(`nick: ${NICK_RULE}`);
    }
    this.opts = opts;
    this.recoverOnce = opts.recover;
    this.nick = opts.nick;
    this.spki = Uint8Array.from(opts.identity.spki);
    this.pins = opts.pins ?? PinStore.memory();
    this.relayName = opts.relayName ?? relayIdentity(opts.host, opts.port);
    // Issue 14 point 6: pins are kept under the name the relay proved it answers to (§7.3), nothing else.
    this.serverName = this.relayName;
    this.crypto = opts.crypto ?? nodeBackend;
    this.rosters = new RosterAgreement(
      { nick: this.nick, key: this.spki },
      {
        sha256: (d) => this.crypto.sha256(d),
        send: (nick, epoch, hash) => this.sendRoster(nick, epoch, hash),
        report: (r) => this.emit('roster-mismatch', r),
      },
      opts.rosterWaitMs,
    );
    const own = opts.identity.privateKey;
    this.sessionKey =
      this.crypto === nodeBackend
        ? Promise.resolve(nodePrivateKey(own))
        : this.crypto.importPrivateKey(new Uint8Array(own.export({ format: 'der', type: 'pkcs8' })));
    // A key the backend cannot take fails every session, each reported; never an unhandled rejection.
    this.sessionKey.catch(() => {});
  }

  /** The limits of WELCOME, once connected. */
  get welcome(): Welcome | null {
    return this.welcomeInfo;
  }

  /**
   * The longest text, in UTF-8 bytes, that `send()` accepts: MAX_TEXT_BYTES, or less when the relay
   * announced a WELCOME.max_frame too small for the SEND frame of a full padding bucket (§3, §8.3).
   */
  maxTextBytes(): number {
    return maxTextFor(this.welcomeInfo?.maxFrame ?? LIMITS.MAX_FRAME_BYTES);
  }

  get room(): string | null {
    return this.roomName;
  }

  get closed(): boolean {
    return this.state === 'CLOSED';
  }

  /** Our own key's fingerprint (spec §8.4). */
  fingerprint(): string {
    return fingerprint(this.spki);
  }

  /** Connects and authenticates (spec §7.3). Rejects with ClientFailure `connect`, `auth`, `connection` or `protocol`. */
  connect(): Promise<Welcome> {
    if (this.started) return Promise.reject(new ClientFailure('protocol', 'connect() called twice'));
    this.started = true;
    return new Promise<Welcome>((resolve, reject) => {
      this.pendingConnect = { resolve, reject };
      let connected = false;
      this.connectTimer = setTimeout(() => this.onEvent('timeout'), this.opts.connectTimeoutMs ?? LIMITS.HANDSHAKE_TIMEOUT_MS);
      this.connectTimer.unref();
      const open = this.opts.transport ?? tcpTransport(this.opts.host, this.opts.port);
      // A transport of an earlier connection (ended, but still reporting) must never reach this one.
      const generation = ++this.generation;
      const mine = () => generation === this.generation;
      this.socket = open({
        open: () => {
          if (!mine()) return;
          connected = true;
          this.write(frame('HELLO', { version: PROTOCOL_VERSION, nick: this.nick, key: this.spki }));
        },
        data: (bytes) => {
          if (mine()) this.onData(bytes);
        },
        drain: () => {
          if (!mine()) return;
          this.waitingDrain = false;
          this.pump();
        },
        close: (reason, kind) => {
          if (mine()) this.onEvent('disconnect', new ClientFailure(kind ?? (connected ? 'connection' : 'connect'), reason ?? 'connection closed by the relay'));
        },
      });
    });
  }

  /** Joins `room` (spec §7.1 JOIN). Resolves with the nicknames already there; rejects ClientFailure `room` on ROOM_FULL / NICK_IN_ROOM. */
  /**
   * Registers a recovery commitment (spec §7.5, SET_RECOVERY) for this nickname; resolves on RECOVERY_SET,
   * after which the caller shows the code once. Only before join() (state READY).
   */
  registerRecovery(commit: Uint8Array): Promise<void> {
    const tr = clientTransition(this.state, 'set_recovery');
    if (tr === undefined) return Promise.reject(this.failure ?? new ClientFailure('protocol', `registerRecovery() in state ${this.state}`));
    return new Promise<void>((resolve, reject) => {
      this.pendingRecovery = { commit, resolve, reject };
      this.run(tr);
    });
  }

  join(room: string): Promise<string[]> {
    if (!isRoom(room)) {
      return Promise.reject(new RangeError(`room: ${ROOM_RULE}`));
    }
    const tr = clientTransition(this.state, 'join');
    if (tr === undefined) return Promise.reject(this.failure ?? new ClientFailure('protocol', `join() in state ${this.state}`));
    return new Promise<string[]>((resolve, reject) => {
      this.pendingJoin = { room, resolve, reject };
      this.run(tr);
    });
  }

  /**
   * Sends `text` (1..MAX_TEXT_BYTES UTF-8 bytes, well-formed) to the members present now (all, or those
   * named in `opts.to`), each through its own session; a member whose session is still being set up gets
   * it once established. It is never kept for a member who joins later (issue 14 point 1): with nobody
   * present it goes nowhere. Members blocked by a key change, with a bad key or throttled are skipped.
   * Returns the nicknames it is addressed to; empty means sent to no one, and the caller must say so.
   */
  send(text: string, opts: { to?: readonly string[] } = {}): string[] {
    const n = Buffer.byteLength(text, 'utf8');
    const max = this.maxTextBytes();
    if (n < 1 || n > max) throw new RangeError(`text must be 1..${max} UTF-8 bytes, got ${n}`);
    if (LONE_SURROGATE.test(text)) throw new RangeError('text contains a lone surrogate (not valid UTF-8)');
    if (this.recon !== null) return this.holdWhileDown(text, opts.to);
    if (this.state === 'AWAIT_LEFT' || this.state === 'CLOSED') return [];
    if (this.state !== 'IN_ROOM') throw new Error(`send() in state ${this.state}`);
    const to: string[] = [];
    for (const peer of this.peers.values()) {
      if (peer.blocked || peer.badKey || peer.throttled) continue;
      if (opts.to !== undefined && !opts.to.includes(peer.nick)) continue;
      to.push(peer.nick);
      peer.outbox.push(text);
      this.later(peer, () => this.flushOutbox(peer));
    }
    return to;
  }

  /** The members of the room with their state. */
  members(): PeerInfo[] {
    return [...this.peers.values()].map((p) => ({ nick: p.nick, fingerprint: fingerprint(p.spki), status: statusOf(p), verified: p.verified }));
  }

  /** The safety number with `nick` (spec §8.4: 12 groups of 5 digits), or undefined for a non-member. */
  safetyNumber(nick: string): string | undefined {
    const p = this.peers.get(nick);
    return p === undefined ? undefined : safetyNumber(this.nick, this.spki, p.nick, p.spki);
  }

  /** Marks the pinned key of `nick` as verified (after the user compared safety numbers). */
  verify(nick: string): boolean {
    const p = this.peers.get(nick);
    if (p === undefined || p.blocked || p.badKey || p.throttled) return false;
    if (!this.pins.verify(this.serverName, nick)) {
      this.pins.pin(this.serverName, nick, p.spki);
      this.pins.verify(this.serverName, nick);
    }
    p.verified = true;
    return true;
  }

  /** Accepts the changed key of `nick`: re-pins it (unverified) and starts the session. False when nothing is blocked. */
  trust(nick: string): boolean {
    const p = this.peers.get(nick);
    if (p === undefined || !p.blocked) return false;
    this.pins.pin(this.serverName, nick, p.spki);
    p.blocked = false;
    p.verified = false;
    if (p.refused) {
      // The peer's machine failed on our refusal notice and stays FAILED until PEER_LEFT (§7.2): only
      // leaving and joining again gives both sides new machines, now with the accepted key.
      this.restart();
      return true;
    }
    this.later(p, async () => {
      if (p.badKey) return;
      await this.openSession(p);
      const held = p.held;
      p.held = [];
      for (const [i, body] of held.entries()) await this.deliverToSession(p, body, i < held.length - 1 || p.queued > 0);
    });
    return true;
  }

  /**
   * Restarts the FAILED session with `nick` (a timeout, a refused handshake). v1 keeps a failed machine
   * FAILED until PEER_LEFT (§7.2), so this rejoins the room (rejoin()): every session in the room starts
   * again. False (and nothing done) when `nick` is not a member or its session has not failed.
   */
  retry(nick: string): boolean {
    const p = this.peers.get(nick);
    if (p === undefined || statusOf(p) !== 'failed') return false;
    this.restart();
    return true;
  }

  /** rejoin() in the background; a failure there ends the connection through the usual path. */
  private restart(): void {
    this.rejoin().catch(() => undefined);
  }

  /**
   * Leaves the room and joins it again on the same connection (§7.4: after LEFT a client MAY send JOIN),
   * so that every member gets a new §7.2 machine with us. What was not acknowledged is held for resend().
   * Resolves with the members listed in the new JOINED.
   */
  async rejoin(): Promise<string[]> {
    const room = this.roomName;
    const tr = clientTransition(this.state, 'leave');
    if (room === null || tr === undefined || this.state !== 'IN_ROOM' || this.rejoining) throw new ClientFailure('protocol', `rejoin() in state ${this.state}`);
    this.rejoining = true;
    try {
      const inFlight = this.inFlight();
      await new Promise<void>((resolve) => {
        this.pendingLeave = resolve;
        this.run(tr);
      });
      if ((this.state as ClientState) !== 'READY') throw this.failure ?? new ClientFailure('connection', 'the connection ended while rejoining');
      for (const u of inFlight) if (this.held.length < RECONNECT.MAX_HELD_TEXTS) this.held.push({ ...u, seq: null });
      return await this.join(room);
    } finally {
      this.rejoining = false;
    }
  }

  /**
   * True when nothing is queued or waiting for an acknowledgement from a member that can still answer.
   * While reconnecting, or while texts are held for resend(), it is not.
   */
  settled(): boolean {
    if (this.recon !== null || this.held.length > 0) return false;
    if (this.state !== 'IN_ROOM') return true;
    for (const p of this.peers.values()) {
      const st = statusOf(p);
      if (st === 'failed' || st === 'key-changed' || st === 'bad-key') continue;
      if (p.outbox.length > 0 || p.unacked.size > 0) return false;
    }
    return true;
  }

  /** Resolves true once settled(), false after `timeoutMs` milliseconds or when the connection ends first. */
  whenSettled(timeoutMs: number): Promise<boolean> {
    if (this.settled()) return Promise.resolve(this.state !== 'CLOSED' || this.failure === null);
    if (this.state === 'CLOSED' && this.recon === null) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(t);
        this.settleWaiters.delete(check);
        resolve(v);
      };
      const check = () => {
        if (this.state === 'CLOSED' && this.recon === null) done(false);
        else if (this.settled()) done(true);
      };
      const t = setTimeout(() => done(false), timeoutMs);
      this.settleWaiters.add(check);
    });
  }

  /**
   * Frames written to the relay, and MSGs sealed by the sessions of the members present (each one AEAD
   * seal): what the end-to-end benchmark reports per TEXT.
   */
  wireCounts(): { framesSent: number; msgsSealed: number } {
    let msgsSealed = 0;
    for (const p of this.peers.values()) msgsSealed += p.session?.sealedCount ?? 0;
    return { framesSent: this.framesSent, msgsSealed };
  }

  /** Everything sent or queued that no member acknowledged yet, and what is held for resend(). */
  undelivered(): Undelivered[] {
    return [...this.held, ...this.inFlight()];
  }

  /** What the sessions of this connection have not had acknowledged (outboxes and unacked texts). */
  private inFlight(): Undelivered[] {
    const out: Undelivered[] = [];
    for (const p of this.peers.values()) out.push(...undeliveredOf(p));
    for (const p of this.departing.keys()) out.push(...undeliveredOf(p));
    return out;
  }

  /** True while a lost connection is being re-established (ReconnectPolicy). */
  get reconnecting(): boolean {
    return this.recon !== null;
  }

  /** The texts held for resend(): not acknowledged before a drop, or sent while reconnecting. */
  heldTexts(): Undelivered[] {
    return this.held.map((u) => ({ ...u }));
  }

  /**
   * Sends again, through the new sessions, the held texts (heldTexts()) whose member is in the room now
   * with a usable key, each to that member only: a text goes to the members it was for (issue 14), never
   * to someone else. Texts for members not here (yet) stay held for a later call; `sent` and `kept` say
   * which. A member that received a text whose ACK the drop lost gets it twice (v1 has no message ids).
   * Only in the room; `select` picks which held texts (default all).
   */
  resend(select: (u: Undelivered) => boolean = () => true): { sent: Undelivered[]; kept: Undelivered[] } {
    const sent: Undelivered[] = [];
    const kept: Undelivered[] = [];
    for (const u of this.held) {
      const p = u.to === null ? undefined : this.peers.get(u.to);
      const usable = p !== undefined && !p.blocked && !p.badKey && !p.throttled && this.state === 'IN_ROOM';
      if (!usable || !select(u) || this.send(u.text, { to: [u.to!] }).length === 0) kept.push(u);
      else sent.push({ to: u.to, seq: null, text: u.text });
    }
    this.held = kept;
    this.wake();
    return { sent, kept: kept.map((u) => ({ ...u })) };
  }

  /** send() while reconnecting: held for the members present at the drop (or those named in `to`). */
  private holdWhileDown(text: string, to: readonly string[] | undefined): string[] {
    const nicks = this.rosterAtDrop.filter((n) => to === undefined || to.includes(n));
    if (this.held.length + nicks.length > RECONNECT.MAX_HELD_TEXTS) return [];
    for (const n of nicks) this.held.push({ to: n, seq: null, text });
    return nicks;
  }

  /** Leaves the room (LEAVE, then LEFT) and closes the connection. Resolves with what was never acknowledged. */
  async leave(): Promise<Undelivered[]> {
    this.stopping = true;
    const undelivered = this.undelivered();
    const tr = clientTransition(this.state, 'leave');
    if (tr !== undefined) {
      await new Promise<void>((resolve) => {
        this.pendingLeave = resolve;
        this.run(tr);
        // A relay that never answers LEFT must not keep us: close anyway after the handshake timeout.
        setTimeout(resolve, LIMITS.HANDSHAKE_TIMEOUT_MS).unref();
      });
    }
    this.finish(null);
    return undelivered;
  }

  /** Closes the connection at once (no LEAVE), and stops reconnecting. */
  close(): void {
    this.stopping = true;
    this.finish(null);
  }

  // ---- relay input ----

  /**
   * Events raised while the relay's bytes are parsed wait until the whole chunk is handled (state
   * advanced, replies queued): a listener that throws is then the application's error, reported as
   * `listener-error`, and never a reason to fail the relay connection (STYLE.md rule 13).
   */
  override emit<K>(event: K | keyof ChatClientEvents, ...args: K extends keyof ChatClientEvents ? ChatClientEvents[K] : never): boolean {
    const now = (e: string | symbol | K, a: unknown[]) => (EventEmitter.prototype.emit as (e: unknown, ...a: unknown[]) => boolean).call(this, e, ...a);
    const deliver = () => {
      try {
        now(event, args);
      } catch (error) {
        if (event === 'listener-error' || this.listenerCount('listener-error') === 0) {
          queueMicrotask(() => {
            throw error;
          });
        } else now('listener-error', [{ event, error }]);
      }
    };
    // Outside the parse loop events come from a peer's step (src/handshake/session.ts is asynchronous):
    // delivered at once, and a listener's throw is the application's error there too, never the step's.
    if (this.deferred === null) deliver();
    else this.deferred.push(deliver);
    return this.listenerCount(event as string) > 0;
  }

  private onData(chunk: Uint8Array): void {
    if (this.state === 'CLOSED') return;
    if (this.pongTimer !== null) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
    // One socket write per read (STYLE.md rule 13): the ACKs and texts this chunk's frames cause, and
    // what the listeners send when the events are delivered below, leave together when the socket is
    // uncorked, not one syscall each (the end-to-end profile had one write per frame at 14-15 % of a
    // client's CPU).
    const sock = this.socket;
    sock?.cork();
    const outer = this.deferred;
    this.deferred ??= [];
    try {
      this.parse(chunk);
      // §8.6: one ROSTER per established peer when this read moved the room's epoch.
      if (!this.closed) this.rosters.endOfBatch([...this.peers.values()].filter((p) => p.established).map((p) => p.nick));
    } finally {
      try {
        if (outer === null) {
          const events = this.deferred;
          this.deferred = null;
          for (const deliver of events) deliver();
        }
      } finally {
        sock?.uncork();
      }
    }
  }

  private parse(chunk: Uint8Array): void {
    try {
      for (const body of this.bodies(chunk)) {
        this.onFrame(decodeFrame(body, 'relay'));
        // onFrame may have ended the connection (an ERROR frame): read nothing more (§3).
        if (this.closed) return;
      }
      // §3: a framing error after complete frames in this chunk counts once they are handled.
      if (this.reader.failure !== undefined) throw this.reader.failure;
    } catch (e) {
      const err = e instanceof ProtocolError ? e : new ProtocolError('INTERNAL_ERROR', String(e));
      // §3: the first error on a connection is final; tell the relay why (codes 1-31 only) and close.
      this.sendError(err);
      this.fail(new ClientFailure('protocol', 'the relay sent an invalid frame', err));
    }
  }

  /**
   * The frame bodies in what the transport delivered: split by the §3 reader on a byte stream; one body
   * per message on a message transport, under the same MAX_FRAME_BYTES (§3.1, §7.4).
   */
  private bodies(chunk: Uint8Array): Iterable<Uint8Array> {
    if (this.socket?.framing !== 'message') return this.reader.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    if (chunk.length === 0) throw new ProtocolError('MALFORMED_FRAME', 'empty message');
    if (chunk.length > LIMITS.MAX_FRAME_BYTES) throw new ProtocolError('FRAME_TOO_LARGE', `message of ${chunk.length} bytes`);
    return [chunk];
  }

  /** The bytes of one frame on this transport: prefixed on a byte stream, the bare body on a message transport. */
  private bytesOf(f: Frame): Uint8Array {
    return this.socket?.framing === 'message' ? encodeFrame(f) : encodeWire(f);
  }

  /** §7.4: one table row per frame; a (state, frame) pair not in the table is UNEXPECTED_FRAME. */
  private onFrame(f: RelayFrame): void {
    const input: ClientInput = f.type === 'ERROR' ? errorInput(this.state, f.code) : f.type;
    const tr = clientTransition(this.state, input);
    if (tr === undefined) throw new ProtocolError('UNEXPECTED_FRAME', `${f.type} in client state ${this.state}`);
    this.run(tr, f);
  }

  /** A local event (§7.4 `timeout`, `disconnect`): ignored where the table has no row (the machine is past it). */
  private onEvent(on: 'timeout' | 'disconnect', failure?: ClientFailure): void {
    const tr = clientTransition(this.state, on);
    if (tr !== undefined) this.run(tr, undefined, failure);
  }

  /**
   * Runs one row: the state advances first (a listener called from the step sees the new state), then the
   * step. Rows that end in CLOSED leave that to the step, which closes through finish().
   */
  private run(tr: ClientTransition, f?: RelayFrame, failure?: ClientFailure): void {
    if (tr.next !== 'CLOSED') this.state = tr.next;
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
        return this.onPeerJoined(as('PEER_JOINED').nick, as('PEER_JOINED').key, as('PEER_JOINED').epoch);
      case 'peer-left':
        return this.onPeerLeft(as('PEER_LEFT').nick, as('PEER_LEFT').epoch);
      case 'deliver':
        return this.onDeliver(as('DELIVER').from, as('DELIVER').body);
      case 'leave':
        return this.write(frame('LEAVE', {}));
      case 'ignore':
        // After LEAVE the relay may still have room traffic in flight (§7.1 "Leaving"); a PONG answers our
        // keepalive and needs nothing more.
        return;
      case 'left':
        return this.onLeft();
      case 'relay-error':
        // Non-closing refusals (§9): the connection stays in its state.
        this.emit('relay-error', { error: relayError(as('ERROR')) });
        this.wake();
        return;
      case 'relay-closed': {
        const err = relayError(as('ERROR'));
        const kind = failureKindOf(wireErrorName(as('ERROR').code));
        return this.fail(new ClientFailure(kind, kind === 'auth' ? 'the relay refused authentication' : 'the relay closed the connection', err));
      }
      case 'timeout':
        return this.fail(
          new ClientFailure('connection', tr.state === 'AWAIT_CHALLENGE' || tr.state === 'AWAIT_WELCOME' ? 'no WELCOME from the relay in time' : `the relay did not answer a PING within ${this.pongDeadlineMs} ms`),
        );
      case 'disconnect':
        if (tr.state === 'AWAIT_LEFT' && this.pendingLeave && !this.rejoining) return this.finish(null);
        return this.fail(failure!);
    }
  }

  private onChallenge(c: FrameOf<'CHALLENGE'>): void {
    if (c.version !== PROTOCOL_VERSION) throw new ProtocolError('UNSUPPORTED_VERSION', `relay speaks version ${c.version}`);
    // §7.3: the relay must name itself as the relay this client addressed (relayName) before anything is signed.
    this.announcedRelay = c.relay;
    if (c.relay !== this.relayName) throw new ProtocolError('WRONG_RELAY', 'CHALLENGE names another relay than the one addressed');
    const cb = this.socket?.channelBinding?.() ?? new Uint8Array(0);
    const sig = pssSign(this.opts.identity.privateKey, authMessage(c.nonce, this.nick, this.spki, this.relayName, cb));
    // §7.5: a takeover carries the same signature, the user's code and the next code's commitment.
    const r = this.recoverOnce;
    this.write(r === undefined ? frame('AUTH', { sig }) : frame('RECOVER', { sig, code: r.code, commit: r.commit }));
  }

  private onWelcome(w: Welcome): void {
    if (w.maxFrame < minimumMaxFrame()) {
      // The handshake (§8.2) and the smallest padded message (§8.3) could never be relayed.
      throw new ProtocolError('INVALID_FIELD', `WELCOME.max_frame ${w.maxFrame} is below the ${minimumMaxFrame()} bytes a session needs`);
    }
    this.welcomeInfo = w;
    if (this.recoverOnce !== undefined) this.recoverOnce.code.fill(0);
    this.recoverOnce = undefined;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    // HELLO and AUTH already spent two of the relay's tokens.
    this.tokens = Math.max(0, pacingBucket(w.rate) - 2);
    this.lastRefill = performance.now();
    // §7.1 "Timeouts": PING when nothing was sent for idle_ms / KEEPALIVE_DIVISOR.
    const every = Math.max(1, Math.floor(w.idleMs / LIMITS.KEEPALIVE_DIVISOR));
    this.pongDeadlineMs = Math.min(PONG_TIMEOUT_MS, every);
    this.keepalive = setTimeout(() => this.ping(), every);
    this.keepalive.unref();
    const c = this.pendingConnect;
    this.pendingConnect = null;
    c?.resolve(w);
  }

  private ping(): void {
    if (this.state === 'CLOSED') return;
    this.pingCounter = this.pingCounter >= LIMITS.MAX_UINT ? 0 : this.pingCounter + 1;
    this.write(frame('PING', { n: this.pingCounter }));
    // No frame at all from the relay within the deadline: it is frozen or gone, whatever TCP says.
    if (this.pongTimer === null) {
      this.pongTimer = setTimeout(() => {
        this.pongTimer = null;
        this.onEvent('timeout');
      }, this.pongDeadlineMs);
      this.pongTimer.unref();
    }
  }

  private onJoined(room: string, members: Member[], epoch: number): void {
    const j = this.pendingJoin!;
    if (room !== j.room) throw new ProtocolError('INVALID_FIELD', `JOINED names room ${room}, we asked for ${j.room}`);
    const seen = new Set<string>();
    for (const m of members) {
      if (m.nick === this.nick || seen.has(m.nick)) throw new ProtocolError('INVALID_FIELD', `JOINED lists ${m.nick} twice or lists us`);
      seen.add(m.nick);
    }
    // The relay announced its room size in WELCOME (§6): a JOINED listing more members than it allows is
    // the relay inventing members (issue 14 point 7).
    if (members.length + 1 > this.welcomeInfo!.roomSize) {
      throw new ProtocolError('INVALID_FIELD', `JOINED lists ${members.length} members; the announced room size is ${this.welcomeInfo!.roomSize}`);
    }
    this.pendingJoin = null;
    this.roomName = room;
    this.rosters.joined(room, epoch, members);
    this.emit('joined', { room, members: members.map((m) => m.nick), rejoin: this.recon !== null || this.rejoining });
    // §7.2: we joined later, so we initiate towards everyone already here.
    for (const m of members) this.addPeer(m.nick, m.key, 'initiator');
    j.resolve(members.map((m) => m.nick));
    this.wake();
  }

  private onPeerJoined(nick: string, key: Uint8Array, epoch: number): void {
    if (nick === this.nick || this.peers.has(nick)) throw new ProtocolError('UNEXPECTED_FRAME', `PEER_JOINED for ${nick}, already a member`);
    // The same nickname back while its previous membership is still departing: that one ends first, so
    // its peer-left is reported before this peer-joined.
    for (const [p, finish] of this.departing) if (p.nick === nick) finish();
    // Beyond the room size the relay announced in WELCOME: refused, like any relay frame that breaks its
    // own announced limits (issue 14 point 7).
    if (this.peers.size + 2 > this.welcomeInfo!.roomSize) {
      throw new ProtocolError('UNEXPECTED_FRAME', `PEER_JOINED for ${nick} would make ${this.peers.size + 2} members; the announced room size is ${this.welcomeInfo!.roomSize}`);
    }
    this.rosters.peerJoined(epoch, { nick, key }); // INVALID_FIELD unless the next epoch (§7.4)
    if (this.throttle(nick)) {
      this.peers.set(nick, { ...newPeer(nick, key, 'responder'), throttled: true });
      return;
    }
    this.addPeer(nick, key, 'responder');
  }

  /** Records a join of `nick`; true while it is throttled (CHURN), after emitting the collapsed notice. */
  private throttle(nick: string): boolean {
    const now = Date.now();
    let c = this.churn.get(nick);
    if (c === undefined) {
      c = { joins: [], until: 0, strikes: 0, suppressed: 0 };
      if (this.churn.size >= CHURN.TRACKED) this.churn.delete(this.churn.keys().next().value!);
    }
    this.churn.delete(nick);
    this.churn.set(nick, c); // most recent last
    c.joins = c.joins.filter((t) => now - t < CHURN.WINDOW_MS);
    c.joins.push(now);
    if (now < c.until) {
      c.suppressed++;
      // One notice per doubling of the suppressed joins: 1, 2, 4, 8, ...
      if ((c.suppressed & (c.suppressed - 1)) === 0) this.emit('peer-churn', { nick, joins: c.joins.length, windowMs: CHURN.WINDOW_MS, until: c.until });
      return true;
    }
    if (c.joins.length > CHURN.JOINS) {
      c.until = now + Math.min(CHURN.MAX_BACKOFF_MS, CHURN.WINDOW_MS * 2 ** c.strikes++);
      c.suppressed = 1;
      this.emit('peer-churn', { nick, joins: c.joins.length, windowMs: CHURN.WINDOW_MS, until: c.until });
      return true;
    }
    return false;
  }

  /**
   * Adds a member: the pins are checked and `peer-joined` emitted at once, in frame order (a member that
   * leaves before its key is imported is still shown joining before it is shown leaving); the key import
   * and the session follow on the peer's chain.
   */
  private addPeer(nick: string, key: Uint8Array, role: 'initiator' | 'responder'): void {
    const peer = newPeer(nick, key, role);
    this.peers.set(nick, peer);
    // Issue 14: nothing is pinned on the relay's word; the key is pinned once a session proves it (established).
    const check = this.pins.check(this.serverName, nick, peer.spki);
    peer.verified = check.status === 'match' && check.verified;
    peer.blocked = check.status === 'changed';
    this.emit('peer-joined', { nick, fingerprint: fingerprint(peer.spki), verified: peer.verified, firstSeen: check.status === 'new' });
    if (!peer.verified) {
      const elsewhere = this.pins.verifiedElsewhere(this.serverName, nick, peer.spki);
      if (elsewhere.length > 0) this.emit('key-elsewhere', { nick, offeredFingerprint: fingerprint(peer.spki), elsewhere });
    }
    this.later(peer, () => this.admitPeer(peer, check));
  }

  /** Imports the peer's key (once: the session gets this handle), then reports a key change or opens the session. */
  private async admitPeer(peer: Peer, check: PinCheck): Promise<void> {
    try {
      peer.key = await this.crypto.importPublicKey(peer.spki);
    } catch (e) {
      // §8.1: a client refuses to start a session with a key that is not a canonical RSA-2048 key.
      peer.badKey = true;
      this.emit('rejected', { from: peer.nick, error: e instanceof ProtocolError ? e : new ProtocolError('INTERNAL_ERROR', String(e)), fatal: true });
      return;
    }
    if (check.status === 'changed') {
      // Blocked until trust(); a trust() made before the import finished opens the session itself.
      if (!peer.blocked) return;
      // Told before our user hears of it: a listener may leave at once, and nothing is sent after LEAVE.
      this.refuse(peer);
      this.emit('key-changed', {
        nick: peer.nick,
        pinnedFingerprint: check.pinnedFingerprint,
        offeredFingerprint: check.offeredFingerprint,
        error: new ProtocolError('KEY_CHANGED', `the key offered for ${peer.nick} differs from its pin`),
      });
      return;
    }
    await this.openSession(peer);
  }

  /**
   * Runs `step` for `peer` after every earlier step for it, if the peer is still a member then. A throw
   * (a listener's, or a bug: sessions never throw for peer input) ends the connection as INTERNAL_ERROR.
   */
  private later(peer: Peer, step: () => Promise<void> | void): void {
    peer.chain = peer.chain.then(async () => {
      if (this.closed || (this.peers.get(peer.nick) !== peer && !this.departing.has(peer))) return;
      try {
        await step();
      } catch (e) {
        const err = e instanceof ProtocolError ? e : new ProtocolError('INTERNAL_ERROR', String(e));
        this.sendError(err);
        this.fail(new ClientFailure('protocol', 'handling a peer frame failed', err));
      }
    });
  }

  private async openSession(peer: Peer): Promise<void> {
    let self: RsaPrivateKey;
    try {
      self = await this.sessionKey;
    } catch (e) {
      this.emit('rejected', { from: peer.nick, error: new ProtocolError('INTERNAL_ERROR', `own key: ${String(e)}`), fatal: true });
      return;
    }
    if (this.closed || this.peers.get(peer.nick) !== peer) return;
    const session = new PeerSession({
      crypto: this.crypto,
      room: this.roomName!,
      self: { nick: this.nick, key: self, spki: this.spki },
      peerNick: peer.nick,
      peerKey: peer.key!,
      role: peer.role,
      ...(this.opts.psk ? { psk: this.opts.psk } : {}),
    });
    peer.session = session;
    if (peer.role === 'initiator') await this.handleSessionEvents(peer, await guard(() => session.start()));
  }

  /**
   * §7.2: AWAIT_RESP and AWAIT_FINISH time out after E2E_HANDSHAKE_TIMEOUT_MS. The timer starts when the
   * session enters either state (at once for an initiator, on HS_INIT for a responder).
   */
  private armHandshakeTimer(peer: Peer): void {
    const session = peer.session;
    if (peer.timer !== null || session === null || (session.state !== 'AWAIT_RESP' && session.state !== 'AWAIT_FINISH')) return;
    peer.timer = setTimeout(() => {
      peer.timer = null;
      this.later(peer, async () => {
        if (peer.session === session && !peer.established) await this.handleSessionEvents(peer, await guard(() => session.timeout()));
      });
    }, this.opts.handshakeTimeoutMs ?? LIMITS.E2E_HANDSHAKE_TIMEOUT_MS);
    peer.timer.unref();
  }

  private onPeerLeft(nick: string, epoch: number): void {
    const peer = this.peers.get(nick);
    if (peer === undefined) throw new ProtocolError('UNEXPECTED_FRAME', `PEER_LEFT for ${nick}, not a member`);
    this.rosters.peerLeft(epoch, nick); // INVALID_FIELD unless the next epoch (§7.4)
    this.peers.delete(nick);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.departing.delete(peer);
      const undelivered = undeliveredOf(peer);
      this.dropPeer(peer);
      if (!peer.throttled) this.emit('peer-left', { nick, undelivered });
      this.wake();
    };
    if (peer.queued === 0) return finish();
    // DELIVERs it sent before leaving are still queued on its chain: handle them first. Under cumulative
    // ACKs (§8.3 step 6) its last ACK comes right before its LEAVE, so tearing the session down at once
    // would list texts it did acknowledge as not delivered.
    this.departing.set(peer, finish);
    peer.chain = peer.chain.then(() => {
      if (!this.closed) finish();
    });
  }

  private dropPeer(peer: Peer): void {
    if (peer.timer) clearTimeout(peer.timer);
    peer.timer = null;
    if (peer.session) {
      // §7.2 peer_left: erase keys (at once: a step still in flight then installs and reports nothing).
      peer.session.peerLeft();
      peer.session.destroy();
    }
    peer.session = null;
    peer.outbox = [];
    peer.unacked.clear();
  }

  private onDeliver(from: string, body: Uint8Array): void {
    const peer = this.peers.get(from);
    if (peer === undefined) throw new ProtocolError('UNEXPECTED_FRAME', `DELIVER from ${from}, not a member`);
    const copy = Uint8Array.from(body);
    peer.queued++;
    this.later(peer, async () => {
      peer.queued--;
      if (peer.badKey) return;
      if (peer.blocked || peer.session === null) {
        // No traffic with a changed key until trust(); keep the opening handshake frame for afterwards.
        if (peer.held.length < MAX_HELD_BODIES) peer.held.push(copy);
        return;
      }
      await this.deliverToSession(peer, copy);
    });
  }

  /**
   * One body to the peer's session. The cumulative ACK (§8.3 step 6) waits while more bodies of the
   * same read batch are queued for this peer, and goes out with the last of them.
   */
  private async deliverToSession(peer: Peer, body: Uint8Array, more = peer.queued > 0): Promise<void> {
    const session = peer.session!;
    const before = session.state;
    let events = await guard(() => session.receive(body, more));
    if (before === 'IDLE' || before === 'AWAIT_RESP' || before === 'AWAIT_FINISH') {
      // A MSG before ESTABLISHED fails the machine (§7.2): the peer's refusal notice, and what it means.
      let isMsg = false;
      try {
        isMsg = decodeFrame(body, 'e2e').type === 'MSG';
      } catch {
        // Not a frame at all: the session has reported it.
      }
      if (isMsg) {
        const cause: FailureCause = before === 'AWAIT_FINISH' ? 'room-secret' : 'key-not-accepted';
        events = events.map((ev) => (ev.kind === 'rejected' ? { ...ev, cause } : ev));
      }
    }
    await this.handleSessionEvents(peer, events);
  }

  /** Sends `peer` the refusal notice (once per machine): it learns at once that we refused the handshake. */
  private refuse(peer: Peer): void {
    if (peer.refused || this.state !== 'IN_ROOM' || this.peers.get(peer.nick) !== peer) return;
    peer.refused = true;
    this.write(frame('SEND', { to: peer.nick, body: refusalNotice(this.crypto) }));
  }

  private async handleSessionEvents(peer: Peer, events: SessionEvent[]): Promise<void> {
    if (this.closed) return;
    if (this.departing.has(peer)) {
      // It has left: what it sent before leaving still counts (its texts, its ACKs); nothing goes back.
      events = events.filter((ev) => ev.kind === 'text' || ev.kind === 'delivered');
    } else if (this.peers.get(peer.nick) !== peer) return;
    // Frames first: the session has already numbered them (an ACK takes the next seq), so a listener
    // that sends from inside a 'text' handler must find them on the wire ahead of its own message, or
    // the peer sees its message before the ACK and rejects it as OUT_OF_ORDER.
    for (const ev of events) if (ev.kind === 'send') this.write(frame('SEND', { to: peer.nick, body: ev.body }));
    for (const ev of events) {
      switch (ev.kind) {
        case 'send':
          break;
        case 'established': {
          peer.established = true;
          // Trust on first use pins the key now that its holder completed the handshake (§8.2), and marks
          // a known pin as recently used (the store evicts the least recently used unverified pins).
          this.pins.pin(this.serverName, peer.nick, peer.spki);
          if (peer.timer) clearTimeout(peer.timer);
          peer.timer = null;
          // The safety number costs 2 x 5200 SHA-512: computed only when a listener reads it.
          const verified = peer.verified;
          const compute = () => safetyNumber(this.nick, this.spki, peer.nick, peer.spki);
          let number: string | undefined;
          this.emit('established', {
            nick: peer.nick,
            get safetyNumber(): string {
              number ??= compute();
              return number;
            },
            verified,
          });
          this.rosters.established(peer.nick);
          break;
        }
        case 'roster':
          await this.rosters.received(peer.nick, ev.epoch, ev.hash);
          break;
        case 'text':
          this.emit('text', { from: peer.nick, seq: ev.seq, ts: ev.ts, text: ev.text, verified: peer.verified });
          break;
        case 'delivered': {
          const text = peer.unacked.get(ev.seq);
          if (text !== undefined) {
            peer.unacked.delete(ev.seq);
            this.emit('delivered', { to: peer.nick, seq: ev.seq, text });
          }
          break;
        }
        case 'rejected': {
          const fatal = peer.session?.state === 'FAILED';
          let cause = (ev as { cause?: FailureCause }).cause;
          // §8.2: I checks the signature before the key confirmation, so a bad confirmation from a peer that
          // proved its key means the keys were derived from different room secrets (or one side had none).
          if (cause === undefined && fatal && ev.error.errorName === 'BAD_KEY_CONFIRMATION' && peer.role === 'initiator') {
            cause = 'room-secret';
            this.refuse(peer);
          }
          this.emit('rejected', { from: peer.nick, error: ev.error, fatal, ...(cause ? { cause } : {}) });
          break;
        }
      }
    }
    if (peer.established) await this.flushOutbox(peer);
    else this.armHandshakeTimer(peer);
    this.wake();
  }

  /** Seals and sends the outbox in order; runs as a step of the peer's chain. */
  private async flushOutbox(peer: Peer): Promise<void> {
    if (peer.outbox.length > 0) await this.flushRoster(peer);
    while (peer.outbox.length > 0) {
      const session = peer.session;
      if (!peer.established || session === null || session.state !== 'ESTABLISHED') return;
      const text = peer.outbox[0]!;
      let r: { seq: number; events: SessionEvent[] };
      try {
        r = await session.sendText(text, Date.now());
      } catch (e) {
        peer.outbox.shift();
        this.emit('rejected', { from: peer.nick, error: e instanceof ProtocolError ? e : new ProtocolError('INTERNAL_ERROR', String(e)), fatal: false });
        continue;
      }
      if (this.closed || this.peers.get(peer.nick) !== peer) return;
      // Out of the outbox and into unacked in one step: settled() never sees the text in neither.
      peer.outbox.shift();
      peer.unacked.set(r.seq, text);
      for (const ev of r.events) if (ev.kind === 'send') this.write(frame('SEND', { to: peer.nick, body: ev.body }));
      this.emit('sent', { to: peer.nick, seq: r.seq, text });
    }
  }

  /**
   * Queues ROSTER{epoch, hash} for `nick` (§8.6): sealed before anything else this peer is sent next (a
   * step of its chain, or the next flushOutbox, whichever runs first), so one peer's epochs leave in order.
   */
  private sendRoster(nick: string, epoch: number, hash: Promise<Uint8Array>): void {
    const peer = this.peers.get(nick);
    if (peer === undefined) return;
    this.rosterDue.set(peer, { epoch, hash });
    this.later(peer, () => this.flushRoster(peer));
  }

  private async flushRoster(peer: Peer): Promise<void> {
    const due = this.rosterDue.get(peer);
    if (due === undefined) return;
    this.rosterDue.delete(peer);
    const h = await due.hash;
    const session = peer.session;
    // Nothing after LEAVE (the relay's READY has no SEND), nor to a session that is not established.
    if (this.state !== 'IN_ROOM' || !peer.established || session === null || session.state !== 'ESTABLISHED') return;
    const events = await session.sendRoster(due.epoch, h);
    if (this.state !== 'IN_ROOM' || this.peers.get(peer.nick) !== peer) return;
    for (const ev of events) if (ev.kind === 'send') this.write(frame('SEND', { to: peer.nick, body: ev.body }));
  }

  private onLeft(): void {
    this.rosters.stop();
    const done = this.pendingLeave;
    this.pendingLeave = null;
    done?.();
  }

  // ---- output ----

  private write(f: Frame): void {
    if (this.socket === null || this.state === 'CLOSED') return;
    this.framesSent++;
    const buf = this.bytesOf(f);
    if (this.queuedBytes + buf.length > MAX_QUEUED_BYTES) throw new Error('client send queue is full');
    this.queue.push(buf);
    this.queuedBytes += buf.length;
    this.pump();
  }

  /** Writes queued frames while the token bucket (WELCOME.rate per second) and the socket allow. */
  private pump(): void {
    const sock = this.socket;
    if (sock === null || this.state === 'CLOSED' || this.waitingDrain) return;
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
      this.keepalive?.refresh();
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

  private sendError(err: ProtocolError): void {
    const sock = this.socket;
    if (sock === null || err.scope !== 'wire' || this.state === 'CLOSED') return;
    try {
      sock.write(this.bytesOf(frame('ERROR', { code: err.code, detail: '' })));
    } catch {
      // The connection is being torn down anyway.
    }
  }

  // ---- ending ----

  private fail(failure: ClientFailure): void {
    if (this.state === 'CLOSED') return;
    this.failure = failure;
    this.finish(failure);
  }

  private finish(failure: ClientFailure | null): void {
    if (this.state === 'CLOSED') {
      // Between reconnect attempts there is no connection: close() ends the waiting.
      if (failure === null && this.recon !== null) this.giveUp(null);
      return;
    }
    const inFlight = this.inFlight();
    const roster = [...this.peers.values()].filter((p) => !p.blocked && !p.badKey && !p.throttled).map((p) => p.nick);
    this.state = 'CLOSED';
    this.rosters.stop();
    for (const p of this.peers.values()) this.dropPeer(p);
    this.peers.clear();
    for (const p of this.departing.keys()) this.dropPeer(p);
    this.departing.clear();
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
    if (failure !== null && this.mayReconnect(failure)) {
      if (this.recon === null) this.rosterAtDrop = roster;
      this.lost(failure, inFlight);
      this.wake();
      return;
    }
    if (this.recon !== null) return this.giveUp(failure, inFlight);
    this.wake();
    this.emit('closed', { failure, undelivered: [...this.held, ...inFlight] });
  }

  // ---- reconnecting (ReconnectPolicy) ----

  private mayReconnect(failure: ClientFailure): boolean {
    if (this.opts.reconnect === undefined || this.stopping) return false;
    if (this.recon === null) return this.roomName !== null && (failure.kind === 'connection' || failure.kind === 'connect');
    // While reconnecting, a refused join (the relay still holds our old connection, or the room filled) is retried too.
    return failure.kind === 'connection' || failure.kind === 'connect' || failure.kind === 'room';
  }

  /** The connection is gone and will be re-established: keep what it left unacknowledged, and wait. */
  private lost(failure: ClientFailure, inFlight: Undelivered[]): void {
    if (this.recon === null) {
      this.recon = { since: Date.now(), attempt: 0, timer: null, room: this.roomName! };
      for (const u of inFlight) if (this.held.length < RECONNECT.MAX_HELD_TEXTS) this.held.push(u.seq === null ? u : { ...u, seq: null });
      this.emit('connection-lost', { failure, undelivered: inFlight });
    }
    const r = this.recon;
    const policy = this.opts.reconnect!;
    const delayMs = reconnectDelay(++r.attempt, policy);
    if (Date.now() + delayMs - r.since > (policy.giveUpMs ?? Infinity)) return this.giveUp(failure);
    this.emit('reconnecting', { attempt: r.attempt, delayMs, failure });
    r.timer = setTimeout(() => this.attempt(), delayMs);
  }

  /** One reconnect attempt: a fresh §7.4 machine on a new transport, then JOIN of the same room. */
  private attempt(): void {
    const r = this.recon;
    if (r === null) return;
    r.timer = null;
    this.state = 'AWAIT_CHALLENGE';
    this.started = false;
    this.failure = null;
    this.socket = null;
    this.reader = new FrameReader(LIMITS.MAX_FRAME_BYTES);
    this.waitingDrain = false;
    this.connect()
      .then(() => this.join(r.room))
      .then(
        (members) => {
          if (this.recon !== r) return;
          this.recon = null;
          this.rosterAtDrop = [];
          this.emit('reconnected', { room: r.room, members, attempts: r.attempt, downMs: Date.now() - r.since });
          this.wake();
        },
        (e: unknown) => {
          // A failure that closed the connection has scheduled the next attempt (finish); a refused
          // join left it open (READY): close it, which does the same.
          if (!this.closed) this.finish(e instanceof ClientFailure ? e : new ClientFailure('protocol', String(e)));
        },
      );
  }

  /** Stops reconnecting: `closed` with every text held or in flight as undelivered. */
  private giveUp(failure: ClientFailure | null, inFlight: Undelivered[] = []): void {
    const r = this.recon;
    if (r?.timer) clearTimeout(r.timer);
    this.recon = null;
    const undelivered = [...this.held, ...inFlight];
    this.held = [];
    this.rosterAtDrop = [];
    this.failure = failure;
    this.wake();
    this.emit('closed', { failure, undelivered });
  }

  private wake(): void {
    for (const w of [...this.settleWaiters]) w();
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
 * worst-case SEND{to: 32-byte nick, body: MSG{seq: MAX_UINT, ct: B + 16}} fits, minus the length field
 * (4 bytes) and the worst-case TEXT frame overhead. Measured with the real encoder, not estimated.
 */
export function maxTextFor(maxFrame: number): number {
  const hit = maxTextCache.get(maxFrame);
  if (hit !== undefined) return hit;
  const sendSize = (bucket: number) =>
    encodeWire(
      frame('SEND', {
        to: 'n'.repeat(LIMITS.NICK_MAX_BYTES),
        body: encodeFrame(frame('MSG', { seq: LIMITS.MAX_UINT, ct: new Uint8Array(bucket + 16) })),
      }),
    ).length - LIMITS.LENGTH_PREFIX_BYTES;
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

/** The ProtocolError an ERROR frame from the relay carries; an unknown or end-to-end code is UNEXPECTED_FRAME (§9). */
function relayError(f: FrameOf<'ERROR'>): ProtocolError {
  const wire = wireErrorName(f.code);
  return new ProtocolError(wire ?? 'UNEXPECTED_FRAME', wire ? f.detail : `relay sent unknown error code ${f.code}`);
}

function statusOf(p: Peer): PeerStatus {
  if (p.throttled) return 'throttled';
  if (p.badKey) return 'bad-key';
  if (p.blocked) return 'key-changed';
  if (p.session?.state === 'FAILED') return 'failed';
  return p.established ? 'established' : 'handshake';
}

function undeliveredOf(p: Peer): Undelivered[] {
  return [
    ...[...p.unacked].map(([seq, text]) => ({ to: p.nick, seq, text })),
    ...p.outbox.map((text) => ({ to: p.nick, seq: null, text })),
  ];
}

/** Runs a session call; a rejection (which a correct session never gives for peer input) becomes a `rejected` event. */
async function guard(f: () => Promise<SessionEvent[]>): Promise<SessionEvent[]> {
  try {
    return await f();
  } catch (e) {
    return [{ kind: 'rejected', error: e instanceof ProtocolError ? e : new ProtocolError('INTERNAL_ERROR', `session: ${String(e)}`) }];
  }
}
