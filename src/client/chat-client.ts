/**
 * The reference client as a library: one relay connection (spec §7.1, §7.3), one room, and one
 * end-to-end session per other member (spec §7.2, §8). No terminal here: the CLI (src/cli/client.ts),
 * the page (src/web/app.ts), the demo, the benchmarks and the tests all drive this class and listen to
 * its events. It imports nothing from Node (STYLE.md rule 12): the transport (TCP in src/client/tcp.ts, a
 * WebSocket in src/web/ws.ts), the pin store (SQLite or IndexedDB) and the crypto backend (node:crypto or
 * WebCrypto) come from the edge; src/client/node-client.ts gives Node's defaults.
 *
 * Split as ws splits its client (issue 11 point 2):
 * - src/client/relay-connection.ts: the transport, the §7.4 machine, pacing and keepalive;
 * - src/client/members.ts: members, pins, sessions, outbox and ACKs, each key parsed once;
 * - this facade: the public calls, reconnecting, and the events, delivered after the parse loop of each
 *   frame, so a listener that throws is the application's error (`listener-error`), never the relay's.
 *
 * What it does, in the order a connection lives:
 * - `connect()`: transport, HELLO, CHALLENGE, AUTH signed per §7.3, WELCOME (limits in force).
 * - `join(room)`: JOIN, then JOINED (we are the initiator towards every member listed) or ERROR
 *   ROOM_FULL / NICK_IN_ROOM. Members arriving later (PEER_JOINED) are responders (§7.2).
 * - `send(text)`: to every member through its own session; queued until the session is established,
 *   and kept as unacknowledged until the peer's ACK (§8.3 step 6) arrives. When a member leaves or the
 *   connection drops, whatever it never acknowledged is reported, never dropped silently.
 *
 * Nothing the relay or a peer sends throws out of this class: relay violations end the connection with a
 * `closed` event carrying a ClientFailure; peer violations are `rejected` events for that peer only.
 */
import { utf8Length } from '../codec/frame.js';
import type { CryptoBackend, RsaPrivateKey } from '../crypto/backend.js';
import { fingerprintOf } from '../crypto/fingerprint.js';
import type { ProtocolError } from '../protocol/errors.js';
import type { ClientState } from '../protocol/client-machine.js';
import { LIMITS } from '../protocol/limits.js';
import { isNick, isRoom, NICK_RULE, ROOM_RULE } from '../protocol/names.js';
import { Emitter } from './emitter.js';
import type { ChatClientEvents, PeerInfo, Undelivered } from './events.js';
import { Members } from './members.js';
import { MemoryPins, type PinBook } from './pin-book.js';
import { ClientFailure, maxTextFor, RelayConnection, type ConnectionEvents, type Welcome } from './relay-connection.js';
import { relayIdentity } from '../protocol/relay-id.js';
import type { TransportFactory } from './transport.js';

export { ClientFailure, maxTextFor, minimumMaxFrame, PONG_TIMEOUT_MS, type FailureKind, type Welcome } from './relay-connection.js';
export { CHURN } from './members.js';
export type { ChatClientEvents, FailureCause, PeerInfo, PeerStatus, Undelivered } from './events.js';

export interface ChatClientOptions {
  host: string;
  port: number;
  nick: string;
  /**
   * The identity key pair: `privateKey` a handle of `crypto` (or the promise of one), `spki` the public key
   * as DER SubjectPublicKeyInfo (294 bytes).
   */
  identity: { privateKey: RsaPrivateKey | Promise<RsaPrivateKey>; spki: Uint8Array };
  /** The cryptography of AUTH and of the end-to-end sessions (src/crypto/node.ts or src/crypto/webcrypto.ts). */
  crypto: CryptoBackend;
  /**
   * What carries the relay connection (src/client/transport.ts): TCP (src/client/tcp.ts), a WebSocket
   * (src/web/ws.ts), or a test's own.
   */
  transport: TransportFactory;
  /**
   * Trust-on-first-use pins; default an in-memory book (every key is new to it). Issue 14 point 6: they are
   * kept under the relay's name (relayName, or the announced name with relayName null), nothing else.
   */
  pins?: PinBook;
  /**
   * The relay's identity as this client addresses it (spec §7.3): CHALLENGE.relay must equal it byte for
   * byte (else WRONG_RELAY) and AUTH signs it. Default relayIdentity(host, port): what was dialled,
   * canonical. null: the name the relay announces (a page served by that relay, src/web/app.ts).
   */
  relayName?: string | null;
  /** Room secret (spec §8.2 `psk`), any length from 1 byte. */
  psk?: Uint8Array;
  /** Milliseconds an end-to-end handshake may take (default E2E_HANDSHAKE_TIMEOUT_MS). */
  handshakeTimeoutMs?: number;
  /** Milliseconds from opening the transport to WELCOME before giving up (default HANDSHAKE_TIMEOUT_MS). */
  connectTimeoutMs?: number;
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

const LONE_SURROGATE = /[\ud800-\udfff]/u;

type Timer = ReturnType<typeof setTimeout>;

export class ChatClient extends Emitter<ChatClientEvents> {
  readonly nick: string;
  /** The relay identity checked in CHALLENGE and signed in AUTH (§7.3), null: as announced; see ChatClientOptions.relayName. */
  readonly relayName: string | null;
  readonly spki: Uint8Array;
  private readonly opts: ChatClientOptions;
  private readonly crypto: CryptoBackend;
  /** Our private key as a handle of `crypto`. */
  private readonly sessionKey: Promise<RsaPrivateKey>;
  private ownFingerprint = '';
  private readonly ownFingerprintReady: Promise<string>;
  private readonly roster: Members;
  /** The connection of now (a reconnect makes a new one); null before connect(). */
  private conn: RelayConnection | null = null;
  /** close() before any connect(): the client is closed without ever having had a connection. */
  private closedEarly = false;
  private roomName: string | null = null;
  /** A rejoin() is under way (LEAVE, LEFT, JOIN on the same connection). */
  private rejoining = false;
  private failure: ClientFailure | null = null;
  /** leave() or close() was called: a failure from now on is final, never a reason to reconnect. */
  private stopping = false;
  /** While a lost connection is being re-established (ReconnectPolicy): since when, attempts, the timer. */
  private recon: { since: number; attempt: number; timer: Timer | null; room: string } | null = null;
  /** Texts not acknowledged before a drop (and sent while reconnecting), kept for resend(); bounded. */
  private held: Undelivered[] = [];
  /** The members (with a usable key) when the connection dropped: whom a text sent while reconnecting is for. */
  private rosterAtDrop: string[] = [];
  /** Frames written by the connections before the current one. */
  private framesBefore = 0;
  private readonly settleWaiters = new Set<() => void>();
  /** While a frame from the relay is handled: the events it produced, delivered once it is fully handled. */
  private deferred: (() => void)[] | null = null;
  /** The end of the read batch under way is scheduled (§8.6 endOfBatch). */
  private readEnd = false;
  /** §7.5: the takeover still to send (cleared at the first WELCOME). */
  private recoverOnce: { code: Uint8Array; commit: Uint8Array } | undefined;

  constructor(opts: ChatClientOptions) {
    super();
    if (!isNick(opts.nick)) {
      throw new RangeError(`nick: ${NICK_RULE}`);
    }
    this.opts = opts;
    this.recoverOnce = opts.recover;
    this.nick = opts.nick;
    this.spki = Uint8Array.from(opts.identity.spki);
    this.crypto = opts.crypto;
    this.relayName = opts.relayName === undefined ? relayIdentity(opts.host, opts.port) : opts.relayName;
    this.sessionKey = Promise.resolve(opts.identity.privateKey);
    // A key the backend cannot take fails AUTH and every session, each reported; never an unhandled rejection.
    this.sessionKey.catch(() => {});
    this.ownFingerprintReady = fingerprintOf(this.crypto, this.spki).then((fp) => (this.ownFingerprint = fp));
    this.roster = new Members(
      {
        crypto: this.crypto,
        nick: this.nick,
        spki: this.spki,
        key: this.sessionKey,
        pins: opts.pins ?? new MemoryPins(this.crypto),
        serverName: () => this.serverName,
        ...(opts.psk ? { psk: opts.psk } : {}),
        ...(opts.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: opts.handshakeTimeoutMs } : {}),
        ...(opts.rosterWaitMs !== undefined ? { rosterWaitMs: opts.rosterWaitMs } : {}),
        emit: (event, ...args) => void this.emit(event, ...args),
        restart: () => this.restart(),
      },
      {
        send: (to, body) => this.conn?.send(to, body),
        inRoom: () => this.state === 'IN_ROOM',
        closed: () => this.closed,
        fail: (error) => this.conn?.abort(error, 'handling a peer frame failed'),
        wake: () => this.wake(),
      },
    );
  }

  /** The §7.4 state of the connection of now. */
  get state(): ClientState {
    if (this.closedEarly) return 'CLOSED';
    return this.conn?.state ?? 'AWAIT_CHALLENGE';
  }

  /** CHALLENGE.relay of the last CHALLENGE (untrusted text): what a relay refused as WRONG_RELAY called itself. */
  get announcedRelay(): string | undefined {
    return this.conn?.announcedRelay;
  }

  /**
   * The relay identity the pins are kept under (issue 14 point 6): the name the relay proved it answers to
   * (§7.3), relayName, or with relayName null the name it announced (known from CHALLENGE on).
   */
  get serverName(): string {
    return this.relayName ?? this.conn?.announcedRelay ?? relayIdentity(this.opts.host, this.opts.port);
  }

  /** The limits of WELCOME, once connected. */
  get welcome(): Welcome | null {
    return this.conn?.welcome ?? null;
  }

  /**
   * The longest text, in UTF-8 bytes, that `send()` accepts: MAX_TEXT_BYTES, or less when the relay
   * announced a WELCOME.max_frame too small for the SEND frame of a full padding bucket (§3, §8.3).
   */
  maxTextBytes(): number {
    return maxTextFor(this.welcome?.maxFrame ?? LIMITS.MAX_FRAME_BYTES);
  }

  get room(): string | null {
    return this.roomName;
  }

  get closed(): boolean {
    return this.state === 'CLOSED';
  }

  /** Our own key's fingerprint (spec §8.4); known once connect() has opened the connection. */
  fingerprint(): string {
    return this.ownFingerprint;
  }

  /** Connects and authenticates (spec §7.3). Rejects with ClientFailure `connect`, `auth`, `connection` or `protocol`. */
  connect(): Promise<Welcome> {
    if (this.conn !== null || this.closedEarly) return Promise.reject(new ClientFailure('protocol', 'connect() called twice'));
    const conn: RelayConnection = new RelayConnection(
      {
        nick: this.nick,
        spki: this.spki,
        key: this.sessionKey,
        crypto: this.crypto,
        transport: this.opts.transport,
        relayName: this.relayName,
        ...(this.opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: this.opts.connectTimeoutMs } : {}),
        ...(this.recoverOnce !== undefined ? { recover: this.recoverOnce } : {}),
      },
      this.eventsOf(() => conn),
    );
    this.conn = conn;
    // Our fingerprint is one hash, known long before WELCOME; the connection waits for it all the same.
    return this.ownFingerprintReady
      .then(() => conn.connect())
      .then((w) => {
        // §7.5: only the first connection takes the nickname over (the connection zeroed the code).
        this.recoverOnce = undefined;
        return w;
      });
  }

  /** What a connection hands up; a connection that is no longer the current one is not heard. */
  private eventsOf(conn: () => RelayConnection): ConnectionEvents {
    const mine = () => this.conn === conn();
    return {
      batch: (run) => this.batch(run),
      joined: (room, members, epoch) => {
        if (!mine()) return;
        this.roomName = room;
        this.roster.joined(room, members, conn().welcome!.roomSize, epoch);
        this.emit('joined', { room, members: members.map((m) => m.nick), rejoin: this.recon !== null || this.rejoining });
        this.wake();
      },
      peerJoined: (nick, key, epoch) => mine() && this.roster.peerJoined(nick, key, epoch),
      peerLeft: (nick, epoch) => mine() && this.roster.peerLeft(nick, epoch),
      deliver: (from, body) => mine() && this.roster.deliver(from, body),
      relayError: (error: ProtocolError) => {
        this.emit('relay-error', { error });
        this.wake();
      },
      closed: (failure) => {
        if (mine()) this.onClosed(conn(), failure);
      },
    };
  }

  /**
   * Registers a recovery commitment (spec §7.5, SET_RECOVERY) for this nickname; resolves on RECOVERY_SET,
   * after which the caller shows the code once. Only before join() (state READY).
   */
  registerRecovery(commit: Uint8Array): Promise<void> {
    if (this.conn === null) return Promise.reject(new ClientFailure('protocol', `registerRecovery() in state ${this.state}`));
    return this.conn.registerRecovery(commit);
  }

  /**
   * Joins `room` (spec §7.1 JOIN). Resolves with the nicknames already there; rejects ClientFailure `room`
   * on ROOM_FULL / NICK_IN_ROOM. Called right after connect(), before it resolves, the JOIN goes right
   * behind AUTH (§7.4 "JOIN behind AUTH", one round trip less) and a failed connect rejects it too; a
   * caller that registers a recovery code (registerRecovery, READY only) joins after connect() instead.
   */
  join(room: string): Promise<string[]> {
    if (!isRoom(room)) {
      return Promise.reject(new RangeError(`room: ${ROOM_RULE}`));
    }
    if (this.conn === null) return Promise.reject(new ClientFailure('protocol', `join() in state ${this.state}`));
    return this.conn.join(room).then((members) => members.map((m) => m.nick));
  }

  /**
   * Sends `text` (1..MAX_TEXT_BYTES UTF-8 bytes, well-formed) to the members present now (all, or those
   * named in `opts.to`), each through its own session; a member whose session is still being set up gets
   * it once established. It is never kept for a member who joins later (issue 14 point 1): with nobody
   * present it goes nowhere. Members blocked by a key change, with a bad key or throttled are skipped.
   * Returns the nicknames it is addressed to; empty means sent to no one, and the caller must say so.
   */
  send(text: string, opts: { to?: readonly string[] } = {}): string[] {
    const n = utf8Length(text);
    const max = this.maxTextBytes();
    if (n < 1 || n > max) throw new RangeError(`text must be 1..${max} UTF-8 bytes, got ${n}`);
    if (LONE_SURROGATE.test(text)) throw new RangeError('text contains a lone surrogate (not valid UTF-8)');
    if (this.recon !== null) return this.holdWhileDown(text, opts.to);
    if (this.state === 'AWAIT_LEFT' || this.state === 'CLOSED') return [];
    if (this.state !== 'IN_ROOM') throw new Error(`send() in state ${this.state}`);
    return this.roster.send(text, opts.to);
  }

  /** The members of the room with their state (a member is listed once its key has been read). */
  members(): PeerInfo[] {
    return this.roster.list();
  }

  /** The safety number with `nick` (spec §8.4: 12 groups of 5 digits), or undefined for a non-member. */
  safetyNumber(nick: string): Promise<string | undefined> {
    return this.roster.safetyNumber(nick) ?? Promise.resolve(undefined);
  }

  /** Marks the pinned key of `nick` as verified (after the user compared safety numbers). */
  verify(nick: string): boolean {
    return this.roster.verify(nick);
  }

  /** Accepts the changed key of `nick`: re-pins it (unverified) and starts the session. False when nothing is blocked. */
  trust(nick: string): boolean {
    return this.roster.trust(nick);
  }

  /**
   * Restarts the FAILED session with `nick` (a timeout, a refused handshake). v1 keeps a failed machine
   * FAILED until PEER_LEFT (§7.2), so this rejoins the room (rejoin()): every session in the room starts
   * again. False (and nothing done) when `nick` is not a member or its session has not failed.
   */
  retry(nick: string): boolean {
    if (!this.roster.failed(nick)) return false;
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
    const conn = this.conn;
    if (room === null || conn === null || conn.state !== 'IN_ROOM' || this.rejoining) throw new ClientFailure('protocol', `rejoin() in state ${this.state}`);
    this.rejoining = true;
    try {
      const inFlight = this.roster.inFlight();
      await conn.leave(false);
      if ((conn.state as ClientState) !== 'READY') throw conn.failure ?? new ClientFailure('connection', 'the connection ended while rejoining');
      // The old machines are gone with the membership: new ones come with the new JOINED.
      this.roster.clear();
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
    return this.roster.settled();
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
    return { framesSent: this.framesBefore + (this.conn?.framesSent ?? 0), msgsSealed: this.roster.sealed() };
  }

  /** Everything sent or queued that no member acknowledged yet, and what is held for resend(). */
  undelivered(): Undelivered[] {
    return [...this.held, ...this.roster.inFlight()];
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
      const usable = u.to !== null && this.roster.usable(u.to) && this.state === 'IN_ROOM';
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
    // A relay that never answers LEFT must not keep us: close anyway after the handshake timeout.
    if (this.conn?.mayLeave()) await this.conn.leave(true, LIMITS.HANDSHAKE_TIMEOUT_MS);
    this.finish(null);
    return undelivered;
  }

  /** Closes the connection at once (no LEAVE), and stops reconnecting. */
  close(): void {
    this.stopping = true;
    this.finish(null);
  }

  // ---- events ----

  /**
   * Events raised while a relay frame is handled wait until it is fully handled (state advanced, replies
   * queued): a listener that throws is then the application's error, reported as `listener-error`, and
   * never a reason to fail the relay connection (STYLE.md rule 13).
   */
  override emit<K extends keyof ChatClientEvents>(event: K, ...args: ChatClientEvents[K]): boolean {
    const deliver = () => {
      try {
        super.emit(event, ...args);
      } catch (error) {
        if (event === 'listener-error' || this.listenerCount('listener-error') === 0) {
          queueMicrotask(() => {
            throw error;
          });
        } else super.emit('listener-error', { event, error });
      }
    };
    // Outside the parse loop events come from a peer's step (src/handshake/session.ts is asynchronous):
    // delivered at once, and a listener's throw is the application's error there too, never the step's.
    if (this.deferred === null) deliver();
    else this.deferred.push(deliver);
    return this.listenerCount(event) > 0;
  }

  /**
   * Runs the handling of one relay frame, then delivers the events it raised. The frames a transport
   * reports in one turn (the chunks read together, §8.3 step 6) are one read batch: at its end, before
   * that turn's promise steps run, the roster agreement sends its commitments if the epoch moved (§8.6:
   * one ROSTER per peer for a burst of joins and leaves, not one per event).
   */
  private batch(run: () => void): void {
    if (!this.readEnd) {
      this.readEnd = true;
      queueMicrotask(() => {
        this.readEnd = false;
        this.roster.endOfBatch();
      });
    }
    const outer = this.deferred;
    this.deferred ??= [];
    try {
      run();
    } finally {
      if (outer === null) {
        const events = this.deferred;
        this.deferred = null;
        for (const deliver of events) deliver();
      }
    }
  }

  // ---- ending ----

  private finish(failure: ClientFailure | null): void {
    const conn = this.conn;
    if (conn === null) {
      if (this.closedEarly) return;
      this.closedEarly = true;
      this.emit('closed', { failure, undelivered: [...this.held] });
      return;
    }
    if (conn.state === 'CLOSED') {
      // Between reconnect attempts there is no connection: close() ends the waiting.
      if (failure === null && this.recon !== null) this.giveUp(null);
      return;
    }
    conn.close(failure);
  }

  /** The connection of now is CLOSED (a failure, close(), or the end after leave()). */
  private onClosed(conn: RelayConnection, failure: ClientFailure | null): void {
    if (failure !== null) this.failure = failure;
    const inFlight = this.roster.inFlight();
    const roster = this.roster.usableNicks();
    this.roster.clear();
    if (failure !== null && this.mayReconnect(failure)) {
      if (this.recon === null) this.rosterAtDrop = roster;
      this.lost(failure, inFlight);
      this.wake();
      return;
    }
    if (this.recon !== null) return this.giveUp(failure, inFlight);
    this.wake();
    this.emit('closed', { failure, undelivered: [...this.held, ...inFlight] });
    void conn;
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

  /** One reconnect attempt: a new connection (a fresh §7.4 machine on a new transport), then JOIN of the same room. */
  private attempt(): void {
    const r = this.recon;
    if (r === null) return;
    r.timer = null;
    this.framesBefore += this.conn?.framesSent ?? 0;
    this.conn = null;
    this.failure = null;
    // JOIN behind AUTH (§7.4): a reconnect registers no recovery code.
    Promise.all([this.connect(), this.join(r.room)])
      .then(
        ([, members]) => {
          if (this.recon !== r) return;
          this.recon = null;
          this.rosterAtDrop = [];
          this.emit('reconnected', { room: r.room, members, attempts: r.attempt, downMs: Date.now() - r.since });
          this.wake();
        },
        (e: unknown) => {
          // A failure that closed the connection has scheduled the next attempt (onClosed); a refused
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
