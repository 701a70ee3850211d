/**
 * The wire kit's relay connection over the WebSocket transport (spec/PROTOCOL.md §3.1): the same
 * `RelayLink` as the TCP one (src/wirekit/relay-conn.ts), so the fuzzer and the hostile tests drive
 * either transport with one code path. What a test writes is the §3 byte stream; the connection's
 * `WsStreamAdapter` turns it into binary messages (fragmented, with pings between fragments, when
 * `fragmenting` says so). `raw` writes WebSocket frames as they are, for what only WebSocket can get wrong.
 */
import type { Socket } from 'node:net';
import { RelayLink, wsCarrier, type WsOptions } from './relay-conn.js';

export class WsRawConnection extends RelayLink<Socket> {
  /**
   * Upgrades a connection to the relay's WebSocket endpoint (§3.1: path, subprotocol, no Origin as a
   * program sends it). Rejects when the relay does not answer 101 with the subprotocol.
   */
  static async open(host: string, port: number, localAddress?: string, o: Omit<WsOptions, 'localAddress'> = {}, deadlineMs = 10_000): Promise<WsRawConnection> {
    const u = await wsCarrier(host, port, { ...o, ...(localAddress !== undefined ? { localAddress } : {}) }, deadlineMs);
    if (u.carrier === undefined) throw new Error(`WebSocket upgrade answered ${u.status}`);
    return new WsRawConnection(u.carrier);
  }

  /** The WebSocket link under the stream. */
  get link(): NonNullable<RelayLink['ws']>['link'] {
    return this.ws!.link;
  }

  /** The read limit the adapter assumes (WELCOME's max_frame sets it after login). */
  set limit(n: number) {
    this.ws!.adapter.limit = n;
  }

  /** Declared lengths the adapter sent as a bare header (the relay must close with 1009). */
  get bareHeaders(): readonly number[] {
    return this.ws!.adapter.bareHeaders;
  }

  /** Raw WebSocket frame bytes, as they are. */
  raw(bytes: Uint8Array): void {
    this.ws!.link.write(bytes);
  }
}
