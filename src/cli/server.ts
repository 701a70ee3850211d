/**
 * `e2ee-chat server`: runs the reference relay (spec/PROTOCOL.md §7.1) until SIGINT or SIGTERM.
 *
 * stdout gets exactly one line, `listening on HOST:PORT`, once connections are accepted (then the web and
 * metrics URLs when asked for). stderr (or --log-file) gets the relay's events as JSON lines through
 * src/server/log.ts: no body, key or passphrase ever, and no nickname, room or address unless
 * --log-metadata. A listener that cannot start is one human line on stderr and exit 1.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LIMITS } from '../protocol/limits.js';
import { MAX_LISTABLE_ROOM_SIZE, startServer, type ServerOptions } from '../server/index.js';
import { parseRedisUrl, RedisCluster } from '../cluster/redis.js';
import { DEFAULT_WEB_ROOT, isLoopback, startWeb, webListenerAllowed, type WebListener } from '../server/web.js';
import { loadTlsCredentials } from '../server/tls.js';
import { relayNameFor } from '../server/relay-name.js';
import { parseRelayIdentity } from '../protocol/relay-id.js';
import { LOG_LEVELS, Logger, startFailure, type LogLevel } from '../server/log.js';
import { startMetrics, type MetricsListener } from '../server/metrics.js';

const DEFAULT_PORT = 55555;

/** `$XDG_STATE_HOME/e2ee-chat/registry.db`, else `~/.local/state/e2ee-chat/registry.db`; the folder is created on start. */
export function defaultRegistryPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_STATE_HOME'] !== undefined && env['XDG_STATE_HOME'] !== '' ? env['XDG_STATE_HOME'] : join(homedir(), '.local', 'state');
  return join(base, 'e2ee-chat', 'registry.db');
}

// Flag name -> ServerOptions key, default and bounds, all from src/protocol/limits.ts (spec §10).
const INT_FLAGS = {
  port: { key: 'port', dflt: DEFAULT_PORT, min: 0, max: 65535, help: 'TCP port, 0 for any free port' },
  'max-room-size': { key: 'maxRoomSize', dflt: LIMITS.DEFAULT_ROOM_SIZE, min: 2, max: MAX_LISTABLE_ROOM_SIZE, help: 'members per room' },
  'handshake-timeout-ms': { key: 'handshakeTimeoutMs', dflt: LIMITS.HANDSHAKE_TIMEOUT_MS, min: 1, max: 2 ** 31 - 1, help: 'ms from accept to WELCOME' },
  'idle-timeout-ms': { key: 'idleTimeoutMs', dflt: LIMITS.IDLE_TIMEOUT_MS, min: LIMITS.MIN_IDLE_MS, max: 2 ** 31 - 1, help: 'ms without a frame before TIMEOUT' },
  'max-connections': { key: 'maxConnections', dflt: LIMITS.MAX_CONNECTIONS, min: 1, max: LIMITS.MAX_UINT, help: 'connections in total (lowered under the open-file limit)' },
  'max-connections-per-address': {
    key: 'maxConnectionsPerAddress',
    dflt: LIMITS.MAX_CONNECTIONS_PER_ADDRESS,
    min: 1,
    max: LIMITS.MAX_UINT,
    help: 'connections from one address',
  },
  rate: { key: 'rateFramesPerSecond', dflt: LIMITS.RATE_FRAMES_PER_S, min: LIMITS.MIN_RATE, max: LIMITS.MAX_UINT, help: 'frames per second per connection' },
  'rate-burst': { key: 'rateBurst', dflt: LIMITS.RATE_BURST_FRAMES, min: 1, max: LIMITS.MAX_UINT, help: 'token bucket size, frames' },
  'write-high-water-bytes': {
    key: 'writeHighWaterBytes',
    dflt: LIMITS.WRITE_HIGH_WATER_BYTES,
    min: 1,
    max: LIMITS.MAX_UINT,
    help: 'unsent bytes per connection before SLOW_CONSUMER',
  },
  'max-frame-bytes': { key: 'maxFrameBytes', dflt: LIMITS.MAX_FRAME_BYTES, min: LIMITS.MIN_MAX_FRAME_BYTES, max: LIMITS.MAX_FRAME_BYTES, help: 'largest frame body accepted' },
  'max-connections-per-subnet': { key: 'maxConnectionsPerSubnet', dflt: LIMITS.MAX_CONNECTIONS_PER_SUBNET, min: 1, max: LIMITS.MAX_UINT, help: 'connections from one IPv4 /24 or IPv6 /48' },
  'max-connections-per-key': { key: 'maxConnectionsPerKey', dflt: LIMITS.MAX_CONNECTIONS_PER_KEY, min: 1, max: LIMITS.MAX_UINT, help: 'authenticated connections of one key' },
  'max-connections-per-nick': { key: 'maxConnectionsPerNick', dflt: LIMITS.MAX_CONNECTIONS_PER_NICK, min: 1, max: LIMITS.MAX_UINT, help: 'authenticated connections of one nickname' },
  'bind-interval-ms': { key: 'bindIntervalMs', dflt: LIMITS.BIND_INTERVAL_MS, min: 1, max: 2 ** 31 - 1, help: 'interval of the binding quotas, ms' },
  'binds-per-key': { key: 'bindsPerKey', dflt: LIMITS.BINDS_PER_KEY, min: 1, max: LIMITS.MAX_UINT, help: 'new nickname bindings per key per interval' },
  'binds-per-address': { key: 'bindsPerAddress', dflt: LIMITS.BINDS_PER_ADDRESS, min: 1, max: LIMITS.MAX_UINT, help: 'new nickname bindings per address per interval' },
  'binds-per-relay': { key: 'bindsPerRelay', dflt: LIMITS.BINDS_PER_RELAY, min: 1, max: LIMITS.MAX_UINT, help: 'new nickname bindings per interval, whole relay' },
  'binding-expiry-ms': {
    key: 'bindingExpiryMs',
    dflt: LIMITS.BINDING_EXPIRY_MS,
    min: 1000,
    max: LIMITS.MAX_UINT,
    help: 'a nickname binding unused this long is free for another key (spec §7.5)',
  },
  'joins-per-minute': { key: 'joinsPerMinute', dflt: LIMITS.JOINS_PER_MINUTE, min: 1, max: LIMITS.MAX_UINT, help: 'JOINs per connection per minute' },
  'rate-bytes': { key: 'rateBytesPerSecond', dflt: LIMITS.RATE_BYTES_PER_S, min: 1, max: LIMITS.MAX_UINT, help: 'bytes per second per connection' },
  'rate-burst-bytes': { key: 'rateBurstBytes', dflt: LIMITS.RATE_BURST_BYTES, min: LIMITS.MAX_FRAME_BYTES, max: LIMITS.MAX_UINT, help: 'byte token bucket size' },
  'frame-timeout-ms': { key: 'frameTimeoutMs', dflt: LIMITS.FRAME_TIMEOUT_MS, min: 1, max: 2 ** 31 - 1, help: 'ms from a frame\'s first byte to its last' },
  'buffer-budget-bytes': {
    key: 'bufferBudgetBytes',
    dflt: LIMITS.BUFFER_BUDGET_BYTES,
    min: 65536,
    max: LIMITS.MAX_UINT,
    help: 'bytes held for all connections (partial frames, unsent output)',
  },
} as const satisfies Record<string, { key: keyof ServerOptions; dflt: number; min: number; max: number; help: string }>;

type IntFlag = keyof typeof INT_FLAGS;

function usage(): string {
  const rows = (Object.keys(INT_FLAGS) as IntFlag[]).map((f) => `  --${f} N`.padEnd(36) + `${INT_FLAGS[f].help} (default ${INT_FLAGS[f].dflt})`);
  return [
    'usage: e2ee-chat server [options]',
    '',
    '  --host ADDR'.padEnd(36) + 'address to listen on (default 127.0.0.1)',
    '  --name HOST:PORT'.padEnd(36) + 'the name clients dial, announced in CHALLENGE and signed in AUTH',
    ''.padEnd(36) + '(default --host:PORT; on 0.0.0.0 or :: the TLS certificate\'s DNS name)',
    ...rows,
    '  --registry FILE'.padEnd(36) + `nickname registry, SQLite (default ${defaultRegistryPath()})`,
    '  --redis redis://HOST:PORT[/DB]'.padEnd(36) + 'cluster mode: rooms and nicknames shared with other relays through Redis',
    '  --web-port N'.padEnd(36) + 'also serve the browser client and a WebSocket endpoint on this port (0: any free)',
    '  --web-allow-origin ORIGIN'.padEnd(36) + 'another origin allowed to use the WebSocket endpoint (repeatable)',
    '  --web-insecure'.padEnd(36) + 'allow plain HTTP on an address that is not loopback',
    '  --metrics-port N'.padEnd(36) + 'serve Prometheus /metrics and /healthz on this port (0: any free)',
    '  --metrics-host ADDR'.padEnd(36) + 'address of the metrics listener (default: --host)',
    '  --log-level LEVEL'.padEnd(36) + `${LOG_LEVELS.join(', ')} (default info; debug: one line per connection event)`,
    '  --log-metadata'.padEnd(36) + 'log nicknames, room names and addresses (default: none, addresses hashed)',
    '  --log-file FILE'.padEnd(36) + 'append the log to FILE instead of stderr; SIGHUP reopens it',
    '  --tls-cert FILE --tls-key FILE'.padEnd(36) + 'TLS 1.3 on the TCP and web listeners (PEM certificate chain, private key)',
    '  -h, --help'.padEnd(36) + 'show this help',
    '',
    'Prints "listening on HOST:PORT" on stdout once ready (with --web-port then "web on http://HOST:PORT/"',
    'and one "web sha256 HEX PATH" line per served file, with --metrics-port "metrics on URL");',
    'logs JSON lines on stderr. SIGINT or SIGTERM: every client gets ERROR SERVER_SHUTDOWN, then exit 0.',
    'SIGHUP: the --log-file is opened again (log rotation); the relay keeps running.',
  ].join('\n');
}

/**
 * The warning for a relay that listens on `host` without TLS beyond loopback (§11: anyone on the path
 * then sees nicknames, rooms and keys and has the relay's powers), or null when none is due.
 */
export function plainTcpWarning(host: string, tls: boolean): string | null {
  if (tls || isLoopback(host)) return null;
  return `warning: listening on ${host} without TLS: anyone on the path sees nicknames, rooms and keys; give --tls-cert and --tls-key`;
}

function fail(msg: string): number {
  process.stderr.write(`e2ee-chat server: ${msg}\n${usage()}\n`);
  return 2;
}

export async function run(argv: string[]): Promise<number> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    host: { type: 'string' },
    name: { type: 'string' },
    registry: { type: 'string' },
    redis: { type: 'string' },
    'web-port': { type: 'string' },
    'web-allow-origin': { type: 'string', multiple: true },
    'web-insecure': { type: 'boolean' },
    'web-root': { type: 'string' },
    'metrics-port': { type: 'string' },
    'metrics-host': { type: 'string' },
    'log-level': { type: 'string' },
    'log-metadata': { type: 'boolean' },
    'log-file': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const f of Object.keys(INT_FLAGS)) options[f] = { type: 'string' };
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (e) {
    return fail((e as Error).message);
  }
  if (values['help'] === true) {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  const opts: ServerOptions = {};
  for (const f of Object.keys(INT_FLAGS) as IntFlag[]) {
    const spec = INT_FLAGS[f];
    const raw = values[f];
    let n: number = spec.dflt;
    if (typeof raw === 'string') {
      if (!/^[0-9]{1,16}$/.test(raw)) return fail(`--${f}: expected a decimal integer, got '${raw}'`);
      n = Number(raw);
      if (!Number.isSafeInteger(n) || n < spec.min || n > spec.max) return fail(`--${f}: expected ${spec.min}..${spec.max}, got ${raw}`);
    }
    (opts as Record<string, number>)[spec.key] = n;
  }
  const host = typeof values['host'] === 'string' ? values['host'] : '127.0.0.1';
  const registry = typeof values['registry'] === 'string' ? values['registry'] : defaultRegistryPath();
  if (registry === '') return fail('--registry: expected a file path');
  const webPortRaw = values['web-port'];
  let webPort: number | undefined;
  if (typeof webPortRaw === 'string') {
    if (!/^[0-9]{1,5}$/.test(webPortRaw) || Number(webPortRaw) > 65535) return fail(`--web-port: expected 0..65535, got '${webPortRaw}'`);
    webPort = Number(webPortRaw);
  } else if (values['web-allow-origin'] !== undefined || values['web-insecure'] !== undefined || values['web-root'] !== undefined) {
    return fail('--web-allow-origin, --web-insecure and --web-root need --web-port');
  }
  const redisUrl = values['redis'];
  if (typeof redisUrl === 'string') {
    if (typeof values['registry'] === 'string') return fail('--registry and --redis exclude each other (the cluster keeps nicknames in Redis)');
    try {
      parseRedisUrl(redisUrl);
    } catch (e) {
      return fail((e as Error).message);
    }
  }
  const metricsRaw = values['metrics-port'];
  if (metricsRaw !== undefined && (typeof metricsRaw !== 'string' || !/^[0-9]{1,5}$/.test(metricsRaw) || Number(metricsRaw) > 65535)) {
    return fail(`--metrics-port: expected 0..65535, got '${String(metricsRaw)}'`);
  }
  if (metricsRaw === undefined && values['metrics-host'] !== undefined) return fail('--metrics-host needs --metrics-port');
  const level = values['log-level'];
  if (level !== undefined && !(LOG_LEVELS as readonly unknown[]).includes(level)) return fail(`--log-level: expected one of ${LOG_LEVELS.join(', ')}`);
  if (values['log-file'] === '') return fail('--log-file: expected a file path');
  let logger: Logger;
  try {
    logger = await Logger.create({
      level: (level ?? 'info') as LogLevel,
      metadata: values['log-metadata'] === true,
      ...(typeof values['log-file'] === 'string' ? { file: values['log-file'] } : {}),
    });
  } catch (e) {
    process.stderr.write(startFailure(e, 'log file') + '\n');
    return 1;
  }
  // §3.2: the certificate and key are read and checked once, here; both listeners use them.
  const [tlsCert, tlsKey] = [values['tls-cert'], values['tls-key']];
  if (typeof tlsCert !== typeof tlsKey) return fail('--tls-cert and --tls-key go together');
  if (typeof tlsCert === 'string' && typeof tlsKey === 'string') {
    try {
      opts.tls = loadTlsCredentials(tlsCert, tlsKey);
    } catch (e) {
      return fail((e as Error).message);
    }
  }
  if (webPort !== undefined && !webListenerAllowed(host, opts.tls !== undefined, values['web-insecure'] === true)) {
    return fail(`--web-port: plain HTTP on ${host}, which is not a loopback address: give --tls-cert and --tls-key, or --web-insecure`);
  }
  opts.host = host;
  if (typeof values['name'] === 'string') {
    // §7.3: clients compare the name byte for byte with the relay identity of what they dial: one spelling.
    const name = parseRelayIdentity(values['name']);
    if (name === null) return fail(`--name: HOST:PORT (the name clients dial), got ${JSON.stringify(values['name'])}`);
    opts.relayName = name;
  }
  try {
    relayNameFor(host, 1, opts.relayName, opts.tls);
  } catch {
    return fail(`--host ${host} listens on every address, so the relay cannot tell which name clients dial: give --name HOST:PORT (or a --tls-cert with a DNS name)`);
  }
  opts.registry = registry;
  opts.log = (event) => logger.log(event);
  opts.logs = (event) => logger.takes(event);

  let server;
  let cluster: RedisCluster<object> | undefined;
  try {
    if (typeof redisUrl === 'string') {
      // Cluster mode (spec/CLUSTER.md): the relay closes the engine with itself.
      cluster = await RedisCluster.connect<object>(redisUrl, {
        maxRoomSize: opts.maxRoomSize!,
        maxPendingBytes: opts.writeHighWaterBytes!,
        bindingExpiryMs: opts.bindingExpiryMs,
        log: opts.log,
      });
      opts.registry = cluster;
      opts.rooms = cluster;
    }
    server = await startServer(opts);
  } catch (e) {
    await cluster?.close();
    process.stderr.write(startFailure(e, 'relay') + '\n');
    await logger.close();
    return 1;
  }
  let web: WebListener | undefined;
  if (webPort !== undefined) {
    try {
      const allow = values['web-allow-origin'];
      web = await startWeb(server, {
        host,
        port: webPort,
        root: typeof values['web-root'] === 'string' ? values['web-root'] : DEFAULT_WEB_ROOT,
        allowOrigins: Array.isArray(allow) ? allow.map(String) : [],
        insecure: values['web-insecure'] === true,
        ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
        log: opts.log,
      });
    } catch (e) {
      process.stderr.write(startFailure(e, 'web listener') + '\n');
      await server.close();
      await logger.close();
      return e instanceof RangeError ? 2 : 1;
    }
  }
  let metrics: MetricsListener | undefined;
  if (typeof metricsRaw === 'string') {
    const mhost = typeof values['metrics-host'] === 'string' ? values['metrics-host'] : host;
    try {
      metrics = await startMetrics(server, { host: mhost, port: Number(metricsRaw), logStats: () => logger.stats() });
    } catch (e) {
      process.stderr.write(startFailure(e, 'metrics listener') + '\n');
      await server.close();
      await web?.close();
      await logger.close();
      return 1;
    }
    logger.log({ event: 'metrics_listening', host: metrics.host, port: metrics.port });
  }
  const warning = plainTcpWarning(host, opts.tls !== undefined);
  if (warning !== null) {
    process.stderr.write(`e2ee-chat server: ${warning}\n`);
    logger.log({ event: 'insecure_listener', tls: false });
  }
  // The start-up lines are out before the ready line (bounded: a stalled log delays it by at most 2 s).
  await logger.flush();
  process.stdout.write(`listening on ${server.host}:${server.port}\n`);
  if (web !== undefined) {
    process.stdout.write(`web on ${web.origin}/\n` + web.manifest.map((f) => `web sha256 ${f.sha256} ${f.path}\n`).join(''));
  }
  if (metrics !== undefined) process.stdout.write(`metrics on ${metrics.url}\n`);

  // Graceful shutdown (spec §7.1 "Shutdown"): the promise settles once every socket is closed and the
  // registry is flushed; a second signal while shutting down changes nothing.
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.log({ event: 'signal', signal });
      // The relay first (it ends the WebSocket connections too), then the web and metrics listeners.
      server
        .close()
        .then(() => web?.close())
        .then(() => metrics?.close())
        .then(resolve, resolve);
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    // SIGHUP reopens the log file (rotation); without one it is only logged. Never a shutdown.
    process.on('SIGHUP', () => {
      logger.log({ event: 'signal', signal: 'SIGHUP' });
      logger.reopen().catch((e: unknown) => logger.log({ event: 'log_reopen_failed', error: e instanceof Error ? e.message : String(e) }));
    });
  });
  // A log pipe nobody reads must not keep a stopped relay alive: give the log 2 s, then exit anyway.
  if (!(await logger.close())) process.exit(0);
  return 0;
}
