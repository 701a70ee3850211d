/**
 * The constants of the TLS binding (spec/PROTOCOL.md §3.2), shared by the relay (src/server/tls.ts)
 * and the client (src/client/tcp.ts).
 */
export const TLS_BINDING = {
  /** The ALPN protocol name of the relay protocol over TLS. */
  ALPN: 'e2ee-chat/1',
  /** The only TLS version either side accepts. */
  VERSION: 'TLSv1.3',
  /** RFC 9266 `tls-exporter`: the exporter label, an empty context, and the value's length in bytes. */
  EXPORTER_LABEL: 'EXPORTER-Channel-Binding',
  EXPORTER_BYTES: 32,
} as const;
