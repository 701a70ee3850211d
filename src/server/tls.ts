/**
 * The TLS binding of the relay (spec/PROTOCOL.md §3.2): TLS 1.3 only, ALPN `e2ee-chat/1`, server
 * authentication by an X.509 certificate the operator gives with --tls-cert/--tls-key. The same
 * credentials make the web listener https/wss (src/server/web.ts).
 *
 * The relay wraps each accepted TCP socket itself (`acceptTls`) instead of using a `tls.Server`, so the
 * connection exists for the §7.1 machine from the moment TCP accepts it: the connection caps count it,
 * and HANDSHAKE_TIMEOUT_MS runs from accept, so a peer that opens TCP and never finishes the TLS
 * handshake is cut off like one that never sends HELLO.
 */
import { closeSync, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { TLS_BINDING } from '../protocol/tls.js';
import type { RelayStream } from './stream.js';

/** The ALPN protocol name of the relay protocol over TLS (§3.2). */
export const TLS_ALPN = TLS_BINDING.ALPN;
/** The only TLS version either side accepts (§3.2). */
export const TLS_VERSION = TLS_BINDING.VERSION;
/** Largest certificate or key file read, bytes (a long chain is a few kilobytes). */
const MAX_PEM_BYTES = 1024 * 1024;

/** The relay's certificate chain and private key (PEM), checked to belong together, ready to serve. */
export interface TlsCredentials {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly context: SecureContext;
}

/** A --tls-cert/--tls-key file that cannot be used; `flag` names which one. */
export class TlsConfigError extends Error {
  constructor(
    readonly flag: '--tls-cert' | '--tls-key' | '--tls-ca',
    message: string,
  ) {
    super(`${flag}: ${message}`);
    this.name = 'TlsConfigError';
  }
}

/**
 * The owner and mode rule for the relay's TLS files, as the client's keystore has for its key
 * (src/files/private.ts): a regular file owned by the relay's user (or root); the private key readable by
 * nobody else (no permission for group or others), the certificate writable by nobody else. A symbolic
 * link is followed (certbot's live/ folder is made of them): the file judged is the one opened.
 */
export function checkTlsFileStats(flag: TlsConfigError['flag'], path: string, st: Stats): void {
  if (!st.isFile()) throw new TlsConfigError(flag, `${path} is not a regular file`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) throw new TlsConfigError(flag, `${path} belongs to another user (uid ${st.uid})`);
  const mode = (st.mode & 0o777).toString(8);
  if (flag === '--tls-key' && (st.mode & 0o077) !== 0) throw new TlsConfigError(flag, `${path} has mode ${mode}: a private key must not be readable by group or others; run: chmod 600 ${path}`);
  if ((st.mode & 0o022) !== 0) throw new TlsConfigError(flag, `${path} has mode ${mode}: writable by group or others; run: chmod go-w ${path}`);
}

/** Reads one PEM file, at most MAX_PEM_BYTES, that holds at least one PEM block, after the owner/mode rule. */
export function readPem(flag: TlsConfigError['flag'], path: string): Buffer {
  let b: Buffer;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new TlsConfigError(flag, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    // fstat on the open descriptor: the file checked is the file read.
    if (flag !== '--tls-ca') checkTlsFileStats(flag, path, fstatSync(fd));
    b = readFileSync(fd);
  } catch (e) {
    if (e instanceof TlsConfigError) throw e;
    throw new TlsConfigError(flag, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  } finally {
    closeSync(fd);
  }
  if (b.length > MAX_PEM_BYTES) throw new TlsConfigError(flag, `${path} is larger than ${MAX_PEM_BYTES} bytes`);
  if (!b.includes('-----BEGIN ')) throw new TlsConfigError(flag, `${path} holds no PEM block`);
  return b;
}

/**
 * Loads and checks the relay's credentials: the files are read once, at start; OpenSSL checks that the
 * key is the certificate's. Throws TlsConfigError naming the flag at fault.
 */
export function loadTlsCredentials(certPath: string, keyPath: string): TlsCredentials {
  const cert = readPem('--tls-cert', certPath);
  const key = readPem('--tls-key', keyPath);
  if (!cert.includes('-----BEGIN CERTIFICATE-----')) throw new TlsConfigError('--tls-cert', `${certPath} holds no certificate`);
  return credentialsFrom(cert, key);
}

/** Credentials from PEM bytes already in memory. Throws TlsConfigError when they do not fit together. */
export function credentialsFrom(cert: Buffer, key: Buffer): TlsCredentials {
  let context: SecureContext;
  try {
    context = createSecureContext({ cert, key, minVersion: TLS_VERSION, maxVersion: TLS_VERSION });
  } catch (e) {
    const msg = (e as Error).message;
    throw new TlsConfigError(/key/i.test(msg) ? '--tls-key' : '--tls-cert', `not usable: ${msg}`);
  }
  return { cert, key, context };
}

/** Options for a Node `https`/`tls` server with these credentials: TLS 1.3 only. */
export function tlsServerOptions(creds: TlsCredentials): { cert: Buffer; key: Buffer; minVersion: 'TLSv1.3'; maxVersion: 'TLSv1.3' } {
  return { cert: creds.cert, key: creds.key, minVersion: TLS_VERSION, maxVersion: TLS_VERSION };
}

/**
 * Starts the server side of TLS on an accepted TCP socket. The returned socket is the connection's byte
 * stream (a RelayStream): it carries cleartext once the handshake is done, and its 'error' and 'close'
 * report a failed handshake (wrong version, no common ALPN, garbage) like any other disconnect. A client
 * that offers ALPN without `e2ee-chat/1` is refused with the no_application_protocol alert; one that
 * offers none is accepted (a TLS-terminating proxy in front may strip it). `onFail` gets the OpenSSL
 * code of a handshake that failed (for the log: never a name or an address).
 */
export function acceptTls(socket: Socket, creds: TlsCredentials, onFail?: (code: string) => void): TLSSocket {
  const s = new TLSSocket(socket, { isServer: true, secureContext: creds.context, ALPNProtocols: [TLS_ALPN], requestCert: false });
  handshaking.add(s);
  s.once('secure', () => handshaking.delete(s));
  s.once('error', (e: NodeJS.ErrnoException) => {
    if (handshaking.has(s)) onFail?.(e.code ?? 'TLS_ERROR');
  });
  return s;
}

/** Server-side TLS sockets of `acceptTls` whose handshake is not done yet. */
const handshaking = new WeakSet<object>();

/**
 * Whether `stream` is a relay-side TLS socket still in its handshake: an ERROR written to it could only
 * be sent after a handshake the peer has not finished, so a connection closed now is destroyed at once.
 */
export function tlsHandshaking(stream: object): boolean {
  return handshaking.has(stream);
}

/**
 * The RFC 9266 `tls-exporter` channel binding of a TLS 1.3 connection: 32 bytes of
 * `exportKeyingMaterial(32, "EXPORTER-Channel-Binding", empty context)`, equal on both ends and unique
 * to this connection. Undefined for anything that is not a TLS socket whose TLS 1.3 handshake is done.
 */
export function tlsExporter(socket: unknown): Uint8Array | undefined {
  if (!(socket instanceof TLSSocket) || socket.destroyed || socket.getProtocol() !== TLS_VERSION) return undefined;
  try {
    return new Uint8Array(socket.exportKeyingMaterial(TLS_BINDING.EXPORTER_BYTES, TLS_BINDING.EXPORTER_LABEL, Buffer.alloc(0)));
  } catch {
    return undefined;
  }
}

/**
 * The channel binding of one relay connection (§3.2): the tls-exporter value of its TLS socket (TCP
 * over TLS, or the TLS under a wss WebSocket), or undefined on a connection without TLS. For the
 * relay-bound AUTH of protocol version 2.
 */
export function channelBindingOf(stream: RelayStream): Uint8Array | undefined {
  return tlsExporter(stream) ?? stream.channelBinding?.();
}
