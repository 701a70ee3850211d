/**
 * The wire kit's relay connection over the WebSocket transport (spec/PROTOCOL.md §3.1): the same
 * `RelayLink` as the TCP one (src/wirekit/relay-conn.ts), so the fuzzer and the hostile tests drive
 * either transport with one code path. What a test writes is the §3 byte stream; `WsStreamAdapter`
 * turns it into binary messages (fragmented, with pings between fragments, when `fragmenting` says so).
 * `raw` writes WebSocket frames as they are, for what only WebSocket can get wrong.
 */
import { LIMITS } from '../protocol/limits.js';
import { RelayLink } from './relay-conn.js';
import { upgrade, WsLink, WsStreamAdapter, type Fragmenting, type UpgradeOptions } from './ws.js';

export class WsRawConnection extends RelayLink {
  private readonly adapter: WsStreamAdapter;

  private constructor(
    readonly link: WsLink,
    fragmenting?: (index: number, body: Buffer) => Fragmenting,
  ) {
    super();
    this.adapter = new WsStreamAdapter((b) => link.write(b), LIMITS.MAX_PRELOGIN_FRAME_BYTES, LIMITS.MAX_FRAME_BYTES, fragmenting);
  }

  /**
   * Upgrades a connection to the relay's WebSocket endpoint (§3.1: path, subprotocol, no Origin as a
   * program sends it). Rejects when the relay does not answer 101 with the subprotocol.
   */
  static async open(
    host: string,
    port: number,
    localAddress?: string,
    o: { fragmenting?: (index: number, body: Buffer) => Fragmenting; upgrade?: Partial<UpgradeOptions> } = {},
    deadlineMs = 10_000,
  ): Promise<WsRawConnection> {
    const u = await upgrade({ host, port, ...o.upgrade, ...(localAddress !== undefined ? { localAddress } : {}) }, deadlineMs);
    if (u.status !== 101) {
      u.socket.destroy();
      throw new Error(`WebSocket upgrade answered ${u.status}`);
    }
    let self: WsRawConnection | undefined;
    const pending: Array<() => void> = [];
    const link = new WsLink(u.socket, u.rest, {
      binary: (b) => (self ? self.onBinary(b) : pending.push(() => self!.onBinary(b))),
      closed: () => (self ? self.onClosed() : pending.push(() => self!.onClosed())),
      violation: (w) => (self ? self.violations.push(`WebSocket: ${w}`) : pending.push(() => self!.violations.push(`WebSocket: ${w}`))),
    });
    self = new WsRawConnection(link, o.fragmenting);
    for (const p of pending) p();
    return self;
  }

  private onBinary(b: Buffer): void {
    this.received += b.length;
    this.body(b);
    this.wake();
  }

  private onClosed(): void {
    this.end();
  }

  /** The relay's close code, once its close frame arrived (§3.1: 4000 + code after a closing ERROR). */
  get closeCode(): number | undefined {
    return this.link.closeCode;
  }

  /** The read limit the adapter assumes: set it to WELCOME's max_frame after login. */
  set limit(n: number) {
    this.adapter.limit = n;
  }

  /** Declared lengths the adapter sent as a bare header (the relay must close with 1009). */
  get bareHeaders(): readonly number[] {
    return this.adapter.bareHeaders;
  }

  write(bytes: Uint8Array): void {
    this.adapter.write(bytes);
  }

  /** Raw WebSocket frame bytes, as they are. */
  raw(bytes: Uint8Array): void {
    this.link.write(bytes);
  }

  /** Ends the stream: an unfinished frame goes out as a fragment without FIN, then TCP is ended. */
  endStream(): void {
    this.adapter.end();
    this.link.socket.end();
  }

  close(): void {
    this.link.destroy();
  }

  override async authenticate(...args: Parameters<RelayLink['authenticate']>): ReturnType<RelayLink['authenticate']> {
    const r = await super.authenticate(...args);
    this.adapter.limit = r.welcome.max_frame;
    this.adapter.wsMax = r.welcome.max_frame;
    return r;
  }
}
