/**
 * The relay's web listener (spec/PROTOCOL.md §3.1): one HTTP server that serves the browser client's
 * static files from `/` and upgrades `WS_PATH` to a WebSocket carrying the relay protocol, each
 * connection handed to the relay's §7.1 machine through `RelayServer.accept` (src/server/ws-stream.ts).
 *
 * The page must not be a way in (SECURITY.md, "The web client"): every response carries a strict
 * Content-Security-Policy and the other headers of `securityHeaders`; only the files of the integrity
 * manifest exist (no path is ever mapped onto the file system at request time); the Host header and, on
 * the upgrade, the Origin header must name the relay's own origin or one given with --web-allow-origin
 * (a page of another site, or a DNS-rebound name, gets 403/421). Plain HTTP is served only on a loopback
 * address unless the operator says otherwise, since WebCrypto needs a secure context and the page would
 * otherwise travel unprotected.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import type { RelayServer } from './index.js';
import { WsStream } from './ws-stream.js';
import { tlsExporter, tlsServerOptions, type TlsCredentials } from './tls.js';

/** The WebSocket endpoint's path and subprotocol (§3.1). */
export const WS_PATH = '/v1/ws';
export const WS_SUBPROTOCOL = 'e2ee-chat.v1';
/** The integrity manifest's two forms (not in the manifest themselves: they are made from it). */
export const MANIFEST_JSON = '/manifest.json';
export const MANIFEST_MODULE = '/manifest.js';
/** dist/web next to this module's dist/src/server/ (where npm run build puts the bundle). */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));
/** Largest HTTP request head accepted, bytes (Node's default is 16 KiB). */
const MAX_HEADER_BYTES = 8192;
/** Static files larger than this are not served (the bundle is far smaller). */
const MAX_STATIC_BYTES = 4 * 1024 * 1024;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

export interface StaticFile {
  /** URL path, starting with '/'. */
  path: string;
  type: string;
  body: Buffer;
  /** Lower-case hex SHA-256 of `body`. */
  sha256: string;
}

export interface WebOptions {
  /** Address to listen on (the relay's --host). */
  host: string;
  /** HTTP port, 0 for any free one. */
  port: number;
  /** Folder of the built browser client (dist/web); every file in it is served, `index.html` also at `/`. */
  root: string;
  /** Further origins allowed to open the WebSocket and to be named by Host (e.g. `https://chat.example`). */
  allowOrigins?: readonly string[];
  /** Serve plain HTTP on an address that is not loopback. */
  insecure?: boolean;
  /** Serve https/wss with the relay's TLS credentials (TLS 1.3 only, §3.2); plain HTTP when absent. */
  tls?: TlsCredentials;
  log?: (event: Record<string, unknown>) => void;
}

export interface WebListener {
  readonly host: string;
  readonly port: number;
  /** `http://HOST:PORT` (`https://` with TLS) as the relay's own origin. */
  readonly origin: string;
  /** The served files with their hashes, sorted by path (the integrity manifest). */
  readonly manifest: readonly StaticFile[];
  /** Stops accepting; open WebSocket connections are the relay's (RelayServer.close ends them). */
  close(): Promise<void>;
}

/** Whether `host` is a loopback address or name (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Whether the web listener may start: with TLS anywhere; without it only on a loopback address unless
 * `insecure` (issue 18.4: WebCrypto needs a secure context, and the page would travel unprotected).
 */
export function webListenerAllowed(host: string, tls: boolean, insecure: boolean): boolean {
  return tls || insecure || isLoopback(host);
}

/** The origin string for a host and port: IPv6 literals in brackets, no default-port elision. */
export function originOf(scheme: 'http' | 'https', host: string, port: number): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${scheme}://${h.toLowerCase()}:${port}`;
}

/** Checks an --web-allow-origin value: scheme, host, optional port; nothing else (no path, no slash). */
export function parseOrigin(s: string): string {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new RangeError(`not an origin: ${s}`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.origin === 'null' || s.replace(/\/$/, '') !== u.origin) {
    throw new RangeError(`not an origin (scheme://host[:port]): ${s}`);
  }
  return u.origin;
}

/** Reads every regular file of `root` (one level) into memory with its SHA-256. */
export function loadStatic(root: string): StaticFile[] {
  const files: StaticFile[] = [];
  for (const name of readdirSync(root).sort()) {
    const full = join(root, name);
    const st = statSync(full);
    if (!st.isFile() || !/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) continue;
    if (st.size > MAX_STATIC_BYTES) throw new RangeError(`${full}: larger than ${MAX_STATIC_BYTES} bytes`);
    const body = readFileSync(full);
    files.push({ path: `/${name}`, type: TYPES[extname(name)] ?? 'application/octet-stream', body, sha256: createHash('sha256').update(body).digest('hex') });
  }
  if (!files.some((f) => f.path === '/index.html')) throw new RangeError(`${root}: no index.html (run npm run build)`);
  return files;
}

/** The headers on every response (§3.1 and SECURITY.md): `wsOrigin` is the page's own ws(s) origin. */
export function securityHeaders(wsEndpoint: string): Record<string, string> {
  return {
    'Content-Security-Policy':
      `default-src 'none'; script-src 'self'; style-src 'self'; connect-src ${wsEndpoint}; img-src 'self'; ` +
      `frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=()',
    'Cache-Control': 'no-cache',
  };
}

/**
 * Starts the web listener in front of `relay`. Rejects with RangeError for a plain-HTTP non-loopback
 * address without `insecure`, a malformed allowed origin or a missing build, and with the listen error.
 */
export async function startWeb(relay: RelayServer, opts: WebOptions): Promise<WebListener> {
  if (!webListenerAllowed(opts.host, opts.tls !== undefined, opts.insecure === true)) {
    throw new RangeError(`plain HTTP on ${opts.host}, which is not a loopback address: give --tls-cert and --tls-key, or --web-insecure to serve plain HTTP anyway`);
  }
  const extra = (opts.allowOrigins ?? []).map(parseOrigin);
  const files = loadStatic(opts.root);
  const byPath = new Map(files.map((f) => [f.path, f]));
  // The manifest as the relay printed it at start: /manifest.json for scripts, and the same list as an ES
  // module for the page's "about" view, which imports it (script-src 'self'): the CSP's connect-src
  // names only the WebSocket endpoint, so the page cannot fetch the JSON.
  const json = JSON.stringify(files.map((f) => ({ path: f.path, sha256: f.sha256 })));
  for (const [path, body] of [
    [MANIFEST_JSON, Buffer.from(json)],
    [MANIFEST_MODULE, Buffer.from(`export default ${json};\n`)],
  ] as const) {
    byPath.set(path, { path, type: TYPES[extname(path)]!, body, sha256: createHash('sha256').update(body).digest('hex') });
  }
  const index = byPath.get('/index.html')!;
  const log = (e: Record<string, unknown>): void => {
    try {
      opts.log?.({ ts: new Date().toISOString(), ...e });
    } catch {
      // a failing sink must not take a request down
    }
  };
  let origins = new Set<string>();
  /** Host header value -> the allowed origin it names (a TLS proxy in front makes it an https origin). */
  let byHost = new Map<string, string>();

  /** The allowed origin the request's Host header names, or undefined (DNS rebinding, wrong name). */
  const hostOrigin = (req: IncomingMessage): string | undefined => {
    const host = req.headers.host;
    if (host === undefined || host.length > 261) return undefined;
    return byHost.get(host.toLowerCase());
  };
  const headersFor = (origin: string | undefined): Record<string, string> =>
    securityHeaders(origin === undefined ? "'none'" : `${origin.replace(/^http/, 'ws')}${WS_PATH}`);

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const origin = hostOrigin(req);
    const headers = headersFor(origin);
    const reply = (status: number, type: string, body: Buffer | string, extraHeaders: Record<string, string> = {}): void => {
      res.writeHead(status, { ...headers, 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)), ...extraHeaders });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (origin === undefined) return reply(421, 'text/plain; charset=utf-8', 'unknown host\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
    const path = (req.url ?? '/').split('?')[0]!;
    const f = path === '/' ? index : byPath.get(path);
    if (f === undefined) return reply(404, 'text/plain; charset=utf-8', 'not found\n');
    reply(200, f.type, f.body, { ETag: `"${f.sha256}"` });
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    try {
      onRequest(req, res);
    } catch (e) {
      log({ event: 'web_internal_error', error: e instanceof Error ? e.message : String(e) });
      res.destroy();
    }
  };
  // With TLS: TLS 1.3 only, and a handshake not done within the header timeout is cut off (§3.2).
  const server: Server =
    opts.tls === undefined
      ? createServer({ maxHeaderSize: MAX_HEADER_BYTES }, handler)
      : createHttpsServer({ ...tlsServerOptions(opts.tls), maxHeaderSize: MAX_HEADER_BYTES, handshakeTimeout: 10_000 }, handler);
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.on('clientError', (_e, socket: Socket) => {
    // Malformed or oversized request heads: 400 (431 for huge headers), never a stack trace.
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: relay.maxFrameBytes,
    perMessageDeflate: false,
    autoPong: false, // answered by WsStream, at most once per WS_PING_INTERVAL_MS (§3.1)
    clientTracking: false,
    handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
  });

  const refuseUpgrade = (socket: Socket, status: number, text: string, reason: string, origin: string | undefined): void => {
    log({ event: 'web_refuse', status, reason });
    const h = Object.entries({ ...headersFor(origin), 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(text.length + 1), Connection: 'close' })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.end(`HTTP/1.1 ${status} ${reason}\r\n${h}\r\n${text}\n`);
  };

  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => {});
    try {
      const origin = hostOrigin(req);
      if (origin === undefined) return refuseUpgrade(socket, 421, 'unknown host', 'Misdirected Request', origin);
      if ((req.url ?? '').split('?')[0] !== WS_PATH) return refuseUpgrade(socket, 404, 'not found', 'Not Found', origin);
      // RFC 6455 §4.1: a GET of HTTP/1.1 or later (ws checks the method itself: 405).
      if (req.httpVersionMajor !== 1 || req.httpVersionMinor < 1) return refuseUpgrade(socket, 400, 'HTTP/1.1 required', 'Bad Request', origin);
      // §3.1: a browser always sends Origin; it must be ours or allowed. A non-browser client may omit it
      // (it could claim any Origin anyway: the check protects browser users from other sites' pages).
      const claimed = req.headers.origin;
      if (claimed !== undefined && !origins.has(claimed.toLowerCase())) return refuseUpgrade(socket, 403, 'origin not allowed', 'Forbidden', origin);
      const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
      if (!offered.includes(WS_SUBPROTOCOL)) return refuseUpgrade(socket, 400, `subprotocol ${WS_SUBPROTOCOL} required`, 'Bad Request', origin);
      wss.handleUpgrade(req, socket, head, (ws) => {
        const stream = new WsStream(ws, socket.remoteAddress, socket.remotePort, relay.maxFrameBytes);
        // Before ws's own listener: each read is counted, then a read that completes a message resets it.
        socket.prependListener('data', (chunk: Buffer) => stream.noteRead(chunk.length));
        if (opts.tls !== undefined) stream.channelBinding = () => tlsExporter(socket);
        relay.accept(stream);
      });
    } catch (e) {
      log({ event: 'web_internal_error', error: e instanceof Error ? e.message : String(e) });
      socket.destroy();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      server.on('error', (e) => log({ event: 'web_server_error', error: e.message }));
      resolve();
    });
  });
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('web listener bound to something other than a TCP port');
  const own = originOf(opts.tls === undefined ? 'http' : 'https', opts.host, a.port);
  origins = new Set([own, ...extra]);
  byHost = new Map([...origins].reverse().map((o) => [new URL(o).host, o]));
  log({ event: 'web_listening', host: opts.host, port: a.port, tls: opts.tls !== undefined, files: files.length });
  return {
    host: opts.host,
    port: a.port,
    origin: own,
    manifest: files,
    close: () =>
      new Promise<void>((resolve) => {
        wss.close();
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
