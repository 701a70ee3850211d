/**
 * The page's connection to its relay over WebSocket (spec §3.1), driven by the §7.4 client machine of
 * src/protocol/client-machine.ts: each relay frame is looked up in that table for the current state and
 * handled by the row's step; a frame the table does not list is UNEXPECTED_FRAME, answered with ERROR and
 * a close (§7.4). Frames are encoded and decoded by the shared codec, the AUTH signature is made by the
 * WebCrypto backend over the shared §7.3 message. Keepalive: a PING after idle_ms / KEEPALIVE_DIVISOR
 * without sending (§7.1); a relay that then stays silent for min(PONG_TIMEOUT_MS, that interval) is dead.
 */
import { decodeFrame, encodeFrame, frame, type Frame, type FrameOf, type Member, type RelayFrame } from '../codec/index.js';
import type { CryptoBackend, RsaPrivateKey } from '../crypto/backend.js';
import { authMessage } from '../crypto/identity.js';
import { clientTransition, errorInput, type ClientInput, type ClientState, type ClientTransition } from '../protocol/client-machine.js';
import { ERROR_CODES, wireErrorName, type ErrorName } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';

/** §7.4: after a PING, the relay must be heard from within min(this, the PING interval). */
export const PONG_TIMEOUT_MS = 10_000;

export type RelayEvent =
  | { type: 'ready'; roomSize: number }
  | { type: 'joined'; room: string; members: Member[] }
  | { type: 'join-refused'; code: ErrorName }
  | { type: 'peer-joined'; member: Member }
  | { type: 'peer-left'; nick: string }
  | { type: 'deliver'; from: string; body: Uint8Array }
  /** A non-closing ERROR outside a JOIN (NO_SUCH_PEER): the connection stays. */
  | { type: 'relay-error'; code: ErrorName }
  /** The connection is gone: `code` the §9 code that ended it (received or sent), undefined for a plain close. */
  | { type: 'closed'; code: ErrorName | undefined; byUs: boolean };

export interface RelayLinkOptions {
  url: string;
  subprotocol: string;
  nick: string;
  spki: Uint8Array;
  key: RsaPrivateKey;
  crypto: CryptoBackend;
  onEvent: (e: RelayEvent) => void;
}

export class RelayLink {
  state: ClientState = 'AWAIT_CHALLENGE';
  private readonly ws: WebSocket;
  private keepalive: ReturnType<typeof setInterval> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;
  private lastSent = Date.now();
  private closeReason: ErrorName | undefined;
  private closedByUs = false;
  private room = '';
  private roomSize: number = LIMITS.MAX_ROOM_SIZE;
  private members = 0;
  /** Frames are handled one at a time: the AUTH signature is asynchronous. */
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly o: RelayLinkOptions) {
    this.ws = new WebSocket(o.url, o.subprotocol);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onopen = () => this.send(frame('HELLO', { version: PROTOCOL_VERSION, nick: o.nick, key: o.spki }));
    this.ws.onmessage = (ev: MessageEvent) => {
      const data: unknown = ev.data;
      this.chain = this.chain.then(() => this.onMessage(data)).catch((e: unknown) => this.fail(errorNameOf(e) ?? 'INTERNAL_ERROR', e));
    };
    this.ws.onclose = () => {
      this.stopTimers();
      this.state = 'CLOSED';
      o.onEvent({ type: 'closed', code: this.closeReason, byUs: this.closedByUs });
    };
  }

  /** JOIN (only in READY). */
  join(room: string): boolean {
    const t = clientTransition(this.state, 'join');
    if (t === undefined) return false;
    this.state = t.next;
    this.room = room;
    this.send(frame('JOIN', { room }));
    return true;
  }

  /** A SEND to one member (§7.1); dropped unless in the room. */
  sendTo(to: string, body: Uint8Array): void {
    if (this.state === 'IN_ROOM') this.send(frame('SEND', { to, body }));
  }

  /** Ends the connection (no LEAVE: the relay removes us from the room when it closes). */
  close(): void {
    this.closedByUs = true;
    this.stopTimers();
    this.ws.close(1000);
  }

  private send(f: Frame): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.lastSent = Date.now();
    this.ws.send(encodeFrame(f));
  }

  private stopTimers(): void {
    if (this.keepalive !== undefined) clearInterval(this.keepalive);
    if (this.pongTimer !== undefined) clearTimeout(this.pongTimer);
    this.keepalive = this.pongTimer = undefined;
  }

  private fail(code: ErrorName, e: unknown): void {
    if (this.state === 'CLOSED') return;
    this.closeReason = code;
    if (ERROR_CODES[code].scope === 'wire') this.send(frame('ERROR', { code: ERROR_CODES[code].code, detail: e instanceof Error ? e.message.slice(0, 100) : '' }));
    this.stopTimers();
    this.state = 'CLOSED';
    this.ws.close(1000);
  }

  private async onMessage(data: unknown): Promise<void> {
    if (this.state === 'CLOSED') return;
    if (this.pongTimer !== undefined) clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
    if (!(data instanceof ArrayBuffer)) return this.fail('MALFORMED_FRAME', new Error('text message'));
    if (data.byteLength > LIMITS.MAX_FRAME_BYTES) return this.fail('FRAME_TOO_LARGE', new Error('message too large'));
    let f: RelayFrame;
    try {
      f = decodeFrame(new Uint8Array(data), 'relay');
    } catch (e) {
      return this.fail(errorNameOf(e) ?? 'MALFORMED_FRAME', e);
    }
    const input: ClientInput = f.type === 'ERROR' ? errorInput(this.state, f.code) : (f.type as ClientInput);
    const t = clientTransition(this.state, input);
    if (t === undefined) return this.fail('UNEXPECTED_FRAME', new Error(`${f.type} in ${this.state}`));
    await this.run(t, f);
  }

  /** Runs one row of the §7.4 table: the state advances, then the row's step. */
  private async run(t: ClientTransition, f: RelayFrame): Promise<void> {
    const as = <T extends RelayFrame['type']>(_: T) => f as FrameOf<T>;
    switch (t.row.step) {
      case 'auth': {
        const c = as('CHALLENGE');
        if (c.version !== PROTOCOL_VERSION) return this.fail('UNSUPPORTED_VERSION', new Error('version'));
        // §7.3: a page served by the relay signs over the name that relay announces (no other to compare).
        const sig = await this.o.crypto.pssSign(this.o.key, authMessage(c.nonce, this.o.nick, this.o.spki, c.relay, new Uint8Array(0)));
        if (this.state === 'CLOSED') return;
        this.state = t.next;
        this.send(frame('AUTH', { sig }));
        return;
      }
      case 'welcome': {
        const w = as('WELCOME');
        this.state = t.next;
        this.roomSize = w.room_size;
        const every = Math.max(1000, Math.floor(w.idle_ms / LIMITS.KEEPALIVE_DIVISOR));
        const deadline = Math.min(PONG_TIMEOUT_MS, every);
        let n = 0;
        this.keepalive = setInterval(() => {
          if (Date.now() - this.lastSent < every) return;
          n = n >= LIMITS.MAX_UINT ? 0 : n + 1;
          this.send(frame('PING', { n }));
          this.pongTimer ??= setTimeout(() => this.fail('TIMEOUT', new Error('no answer to PING')), deadline);
        }, Math.max(250, Math.floor(every / 4)));
        this.o.onEvent({ type: 'ready', roomSize: w.room_size });
        return;
      }
      case 'joined': {
        const j = as('JOINED');
        if (j.room !== this.room) return this.fail('INVALID_FIELD', new Error('JOINED names another room'));
        const seen = new Set<string>();
        for (const m of j.members) {
          if (m.nick === this.o.nick || seen.has(m.nick)) return this.fail('INVALID_FIELD', new Error('JOINED lists a member twice or us'));
          seen.add(m.nick);
        }
        // §8.5 / issue 14: a relay that lists more members than the room size it announced is refused.
        if (j.members.length + 1 > this.roomSize) return this.fail('INVALID_FIELD', new Error('JOINED beyond the room size'));
        this.state = t.next;
        this.members = j.members.length;
        this.o.onEvent({ type: 'joined', room: j.room, members: j.members });
        return;
      }
      case 'join-refused':
        this.state = t.next;
        this.o.onEvent({ type: 'join-refused', code: wireErrorName(as('ERROR').code) ?? 'UNEXPECTED_FRAME' });
        return;
      case 'peer-joined': {
        const p = as('PEER_JOINED');
        if (p.nick === this.o.nick || this.members + 2 > this.roomSize) return this.fail('UNEXPECTED_FRAME', new Error('PEER_JOINED for us or beyond the room size'));
        this.members++;
        this.state = t.next;
        this.o.onEvent({ type: 'peer-joined', member: { nick: p.nick, key: p.key } });
        return;
      }
      case 'peer-left':
        this.members = Math.max(0, this.members - 1);
        this.state = t.next;
        this.o.onEvent({ type: 'peer-left', nick: as('PEER_LEFT').nick });
        return;
      case 'deliver':
        this.state = t.next;
        this.o.onEvent({ type: 'deliver', from: as('DELIVER').from, body: as('DELIVER').body });
        return;
      case 'relay-error':
        this.o.onEvent({ type: 'relay-error', code: wireErrorName(as('ERROR').code) ?? 'UNEXPECTED_FRAME' });
        return;
      case 'relay-closed':
        // §9: a closing code ends the connection; we send nothing more.
        this.closeReason = wireErrorName(as('ERROR').code) ?? 'UNEXPECTED_FRAME';
        this.stopTimers();
        this.state = 'CLOSED';
        this.ws.close(1000);
        return;
      default:
        this.state = t.next;
    }
  }
}

function errorNameOf(e: unknown): ErrorName | undefined {
  const name = (e as { errorName?: unknown } | null)?.errorName;
  return typeof name === 'string' && name in ERROR_CODES ? (name as ErrorName) : undefined;
}
