/**
 * Shared machinery of the server cases: identities, fresh names, and helpers that bring a kit connection
 * into each state of the relay's machine (spec/PROTOCOL.md §7.1) by the spec's own steps (§7.3).
 */
import { randomBytes } from 'node:crypto';
import type { FrameOf, Member } from '../codec/index.js';
import { authMessage } from '../crypto/rsa.js';
import { CaseFailure, Conn, type Transport } from './conn.js';
import { LIMITS } from '../protocol/limits.js';
import { KeyPool, makeIdentity, type Keys } from '../wirekit/identity.js';

/** An identity: RSA private key and its public key as SPKI DER (the wire kit's pool makes them). */
export type Identity = Keys;
export { makeIdentity };

export interface ServerKitOptions {
  readonly host: string;
  readonly port: number;
  /** How long the kit waits for an answer the spec requires, in milliseconds. */
  readonly waitMs: number;
  /** The target's handshake timeout (HANDSHAKE_TIMEOUT_MS as configured on the target), in milliseconds. */
  readonly handshakeMs: number;
  /** Most connections one case may open at once (room filling and the join race). */
  readonly connectionBudget: number;
  /**
   * Authenticated connections of one key the target allows at once (its MAX_CONNECTIONS_PER_KEY, §10;
   * default 4): a case never opens more than this many with one key unless that is what it tests.
   */
  readonly connectionsPerKey: number;
  /** TCP (§3), or the relay's WebSocket endpoint (§3.1; host:port is then its web listener). */
  readonly transport: Transport;
}

/** A connection that has passed the relay handshake (state READY). */
export interface Authed {
  readonly conn: Conn;
  readonly nick: string;
  readonly ident: Identity;
  readonly welcome: FrameOf<'WELCOME'>;
}

/** A connection in a room (state IN_ROOM). */
export interface InRoom extends Authed {
  readonly room: string;
  readonly joined: FrameOf<'JOINED'>;
}

/** Keys a server case reserves unless it says otherwise (ServerCase.keys): `ident(0)` and `ident(1)`. */
export const KEYS_PER_CASE = 2;

const RUN = randomBytes(4).toString('hex');
let counter = 0;

/** The per-case context: opens connections, remembers them, closes them all at the end. */
export class Ctx {
  private readonly conns: Conn[] = [];
  /** The keys this case leased, in the order `ident(i)` first asked for them. */
  private readonly leased: Identity[] = [];
  /** Connections this case began (HELLO sent) with each key: never lowered, so it is an upper bound. */
  private readonly uses = new Map<Identity, number>();

  constructor(
    readonly opts: ServerKitOptions,
    readonly pool: KeyPool,
    /** Keys reserved for this case before it started; `ident(i)` hands them out first. */
    private readonly reserved: Identity[] = [],
  ) {}

  /** A fresh nickname: nickname binding is permanent on a real relay (§7.1), so every run uses new ones. */
  nick(): string {
    return `ck${RUN}${(counter++).toString(36)}${randomBytes(3).toString('hex')}`;
  }

  /** A fresh room name. */
  room(): string {
    return `ckroom.${RUN}.${(counter++).toString(36)}${randomBytes(3).toString('hex')}`;
  }

  /** The case's i-th key: distinct indices are distinct keys, leased for this case alone. */
  ident(i = 0): Identity {
    while (this.leased.length <= i) this.leased.push(this.reserved.shift() ?? this.pool.lease());
    return this.leased[i]!;
  }

  /**
   * A key of this case with a connection to spare: the first one this case has begun fewer than
   * `connectionsPerKey` connections with (a new one when all are used up), for connections whose key
   * does not matter to the case.
   */
  spare(): Identity {
    const cap = this.opts.connectionsPerKey;
    for (let i = 0; ; i++) {
      const id = this.ident(i);
      if ((this.uses.get(id) ?? 0) < cap) return id;
    }
  }

  async open(): Promise<Conn> {
    const c = await Conn.open(this.opts.host, this.opts.port, this.opts.waitMs, this.opts.transport);
    this.conns.push(c);
    return c;
  }

  /** Opens a connection and sends HELLO; returns it after CHALLENGE (state AWAIT_AUTH). */
  async challenged(nick = this.nick(), ident = this.spare()): Promise<{ conn: Conn; nick: string; ident: Identity; challenge: FrameOf<'CHALLENGE'> }> {
    this.uses.set(ident, (this.uses.get(ident) ?? 0) + 1);
    const conn = await this.open();
    conn.sendHello(nick, ident.spki);
    const challenge = await conn.expect('CHALLENGE', 'CHALLENGE after HELLO (§7.1 AWAIT_HELLO)');
    return { conn, nick, ident, challenge };
  }

  /** Runs HELLO / CHALLENGE / AUTH / WELCOME (§7.3); returns the connection in READY. */
  async authed(nick = this.nick(), ident = this.spare()): Promise<Authed> {
    const { conn, challenge } = await this.challenged(nick, ident);
    conn.sendAuth(challenge, nick, ident);
    const welcome = await conn.expect('WELCOME', 'WELCOME after a valid AUTH (§7.1 AWAIT_AUTH, §7.3)');
    return { conn, nick, ident, welcome };
  }

  /** Authenticates and joins `room`; returns the connection in IN_ROOM. */
  async joined(room: string, nick = this.nick(), ident = this.spare()): Promise<InRoom> {
    const a = await this.authed(nick, ident);
    a.conn.send({ type: 'JOIN', room });
    const joined = await a.conn.expect('JOINED', `JOINED for room ${room} (§7.1 READY JOIN)`);
    return { ...a, room, joined };
  }

  /**
   * Joins `n` members (keys as `spare` gives them) to a fresh room one after the other, each existing member reading the newcomer's
   * PEER_JOINED, so the room is quiet when this returns.
   */
  async roomOf(n: number, room = this.room()): Promise<InRoom[]> {
    const members: InRoom[] = [];
    for (let i = 0; i < n; i++) {
      const m = await this.joined(room, this.nick(), this.spare());
      for (const other of members) {
        const pj = await other.conn.expect('PEER_JOINED', `PEER_JOINED for ${m.nick}`);
        if (pj.nick !== m.nick) throw new CaseFailure(`PEER_JOINED {nick: ${m.nick}}`, `PEER_JOINED {nick: ${pj.nick}}`);
      }
      members.push(m);
    }
    return members;
  }

  /** Closes every connection this case opened and returns its keys to the pool. */
  cleanup(): void {
    for (const c of this.conns) c.destroy();
    this.conns.length = 0;
    this.pool.release([...this.leased.splice(0), ...this.reserved.splice(0)]);
    this.uses.clear();
  }
}

/** Compares a JOINED member list with the expected members, as sets of (nick, key). */
export function sameMembers(got: readonly Member[], want: ReadonlyArray<{ nick: string; ident: Identity }>): boolean {
  if (got.length !== want.length) return false;
  return want.every((w) => got.some((g) => g.nick === w.nick && Buffer.from(g.key).equals(Buffer.from(w.ident.spki))));
}

/**
 * The AUTH message (§7.3) for a CHALLENGE from the relay under test: over the name it announced (the kit
 * tests the relay, so it takes that name as the one it addressed) and, on plain TCP, an empty channel binding.
 */
export function authOf(challenge: FrameOf<'CHALLENGE'>, nick: string, spki: Uint8Array): Uint8Array {
  return authMessage(challenge.nonce, nick, spki, challenge.relay, new Uint8Array(0));
}
