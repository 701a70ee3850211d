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
import { EventEmitter } from 'node:events';
import { closeSync, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { LIMITS } from '../protocol/limits.js';
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

// ---- the ClientHello gate ------------------------------------------------------------------------

/** RFC 8446 §5.1: a record header is 5 bytes; a record's fragment is at most 2^14 bytes. */
const RECORD_HEADER_BYTES = 5;
const MAX_RECORD_FRAGMENT = 16384;
const CONTENT_HANDSHAKE = 22;
const CONTENT_ALERT = 21;
const HANDSHAKE_HEADER_BYTES = 4;
const CLIENT_HELLO = 1;
/** Smallest buffer the gate allocates; it doubles from there, so it never holds more than twice what came. */
const GATE_MIN_BYTES = 256;

/**
 * Why the gate refused a client's first bytes, with the fatal alert it answers (RFC 8446 §6.2) and the
 * code logged as `tls_failed` (beside OpenSSL's codes for what TLS itself refuses).
 */
export const HELLO_REFUSALS = {
  /** The ClientHello, with its record headers, would need more than MAX_CLIENT_HELLO_BYTES. */
  too_large: { alert: 47, code: 'ERR_TLS_CLIENT_HELLO_TOO_LARGE' }, // illegal_parameter, as OpenSSL's excessive message size
  /** The first record is not a handshake record, or its first message is not a ClientHello. */
  unexpected: { alert: 10, code: 'ERR_TLS_UNEXPECTED_MESSAGE' }, // unexpected_message
  /** A record longer than 2^14 bytes (or an empty handshake record, RFC 8446 §5.1). */
  record: { alert: 22, code: 'ERR_TLS_RECORD_OVERFLOW' }, // record_overflow
  /** A record whose version is not 3.x: not TLS at all (plain TCP, HTTP), so no alert, as OpenSSL does. */
  version: { alert: undefined, code: 'ERR_TLS_WRONG_VERSION_NUMBER' },
} as const;
export type HelloRefusal = keyof typeof HELLO_REFUSALS;

/** What the gate makes of the bytes so far: wait, hand them to TLS, or refuse. */
export type HelloProgress = 'more' | 'complete' | HelloRefusal;

/**
 * Gathers a client's first TLS flight until its ClientHello is complete (RFC 8446 §5.1 records carrying
 * the §4.1.2 message, possibly split over several records), in one buffer that grows by doubling and
 * never past `limit`: what it holds is bounded by what the client sent (at most twice that, at least
 * GATE_MIN_BYTES) and by MAX_CLIENT_HELLO_BYTES. Only a complete ClientHello is given to OpenSSL, which
 * allocates some 40 KiB of record buffers and handshake state at a connection's first byte.
 */
export class ClientHelloGate {
  private buf: Buffer = Buffer.alloc(0);
  private length = 0;
  /** The next byte not yet parsed. */
  private pos = 0;
  /** End of the record being parsed (== pos at a record boundary). */
  private recordEnd = 0;
  /** Handshake bytes parsed so far, and the ClientHello's declared body length once its header is in. */
  private got = 0;
  private declared = 0;
  /** Bytes of the chunk that completed the ClientHello beyond `limit` (kept as they came, not copied). */
  private tail: Buffer | undefined;

  constructor(readonly limit: number = LIMITS.MAX_CLIENT_HELLO_BYTES) {}

  /** Bytes allocated now (the relay's buffer budget counts them). */
  get held(): number {
    return this.buf.length;
  }

  /** Every byte received, in order, for TLS once `push` said 'complete'. */
  bytes(): Buffer[] {
    const head = this.buf.subarray(0, this.length);
    return this.tail === undefined ? [head] : [head, this.tail];
  }

  /** Takes the next chunk from the socket. After anything but 'more' it must not be called again. */
  push(chunk: Buffer): HelloProgress {
    const room = this.limit - this.length;
    const take = Math.min(room, chunk.length);
    if (this.length + take > this.buf.length) {
      const grown = Buffer.allocUnsafeSlow(Math.min(this.limit, Math.max(GATE_MIN_BYTES, 2 * (this.length + take))));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    chunk.copy(this.buf, this.length, 0, take);
    this.length += take;
    const p = this.parse();
    // Full and still incomplete (its record headers took the room): refused now, not at the next byte.
    if (p === 'more' && this.length === this.limit) return 'too_large';
    if (p === 'complete' && take < chunk.length) this.tail = Buffer.from(chunk.subarray(take));
    return p;
  }

  private parse(): HelloProgress {
    const b = this.buf;
    for (;;) {
      if (this.pos === this.recordEnd) {
        if (this.length - this.pos < RECORD_HEADER_BYTES) return 'more';
        const type = b[this.pos]!;
        const major = b[this.pos + 1]!;
        const n = b.readUInt16BE(this.pos + 3);
        if (major !== 3) return 'version';
        if (type !== CONTENT_HANDSHAKE) return 'unexpected';
        if (n === 0 || n > MAX_RECORD_FRAGMENT) return 'record';
        this.pos += RECORD_HEADER_BYTES;
        this.recordEnd = this.pos + n;
      }
      const end = Math.min(this.length, this.recordEnd);
      if (this.pos === end) return 'more';
      while (this.got < HANDSHAKE_HEADER_BYTES && this.pos < end) {
        const x = b[this.pos++]!;
        if (this.got === 0 && x !== CLIENT_HELLO) return 'unexpected';
        if (this.got > 0) this.declared = this.declared * 256 + x;
        this.got++;
        // Refused on its header, before its body is read (as a frame's prefix is, §3).
        if (this.got === HANDSHAKE_HEADER_BYTES && this.pos + this.declared > this.limit) return 'too_large';
      }
      if (this.got < HANDSHAKE_HEADER_BYTES) continue;
      const want = HANDSHAKE_HEADER_BYTES + this.declared - this.got;
      const n = Math.min(end - this.pos, want);
      this.pos += n;
      this.got += n;
      if (this.got === HANDSHAKE_HEADER_BYTES + this.declared) return 'complete';
    }
  }
}

/** A fatal TLS alert record in the clear (RFC 8446 §6), sent before any TLS state exists. */
function alertRecord(description: number): Buffer {
  return Buffer.from([CONTENT_ALERT, 3, 3, 0, 2, 2, description]);
}

// ---- the relay's TLS stream -----------------------------------------------------------------------

/**
 * The relay side of one TLS connection, as the relay's byte stream (a RelayStream) from TCP accept on.
 * Until the client's ClientHello is complete there is no TLS socket: a ClientHelloGate gathers its
 * bytes; what the relay writes meanwhile (a cap refusal) waits, and goes to TLS, in order, once it
 * exists. Then the TLS socket takes over the TCP socket (its native handle: no JavaScript stream in
 * between) and this forwards to it. 'secure' is emitted when the TLS handshake is done.
 */
export class TlsStream extends EventEmitter implements RelayStream {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /** The TLS socket, from the complete ClientHello on. */
  tls: TLSSocket | undefined;
  private gate: ClientHelloGate | undefined;
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private ended = false;
  private paused = false;
  private closed = false;
  private readonly onRaw = (chunk: Buffer): void => this.gathered(chunk);
  private readonly onRawError = (e: Error): void => this.failed(e);

  constructor(
    private readonly raw: Socket,
    private readonly creds: TlsCredentials,
    private readonly onFail?: (code: string) => void,
    limit: number = LIMITS.MAX_CLIENT_HELLO_BYTES,
  ) {
    super();
    this.remoteAddress = raw.remoteAddress;
    this.remotePort = raw.remotePort;
    this.gate = new ClientHelloGate(limit);
    raw.on('data', this.onRaw);
    raw.on('error', this.onRawError);
    raw.once('close', () => {
      if (this.tls === undefined) this.closeOnce();
    });
  }

  /** Bytes of a ClientHello being gathered (counted by the relay like a partial frame, §7.1 "Memory"). */
  get pendingInput(): number {
    return this.gate?.held ?? 0;
  }

  /** True until the TLS handshake is done (also while the ClientHello is still being gathered). */
  get handshaking(): boolean {
    return this.tls === undefined || !secured.has(this.tls);
  }

  get destroyed(): boolean {
    return this.tls?.destroyed ?? this.raw.destroyed;
  }

  get writable(): boolean {
    return this.tls?.writable ?? (!this.ended && !this.raw.destroyed);
  }

  get writableLength(): number {
    return this.tls?.writableLength ?? this.queuedBytes;
  }

  write(bytes: Uint8Array): boolean {
    if (this.tls !== undefined) return this.tls.write(bytes);
    if (this.writable) {
      this.queued.push(bytes);
      this.queuedBytes += bytes.length;
    }
    return true;
  }

  end(bytes?: Uint8Array): this {
    if (this.tls !== undefined) {
      if (bytes === undefined) this.tls.end();
      else this.tls.end(bytes);
      return this;
    }
    if (bytes !== undefined) this.write(bytes);
    this.ended = true;
    return this;
  }

  destroy(): this {
    if (this.tls !== undefined) this.tls.destroy();
    else {
      this.gate = undefined;
      this.raw.destroy();
    }
    return this;
  }

  cork(): void {
    this.tls?.cork();
  }

  uncork(): void {
    this.tls?.uncork();
  }

  pause(): this {
    this.paused = true;
    this.tls?.pause();
    return this;
  }

  resume(): this {
    this.paused = false;
    this.tls?.resume();
    return this;
  }

  /** An error of the socket, for whoever listens ('close' follows); never thrown for want of a listener. */
  private failed(e: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  private closeOnce(): void {
    if (this.closed) return;
    this.closed = true;
    this.gate = undefined;
    this.emit('close');
  }

  private gathered(chunk: Buffer): void {
    const gate = this.gate;
    if (gate === undefined) return;
    const p = gate.push(chunk);
    if (p === 'more') return;
    this.gate = undefined;
    this.raw.off('data', this.onRaw);
    this.raw.off('error', this.onRawError);
    this.raw.on('error', () => {}); // from here TLSSocket reports the socket's errors (or the refusal ends it)
    this.raw.pause();
    if (p === 'complete') this.startTls(gate.bytes());
    else this.refuseHello(p);
  }

  private refuseHello(why: HelloRefusal): void {
    const r = HELLO_REFUSALS[why];
    this.onFail?.(r.code);
    const raw = this.raw;
    if (r.alert === undefined) raw.destroy();
    else raw.end(alertRecord(r.alert), () => raw.destroy());
  }

  /**
   * Hands the TCP socket to TLS: the gathered bytes go back in front of the socket's input, where
   * TLSSocket reads them before its first read from the network (Node's path for a socket that already
   * has data), so OpenSSL sees exactly the bytes the client sent, in order.
   */
  private startTls(bytes: Buffer[]): void {
    const raw = this.raw;
    for (let i = bytes.length - 1; i >= 0; i--) raw.unshift(bytes[i]!);
    const s = new TLSSocket(raw, { isServer: true, secureContext: this.creds.context, ALPNProtocols: [TLS_ALPN], requestCert: false });
    this.tls = s;
    s.once('secure', () => {
      secured.add(s);
      this.emit('secure');
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (!secured.has(s)) this.onFail?.(e.code ?? 'TLS_ERROR');
      this.failed(e);
    });
    s.on('data', (chunk: Buffer) => this.emit('data', chunk));
    s.once('close', () => this.closeOnce());
    if (this.paused) s.pause();
    // What the relay wrote before TLS existed goes first, in order (TLS sends it once the handshake is done).
    const queued = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    for (const b of queued) s.write(b);
    if (this.ended) s.end();
  }
}

/** TLS sockets of TlsStreams whose handshake is done. */
const secured = new WeakSet<TLSSocket>();

/**
 * Starts the server side of TLS on an accepted TCP socket (§3.2). The returned stream is the
 * connection's byte stream: it carries cleartext once the handshake is done, and its 'error' and 'close'
 * report a failed handshake (wrong version, no common ALPN, garbage) like any other disconnect. The
 * client's first bytes are gathered by a ClientHelloGate (at most MAX_CLIENT_HELLO_BYTES) before OpenSSL
 * sees any. A client that offers ALPN without `e2ee-chat/1` is refused with the no_application_protocol
 * alert; one that offers none is accepted (a TLS-terminating proxy in front may strip it). `onFail`
 * gets the code of a handshake that failed (OpenSSL's, or HELLO_REFUSALS'; for the log: never a name or
 * an address).
 */
export function acceptTls(socket: Socket, creds: TlsCredentials, onFail?: (code: string) => void): TlsStream {
  return new TlsStream(socket, creds, onFail);
}

/**
 * Whether `stream` is a relay-side TLS stream still in its handshake: an ERROR written to it could only
 * be sent after a handshake the peer has not finished, so a connection closed now is destroyed at once.
 */
export function tlsHandshaking(stream: object): boolean {
  return stream instanceof TlsStream && stream.handshaking;
}

/**
 * The RFC 9266 `tls-exporter` channel binding of a TLS 1.3 connection: 32 bytes of
 * `exportKeyingMaterial(32, "EXPORTER-Channel-Binding", empty context)`, equal on both ends and unique
 * to this connection. Undefined for anything that is not a TLS socket whose TLS 1.3 handshake is done.
 */
export function tlsExporter(stream: unknown): Uint8Array | undefined {
  const socket = stream instanceof TlsStream ? stream.tls : stream;
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
