/**
 * The one small interface between a relay connection (src/client/relay-connection.ts) and what carries
 * its frames (STYLE.md rule 12). A byte stream (TCP, src/client/tcp.ts) carries frames with the §3 length
 * prefix and splits them at the edge; a message transport (a WebSocket, spec §3.1, src/web/ws.ts) carries
 * one frame body per message. Either way the connection sees frame bodies: the core decides nothing by
 * transport, and pacing, keepalive, the §7.4 machine and the sessions are the same over both.
 */
import type { Frame } from '../codec/index.js';
import type { ProtocolError } from '../protocol/errors.js';

/** What a transport reports to the connection that owns it. */
export interface TransportHandlers {
  /** The transport is connected: the connection may write. */
  open(): void;
  /** One frame body received (without the §3 length prefix). */
  data(body: Uint8Array): void;
  /**
   * The input broke its framing (§3: a zero or oversized length prefix, §3.1: a text message), after the
   * bodies before it were reported: the connection answers with the error's code and closes.
   */
  invalid(error: ProtocolError): void;
  /** Writes may go on after `write` returned false. */
  drain(): void;
  /**
   * The transport is gone (`reason` says why when it failed); reported once. `kind` is `certificate`
   * when TLS refused the relay's certificate (untrusted, expired, wrong name: §3.2).
   */
  close(reason?: string, kind?: 'certificate'): void;
}

export interface Transport {
  /** The bytes of one frame on this transport: with the 4-byte length prefix on a byte stream (§3), the bare body on a message transport (§3.1). */
  encode(f: Frame): Uint8Array;
  /** Writes what `encode` made; false when the caller should wait for `drain`. */
  write(bytes: Uint8Array): boolean;
  /** Holds writes until `uncork`, so the frames of one batch leave together (a no-op where unsupported). */
  cork(): void;
  uncork(): void;
  /** Flushes what was written, then closes. */
  end(): void;
  /**
   * The RFC 9266 `tls-exporter` value of this connection's TLS (32 bytes, §3.2), once open; undefined
   * without TLS. For the relay-bound AUTH of protocol version 2.
   */
  channelBinding?(): Uint8Array | undefined;
}

/** Opens a transport that reports to `handlers`; the connection calls it once, from connect(). */
export type TransportFactory = (handlers: TransportHandlers) => Transport;
