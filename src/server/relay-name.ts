/**
 * The relay's side of spec §7.3's binding: the name it announces in CHALLENGE.relay (and verifies AUTH
 * over), and the channel binding `cb` of one connection.
 *
 * The name is the relay identity (src/protocol/relay-id.ts) of the name its clients dial. By default that
 * is the listening address (`localhost:55555` for 127.0.0.1), which is what a client dialling that address
 * expects. A listener on every address (0.0.0.0, ::) has no address a client dials: the name is then the
 * first DNS name of the TLS certificate (the name clients must dial anyway for the certificate to verify,
 * §3.2), or the operator gives it (`relayName`, the CLI's --name).
 */
import { X509Certificate } from 'node:crypto';
import { LIMITS } from '../protocol/limits.js';
import { relayIdentity } from '../protocol/relay-id.js';
import type { RelayStream } from './stream.js';
import { tlsExporter, type TlsCredentials } from './tls.js';

/** Whether `host` listens on every address of its family (no client dials it). */
export function isWildcard(host: string): boolean {
  return relayIdentity(host, 1) === '0.0.0.0:1' || relayIdentity(host, 1) === '[::]:1' || host === '';
}

/** The first DNS subjectAltName of the certificate (the first of a chain), without a wildcard label. */
export function certificateDnsName(certPem: Buffer): string | undefined {
  let san: string | undefined;
  try {
    san = new X509Certificate(certPem).subjectAltName;
  } catch {
    return undefined;
  }
  for (const entry of (san ?? '').split(', ')) {
    const m = /^DNS:([^*\s,]+)$/.exec(entry);
    if (m !== null) return m[1];
  }
  return undefined;
}

/**
 * The host part of the relay name for a listener on `host`: `name` when given (checked: 1..255 UTF-8
 * bytes), else the listening host, or for a wildcard the certificate's DNS name. Throws RangeError when
 * no name can be told (a wildcard without TLS, or a certificate without a DNS name).
 */
export function relayNameFor(host: string, port: number, name: string | undefined, tls: TlsCredentials | undefined): string {
  if (name !== undefined) {
    const n = new TextEncoder().encode(name).length;
    if (n < 1 || n > LIMITS.RELAY_NAME_MAX_BYTES) throw new RangeError(`relayName: 1..${LIMITS.RELAY_NAME_MAX_BYTES} UTF-8 bytes, got ${n}`);
    return name;
  }
  if (!isWildcard(host)) return relayIdentity(host, port);
  const dns = tls === undefined ? undefined : certificateDnsName(tls.cert);
  if (dns === undefined) {
    throw new RangeError(
      `relayName: a relay listening on every address (${host || 'any'}) cannot tell the name its clients dial; give it (--name HOST:PORT), or a TLS certificate with a DNS name`,
    );
  }
  return relayIdentity(dns, port);
}

/**
 * The channel binding `cb` of §7.3 for one relay connection: the 32-byte RFC 9266 tls-exporter value when
 * the relay protocol runs directly on TLS (§3.2), empty otherwise. Also empty on a WebSocket, wss
 * included (§3.1): a browser exposes no exporter of its TLS connection to the page, so the page signs an
 * empty binding (its relay is the origin that served it).
 */
export function channelBinding(stream: RelayStream): Uint8Array {
  return tlsExporter(stream) ?? new Uint8Array(0);
}
