/**
 * The page's room: one end-to-end session per other member (spec §7.2, §8), over the shared core
 * (PeerSession with the WebCrypto backend), with the client rules the CLI's ChatClient keeps
 * (src/client/chat-client.ts) for the things a page shows:
 * - §8.5 pins: a member's key is compared with its pin when it is listed; a key that differs blocks all
 *   traffic with that member (nothing sent to it, nothing it sends is processed: its first bodies are
 *   held for after `accept`) until the user accepts the new key; a key is pinned only once a session
 *   proved it (issue 14: nothing is pinned on the relay's word).
 * - A text goes to the members present (and not blocked) when it was entered, never to a later joiner;
 *   it waits in that member's outbox until the session is established, and is unacknowledged until the
 *   peer's ACK (§8.3 step 6). What a member never acknowledged when it left, when its session failed or
 *   when the connection ended is reported as undelivered, never dropped silently.
 * Knows no DOM and no socket: the page (src/web/app.ts) renders the events, src/web/relay.ts carries the
 * SEND frames. Every step for one member runs in arrival order on that member's chain.
 */
import type { CryptoBackend, RsaPrivateKey, RsaPublicKey } from '../crypto/backend.js';
import { fingerprintOf } from '../crypto/fingerprint.js';
import { PeerSession, type SessionEvent } from '../handshake/session.js';
import { ProtocolError, type ErrorName } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';

/** One pinned key (§8.5), as the page's store keeps it. */
export interface Pin {
  spki: Uint8Array;
  verified: boolean;
}

/** Where the page keeps its pins for this relay (IndexedDB in the page, a Map in tests). */
export interface PinBook {
  get(nick: string): Promise<Pin | undefined>;
  put(nick: string, pin: Pin): Promise<void>;
}

export type MemberStatus = 'checking' | 'handshake' | 'established' | 'failed' | 'key-changed' | 'bad-key';

/** What the page shows of one outgoing text: per recipient, where it is. */
export type Delivery = 'queued' | 'sent' | 'delivered' | 'lost';

export interface Outgoing {
  readonly id: number;
  readonly text: string;
  /** Per recipient: its state, and the session seq once sealed. */
  readonly to: Map<string, { state: Delivery; seq: number | null }>;
}

export type RoomEvent =
  | { type: 'member'; nick: string; fingerprint: string; status: MemberStatus; verified: boolean; firstSeen: boolean }
  | { type: 'key-changed'; nick: string; pinnedFingerprint: string; offeredFingerprint: string }
  | { type: 'established'; nick: string; verified: boolean }
  | { type: 'member-left'; nick: string }
  | { type: 'text'; from: string; seq: number; ts: number; text: string }
  | { type: 'outgoing'; message: Outgoing }
  /** One recipient of a text will never acknowledge it (left, session failed, connection lost). */
  | { type: 'undelivered'; message: Outgoing; to: string; reason: 'left' | 'failed' | 'closed' }
  | { type: 'rejected'; nick: string; code: ErrorName; fatal: boolean };

export interface WebRoomOptions {
  crypto: CryptoBackend;
  room: string;
  self: { nick: string; key: RsaPrivateKey; spki: Uint8Array };
  pins: PinBook;
  /** Sends one SEND frame to `to` (the relay link). */
  send: (to: string, body: Uint8Array) => void;
  onEvent: (e: RoomEvent) => void;
  /** Milliseconds an end-to-end handshake may take (default E2E_HANDSHAKE_TIMEOUT_MS, §7.2). */
  handshakeTimeoutMs?: number;
}

/** While a member is blocked (key changed), the first few bodies (its HS_INIT) are kept for after accept. */
const MAX_HELD_BODIES = 4;

interface Member {
  readonly nick: string;
  readonly spki: Uint8Array;
  readonly role: 'initiator' | 'responder';
  key: RsaPublicKey | null;
  session: PeerSession | null;
  status: MemberStatus;
  verified: boolean;
  chain: Promise<void>;
  outbox: Outgoing[];
  unacked: Map<number, Outgoing>;
  held: Uint8Array[];
  timer: ReturnType<typeof setTimeout> | null;
  gone: boolean;
}

export class WebRoom {
  private readonly members = new Map<string, Member>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly o: WebRoomOptions) {}

  /** A member listed by JOINED (we initiate) or PEER_JOINED (it initiates), §7.2. */
  add(nick: string, spki: Uint8Array, role: 'initiator' | 'responder'): void {
    if (this.closed || this.members.has(nick)) return;
    const m: Member = {
      nick,
      spki: Uint8Array.from(spki),
      role,
      key: null,
      session: null,
      status: 'checking',
      verified: false,
      chain: Promise.resolve(),
      outbox: [],
      unacked: new Map(),
      held: [],
      timer: null,
      gone: false,
    };
    this.members.set(nick, m);
    this.later(m, () => this.admit(m));
  }

  /** PEER_LEFT: erase the session's keys; whatever it never acknowledged is undelivered. */
  remove(nick: string): void {
    const m = this.members.get(nick);
    if (m === undefined) return;
    this.members.delete(nick);
    this.drop(m, 'left');
    this.o.onEvent({ type: 'member-left', nick });
  }

  /** A DELIVER body from `from`. */
  deliver(from: string, body: Uint8Array): void {
    const m = this.members.get(from);
    if (m === undefined) return;
    const copy = Uint8Array.from(body);
    this.later(m, async () => {
      if (m.status === 'bad-key') return;
      if (m.status === 'key-changed' || m.session === null) {
        if (m.held.length < MAX_HELD_BODIES) m.held.push(copy);
        return;
      }
      await this.events(m, await guard(() => m.session!.receive(copy)));
    });
  }

  /**
   * Sends `text` to every member present whose key is not blocked. Returns the message, or null when it
   * reaches no one (alone, or every member blocked): the page keeps the text in the composer then.
   */
  send(text: string): Outgoing | null {
    const to = [...this.members.values()].filter((m) => m.status !== 'key-changed' && m.status !== 'bad-key' && m.status !== 'failed');
    if (this.closed || to.length === 0) return null;
    const msg: Outgoing = { id: this.nextId++, text, to: new Map(to.map((m) => [m.nick, { state: 'queued' as Delivery, seq: null }])) };
    this.o.onEvent({ type: 'outgoing', message: msg });
    for (const m of to) {
      m.outbox.push(msg);
      this.later(m, () => this.flush(m));
    }
    return msg;
  }

  /** The user compared safety numbers: the member's key is pinned as verified. */
  async verify(nick: string): Promise<boolean> {
    const m = this.members.get(nick);
    if (m === undefined || m.status === 'key-changed' || m.status === 'bad-key') return false;
    await this.o.pins.put(nick, { spki: m.spki, verified: true });
    m.verified = true;
    return true;
  }

  /** The user accepts the changed key of `nick`: re-pinned unverified, then the session starts. */
  async accept(nick: string): Promise<boolean> {
    const m = this.members.get(nick);
    if (m === undefined || m.status !== 'key-changed') return false;
    await this.o.pins.put(nick, { spki: m.spki, verified: false });
    m.verified = false;
    this.later(m, async () => {
      m.status = 'handshake';
      await this.report(m, false);
      await this.open(m);
      const held = m.held;
      m.held = [];
      for (const body of held) {
        if (m.session !== null) await this.events(m, await guard(() => m.session!.receive(body)));
      }
    });
    return true;
  }

  /** The members and their state, in the order they were listed. */
  list(): { nick: string; status: MemberStatus; verified: boolean }[] {
    return [...this.members.values()].map((m) => ({ nick: m.nick, status: m.status, verified: m.verified }));
  }

  /** The connection ended: every session's keys are erased, everything unacknowledged is undelivered. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const m of this.members.values()) this.drop(m, 'closed');
    this.members.clear();
  }

  // ---- per member ----

  private later(m: Member, step: () => Promise<void>): void {
    m.chain = m.chain.then(async () => {
      if (m.gone) return;
      try {
        await step();
      } catch (e) {
        // A bug, never peer input (sessions report refusals as events): that member's session fails.
        this.o.onEvent({ type: 'rejected', nick: m.nick, code: e instanceof ProtocolError ? e.errorName : 'INTERNAL_ERROR', fatal: true });
        this.fail(m);
      }
    });
  }

  private async admit(m: Member): Promise<void> {
    try {
      m.key = await this.o.crypto.importPublicKey(m.spki);
    } catch (e) {
      // §8.1: no session with a key that is not a canonical RSA-2048 key.
      m.status = 'bad-key';
      await this.report(m, false);
      this.o.onEvent({ type: 'rejected', nick: m.nick, code: e instanceof ProtocolError ? e.errorName : 'BAD_PUBLIC_KEY', fatal: true });
      return;
    }
    const pin = await this.o.pins.get(m.nick);
    if (m.gone) return;
    if (pin !== undefined && !sameBytes(pin.spki, m.spki)) {
      m.status = 'key-changed';
      await this.report(m, false);
      this.o.onEvent({
        type: 'key-changed',
        nick: m.nick,
        pinnedFingerprint: await fingerprintOf(this.o.crypto, pin.spki),
        offeredFingerprint: await fingerprintOf(this.o.crypto, m.spki),
      });
      return;
    }
    m.verified = pin?.verified === true;
    m.status = 'handshake';
    await this.report(m, pin === undefined);
    await this.open(m);
  }

  private async report(m: Member, firstSeen: boolean): Promise<void> {
    this.o.onEvent({ type: 'member', nick: m.nick, fingerprint: await fingerprintOf(this.o.crypto, m.spki), status: m.status, verified: m.verified, firstSeen });
  }

  private async open(m: Member): Promise<void> {
    m.session = new PeerSession({
      crypto: this.o.crypto,
      room: this.o.room,
      self: this.o.self,
      peerNick: m.nick,
      peerKey: m.key!,
      role: m.role,
    });
    if (m.role === 'initiator') await this.events(m, await guard(() => m.session!.start()));
    else this.arm(m);
  }

  /** §7.2: the handshake must complete within E2E_HANDSHAKE_TIMEOUT_MS of its start. */
  private arm(m: Member): void {
    if (m.timer !== null) return;
    m.timer = setTimeout(() => {
      this.later(m, async () => {
        if (m.session !== null && m.status === 'handshake') await this.events(m, await guard(() => m.session!.timeout()));
      });
    }, this.o.handshakeTimeoutMs ?? LIMITS.E2E_HANDSHAKE_TIMEOUT_MS);
  }

  private async events(m: Member, evs: SessionEvent[]): Promise<void> {
    if (m.gone) return;
    // Frames first, in the order the session numbered them (an ACK before a text sent after it).
    for (const ev of evs) if (ev.kind === 'send') this.o.send(m.nick, ev.body);
    for (const ev of evs) {
      switch (ev.kind) {
        case 'send':
          break;
        case 'established': {
          m.status = 'established';
          if (m.timer !== null) clearTimeout(m.timer);
          m.timer = null;
          const pin = await this.o.pins.get(m.nick);
          if (pin === undefined) await this.o.pins.put(m.nick, { spki: m.spki, verified: false });
          this.o.onEvent({ type: 'established', nick: m.nick, verified: m.verified });
          break;
        }
        case 'text':
          this.o.onEvent({ type: 'text', from: m.nick, seq: ev.seq, ts: ev.ts, text: ev.text });
          break;
        case 'delivered': {
          const msg = m.unacked.get(ev.seq);
          if (msg !== undefined) {
            m.unacked.delete(ev.seq);
            msg.to.set(m.nick, { state: 'delivered', seq: ev.seq });
            this.o.onEvent({ type: 'outgoing', message: msg });
          }
          break;
        }
        case 'rejected': {
          const fatal = m.session?.state === 'FAILED';
          this.o.onEvent({ type: 'rejected', nick: m.nick, code: ev.error.errorName, fatal });
          if (fatal) this.fail(m);
          break;
        }
      }
    }
    if (m.status === 'established') await this.flush(m);
    else if (m.status === 'handshake') this.arm(m);
  }

  /** Seals and sends the outbox in order, once established. */
  private async flush(m: Member): Promise<void> {
    while (m.outbox.length > 0 && !m.gone && m.status === 'established' && m.session?.state === 'ESTABLISHED') {
      const msg = m.outbox[0]!;
      let r: { seq: number; events: SessionEvent[] };
      try {
        r = await m.session.sendText(msg.text, Date.now());
      } catch (e) {
        m.outbox.shift();
        this.lose(m, msg, 'failed');
        this.o.onEvent({ type: 'rejected', nick: m.nick, code: e instanceof ProtocolError ? e.errorName : 'INTERNAL_ERROR', fatal: false });
        continue;
      }
      if (m.gone) return;
      m.outbox.shift();
      m.unacked.set(r.seq, msg);
      for (const ev of r.events) if (ev.kind === 'send') this.o.send(m.nick, ev.body);
      msg.to.set(m.nick, { state: 'sent', seq: r.seq });
      this.o.onEvent({ type: 'outgoing', message: msg });
    }
  }

  private lose(m: Member, msg: Outgoing, reason: 'left' | 'failed' | 'closed'): void {
    const cur = msg.to.get(m.nick);
    if (cur === undefined || cur.state === 'delivered' || cur.state === 'lost') return;
    msg.to.set(m.nick, { state: 'lost', seq: cur.seq });
    this.o.onEvent({ type: 'undelivered', message: msg, to: m.nick, reason });
  }

  private fail(m: Member): void {
    m.status = 'failed';
    for (const msg of [...m.unacked.values(), ...m.outbox]) this.lose(m, msg, 'failed');
    m.unacked.clear();
    m.outbox = [];
    void this.report(m, false);
  }

  private drop(m: Member, reason: 'left' | 'closed'): void {
    m.gone = true;
    if (m.timer !== null) clearTimeout(m.timer);
    m.timer = null;
    if (m.session !== null) {
      m.session.peerLeft();
      m.session.destroy();
    }
    m.session = null;
    for (const msg of [...m.unacked.values(), ...m.outbox]) this.lose(m, msg, reason);
    m.unacked.clear();
    m.outbox = [];
    m.held = [];
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function guard(f: () => Promise<SessionEvent[]>): Promise<SessionEvent[]> {
  try {
    return await f();
  } catch (e) {
    return [{ kind: 'rejected', error: e instanceof ProtocolError ? e : new ProtocolError('INTERNAL_ERROR', `session: ${String(e)}`) }];
  }
}
