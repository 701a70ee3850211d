/**
 * The page's connection to its relay over WebSocket (spec §3.1), driven by the §7.4 client machine of
 * src/protocol/client-machine.ts: each relay frame is looked up in that table for the current state; a
 * frame the table does not list is UNEXPECTED_FRAME, answered with ERROR and a close (§7.4). Frames are
 * encoded and decoded by the shared codec, the AUTH signature is made by the WebCrypto backend over the
 * shared §7.3 message. Keepalive: a PING after idle_ms / KEEPALIVE_DIVISOR without sending (§7.1).
 */
import { decodeFrame, encodeFrame, frame, type Frame, type Member, type RelayFrame } from '../codec/index.js';
import type { CryptoBackend, RsaPrivateKey } from '../crypto/backend.js';
import { authMessage } from '../crypto/identity.js';
import { clientTransition, errorInput, type ClientInput, type ClientState } from '../protocol/client-machine.js';
import { ERROR_CODES, wireErrorName } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';

export type RelayEvent =
  | { type: 'ready' }
  | { type: 'joined'; room: string; members: Member[] }
  | { type: 'peer-joined'; member: Member }
  | { type: 'peer-left'; nick: string }
  | { type: 'deliver'; from: string; body: Uint8Array }
  | { type: 'refused'; code: string }
  | { type: 'closed'; code: string | undefined; wsCode: number };

export interface RelayLinkOptions {
  url: string;
  subprotocol: string;
  nick: string;
  room: string;
  spki: Uint8Array;
  key: RsaPrivateKey;
  crypto: CryptoBackend;
  onEvent: (e: RelayEvent) => void;
}

export class RelayLink {
  state: ClientState = 'AWAIT_CHALLENGE';
  private readonly ws: WebSocket;
  private keepalive: ReturnType<typeof setInterval> | undefined;
  private lastSent = Date.now();
  private closeReason: string | undefined;
  /** Frames are handled one at a time: the AUTH signature is asynchronous. */
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly o: RelayLinkOptions) {
    this.ws = new WebSocket(o.url, o.subprotocol);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onopen = () => this.send(frame('HELLO', { version: PROTOCOL_VERSION, nick: o.nick, key: o.spki }));
    this.ws.onmessage = (ev: MessageEvent) => {
      const data = ev.data;
      this.chain = this.chain.then(() => this.onMessage(data)).catch((e: unknown) => this.fail('INTERNAL_ERROR', e));
    };
    this.ws.onclose = (ev) => {
      if (this.keepalive !== undefined) clearInterval(this.keepalive);
      this.state = 'CLOSED';
      o.onEvent({ type: 'closed', code: this.closeReason, wsCode: ev.code });
    };
  }

  send(f: Frame): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.lastSent = Date.now();
    this.ws.send(encodeFrame(f));
  }

  close(): void {
    this.ws.close(1000);
  }

  private fail(code: keyof typeof ERROR_CODES, e: unknown): void {
    this.closeReason = code;
    if (ERROR_CODES[code].code <= 31) this.send(frame('ERROR', { code: ERROR_CODES[code].code, detail: e instanceof Error ? e.message.slice(0, 100) : '' }));
    this.ws.close(1000);
  }

  private async onMessage(data: unknown): Promise<void> {
    if (this.state === 'CLOSED') return;
    if (!(data instanceof ArrayBuffer)) return this.fail('MALFORMED_FRAME', new Error('text message'));
    let f: RelayFrame;
    try {
      f = decodeFrame(new Uint8Array(data), 'relay');
    } catch (e) {
      const name = (e as { errorName?: keyof typeof ERROR_CODES }).errorName ?? 'MALFORMED_FRAME';
      return this.fail(name, e);
    }
    const input: ClientInput = f.type === 'ERROR' ? errorInput(this.state, f.code) : (f.type as ClientInput);
    const t = clientTransition(this.state, input);
    if (t === undefined) return this.fail('UNEXPECTED_FRAME', new Error(`${f.type} in ${this.state}`));
    const next = t.next;
    switch (f.type) {
      case 'CHALLENGE': {
        if (f.version !== PROTOCOL_VERSION) return this.fail('UNSUPPORTED_VERSION', new Error('version'));
        const sig = await this.o.crypto.pssSign(this.o.key, authMessage(f.nonce, this.o.nick, this.o.spki));
        this.state = next;
        this.send(frame('AUTH', { sig }));
        return;
      }
      case 'WELCOME': {
        this.state = next;
        const every = Math.max(1000, Math.floor(f.idle_ms / LIMITS.KEEPALIVE_DIVISOR));
        let n = 0;
        this.keepalive = setInterval(() => {
          if (Date.now() - this.lastSent >= every) this.send(frame('PING', { n: n++ }));
        }, Math.max(250, Math.floor(every / 4)));
        this.o.onEvent({ type: 'ready' });
        this.state = clientTransition(this.state, 'join')!.next;
        this.send(frame('JOIN', { room: this.o.room }));
        return;
      }
      case 'JOINED':
        this.state = next;
        this.o.onEvent({ type: 'joined', room: f.room, members: f.members });
        return;
      case 'PEER_JOINED':
        this.state = next;
        this.o.onEvent({ type: 'peer-joined', member: { nick: f.nick, key: f.key } });
        return;
      case 'PEER_LEFT':
        this.state = next;
        this.o.onEvent({ type: 'peer-left', nick: f.nick });
        return;
      case 'DELIVER':
        this.state = next;
        this.o.onEvent({ type: 'deliver', from: f.from, body: f.body });
        return;
      case 'ERROR': {
        const name = wireErrorName(f.code) ?? `code ${f.code}`;
        this.state = next;
        if (next === 'CLOSED') {
          this.closeReason = name;
          this.ws.close(1000);
        } else {
          this.o.onEvent({ type: 'refused', code: name });
        }
        return;
      }
      default:
        this.state = next;
    }
  }
}
