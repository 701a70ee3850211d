/**
 * The oracle: what a conforming relay must answer to a byte stream, computed with the reference decoder
 * (src/codec), the relay's transition table (src/protocol/relay-machine.ts) and the key and signature checks
 * of src/crypto/rsa.ts. It never looks at the server under test.
 *
 * Some answers depend on state the oracle cannot see (another connection may fill a room, so a JOIN is
 * JOINED or ROOM_FULL); for those it lists every conforming answer, and `observe` follows the branch the
 * server actually took.
 */
import { ERROR_CODES, ProtocolError, type ErrorName } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { decodeFrame, encodeFrame, FrameReader, type RelayFrame } from '../codec/index.js';
import { serverTransition, type ServerInput, type ServerState } from '../protocol/relay-machine.js';
import { authMessage, parsePublicKey, pssVerify } from '../crypto/rsa.js';

/** One unit of a client's byte stream, as the reference framing (spec §3) splits it. */
export type Item =
  | { kind: 'frame'; body: Buffer }
  | { kind: 'framing-error'; code: ErrorName }
  | { kind: 'partial'; have: number };

/** What the relay must do with one item. */
export type Expectation =
  | { kind: 'error'; codes: ErrorName[]; why: string }
  | { kind: 'reply'; type: 'CHALLENGE' | 'WELCOME' | 'PONG' | 'LEFT' | 'RECOVERY_SET'; n?: number; why: string }
  | { kind: 'join'; room: string; why: string }
  | { kind: 'deliver'; to: string; body: Buffer; why: string }
  | { kind: 'close'; why: string }
  | { kind: 'partial'; why: string };

/** What the oracle knows of one connection. */
export interface ConnectionContext {
  state: ServerState;
  /** Largest frame body accepted (the WELCOME max_frame once READY). */
  maxFrame: number;
  nick?: string;
  spki?: Uint8Array;
  nonce?: Uint8Array;
  /** CHALLENGE.relay as the relay under test announced it (§7.3). */
  relayName?: string;
  room?: string;
  /** Nicknames of the other members of the room, for SEND (spec §7.1 "Relaying"). */
  peers: Set<string>;
  /** nickname -> identity key bound in the relay's registry, as far as the harness knows. */
  registry: Map<string, Buffer>;
}

/** One whole frame as the model's input (its body, as the reference framing would hand it on). */
export function frameItem(f: RelayFrame): Item {
  return { kind: 'frame', body: Buffer.from(encodeFrame(f)) };
}

/** Splits a byte stream into frames with the reference FrameReader, keeping frames before an error. */
export function splitStream(wire: Uint8Array, maxFrame: number): Item[] {
  const reader = new FrameReader(maxFrame);
  const buf = Buffer.from(wire.buffer, wire.byteOffset, wire.length);
  const items: Item[] = [];
  let pos = 0;
  while (pos < buf.length) {
    // Feed up to one frame boundary at a time, so a header error does not hide the frames before it.
    let end: number;
    if (buf.length - pos < LIMITS.LENGTH_PREFIX_BYTES) end = buf.length;
    else {
      const n = buf.readUInt32BE(pos);
      end = n === 0 || n > maxFrame ? pos + LIMITS.LENGTH_PREFIX_BYTES : Math.min(buf.length, pos + LIMITS.LENGTH_PREFIX_BYTES + n);
    }
    try {
      for (const body of reader.push(buf.subarray(pos, end))) items.push({ kind: 'frame', body });
    } catch (e) {
      if (e instanceof ProtocolError) {
        items.push({ kind: 'framing-error', code: e.errorName });
        return items;
      }
      throw e;
    }
    pos = end;
  }
  if (!reader.atBoundary) items.push({ kind: 'partial', have: reader.pending });
  return items;
}

/** A connection's oracle: feed it items in order, then the frames the relay sent back. */
export class ConnectionOracle {
  constructor(readonly ctx: ConnectionContext) {}

  /** What the relay must do with the next item, in the current state. */
  expect(item: Item): Expectation {
    if (item.kind === 'framing-error') return { kind: 'error', codes: [item.code], why: 'framing (spec §3)' };
    if (item.kind === 'partial') return { kind: 'partial', why: `stream ends inside a frame (${item.have} bytes pending)` };
    let f: RelayFrame;
    try {
      f = decodeFrame(item.body, 'relay');
    } catch (e) {
      if (e instanceof ProtocolError) return { kind: 'error', codes: [e.errorName], why: 'decoding (spec §4)' };
      throw e;
    }
    const st = this.ctx.state;
    const tr = serverTransition(st, f.type as ServerInput);
    if (tr === undefined) return { kind: 'error', codes: ['UNEXPECTED_FRAME'], why: `${f.type} in ${st} (spec §7.1)` };
    switch (f.type) {
      case 'HELLO': {
        const codes: ErrorName[] = [];
        if (f.version !== PROTOCOL_VERSION) codes.push('UNSUPPORTED_VERSION');
        if (!validKey(f.key)) codes.push('BAD_PUBLIC_KEY');
        if (codes.length > 0) return { kind: 'error', codes, why: 'HELLO refused (spec §7.1)' };
        return { kind: 'reply', type: 'CHALLENGE', why: 'HELLO accepted' };
      }
      case 'AUTH':
      case 'RECOVER': {
        const { nick, spki, nonce } = this.ctx;
        if (nick === undefined || spki === undefined || nonce === undefined) return { kind: 'error', codes: ['AUTH_FAILED'], why: 'AUTH without a known challenge' };
        let ok = false;
        try {
          ok = pssVerify(parsePublicKey(spki).key, authMessage(nonce, nick, spki, this.ctx.relayName ?? '', new Uint8Array(0)), f.sig);
        } catch {
          ok = false;
        }
        if (!ok) return { kind: 'error', codes: ['AUTH_FAILED'], why: 'signature does not verify (spec §7.3)' };
        const bound = this.ctx.registry.get(nick);
        // RECOVER (spec §7.5): a bound nickname moves only with the code of its commitment, which no
        // stream the oracle judges can know (codes are 128 random bits; commitments are never sent back).
        if (f.type === 'RECOVER' && bound !== undefined) return { kind: 'error', codes: ['NICK_BOUND'], why: 'RECOVER for a bound nickname with a code that does not release it' };
        if (bound !== undefined && !bound.equals(Buffer.from(spki))) return { kind: 'error', codes: ['NICK_BOUND'], why: 'nickname bound to another key' };
        return { kind: 'reply', type: 'WELCOME', why: `${f.type} accepted` };
      }
      case 'SET_RECOVERY':
        return { kind: 'reply', type: 'RECOVERY_SET', why: 'SET_RECOVERY for the bound nickname (spec §7.5)' };
      case 'JOIN':
        return { kind: 'join', room: f.room, why: 'JOIN' };
      case 'PING':
        return { kind: 'reply', type: 'PONG', n: f.n, why: 'PING' };
      case 'SEND':
        if (!this.ctx.peers.has(f.to)) return { kind: 'error', codes: ['NO_SUCH_PEER'], why: `SEND to ${f.to}, not a member` };
        return { kind: 'deliver', to: f.to, body: Buffer.from(f.body), why: 'SEND' };
      case 'LEAVE':
        return { kind: 'reply', type: 'LEFT', why: 'LEAVE' };
      case 'ERROR':
        return { kind: 'close', why: 'client sent ERROR' };
      default:
        // The table admits no other client frame; reaching here means the table changed under the oracle.
        return { kind: 'error', codes: ['UNEXPECTED_FRAME'], why: `${f.type} in ${st}` };
    }
  }

  /**
   * Checks the relay's answer to an expectation and moves the model on. `got` is the decoded frame the
   * relay sent (undefined when it closed instead). Returns a description of the mismatch, or undefined.
   */
  observe(exp: Expectation, got: RelayFrame | undefined): string | undefined {
    const want = describe(exp);
    if (exp.kind === 'close') {
      // The client's ERROR (§7.1 ERROR -> CLOSED): the relay closes and sends nothing.
      if (got !== undefined) return `expected ${want}, got ${got.type}${got.type === 'ERROR' ? ' ' + got.code : ''}`;
      this.ctx.state = 'CLOSED';
      return undefined;
    }
    if (got === undefined) return `expected ${want}, relay closed the connection`;
    switch (exp.kind) {
      case 'error':
        if (got.type !== 'ERROR') return `expected ${want}, got ${got.type}`;
        if (!exp.codes.some((c) => ERROR_CODES[c].code === got.code)) return `expected ${want}, got ERROR ${got.code}`;
        if (ERROR_CODES[exp.codes[0]!].close) this.ctx.state = 'CLOSED';
        return undefined;
      case 'reply':
        if (got.type !== exp.type) return `expected ${want}, got ${got.type}${got.type === 'ERROR' ? ' ' + got.code : ''}`;
        if (got.type === 'PONG' && got.n !== exp.n) return `PONG echoes ${got.n}, PING sent ${exp.n}`;
        if (got.type === 'CHALLENGE') {
          this.ctx.state = 'AWAIT_AUTH';
          this.ctx.nonce = Buffer.from(got.nonce);
          this.ctx.relayName = got.relay;
        } else if (got.type === 'WELCOME') {
          this.ctx.state = 'READY';
          this.ctx.maxFrame = got.max_frame;
          if (this.ctx.nick !== undefined && this.ctx.spki !== undefined) this.ctx.registry.set(this.ctx.nick, Buffer.from(this.ctx.spki));
        } else if (got.type === 'LEFT') {
          this.ctx.state = 'READY';
          this.ctx.peers.clear();
          delete this.ctx.room;
        }
        return undefined;
      case 'join':
        if (got.type === 'JOINED') {
          if (got.room !== exp.room) return `JOINED names room ${got.room}, JOIN asked for ${exp.room}`;
          this.ctx.state = 'IN_ROOM';
          this.ctx.room = got.room;
          this.ctx.peers = new Set(got.members.map((m) => m.nick));
          return undefined;
        }
        if (got.type === 'ERROR' && got.code === ERROR_CODES.ROOM_FULL.code) return undefined;
        return `expected JOINED or ERROR ROOM_FULL, got ${got.type}${got.type === 'ERROR' ? ' ' + got.code : ''}`;
      default:
        return `expected nothing on this connection (${want}), got ${got.type}`;
    }
  }
}

function validKey(spki: Uint8Array): boolean {
  try {
    parsePublicKey(spki);
    return true;
  } catch {
    return false;
  }
}

/** A short human description of an expectation, for failure reports. */
export function describe(exp: Expectation): string {
  switch (exp.kind) {
    case 'error':
      return `ERROR ${exp.codes.join('|')} (${exp.why})`;
    case 'reply':
      return `${exp.type} (${exp.why})`;
    case 'join':
      return `JOINED or ROOM_FULL (${exp.why})`;
    case 'deliver':
      return `DELIVER to ${exp.to}`;
    case 'close':
      return 'close without reply (client sent ERROR)';
    case 'partial':
      return 'no reply to an unfinished frame';
  }
}

/** One frame a client received, as RoomModel writes what it expects (room events, deliveries, errors). */
export function describeReceived(f: RelayFrame): string {
  switch (f.type) {
    case 'JOINED':
      return `JOINED ${f.room} [${f.members.map((m) => m.nick).sort().join(',')}]`;
    case 'PEER_JOINED':
    case 'PEER_LEFT':
      return `${f.type} ${f.nick}`;
    case 'DELIVER':
      return `DELIVER ${f.from} ${Buffer.from(f.body).toString()}`;
    case 'ERROR':
      return `ERROR ${f.code}`;
    default:
      return f.type;
  }
}

/** A client of RoomModel: off, or authenticated (READY), or in a room (IN_ROOM), as in §7.1. */
export type MemberState = 'OFF' | Extract<ServerState, 'READY' | 'IN_ROOM'>;

/**
 * The relay over several connections (spec §7.1 "Rooms" and "Relaying"), where ConnectionOracle sees one:
 * which of `clients` clients (numbered from 0) are connected, who is in which room of at most
 * `roomSize`, and what each must receive next, queued per client as describeReceived writes it:
 * - JOIN: JOINED listing the members already there, PEER_JOINED to each of them; to a full room
 *   ROOM_FULL, and nobody else learns of it;
 * - SEND: DELIVER, stamped with the sender's nick, to the addressee when it is another member of the
 *   sender's room, else NO_SUCH_PEER to the sender;
 * - LEAVE: LEFT, and PEER_LEFT to the members left; a connection that ends: PEER_LEFT to them too.
 */
export class RoomModel {
  readonly state: MemberState[];
  readonly room: (string | undefined)[];
  readonly rooms = new Map<string, number[]>();
  readonly paused: boolean[];
  private readonly expected: string[][];

  constructor(
    readonly clients: number,
    readonly roomSize: number,
    readonly nick: (i: number) => string,
  ) {
    this.state = Array.from({ length: clients }, () => 'OFF' as const);
    this.room = Array.from({ length: clients }, () => undefined);
    this.paused = Array.from({ length: clients }, () => false);
    this.expected = Array.from({ length: clients }, () => []);
  }

  /** Client `i` authenticated (WELCOME): READY, reading. */
  connect(i: number): void {
    this.state[i] = 'READY';
    this.paused[i] = false;
  }

  /** Client `i` sent JOIN `room`. */
  join(i: number, room: string): 'joined' | 'full' {
    const members = this.rooms.get(room) ?? [];
    if (members.length >= this.roomSize) {
      this.expected[i]!.push(`ERROR ${ERROR_CODES.ROOM_FULL.code}`);
      return 'full';
    }
    this.expected[i]!.push(`JOINED ${room} [${members.map((x) => this.nick(x)).sort().join(',')}]`);
    for (const x of members) this.expected[x]!.push(`PEER_JOINED ${this.nick(i)}`);
    this.rooms.set(room, [...members, i]);
    this.room[i] = room;
    this.state[i] = 'IN_ROOM';
    return 'joined';
  }

  /** The other members of client `i`'s room. */
  mates(i: number): number[] {
    const room = this.room[i];
    return room === undefined ? [] : (this.rooms.get(room) ?? []).filter((x) => x !== i);
  }

  /** Client `i` sent SEND {to: nick(to), body}; `body` as DELIVER's body reads in describeReceived. */
  send(i: number, to: number, body: string): 'delivered' | 'no such peer' {
    if (this.mates(i).includes(to)) {
      this.expected[to]!.push(`DELIVER ${this.nick(i)} ${body}`);
      return 'delivered';
    }
    this.expected[i]!.push(`ERROR ${ERROR_CODES.NO_SUCH_PEER.code}`);
    return 'no such peer';
  }

  /** Client `i` sent LEAVE. */
  leave(i: number): void {
    this.expected[i]!.push('LEFT');
    this.quitRoom(i);
    this.state[i] = 'READY';
  }

  /** Client `i`'s connection ended (closed by it, or by the relay after an ERROR): nothing more is due to it. */
  drop(i: number): void {
    this.expected[i] = [];
    this.quitRoom(i);
    this.state[i] = 'OFF';
    this.paused[i] = false;
  }

  /** What client `i` must have received since the last take, oldest first; the queue is emptied. */
  take(i: number): string[] {
    return this.expected[i]!.splice(0);
  }

  /** Connections the relay must hold, and rooms with at least one member. */
  counts(): { connections: number; rooms: number } {
    return { connections: this.state.filter((s) => s !== 'OFF').length, rooms: [...this.rooms.values()].filter((v) => v.length > 0).length };
  }

  private quitRoom(i: number): void {
    const left = this.mates(i);
    const room = this.room[i];
    if (room === undefined) return;
    this.rooms.set(room, left);
    this.room[i] = undefined;
    for (const x of left) this.expected[x]!.push(`PEER_LEFT ${this.nick(i)}`);
  }
}
