/**
 * What the relay needs from one connection's byte stream (spec/PROTOCOL.md §3): a `net.Socket` (TCP, or
 * TLS) satisfies it as it is, and src/server/ws-stream.ts adapts a WebSocket to it, so both transports
 * run through the same §7.1 machine with the same limits, timeouts, registry and rooms.
 */
export interface RelayStream {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly destroyed: boolean;
  readonly writable: boolean;
  /** Bytes written and not yet handed to the operating system (the SLOW_CONSUMER measure, §7.1). */
  readonly writableLength: number;
  /**
   * Bytes the stream holds from the peer that are not frames yet and not in the relay's frame reader:
   * a TLS ClientHello being gathered (src/server/tls.ts). Counted in the relay's buffer budget (§7.1).
   */
  readonly pendingInput?: number;
  write(bytes: Uint8Array): boolean;
  end(): unknown;
  end(bytes: Uint8Array): unknown;
  destroy(): unknown;
  cork(): void;
  uncork(): void;
  pause(): unknown;
  resume(): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'close' | 'error', listener: () => void): unknown;
  /**
   * The RFC 9266 `tls-exporter` value of the TLS connection under this stream (§3.2), where the stream
   * is not itself a TLS socket (a WebSocket over wss); see `channelBindingOf` in src/server/tls.ts.
   */
  channelBinding?: (() => Uint8Array | undefined) | undefined;
}
