/**
 * The members of the room (issue 11 point 2): for each other member its key, pin check, end-to-end
 * session (src/handshake/session.ts, spec §7.2, §8), outbox and unacknowledged texts. The relay
 * connection (src/client/relay-connection.ts) hands room frames in; SENDs go out through `MembersLink`;
 * events go up through the facade's `emit` (src/client/chat-client.ts). Node-free.
 *
 * - Each member's key is parsed once (MemberKey.parse: the §8.1 checks and the backend's import) into a
 *   MemberKey, which only that parser makes and which the session takes; its fingerprint is computed once.
 * - The pins are checked when the member arrives, and the key is pinned once a session with it is
 *   established (issue 14: nothing is pinned on the relay's word); a key that differs from the pin blocks
 *   all traffic with that member and raises `key-changed` until `trust()`.
 * - Everything done for one member runs as one chain, in arrival order: a session step may be
 *   asynchronous (WebCrypto), and a later frame must never overtake it. `peer-joined` is raised from that
 *   chain once the fingerprint is known, so it always comes before that member's `peer-left`.
 * - The room's epochs go to the roster agreement (src/client/roster.ts, §8.6): each membership event
 *   must name the next epoch, each established peer gets our commitment (`ROSTER`, sealed before
 *   anything else due to it), and a peer's `ROSTER` is checked; a mismatch is `roster-mismatch`.
 */
import { decodeFrame, encodeFrame, frame, type Member } from '../codec/index.js';
import type { CryptoBackend, RsaPrivateKey, RsaPublicKey } from '../crypto/backend.js';
import { fingerprintOf, safetyNumberOf } from '../crypto/fingerprint.js';
import { ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { PeerSession, type SessionEvent } from '../handshake/session.js';
import type { Emit, FailureCause, PeerInfo, PeerStatus, Undelivered } from './events.js';
import type { PinBook, PinState } from './pin-book.js';
import { RosterAgreement } from './roster.js';

/**
 * A member's identity key after the §8.1 checks, imported once by the backend: only `MemberKey.parse`
 * makes one (the constructor is private), and a session is opened only with one.
 */
export class MemberKey {
  private constructor(
    readonly nick: string,
    /** A private copy of the DER SubjectPublicKeyInfo the relay listed. */
    readonly spki: Uint8Array,
    readonly key: RsaPublicKey,
  ) {}

  /** ProtocolError BAD_PUBLIC_KEY when the key is not a canonical RSA-2048 key (§8.1). */
  static async parse(crypto: CryptoBackend, nick: string, spki: Uint8Array): Promise<MemberKey> {
    const copy = Uint8Array.from(spki);
    return new MemberKey(nick, copy, await crypto.importPublicKey(copy));
  }
}

/**
 * Join churn (issue 14 point 7): a nickname that joins more than CHURN_JOINS times within CHURN_WINDOW_MS
 * is throttled: its joins in the next back-off period are shown only as one collapsed `peer-churn` event,
 * and no handshake is started or answered with it (each costs RSA operations). The back-off starts at
 * CHURN_WINDOW_MS and doubles with each new strike, up to CHURN_MAX_BACKOFF_MS. At most CHURN_TRACKED
 * nicknames are tracked (the oldest forgotten first), so the record itself cannot be flooded.
 */
export const CHURN = { JOINS: 5, WINDOW_MS: 10_000, MAX_BACKOFF_MS: 300_000, TRACKED: 256 } as const;

/** While a member's key is blocked (changed) or its session not yet open: the first bodies (its HS_INIT) kept for after trust(). */
const MAX_HELD_BODIES = 4;

/** What the members need of the connection and the facade. */
export interface MembersLink {
  /** Writes a SEND to `to` (nothing once the connection is closed). */
  send(to: string, body: Uint8Array): void;
  /** True while we are in the room (§7.4 IN_ROOM). */
  inRoom(): boolean;
  /** True once the connection is CLOSED: every chain step then stops. */
  closed(): boolean;
  /** The connection fails with `error` (a bug or a listener's throw inside a step: INTERNAL_ERROR). */
  fail(error: ProtocolError): void;
  /** Something that settled() depends on changed. */
  wake(): void;
}

export interface MembersOptions {
  crypto: CryptoBackend;
  nick: string;
  spki: Uint8Array;
  key: Promise<RsaPrivateKey>;
  pins: PinBook;
  /** The relay identity the pins are kept under (known once CHALLENGE named it, for a client that takes the announced name). */
  serverName: () => string;
  psk?: Uint8Array;
  handshakeTimeoutMs?: number;
  /** Milliseconds a peer's roster commitment for an epoch we have not reached waits (default ROSTER_WAIT_MS, §8.6). */
  rosterWaitMs?: number;
  emit: Emit;
  /** Leaves and joins the room again (trust() after a refusal, retry()): v1's only way to new machines. */
  restart(): void;
}

type Timer = ReturnType<typeof setTimeout>;

interface Peer {
  nick: string;
  spki: Uint8Array;
  /** Known once the chain computed it; the member is listed from then on. */
  fingerprint: string | null;
  /** `peer-joined` was raised. */
  announced: boolean;
  identity: MemberKey | null;
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
  held: Uint8Array[];
  timer: Timer | null;
  /** Joined while throttled (CHURN): no session, no notices, skipped by send(). */
  throttled: boolean;
  /** DELIVER bodies from this peer queued on the chain and not yet handled: the read batch (§8.3 step 6). */
  queued: number;
  /** We sent this peer's machine our refusal notice: its side is FAILED now. */
  refused: boolean;
  safety: Promise<string> | null;
}

function newPeer(nick: string, key: Uint8Array, role: 'initiator' | 'responder', after: Promise<void>): Peer {
  return {
    nick,
    spki: Uint8Array.from(key),
    fingerprint: null,
    announced: false,
    identity: null,
    chain: after,
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
    safety: null,
  };
}

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

const asError = (e: unknown, what = ''): ProtocolError => (e instanceof ProtocolError ? e : new ProtocolError('INTERNAL_ERROR', `${what}${String(e)}`));

export class Members {
  private readonly peers = new Map<string, Peer>();
  /**
   * Members that left while steps of theirs (DELIVERs sent before leaving, the announcement) were still
   * queued on their chain, each with what ends its departure (drop the session, report peer-left; once).
   */
  private readonly departing = new Map<Peer, () => void>();
  /** Recent joins per nickname and its back-off (CHURN), oldest first (Map order). */
  private readonly churn = new Map<string, { joins: number[]; until: number; strikes: number; suppressed: number }>();
  private room = '';
  private roomSize: number = LIMITS.MAX_ROOM_SIZE;
  /** §8.6 roster agreement of the room joined on this connection (src/client/roster.ts). */
  private readonly rosters: RosterAgreement;
  /** The latest ROSTER due to each peer and not sealed yet (sendRoster). */
  private readonly rosterDue = new WeakMap<Peer, { epoch: number; hash: Promise<Uint8Array> }>();

  constructor(
    private readonly o: MembersOptions,
    private readonly link: MembersLink,
  ) {
    this.rosters = new RosterAgreement(
      { nick: o.nick, key: o.spki },
      {
        sha256: (d) => o.crypto.sha256(d),
        send: (nick, epoch, hash) => this.sendRoster(nick, epoch, hash),
        report: (r) => o.emit('roster-mismatch', r),
      },
      o.rosterWaitMs,
    );
  }

  // ---- from the relay connection (inside its parse loop) ----

  /** JOINED: we joined later, so we initiate towards everyone already here (§7.2). */
  joined(room: string, members: readonly Member[], roomSize: number, epoch: number): void {
    this.room = room;
    this.roomSize = roomSize;
    this.rosters.joined(room, epoch, members);
    for (const m of members) this.add(m.nick, m.key, 'initiator');
  }

  peerJoined(nick: string, key: Uint8Array, epoch: number): void {
    if (nick === this.o.nick || this.peers.has(nick)) throw new ProtocolError('UNEXPECTED_FRAME', `PEER_JOINED for ${nick}, already a member`);
    // Beyond the room size the relay announced in WELCOME: refused, like any relay frame that breaks its
    // own announced limits (issue 14 point 7).
    if (this.peers.size + 2 > this.roomSize) {
      throw new ProtocolError('UNEXPECTED_FRAME', `PEER_JOINED for ${nick} would make ${this.peers.size + 2} members; the announced room size is ${this.roomSize}`);
    }
    this.rosters.peerJoined(epoch, { nick, key }); // INVALID_FIELD unless the next epoch (§7.4)
    // The same nickname back while its previous membership is still departing: that one ends first, so
    // its peer-left is reported before this peer-joined (which waits for that membership's chain).
    let after: Promise<void> = Promise.resolve();
    for (const [p, finish] of this.departing) {
      if (p.nick !== nick) continue;
      if (p.announced) finish();
      else after = p.chain;
    }
    if (this.throttle(nick)) {
      const peer = { ...newPeer(nick, key, 'responder', after), throttled: true };
      this.peers.set(nick, peer);
      this.later(peer, async () => {
        peer.fingerprint = await fingerprintOf(this.o.crypto, peer.spki);
      });
      return;
    }
    this.add(nick, key, 'responder', after);
  }

  peerLeft(nick: string, epoch: number): void {
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
      this.drop(peer);
      if (!peer.throttled && peer.announced) this.o.emit('peer-left', { nick, undelivered });
      this.link.wake();
    };
    if (peer.queued === 0 && (peer.announced || peer.throttled)) return finish();
    // Steps of it are still queued on its chain (its announcement, DELIVERs it sent before leaving):
    // handle them first. Under cumulative ACKs (§8.3 step 6) its last ACK comes right before its LEAVE,
    // so tearing the session down at once would list texts it did acknowledge as not delivered.
    this.departing.set(peer, finish);
    peer.chain = peer.chain.then(() => {
      if (!this.link.closed()) finish();
    });
  }

  deliver(from: string, body: Uint8Array): void {
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

  // ---- the application's calls ----

  /** Queues `text` for the members present (or those named in `to`) with a usable key; returns whom it is for. */
  send(text: string, to?: readonly string[]): string[] {
    const out: string[] = [];
    for (const peer of this.peers.values()) {
      if (peer.blocked || peer.badKey || peer.throttled) continue;
      if (to !== undefined && !to.includes(peer.nick)) continue;
      out.push(peer.nick);
      peer.outbox.push(text);
      this.later(peer, () => this.flushOutbox(peer));
    }
    return out;
  }

  /** The members whose key has been read, with their state. */
  list(): PeerInfo[] {
    const out: PeerInfo[] = [];
    for (const p of this.peers.values()) if (p.fingerprint !== null) out.push({ nick: p.nick, fingerprint: p.fingerprint, status: statusOf(p), verified: p.verified });
    return out;
  }

  has(nick: string): boolean {
    return this.peers.has(nick);
  }

  /** A member with a key we may talk to (not blocked, not bad, not throttled). */
  usable(nick: string): boolean {
    const p = this.peers.get(nick);
    return p !== undefined && !p.blocked && !p.badKey && !p.throttled;
  }

  /** The nicknames of the members with a usable key. */
  usableNicks(): string[] {
    return [...this.peers.values()].filter((p) => !p.blocked && !p.badKey && !p.throttled).map((p) => p.nick);
  }

  /** The safety number with `nick` (§8.4), or undefined for a non-member. */
  safetyNumber(nick: string): Promise<string> | undefined {
    const p = this.peers.get(nick);
    if (p === undefined) return undefined;
    p.safety ??= p.session !== null ? p.session.safetyNumber() : safetyNumberOf(this.o.crypto, this.o.nick, this.o.spki, p.nick, p.spki);
    return p.safety;
  }

  verify(nick: string): boolean {
    const p = this.peers.get(nick);
    if (p === undefined || p.blocked || p.badKey || p.throttled) return false;
    const { pins } = this.o;
    const serverName = this.o.serverName();
    if (!pins.verify(serverName, nick)) {
      pins.pin(serverName, nick, p.spki);
      pins.verify(serverName, nick);
    }
    p.verified = true;
    return true;
  }

  trust(nick: string): boolean {
    const p = this.peers.get(nick);
    if (p === undefined || !p.blocked) return false;
    this.o.pins.pin(this.o.serverName(), nick, p.spki);
    p.blocked = false;
    p.verified = false;
    if (p.refused) {
      // The peer's machine failed on our refusal notice and stays FAILED until PEER_LEFT (§7.2): only
      // leaving and joining again gives both sides new machines, now with the accepted key.
      this.o.restart();
      return true;
    }
    this.later(p, async () => {
      if (p.badKey || p.identity === null) return;
      await this.openSession(p);
      const held = p.held;
      p.held = [];
      for (const [i, body] of held.entries()) await this.deliverToSession(p, body, i < held.length - 1 || p.queued > 0);
    });
    return true;
  }

  /** True when `nick`'s session failed (retry() rejoins then). */
  failed(nick: string): boolean {
    const p = this.peers.get(nick);
    return p !== undefined && statusOf(p) === 'failed';
  }

  /** True when nothing is queued or unacknowledged for a member that can still answer. */
  settled(): boolean {
    for (const p of this.peers.values()) {
      const st = statusOf(p);
      if (st === 'failed' || st === 'key-changed' || st === 'bad-key') continue;
      if (p.outbox.length > 0 || p.unacked.size > 0) return false;
    }
    return true;
  }

  /** MSGs sealed by the sessions of the members present (each one AEAD seal). */
  sealed(): number {
    let n = 0;
    for (const p of this.peers.values()) n += p.session?.sealedCount ?? 0;
    return n;
  }

  /** What the sessions have not had acknowledged (outboxes and unacked texts), departing members included. */
  inFlight(): Undelivered[] {
    const out: Undelivered[] = [];
    for (const p of this.peers.values()) out.push(...undeliveredOf(p));
    for (const p of this.departing.keys()) out.push(...undeliveredOf(p));
    return out;
  }

  /**
   * A read batch of relay frames is handled (§8.6): one ROSTER per established peer when it moved the
   * room's epoch, and the commitments held for the epochs it reached are checked.
   */
  endOfBatch(): void {
    if (this.link.closed()) return;
    this.rosters.endOfBatch([...this.peers.values()].filter((p) => p.established).map((p) => p.nick));
  }

  /** The room is left or the connection gone: every session ends (keys erased), every member forgotten, the roster agreement stopped. */
  clear(): void {
    this.rosters.stop();
    for (const p of this.peers.values()) this.drop(p);
    this.peers.clear();
    for (const p of this.departing.keys()) this.drop(p);
    this.departing.clear();
  }

  // ---- per member ----

  /**
   * Adds a member: the pins are checked at once (send() skips a blocked member from now on); its
   * fingerprint, `peer-joined`, the key's parse and the session follow on its chain.
   */
  private add(nick: string, key: Uint8Array, role: 'initiator' | 'responder', after: Promise<void> = Promise.resolve()): void {
    const peer = newPeer(nick, key, role, after);
    this.peers.set(nick, peer);
    const check = this.o.pins.check(this.o.serverName(), nick, peer.spki);
    peer.verified = check.status === 'match' && check.verified;
    peer.blocked = check.status === 'changed';
    this.later(peer, () => this.admit(peer, check));
  }

  private async admit(peer: Peer, check: PinState): Promise<void> {
    const { crypto, pins, emit } = this.o;
    const serverName = this.o.serverName();
    const fp = await fingerprintOf(crypto, peer.spki);
    peer.fingerprint = fp;
    peer.announced = true;
    emit('peer-joined', { nick: peer.nick, fingerprint: fp, verified: peer.verified, firstSeen: check.status === 'new' });
    if (!peer.verified) {
      const elsewhere = await pins.verifiedElsewhere(serverName, peer.nick, peer.spki);
      if (elsewhere.length > 0) emit('key-elsewhere', { nick: peer.nick, offeredFingerprint: fp, elsewhere: elsewhere.map((e) => ({ relay: e.relay, fingerprint: e.fingerprint })) });
    }
    // Gone already: announced (then reported leaving), nothing more.
    if (this.peers.get(peer.nick) !== peer) return;
    try {
      peer.identity = await MemberKey.parse(crypto, peer.nick, peer.spki);
    } catch (e) {
      // §8.1: a client refuses to start a session with a key that is not a canonical RSA-2048 key.
      peer.badKey = true;
      emit('rejected', { from: peer.nick, error: asError(e), fatal: true });
      return;
    }
    if (check.status === 'changed') {
      // Blocked until trust(); a trust() made before the parse finished opens the session itself.
      if (!peer.blocked) return;
      // Told before our user hears of it: a listener may leave at once, and nothing is sent after LEAVE.
      this.refuse(peer);
      emit('key-changed', {
        nick: peer.nick,
        pinnedFingerprint: await fingerprintOf(crypto, check.pinned),
        offeredFingerprint: fp,
        error: new ProtocolError('KEY_CHANGED', `the key offered for ${peer.nick} differs from its pin`),
      });
      return;
    }
    await this.openSession(peer);
  }

  /**
   * Runs `step` for `peer` after every earlier step for it, if the peer is still a member (or departing)
   * then. A throw (a bug: sessions never throw for peer input) ends the connection as INTERNAL_ERROR.
   */
  private later(peer: Peer, step: () => Promise<void> | void): void {
    peer.chain = peer.chain.then(async () => {
      if (this.link.closed() || (this.peers.get(peer.nick) !== peer && !this.departing.has(peer))) return;
      try {
        await step();
      } catch (e) {
        this.link.fail(asError(e));
      }
    });
  }

  private async openSession(peer: Peer): Promise<void> {
    let self: RsaPrivateKey;
    try {
      self = await this.o.key;
    } catch (e) {
      this.o.emit('rejected', { from: peer.nick, error: new ProtocolError('INTERNAL_ERROR', `own key: ${String(e)}`), fatal: true });
      return;
    }
    if (this.link.closed() || this.peers.get(peer.nick) !== peer || peer.identity === null) return;
    const session = new PeerSession({
      crypto: this.o.crypto,
      room: this.room,
      self: { nick: this.o.nick, key: self, spki: this.o.spki },
      peerNick: peer.nick,
      peerKey: peer.identity.key,
      role: peer.role,
      ...(this.o.psk ? { psk: this.o.psk } : {}),
    });
    peer.session = session;
    peer.safety = null;
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
    }, this.o.handshakeTimeoutMs ?? LIMITS.E2E_HANDSHAKE_TIMEOUT_MS);
    (peer.timer as { unref?: () => void }).unref?.();
  }

  private drop(peer: Peer): void {
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
    if (peer.refused || !this.link.inRoom() || this.peers.get(peer.nick) !== peer) return;
    peer.refused = true;
    this.link.send(peer.nick, refusalNotice(this.o.crypto));
  }

  private async handleSessionEvents(peer: Peer, events: SessionEvent[]): Promise<void> {
    if (this.link.closed()) return;
    if (this.departing.has(peer)) {
      // It has left: what it sent before leaving still counts (its texts, its ACKs); nothing goes back.
      events = events.filter((ev) => ev.kind === 'text' || ev.kind === 'delivered');
    } else if (this.peers.get(peer.nick) !== peer) return;
    const { emit } = this.o;
    // Frames first: the session has already numbered them (an ACK takes the next seq), so a listener
    // that sends from inside a 'text' handler must find them on the wire ahead of its own message, or
    // the peer sees its message before the ACK and rejects it as OUT_OF_ORDER.
    for (const ev of events) if (ev.kind === 'send') this.link.send(peer.nick, ev.body);
    for (const ev of events) {
      switch (ev.kind) {
        case 'send':
          break;
        case 'established': {
          peer.established = true;
          // Trust on first use pins the key now that its holder completed the handshake (§8.2), and marks
          // a known pin as recently used (the store evicts the least recently used unverified pins).
          this.o.pins.pin(this.o.serverName(), peer.nick, peer.spki);
          if (peer.timer) clearTimeout(peer.timer);
          peer.timer = null;
          // The safety number costs 2 x 5200 SHA-512: computed only when a listener reads it.
          const members = this;
          emit('established', {
            nick: peer.nick,
            get safetyNumber(): Promise<string> {
              return members.safetyNumber(peer.nick) ?? peer.session!.safetyNumber();
            },
            verified: peer.verified,
          });
          this.rosters.established(peer.nick);
          break;
        }
        case 'roster':
          await this.rosters.received(peer.nick, ev.epoch, ev.hash);
          break;
        case 'text':
          emit('text', { from: peer.nick, seq: ev.seq, ts: ev.ts, text: ev.text, verified: peer.verified });
          break;
        case 'delivered': {
          const text = peer.unacked.get(ev.seq);
          if (text !== undefined) {
            peer.unacked.delete(ev.seq);
            emit('delivered', { to: peer.nick, seq: ev.seq, text });
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
          emit('rejected', { from: peer.nick, error: ev.error, fatal, ...(cause ? { cause } : {}) });
          break;
        }
      }
    }
    if (peer.established) await this.flushOutbox(peer);
    else this.armHandshakeTimer(peer);
    this.link.wake();
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
        this.o.emit('rejected', { from: peer.nick, error: asError(e), fatal: false });
        continue;
      }
      if (this.link.closed() || this.peers.get(peer.nick) !== peer) return;
      // Out of the outbox and into unacked in one step: settled() never sees the text in neither.
      peer.outbox.shift();
      peer.unacked.set(r.seq, text);
      for (const ev of r.events) if (ev.kind === 'send') this.link.send(peer.nick, ev.body);
      this.o.emit('sent', { to: peer.nick, seq: r.seq, text });
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
    if (!this.link.inRoom() || !peer.established || session === null || session.state !== 'ESTABLISHED') return;
    let events: SessionEvent[];
    try {
      events = await session.sendRoster(due.epoch, h);
    } catch {
      // The session ended while the seal waited its turn (the peer left): there is no one to send it to.
      return;
    }
    if (!this.link.inRoom() || this.peers.get(peer.nick) !== peer) return;
    for (const ev of events) if (ev.kind === 'send') this.link.send(peer.nick, ev.body);
  }

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
      if ((c.suppressed & (c.suppressed - 1)) === 0) this.o.emit('peer-churn', { nick, joins: c.joins.length, windowMs: CHURN.WINDOW_MS, until: c.until });
      return true;
    }
    if (c.joins.length > CHURN.JOINS) {
      c.until = now + Math.min(CHURN.MAX_BACKOFF_MS, CHURN.WINDOW_MS * 2 ** c.strikes++);
      c.suppressed = 1;
      this.o.emit('peer-churn', { nick, joins: c.joins.length, windowMs: CHURN.WINDOW_MS, until: c.until });
      return true;
    }
    return false;
  }
}

function statusOf(p: Peer): PeerStatus {
  if (p.throttled) return 'throttled';
  if (p.badKey) return 'bad-key';
  if (p.blocked) return 'key-changed';
  if (p.session?.state === 'FAILED') return 'failed';
  return p.established ? 'established' : 'handshake';
}

function undeliveredOf(p: Peer): Undelivered[] {
  return [...[...p.unacked].map(([seq, text]) => ({ to: p.nick, seq, text })), ...p.outbox.map((text) => ({ to: p.nick, seq: null, text }))];
}

/** Runs a session call; a rejection (which a correct session never gives for peer input) becomes a `rejected` event. */
async function guard(f: () => Promise<SessionEvent[]>): Promise<SessionEvent[]> {
  try {
    return await f();
  } catch (e) {
    return [{ kind: 'rejected', error: asError(e, 'session: ') }];
  }
}
