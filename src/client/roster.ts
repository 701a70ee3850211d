/**
 * Roster agreement (spec/PROTOCOL.md §8.6): what a member checks so that a relay cannot show members
 * different rooms unnoticed. Pure: no sockets, no timers, no node: imports; the hash is the caller's
 * (the CryptoBackend's SHA-256), the clock is passed in. ChatClient feeds it the relay's membership
 * events and its peers' ROSTER messages and shows what it reports.
 *
 * - Every JOINED, PEER_JOINED and PEER_LEFT carries the room's epoch (§7.1 "Room epoch"). The tracker
 *   holds the members at the current epoch (including this client) and requires each event to name
 *   exactly the next epoch (a relay error otherwise: INVALID_FIELD).
 * - It keeps this client's own commitment for each of the last ROSTER_WINDOW_EPOCHS epochs.
 * - A peer's ROSTER{epoch, hash} is compared with our commitment for that epoch: equal is agreement,
 *   different is a `mismatch`. An epoch we have not reached yet waits (the relay's event to us is
 *   behind the peer's); once it has waited ROSTER_WAIT_MS it is reported as `withheld` (the relay keeps
 *   a membership event from us: a PEER_LEFT it never sends looks exactly like this). An epoch below our
 *   first (before our JOINED) or older than the window cannot be checked and is reported as
 *   `unverifiable`: an honest relay never causes either.
 */
import { concatBytes, lp, utf8, writeU32BE, writeU64BE } from '../crypto/bytes.js';
import { ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';

/** The label that starts the commitment's input (§8.6); distinct from every other label (§8.1). */
export const ROSTER_LABEL = 'e2ee-chat/2 roster';

export interface RosterMember {
  readonly nick: string;
  /** The identity key as the relay announced it (DER SPKI). */
  readonly key: Uint8Array;
}

function uint(bytes: 4 | 8, n: number): Uint8Array {
  const out = new Uint8Array(bytes);
  if (bytes === 4) writeU32BE(out, 0, n);
  else writeU64BE(out, 0, n);
  return out;
}

function byNick(a: RosterMember, b: RosterMember): number {
  return a.nick < b.nick ? -1 : a.nick > b.nick ? 1 : 0;
}

/**
 * The input of the roster commitment (§8.6), whose SHA-256 is ROSTER.hash:
 * "e2ee-chat/2 roster" || lp(room) || u64(epoch) || u32(n) || for each member in ascending byte order of
 * nickname: lp(nick) || lp(key). `members` is every member at `epoch`, the sender included, in any order.
 */
export function rosterPreimage(room: string, epoch: number, members: readonly RosterMember[]): Uint8Array {
  const sorted = [...members].sort(byNick);
  const parts: Uint8Array[] = [utf8(ROSTER_LABEL), lp(room), uint(8, epoch), uint(4, sorted.length)];
  for (const m of sorted) parts.push(lp(m.nick), lp(m.key));
  return concatBytes(...parts);
}

/** What the tracker reports to the user (§8.6): never silently dropped. */
export type RosterReport =
  /** `peer` committed to a different roster at `epoch` than the one we saw then (`members`, ours). */
  | { kind: 'mismatch'; epoch: number; peer: string; members: string[] }
  /** `peer` is at `epoch`, which we never reached within ROSTER_WAIT_MS: the relay withholds an event from us. */
  | { kind: 'withheld'; epoch: number; peer: string; ourEpoch: number }
  /** `peer` committed at `epoch`, before our first epoch or beyond our window: it cannot be checked. */
  | { kind: 'unverifiable'; epoch: number; peer: string; ourEpoch: number };

/**
 * A report as one line, the same in every client (the CLI's both modes, the page): `roster mismatch at
 * epoch E: NICK …` (spec/CONFORMANCE.md §2.1, README scripted contract).
 */
export function rosterLine(r: RosterReport): string {
  const head = `roster mismatch at epoch ${r.epoch}: ${r.peer}`;
  switch (r.kind) {
    case 'mismatch':
      return `${head} sees other members than we do (we see ${r.members.join(', ')})`;
    case 'withheld':
      return `${head} is at this epoch and the relay has not told us of it (we are at epoch ${r.ourEpoch}): a membership event is withheld`;
    case 'unverifiable':
      return `${head} committed to an epoch we cannot check (we are at epoch ${r.ourEpoch})`;
  }
}

interface Own {
  readonly epoch: number;
  /** Nicknames at this epoch, sorted. */
  readonly nicks: string[];
  readonly hash: Promise<Uint8Array>;
}

interface Waiting {
  readonly epoch: number;
  readonly hash: Uint8Array;
  readonly since: number;
}

export interface RosterOptions {
  readonly room: string;
  readonly self: RosterMember;
  /** SHA-256 of its input (32 bytes). */
  readonly sha256: (data: Uint8Array) => Promise<Uint8Array>;
  readonly windowEpochs?: number;
  readonly waitMs?: number;
}

/** Equality of two commitments; they are public values, so no constant-time compare is needed. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Most ROSTERs of one peer held while they wait for an epoch we have not reached (§8.6). */
const MAX_WAITING_PER_PEER = 8;

export class RosterTracker {
  readonly room: string;
  readonly windowEpochs: number;
  readonly waitMs: number;
  private readonly self: RosterMember;
  private readonly sha256: (data: Uint8Array) => Promise<Uint8Array>;
  private readonly members = new Map<string, Uint8Array>();
  /** Our commitments, oldest first, at most windowEpochs of them. */
  private readonly own: Own[] = [];
  private firstEpoch = 0;
  private epochNow = 0;
  /** Per peer: the epoch of the last ROSTER we sent it (0: none yet). */
  private readonly sentTo = new Map<string, number>();
  private readonly waiting = new Map<string, Waiting[]>();

  constructor(o: RosterOptions) {
    this.room = o.room;
    this.self = { nick: o.self.nick, key: Uint8Array.from(o.self.key) };
    this.sha256 = o.sha256;
    this.windowEpochs = o.windowEpochs ?? LIMITS.ROSTER_WINDOW_EPOCHS;
    this.waitMs = o.waitMs ?? LIMITS.ROSTER_WAIT_MS;
  }

  /** The current epoch (0 before JOINED). */
  get epoch(): number {
    return this.epochNow;
  }

  /** JOINED: the room at `epoch` is `others` plus this client. Starts the tracker afresh. */
  joined(epoch: number, others: readonly RosterMember[]): void {
    this.members.clear();
    this.own.length = 0;
    this.sentTo.clear();
    this.waiting.clear();
    for (const m of others) this.members.set(m.nick, m.key);
    this.firstEpoch = epoch;
    this.record(epoch);
  }

  /** PEER_JOINED for `m` at `epoch`: the epoch must be the next one (INVALID_FIELD otherwise, §7.4). */
  peerJoined(epoch: number, m: RosterMember): void {
    this.next(epoch, 'PEER_JOINED');
    this.members.set(m.nick, m.key);
    this.record(epoch);
  }

  /** PEER_LEFT for `nick` at `epoch` (the next one); what that peer sent and waits is forgotten. */
  peerLeft(epoch: number, nick: string): void {
    this.next(epoch, 'PEER_LEFT');
    this.members.delete(nick);
    this.sentTo.delete(nick);
    this.waiting.delete(nick);
    this.record(epoch);
  }

  private next(epoch: number, what: string): void {
    if (this.epochNow === 0) throw new ProtocolError('UNEXPECTED_FRAME', `${what} before JOINED`);
    if (epoch !== this.epochNow + 1) throw new ProtocolError('INVALID_FIELD', `${what} for epoch ${epoch}, expected ${this.epochNow + 1} (§7.1 room epoch)`);
  }

  private record(epoch: number): void {
    this.epochNow = epoch;
    const all: RosterMember[] = [this.self, ...[...this.members].map(([nick, key]) => ({ nick, key }))];
    const hash = this.sha256(rosterPreimage(this.room, epoch, all));
    hash.catch(() => undefined); // awaited where it is used
    this.own.push({ epoch, nicks: all.map((m) => m.nick).sort(), hash });
    if (this.own.length > this.windowEpochs) this.own.shift();
  }

  /**
   * The commitment to send `peer` now, if it has not had one for the current epoch (§8.6: once its
   * session is established, then after each read batch that changed the epoch), and marks it sent.
   */
  due(peer: string): { epoch: number; hash: Promise<Uint8Array> } | undefined {
    if (this.epochNow === 0 || !this.members.has(peer) || this.sentTo.get(peer) === this.epochNow) return undefined;
    this.sentTo.set(peer, this.epochNow);
    return { epoch: this.epochNow, hash: this.own[this.own.length - 1]!.hash };
  }

  /**
   * A ROSTER from `peer` (its session already required its epochs to grow). Resolves with what to report
   * now, if anything; a commitment for an epoch we have not reached is held (see `expire`), and is
   * checked by `check` once we reach it.
   */
  async received(peer: string, epoch: number, hash: Uint8Array, now: number): Promise<RosterReport[]> {
    if (!this.members.has(peer)) return [];
    if (epoch > this.epochNow) {
      const w = this.waiting.get(peer) ?? [];
      // Bounded: the oldest held one is dropped unchecked, and later ones of that peer still count.
      if (w.length >= MAX_WAITING_PER_PEER) w.shift();
      w.push({ epoch, hash: Uint8Array.from(hash), since: now });
      this.waiting.set(peer, w);
      return [];
    }
    return this.compare(peer, epoch, hash);
  }

  private async compare(peer: string, epoch: number, hash: Uint8Array): Promise<RosterReport[]> {
    const own = this.own.find((o) => o.epoch === epoch);
    if (own === undefined || epoch < this.firstEpoch) return [{ kind: 'unverifiable', epoch, peer, ourEpoch: this.epochNow }];
    const mine = await own.hash;
    if (same(mine, hash)) return [];
    return [{ kind: 'mismatch', epoch, peer, members: own.nicks }];
  }

  /**
   * After our epoch moved on: compares every held commitment whose epoch we have now reached. Call it
   * after each batch of membership events.
   */
  async check(): Promise<RosterReport[]> {
    const out: RosterReport[] = [];
    for (const [peer, w] of [...this.waiting]) {
      const ready = w.filter((x) => x.epoch <= this.epochNow);
      if (ready.length === 0) continue;
      const rest = w.filter((x) => x.epoch > this.epochNow);
      if (rest.length === 0) this.waiting.delete(peer);
      else this.waiting.set(peer, rest);
      for (const x of ready) out.push(...(await this.compare(peer, x.epoch, x.hash)));
    }
    return out;
  }

  /** Held commitments that waited ROSTER_WAIT_MS at `now` for an epoch we never reached: `withheld`. */
  expire(now: number): RosterReport[] {
    const out: RosterReport[] = [];
    for (const [peer, w] of [...this.waiting]) {
      const old = w.filter((x) => now - x.since >= this.waitMs);
      if (old.length === 0) continue;
      const rest = w.filter((x) => now - x.since < this.waitMs);
      if (rest.length === 0) this.waiting.delete(peer);
      else this.waiting.set(peer, rest);
      // One report per peer: the highest epoch it is at.
      out.push({ kind: 'withheld', epoch: Math.max(...old.map((x) => x.epoch)), peer, ourEpoch: this.epochNow });
    }
    return out;
  }

  /** Commitments held for epochs not reached yet, over all peers. */
  heldCount(): number {
    let n = 0;
    for (const w of this.waiting.values()) n += w.length;
    return n;
  }

  /** When the next held commitment times out (ms since the same origin as `now`), or undefined. */
  nextDeadline(): number | undefined {
    let d: number | undefined;
    for (const w of this.waiting.values()) for (const x of w) d = d === undefined ? x.since + this.waitMs : Math.min(d, x.since + this.waitMs);
    return d;
  }
}

/** What RosterAgreement needs from its client: the narrow hook (ChatClient implements it). */
export interface RosterHooks {
  /** SHA-256 (the client's CryptoBackend). */
  sha256(data: Uint8Array): Promise<Uint8Array>;
  /**
   * Seal ROSTER{epoch, hash} to `peer` in its session, after everything already queued for it (the
   * client awaits `hash` in that order, so one peer's ROSTERs leave with growing epochs).
   */
  send(peer: string, epoch: number, hash: Promise<Uint8Array>): void;
  /** Show a report to the user (§8.6: never silently). */
  report(r: RosterReport): void;
  /** Milliseconds, for the wait of §8.6 (default Date.now). */
  now?(): number;
}

/**
 * The roster agreement of one relay connection's room membership, driven by the client: relay events
 * (`joined`, `peerJoined`, `peerLeft`, each checked for the next epoch), the end of each read batch of
 * relay frames (`endOfBatch`: one ROSTER per established peer if the epoch moved), a session reaching
 * ESTABLISHED (`established`: its first ROSTER), and each ROSTER received (`received`).
 */
export class RosterAgreement {
  private tracker: RosterTracker | null = null;
  private moved = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly self: RosterMember,
    private readonly hooks: RosterHooks,
    private readonly waitMs: number = LIMITS.ROSTER_WAIT_MS,
  ) {}

  /** The current epoch (0 before JOINED). */
  get epoch(): number {
    return this.tracker?.epoch ?? 0;
  }

  private now(): number {
    return this.hooks.now?.() ?? Date.now();
  }

  joined(room: string, epoch: number, others: readonly RosterMember[]): void {
    this.stop();
    this.tracker = new RosterTracker({ room, self: this.self, sha256: (d) => this.hooks.sha256(d), waitMs: this.waitMs });
    this.tracker.joined(epoch, others);
    this.moved = false;
  }

  /** Throws ProtocolError (INVALID_FIELD, UNEXPECTED_FRAME) for an epoch that is not the next one. */
  peerJoined(epoch: number, m: RosterMember): void {
    if (this.tracker === null) throw new ProtocolError('UNEXPECTED_FRAME', 'PEER_JOINED before JOINED');
    this.tracker.peerJoined(epoch, m);
    this.moved = true;
  }

  peerLeft(epoch: number, nick: string): void {
    if (this.tracker === null) throw new ProtocolError('UNEXPECTED_FRAME', 'PEER_LEFT before JOINED');
    this.tracker.peerLeft(epoch, nick);
    this.moved = true;
  }

  /** A session reached ESTABLISHED: it gets our commitment for the current epoch. */
  established(peer: string): void {
    const d = this.tracker?.due(peer);
    if (d !== undefined) this.hooks.send(peer, d.epoch, d.hash);
  }

  /** The read batch of relay frames is handled: commitments to the established peers if the epoch moved. */
  endOfBatch(established: Iterable<string>): void {
    const t = this.tracker;
    if (t === null || !this.moved) return;
    this.moved = false;
    for (const peer of established) {
      const d = t.due(peer);
      if (d !== undefined) this.hooks.send(peer, d.epoch, d.hash);
    }
    void t.check().then((rs) => this.show(t, rs));
  }

  /** A ROSTER from `peer`'s session. */
  async received(peer: string, epoch: number, hash: Uint8Array): Promise<void> {
    const t = this.tracker;
    if (t === null) return;
    this.show(t, await t.received(peer, epoch, hash, this.now()));
    this.arm();
  }

  /** How many commitments are held waiting for an epoch we have not reached. */
  held(): number {
    return this.tracker?.heldCount() ?? 0;
  }

  /** The room is left or the connection closed: nothing more is reported for it. */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.tracker = null;
  }

  private show(t: RosterTracker, rs: RosterReport[]): void {
    if (t !== this.tracker) return;
    for (const r of rs) this.hooks.report(r);
  }

  private arm(): void {
    const t = this.tracker;
    const at = t?.nextDeadline();
    if (t === null || t === undefined || at === undefined || this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (t !== this.tracker) return;
      this.show(t, t.expire(this.now()));
      this.arm();
    }, Math.max(0, at - this.now()));
    (this.timer as { unref?: () => void }).unref?.();
  }
}
