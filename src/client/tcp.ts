/**
 * The TCP transport of the client (a byte stream, §3), optionally inside TLS 1.3 (§3.2): the Node edge
 * behind src/client/transport.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, rootCertificates, type TLSSocket } from 'node:tls';
import { encodeWire, FrameReader } from '../codec/index.js';
import type { ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { TLS_BINDING } from '../protocol/tls.js';
import type { Transport, TransportFactory } from './transport.js';

/** TLS for the relay connection: whom to trust for the relay's certificate. */
export interface TlsClientOptions {
  /** PEM certificates to trust (a private CA, or the relay's own self-signed certificate); absent: the system store. */
  ca?: Buffer | string | undefined;
}

/**
 * OpenSSL's certificate verification results (X509_V_ERR_*, as Node names them) and Node's host name
 * check: a connection that failed with one of these failed because the relay's certificate is not
 * trusted for this host, which the CLI reports with its own exit status.
 */
const CERTIFICATE_ERRORS: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Whether a connection error means the relay's certificate was not accepted. */
export function isCertificateError(code: string | undefined): boolean {
  return code !== undefined && CERTIFICATE_ERRORS.has(code);
}

/** Where Linux distributions keep the system's CA bundle (Debian first); SSL_CERT_FILE overrides. */
const SYSTEM_CA_FILES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/**
 * The system's trusted CAs for `--tls`: the file SSL_CERT_FILE names, else the distribution's bundle,
 * together with the Mozilla roots Node carries; only Node's roots where no bundle exists.
 */
export function systemCa(env: NodeJS.ProcessEnv = process.env): string[] {
  const named = env['SSL_CERT_FILE'];
  const file = named !== undefined && named !== '' ? named : SYSTEM_CA_FILES.find((f) => existsSync(f));
  if (file === undefined) return [...rootCertificates];
  return [...rootCertificates, readFileSync(file, 'utf8')];
}

/** Largest --tls-ca file read, bytes (a bundle of every public root is about 200 KB). */
const MAX_CA_FILE_BYTES = 4 * 1024 * 1024;

/** Reads a --tls-ca file: PEM certificates, at most MAX_CA_FILE_BYTES. Throws an Error that says what is wrong. */
export function readCaFile(path: string): Buffer {
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch (e) {
    throw new Error(`--tls-ca: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (b.length > MAX_CA_FILE_BYTES) throw new Error(`--tls-ca: ${path} is larger than ${MAX_CA_FILE_BYTES} bytes`);
  if (!b.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--tls-ca: ${path} holds no PEM certificate`);
  return b;
}

/**
 * A TCP connection to host:port, Nagle off (frames are small and latency matters more than packets).
 * With `tls`: TLS 1.3 only, the certificate checked against `tls.ca` (or the system store) for `host`
 * (SNI and the name check use it; an IP address is checked against the certificate's IP entries), ALPN
 * `e2ee-chat/1`; the transport opens only once the handshake is done.
 */
export function tcpTransport(host: string, port: number, tls?: TlsClientOptions): TransportFactory {
  return (h) => {
    const sock: Socket | TLSSocket =
      tls === undefined
        ? connect({ host, port })
        : tlsConnect({
            host,
            port,
            ...(isIP(host) === 0 ? { servername: host } : {}),
            ca: tls.ca ?? systemCa(),
            minVersion: TLS_BINDING.VERSION,
            maxVersion: TLS_BINDING.VERSION,
            ALPNProtocols: [TLS_BINDING.ALPN],
            rejectUnauthorized: true,
          });
    sock.setNoDelay(true);
    let connected = false;
    let closed = false;
    const close = (reason?: string, kind?: 'certificate') => {
      if (closed) return;
      closed = true;
      h.close(reason, kind);
    };
    const where = `${host}:${port}${tls === undefined ? '' : ' over TLS'}`;
    sock.once(tls === undefined ? 'connect' : 'secureConnect', () => {
      // A TLS server that chose another application protocol is not a relay (a proxy that strips ALPN is fine).
      const alpn = (sock as TLSSocket).alpnProtocol;
      if (tls !== undefined && alpn !== false && alpn !== TLS_BINDING.ALPN) {
        close(`cannot connect to ${where}: the server speaks ${String(alpn)}, not ${TLS_BINDING.ALPN}`);
        sock.destroy();
        return;
      }
      connected = true;
      h.open();
    });
    // §3: the stream is split into frame bodies here; a framing error counts after the frames before it.
    const reader = new FrameReader(LIMITS.MAX_FRAME_BYTES);
    sock.on('data', (chunk: Buffer) => {
      if (closed) return;
      let bodies: Uint8Array[];
      try {
        bodies = reader.push(chunk);
      } catch (e) {
        return h.invalid(e as ProtocolError);
      }
      sock.cork();
      try {
        for (const body of bodies) h.data(body);
        if (reader.failure !== undefined) h.invalid(reader.failure);
      } finally {
        if (!sock.destroyed) sock.uncork();
      }
    });
    sock.on('drain', () => h.drain());
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (connected) return close(`connection lost: ${err.code ?? err.message}`);
      if (tls !== undefined && isCertificateError(err.code)) {
        return close(`the TLS certificate of ${host}:${port} is not trusted: ${err.message} (${err.code})`, 'certificate');
      }
      close(`cannot connect to ${where}: ${err.code ?? err.message}`);
    });
    sock.on('close', () => close());
    // The frames of one turn of the event loop leave in one write: the client's session steps run as
    // promise continuations after the read that caused them (outside its own cork around that read), so
    // a window of TEXTs or an ACK and the reply behind it were one write() system call each, the largest
    // item of the end-to-end profile. The first write of a turn corks the socket; it is uncorked once
    // the turn's microtasks are done (setImmediate), so nothing waits for a timer.
    let held = false;
    const release = () => {
      held = false;
      if (!sock.destroyed) sock.uncork();
    };
    const t: Transport = {
      encode: encodeWire,
      write: (bytes) => {
        if (sock.destroyed) return false;
        if (!held) {
          held = true;
          sock.cork();
          setImmediate(release);
        }
        return sock.write(bytes);
      },
      cork: () => sock.cork(),
      uncork: () => {
        if (!sock.destroyed) sock.uncork();
      },
      end: () => {
        // end() flushes what is written (a LEAVE or an ERROR) before the FIN.
        sock.end();
        sock.destroySoon();
      },
      channelBinding: () => {
        if (tls === undefined || !connected || sock.destroyed) return undefined;
        return new Uint8Array((sock as TLSSocket).exportKeyingMaterial(TLS_BINDING.EXPORTER_BYTES, TLS_BINDING.EXPORTER_LABEL, Buffer.alloc(0)));
      },
    };
    return t;
  };
}
