/**
 * The relay's metrics and health endpoint (issue 12), an HTTP listener of its own beside the relay's port:
 *
 * - `GET /metrics`: Prometheus text (prom-client), read from `RelayServer.stats()` at each scrape, plus
 *   Node's process metrics (CPU, memory, event loop lag). Labels carry only fixed names (a §7.1 state, a
 *   §9 code name, a log outcome): never a nickname, room name, key or address.
 * - `GET /healthz`: 200 while the relay accepts connections, 503 once it is shutting down or, in cluster
 *   mode, while its Redis is unreachable (the relay then refuses every connection, spec/CLUSTER.md).
 *
 * Anything else is 404 (405 for another method). The listener holds few connections and short timeouts:
 * it is meant for a scraper on a private address, not for the public.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { ERROR_CODES, type ErrorName } from '../protocol/errors.js';
import { SERVER_STATES } from '../protocol/relay-machine.js';
import type { RelayServer, ServerStats } from './index.js';
import type { LoggerStats } from './log.js';

export interface MetricsOptions {
  /** Address to listen on (the CLI defaults it to the relay's). */
  host: string;
  /** TCP port, 0 for any free one. */
  port: number;
  /** The logger whose queue and drops are reported, if any. */
  logStats?: () => LoggerStats;
}

export interface MetricsListener {
  readonly host: string;
  readonly port: number;
  /** `http://HOST:PORT/metrics` (an IPv6 host in brackets). */
  readonly url: string;
  close(): Promise<void>;
}

const ERROR_NAMES = Object.keys(ERROR_CODES) as ErrorName[];

/** A counter whose value is read from `value()` at each scrape (prom-client counters only count up by inc). */
function mirrorCounter(register: Registry, name: string, help: string, value: () => number): void {
  new Counter({
    name,
    help,
    registers: [register],
    collect() {
      this.reset();
      this.inc(value());
    },
  });
}

/** The prom-client registry of one relay: a fresh registry per relay, so two relays in one process do not mix. */
export function relayRegistry(relay: RelayServer, logStats?: () => LoggerStats): Registry {
  const register = new Registry();
  collectDefaultMetrics({ register });
  // stats() at each metric: a few passes over the connections per scrape, no state kept between scrapes.
  const stats = (): ServerStats => relay.stats();
  new Gauge({
    name: 'e2ee_relay_up',
    help: '1 while the relay accepts connections, else 0 (what /healthz answers)',
    registers: [register],
    collect() {
      this.set(stats().accepting ? 1 : 0);
    },
  });
  new Gauge({
    name: 'e2ee_relay_connections',
    help: 'connections held now, by protocol state (spec 7.1)',
    labelNames: ['state'],
    registers: [register],
    collect() {
      const s = stats().states;
      for (const st of SERVER_STATES) this.set({ state: st }, s[st]);
    },
  });
  new Gauge({
    name: 'e2ee_relay_connections_max',
    help: 'the connection cap in force',
    registers: [register],
    collect() {
      this.set(stats().maxConnections);
    },
  });
  new Gauge({
    name: 'e2ee_relay_rooms',
    help: 'rooms with at least one member on this relay',
    registers: [register],
    collect() {
      this.set(stats().rooms);
    },
  });
  new Gauge({
    name: 'e2ee_relay_buffered_bytes',
    help: 'bytes held for all connections: partial frames plus unsent output',
    registers: [register],
    collect() {
      this.set(stats().bufferedBytes);
    },
  });
  new Gauge({
    name: 'e2ee_relay_registry_bindings',
    help: 'nicknames bound in the registry',
    registers: [register],
    async collect() {
      try {
        this.set(await relay.bindings());
      } catch {
        // The registry is closing or (cluster mode) unreachable: the last value stands, the scrape goes on.
      }
    },
  });
  mirrorCounter(register, 'e2ee_relay_frames_received_total', 'complete frames received from clients', () => stats().framesIn);
  mirrorCounter(register, 'e2ee_relay_frames_relayed_total', 'SEND frames relayed (one DELIVER each)', () => stats().framesRelayed);
  mirrorCounter(register, 'e2ee_relay_bytes_received_total', 'bytes received from clients', () => stats().bytesIn);
  mirrorCounter(register, 'e2ee_relay_bytes_sent_total', 'bytes written to clients', () => stats().bytesOut);
  mirrorCounter(register, 'e2ee_relay_bytes_relayed_total', 'SEND body bytes relayed', () => stats().bytesRelayed);
  new Counter({
    name: 'e2ee_relay_refusals_total',
    help: 'ERROR frames sent, by spec 9 code name',
    labelNames: ['code'],
    registers: [register],
    collect() {
      this.reset();
      const e = stats().errors;
      for (const code of ERROR_NAMES) this.inc({ code }, e[code] ?? 0);
    },
  });
  if (logStats !== undefined) {
    new Gauge({
      name: 'e2ee_relay_log_queued_bytes',
      help: 'log bytes waiting to be written',
      registers: [register],
      collect() {
        this.set(logStats().queuedBytes);
      },
    });
    new Counter({
      name: 'e2ee_relay_log_lines_total',
      help: 'log lines written or dropped (queue full, or the log descriptor failed)',
      labelNames: ['outcome'],
      registers: [register],
      collect() {
        this.reset();
        const l = logStats();
        this.inc({ outcome: 'written' }, l.written);
        this.inc({ outcome: 'dropped' }, l.dropped);
      },
    });
  }
  return register;
}

/** Starts the metrics listener; resolves once it accepts connections (rejects with the listen error). */
export async function startMetrics(relay: RelayServer, opts: MetricsOptions): Promise<MetricsListener> {
  const register = relayRegistry(relay, opts.logStats);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      const ok = relay.stats().accepting;
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }).end(ok ? 'ok\n' : 'unavailable\n');
      return;
    }
    const text = await register.metrics();
    res.writeHead(200, { 'Content-Type': register.contentType, 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text);
  };
  const server: Server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  server.maxConnections = 16;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => {});
  const a = server.address();
  const port = a !== null && typeof a === 'object' ? a.port : opts.port;
  const host = opts.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`;
  return {
    host,
    port,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
