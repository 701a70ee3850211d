/**
 * The one small interface between a relay connection and what carries its bytes (STYLE.md rule 12). A
 * byte stream (TCP, src/client/tcp.ts) carries frames with the §3 length prefix; a message transport
 * (a WebSocket, spec §3.1) carries one frame body per message. The client core decides nothing else by
 * transport: pacing, keepalive, the §7.4 machine and the sessions are the same over both.
 */

/** What a transport reports to the connection that owns it. */
export interface TransportHandlers {
  /** The transport is connected: the connection may write. */
  open(): void;
  /** Bytes received: any slice of the stream (`stream`), or exactly one frame body (`message`). */
  data(bytes: Uint8Array): void;
  /** Writes may go on after `write` returned false. */
  drain(): void;
  /**
   * The transport is gone (`reason` says why when it failed); reported once. `kind` is `certificate`
   * when TLS refused the relay's certificate (untrusted, expired, wrong name: §3.2).
   */
  close(reason?: string, kind?: 'certificate'): void;
}

export interface Transport {
  /** `stream`: bytes with the 4-byte length prefix (§3); `message`: one frame body per message (§3.1). */
  readonly framing: 'stream' | 'message';
  /** Writes bytes (one prefixed frame, or one body); false when the caller should wait for `drain`. */
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
