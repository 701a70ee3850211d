/**
 * The reference relay (spec/PROTOCOL.md §3-§7.1, §7.3, §9, §10): accepts TCP connections, authenticates
 * each client's nickname against its identity key, groups clients into rooms and forwards opaque bodies.
 * It never holds a private key, never decrypts, and never logs or stores a relayed body.
 *
 * Every connection is driven by the transition table of §7.1 (src/protocol/relay-machine.ts): a frame whose
 * (state, input) pair is not in the table is answered with ERROR UNEXPECTED_FRAME and the connection is
 * closed. Nothing a peer sends can throw past `onData`: every rejection becomes an ERROR frame with its
 * §9 code and a log line naming that code.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { TLSSocket } from 'node:tls';
import { decodeFrame, encodeFrame, encodeWire, frame, FrameReader, type Frame, type FrameOf, type RelayFrame } from '../codec/index.js';
import { pssVerify, authMessage } from '../crypto/rsa.js';
import { sha256 } from '../crypto/primitives.js';
import { recoveryCommitInput } from '../crypto/recovery.js';
import { isTemplateSpki, KeyCache } from './spki.js';
import { ERROR_CODES, isProtocolError, ProtocolError, type ErrorName } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { RoomManager } from '../room/index.js';
import type { RoomEngine } from '../room/engine.js';
import { addressKey, subnetKey } from './address.js';
import { Bucket, Buckets, Counter } from './quota.js';
import { Outbox, Spare, deliverHead, readSend, sendAt, sendToIs } from './deliver.js';
import { SqliteRegistry, type BindResult, type RecoverResult, type Registry } from './registry.js';
import { serverTransition, type ServerState, type ServerTransition } from '../protocol/relay-machine.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import type { RelayStream } from './stream.js';
import { acceptTls, tlsHandshaking, type TlsCredentials } from './tls.js';
import { channelBinding, relayNameFor } from './relay-name.js';

export { SqliteRegistry, type BindResult, type RecoverResult, type Registry } from './registry.js';

export interface ServerOptions {
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /**
   * The relay's name, announced in CHALLENGE.relay and covered by every AUTH (spec §7.3): the name
   * clients address it by. Default relayIdentity(host, port) once listening (`localhost:55555` on
   * 127.0.0.1); on a wildcard host the TLS certificate's first DNS name, else required (src/server/relay-name.ts).
   */
  relayName?: string;
  /** TCP port; 0 picks a free one (default 0 for the library, 55555 for the CLI). */
  port?: number;
  /** Members per room, 2..MAX_ROOM_SIZE (default DEFAULT_ROOM_SIZE). */
  maxRoomSize?: number;
  /**
   * Registry file path, or ':memory:' (the default for the library; the CLI defaults to a file), served by
   * a worker thread and closed with the relay; or a `Registry` the caller opened (and closes itself).
   */
  registry?: string | Registry;
  /**
   * Where rooms live: omitted, in this process (RoomManager); or an engine shared by several relays
   * (src/cluster, spec/CLUSTER.md), which the relay closes with itself.
   */
  rooms?: RoomEngine<object>;
  /** Milliseconds from accept to WELCOME (default HANDSHAKE_TIMEOUT_MS). */
  handshakeTimeoutMs?: number;
  /** Milliseconds without a frame before TIMEOUT, announced as WELCOME.idle_ms (default IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
  /** Connections held at once (default MAX_CONNECTIONS, lowered to the open-file limit minus FD_HEADROOM). */
  maxConnections?: number;
  /** Connections held at once from one remote address (default MAX_CONNECTIONS_PER_ADDRESS). */
  maxConnectionsPerAddress?: number;
  /** Token-bucket refill, frames per second per connection, announced as WELCOME.rate (default RATE_FRAMES_PER_S). */
  rateFramesPerSecond?: number;
  /** Token-bucket size in frames (default RATE_BURST_FRAMES). */
  rateBurst?: number;
  /** Bytes of unsent output per connection before SLOW_CONSUMER (default WRITE_HIGH_WATER_BYTES). */
  writeHighWaterBytes?: number;
  /** Largest frame body accepted, bytes, announced as WELCOME.max_frame (default MAX_FRAME_BYTES). */
  maxFrameBytes?: number;
  /** Connections held at once from one IPv4 /24 or IPv6 /48 (default MAX_CONNECTIONS_PER_SUBNET). */
  maxConnectionsPerSubnet?: number;
  /** Authenticated connections of one identity key at once (default MAX_CONNECTIONS_PER_KEY). */
  maxConnectionsPerKey?: number;
  /** Authenticated connections of one nickname at once (default MAX_CONNECTIONS_PER_NICK). */
  maxConnectionsPerNick?: number;
  /** Milliseconds over which new nickname bindings are counted (default BIND_INTERVAL_MS). */
  bindIntervalMs?: number;
  /** New nickname bindings by one key per interval (default BINDS_PER_KEY). */
  bindsPerKey?: number;
  /** New nickname bindings from one address per interval (default BINDS_PER_ADDRESS). */
  bindsPerAddress?: number;
  /** New nickname bindings on the whole relay per interval (default BINDS_PER_RELAY). */
  bindsPerRelay?: number;
  /** JOINs one connection may send per minute (default JOINS_PER_MINUTE). */
  joinsPerMinute?: number;
  /**
   * Milliseconds after which a binding nobody used expires (default BINDING_EXPIRY_MS, §7.5). Applies to
   * the registry the relay opens from a path; a `Registry` the caller opened carries its own.
   */
  bindingExpiryMs?: number;
  /** Bytes per second one connection may send (token-bucket refill) (default RATE_BYTES_PER_S). */
  rateBytesPerSecond?: number;
  /** Byte token-bucket size (default RATE_BURST_BYTES). */
  rateBurstBytes?: number;
  /** Milliseconds from a frame's first byte to its last before TIMEOUT (default FRAME_TIMEOUT_MS). */
  frameTimeoutMs?: number;
  /** Bytes held for all connections together, partial frames plus unsent output (default BUFFER_BUDGET_BYTES). */
  bufferBudgetBytes?: number;
  /** Receives one structured event per call; never a body, key or passphrase. */
  log?: (event: Record<string, unknown>) => void;
  /**
   * Whether `log` takes events named `event` (the CLI's logger drops the per-connection ones below its
   * level); for an event it does not take, neither the time stamp nor the copy for the sink is made. Default: every event.
   */
  logs?: (event: string) => boolean;
  /** TLS 1.3 on the TCP listener (§3.2, src/server/tls.ts); plain TCP when absent. */
  tls?: TlsCredentials;
}

export interface ServerStats {
  /** Connections currently held (accepted and not refused). */
  connections: number;
  /** Of those, connections that completed AUTH. */
  authenticated: number;
  rooms: number;
  /** Complete frames received, over the server's lifetime. */
  framesIn: number;
  /** DELIVER frames written, over the server's lifetime. */
  framesRelayed: number;
  /** ERROR frames sent, by code name, over the server's lifetime. */
  errors: Partial<Record<ErrorName, number>>;
  /** The connection cap in force (after lowering it under the open-file limit). */
  maxConnections: number;
  /** Bytes held now for all connections: partial frames (their declared lengths) plus unsent output. */
  bufferedBytes: number;
  /** Connections held now, by their §7.1 state (CLOSED: closing, socket not yet gone). */
  states: Record<ServerState, number>;
  /** Bytes received from peers, and written to them, over the server's lifetime. */
  bytesIn: number;
  bytesOut: number;
  /** SEND body bytes accepted for relaying, over the server's lifetime. */
  bytesRelayed: number;
  /** True while new connections are taken: listening, not shutting down, the room engine available. */
  accepting: boolean;
}

export interface RelayServer {
  readonly host: string;
  readonly port: number;
  /** The name announced in CHALLENGE.relay (§7.3), set once listening. */
  readonly relayName: string;
  /** The announced `max_frame` (WELCOME), for transports that enforce it themselves (WebSocket maxPayload). */
  readonly maxFrameBytes: number;
  /**
   * Takes a connection that arrived by another transport (a WebSocket, src/server/web.ts) as if accepted
   * on the TCP port: same §7.1 machine, caps, limits, timeouts, registry and rooms.
   */
  accept(stream: RelayStream): void;
  /** Sends ERROR SERVER_SHUTDOWN to every client, closes every socket, closes the registry. Idempotent. */
  close(): Promise<void>;
  stats(): ServerStats;
  /** Nicknames bound in the registry now. */
  bindings(): Promise<number>;
}

/**
 * A connection that is closing is given this long to take its ERROR frame before the socket is
 * destroyed; a peer that never reads cannot hold the descriptor or its buffer any longer than this.
 */
const CLOSE_GRACE_MS = LIMITS.CLOSE_GRACE_MS;
/** Refused connections (over a cap) may exist briefly beyond the cap; half the fd headroom is theirs. */
const REFUSAL_SLACK = LIMITS.FD_HEADROOM / 2;

interface Config {
  host: string;
  relayName: string | undefined;
  port: number;
  maxRoomSize: number;
  registry: string | Registry;
  rooms: RoomEngine<object> | undefined;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  rateFramesPerSecond: number;
  rateBurst: number;
  writeHighWaterBytes: number;
  maxFrameBytes: number;
  frameTimeoutMs: number;
  bufferBudgetBytes: number;
  maxConnectionsPerSubnet: number;
  maxConnectionsPerKey: number;
  maxConnectionsPerNick: number;
  bindIntervalMs: number;
  bindsPerKey: number;
  bindsPerAddress: number;
  bindsPerRelay: number;
  joinsPerMinute: number;
  bindingExpiryMs: number;
  rateBytesPerSecond: number;
  rateBurstBytes: number;
  tls: TlsCredentials | undefined;
}

function intOption(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x < min || x > max) throw new RangeError(`${name}: expected an integer ${min}..${max}, got ${String(v)}`);
  return x;
}

/**
 * The soft limit on open files of this process (Linux /proc/self/limits), or undefined where unknown.
 * Node accepts connections past this limit only to drop them silently, so the cap stays below it.
 */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m === null || m[1] === 'unlimited') return undefined;
    return Number(m[1]);
  } catch {
    return undefined;
  }
}

/** Whether JOINED for a room of `size` fits in one frame in the worst case (spec §6 JOINED.members). */
function joinedFits(size: number): boolean {
  // Worst case: a 64-byte room name, 32-byte nicknames, RSA-2048 SPKI keys (exactly 294 bytes, §8.1).
  const key = new Uint8Array(294);
  const members = Array.from({ length: size - 1 }, (_, i) => ({ nick: `m${i}`.padEnd(LIMITS.NICK_MAX_BYTES, 'x'), key }));
  try {
    return encodeFrame(frame('JOINED', { room: 'r'.repeat(LIMITS.ROOM_MAX_BYTES), epoch: LIMITS.MAX_UINT, members })).length <= LIMITS.MAX_FRAME_BYTES;
  } catch (e) {
    if (isProtocolError(e, 'FRAME_TOO_LARGE')) return false;
    throw e;
  }
}

/**
 * The largest room size whose JOINED always fits in one frame (192 with RSA-2048 keys): spec §6 forbids a
 * larger configured `room_size` although the field bounds alone would allow MAX_ROOM_SIZE.
 */
export const MAX_LISTABLE_ROOM_SIZE: number = (() => {
  let size = LIMITS.MAX_ROOM_SIZE;
  while (size > 2 && !joinedFits(size)) size--;
  return size;
})();

function resolveConfig(o: ServerOptions): Config {
  const M = LIMITS.MAX_UINT;
  // §7.3: the relay name is checked now (a wildcard host without one fails before listening); the port is known later.
  relayNameFor(o.host ?? '127.0.0.1', 1, o.relayName, o.tls);
  return {
    host: o.host ?? '127.0.0.1',
    relayName: o.relayName,
    port: intOption('port', o.port, 0, 0, 65535),
    maxRoomSize: intOption('maxRoomSize', o.maxRoomSize, LIMITS.DEFAULT_ROOM_SIZE, 2, MAX_LISTABLE_ROOM_SIZE),
    registry: o.registry ?? ':memory:',
    rooms: o.rooms,
    handshakeTimeoutMs: intOption('handshakeTimeoutMs', o.handshakeTimeoutMs, LIMITS.HANDSHAKE_TIMEOUT_MS, 1, 2 ** 31 - 1),
    idleTimeoutMs: intOption('idleTimeoutMs', o.idleTimeoutMs, LIMITS.IDLE_TIMEOUT_MS, 1, 2 ** 31 - 1),
    maxConnections: intOption('maxConnections', o.maxConnections, LIMITS.MAX_CONNECTIONS, 1, M),
    maxConnectionsPerAddress: intOption('maxConnectionsPerAddress', o.maxConnectionsPerAddress, LIMITS.MAX_CONNECTIONS_PER_ADDRESS, 1, M),
    rateFramesPerSecond: intOption('rateFramesPerSecond', o.rateFramesPerSecond, LIMITS.RATE_FRAMES_PER_S, 1, M),
    rateBurst: intOption('rateBurst', o.rateBurst, LIMITS.RATE_BURST_FRAMES, 1, M),
    writeHighWaterBytes: intOption('writeHighWaterBytes', o.writeHighWaterBytes, LIMITS.WRITE_HIGH_WATER_BYTES, 1, M),
    // Below MIN_MAX_FRAME_BYTES (654, §6 WELCOME) the largest SEND a session needs would not fit.
    maxFrameBytes: intOption('maxFrameBytes', o.maxFrameBytes, LIMITS.MAX_FRAME_BYTES, LIMITS.MIN_MAX_FRAME_BYTES, LIMITS.MAX_FRAME_BYTES),
    frameTimeoutMs: intOption('frameTimeoutMs', o.frameTimeoutMs, LIMITS.FRAME_TIMEOUT_MS, 1, 2 ** 31 - 1),
    bufferBudgetBytes: intOption('bufferBudgetBytes', o.bufferBudgetBytes, LIMITS.BUFFER_BUDGET_BYTES, 65536, M),
    maxConnectionsPerSubnet: intOption('maxConnectionsPerSubnet', o.maxConnectionsPerSubnet, LIMITS.MAX_CONNECTIONS_PER_SUBNET, 1, M),
    maxConnectionsPerKey: intOption('maxConnectionsPerKey', o.maxConnectionsPerKey, LIMITS.MAX_CONNECTIONS_PER_KEY, 1, M),
    maxConnectionsPerNick: intOption('maxConnectionsPerNick', o.maxConnectionsPerNick, LIMITS.MAX_CONNECTIONS_PER_NICK, 1, M),
    bindIntervalMs: intOption('bindIntervalMs', o.bindIntervalMs, LIMITS.BIND_INTERVAL_MS, 1, 2 ** 31 - 1),
    bindsPerKey: intOption('bindsPerKey', o.bindsPerKey, LIMITS.BINDS_PER_KEY, 1, M),
    bindsPerAddress: intOption('bindsPerAddress', o.bindsPerAddress, LIMITS.BINDS_PER_ADDRESS, 1, M),
    bindsPerRelay: intOption('bindsPerRelay', o.bindsPerRelay, LIMITS.BINDS_PER_RELAY, 1, M),
    joinsPerMinute: intOption('joinsPerMinute', o.joinsPerMinute, LIMITS.JOINS_PER_MINUTE, 1, M),
    bindingExpiryMs: intOption('bindingExpiryMs', o.bindingExpiryMs, LIMITS.BINDING_EXPIRY_MS, 1, M),
    rateBytesPerSecond: intOption('rateBytesPerSecond', o.rateBytesPerSecond, LIMITS.RATE_BYTES_PER_S, 1, M),
    // A bucket smaller than one frame could never pass a frame of max_frame bytes.
    rateBurstBytes: intOption('rateBurstBytes', o.rateBurstBytes, LIMITS.RATE_BURST_BYTES, LIMITS.MAX_FRAME_BYTES, M),
    tls: o.tls,
  };
}

/** ERROR.detail is at most DETAIL_MAX_BYTES of UTF-8 (spec §6); cut on a code point boundary. */
function clipDetail(s: string): string {
  if (Buffer.byteLength(s, 'utf8') <= LIMITS.DETAIL_MAX_BYTES) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch, 'utf8') > LIMITS.DETAIL_MAX_BYTES) break;
    out += ch;
  }
  return out;
}

/** A plain TCP socket: its buffered output changes only by the relay's own writes (see Relay.held). */
function plainSocket(s: RelayStream): boolean {
  return s instanceof Socket && !(s instanceof TLSSocket);
}

class Connection {
  state: ServerState = 'AWAIT_HELLO';
  closing = false;
  authed = false;
  nick: string | undefined;
  /** The parsed HELLO key, held only until AUTH: an OpenSSL key object costs kilobytes per connection. */
  identity: { spki: Uint8Array } | undefined;
  /** The identity key (DER SPKI, 294 bytes) once authenticated. */
  spki: Uint8Array | undefined;
  nonce: Buffer | undefined;
  room: string | undefined;
  lastFrameAt: number;
  /** When the first byte of the frame in progress arrived (undefined between frames): FRAME_TIMEOUT_MS. */
  partialSince: number | undefined;
  /** The reader's `reserved` as last added to the relay's buffered-bytes total. */
  charged = 0;
  tokens: number;
  refillAt: number;
  /** Byte token bucket (RATE_BYTES_PER_S) and JOIN churn bucket (JOINS_PER_MINUTE), made on first use. */
  bytes: Bucket | undefined;
  joins: Bucket | undefined;
  /** The per-subnet key (IPv4 /24, IPv6 /48) and, once authenticated, the key under which its key is counted. */
  subnet = '';
  keyId: string | undefined;
  grace: NodeJS.Timeout | undefined;
  /**
   * Set while a step waits for the registry (AUTH): the socket is paused and the frames already read
   * behind that step wait here, so the connection's frames are still handled strictly in order (§7.1).
   */
  suspended = false;
  backlog: Buffer[] = [];
  readonly reader: FrameReader;
  /** Output of the batch being handled (src/server/deliver.ts), made on first use; holds no buffer between batches. */
  out: Outbox | undefined;
  /** The constant start of the DELIVERs this connection's SENDs become (deliverHead), made at its first SEND. */
  head: Buffer | undefined;
  /** The addressee of its last SEND (readSend reuses the string). */
  lastTo: string | undefined;

  constructor(
    readonly id: number,
    readonly socket: RelayStream,
    readonly addr: string,
    readonly acceptedAt: number,
    maxFrame: number,
    burst: number,
  ) {
    // §3: until WELCOME nothing larger than the largest HELLO is read; WELCOME raises it to max_frame.
    // Bodies are views into the socket's chunk: every frame is read at once, and what outlives its read
    // (HELLO's key, a SEND waiting in the cluster's batch) is copied by its handler.
    this.reader = new FrameReader(Math.min(maxFrame, LIMITS.MAX_PRELOGIN_FRAME_BYTES), { views: true });
    this.lastFrameAt = acceptedAt;
    this.tokens = burst;
    this.refillAt = acceptedAt;
  }
}

class Relay implements RelayServer {
  host = '';
  /** CHALLENGE.relay (§7.3), fixed once listening. */
  relayName = '';
  port = 0;
  private readonly server: Server;
  private readonly rooms: RoomManager<Connection>;
  /** Set in cluster mode: rooms, fan-out and delivery go through it instead of `rooms`. */
  private readonly engine: RoomEngine<Connection> | undefined;
  private readonly ownsRegistry: boolean;
  private readonly conns = new Set<Connection>();
  /**
   * The connections whose stream may hold bytes the relay's buffer budget counts (§7.1) outside its frame
   * readers, so `bufferedBytes` adds up these instead of every connection (it runs at every accept):
   * every stream that is not a plain TCP socket (TLS, WebSocket: their pending input and output change
   * on their own), and a plain socket from the moment a write of ours left bytes in its buffer until
   * the sum finds it empty again. A plain socket's buffer grows only by the relay's own writes, and a
   * write the kernel takes at once leaves it empty, so every other connection holds 0 there.
   */
  private readonly held = new Set<Connection>();
  private readonly refusing = new Set<RelayStream>();
  private readonly perAddress = new Map<string, number>();
  private readonly perSubnet = new Counter();
  private readonly perKey = new Counter();
  private readonly perNick = new Counter();
  private readonly bindsByKey: Buckets;
  private readonly bindsByAddress: Buckets;
  private readonly bindsRelay: Bucket;
  private readonly errorCounts: Partial<Record<ErrorName, number>> = {};
  /** Imported identity keys of recent AUTHs that verified. */
  private readonly keyCache = new KeyCache();
  private readonly sweep: NodeJS.Timeout;
  private nextId = 1;
  private batching = false;
  /** The batch buffer kept between batches for every connection's Outbox. */
  private readonly spare = new Spare();
  /** Connections with output queued in their Outbox, written once the batch ends (flushOut). */
  private dirty: Connection[] = [];
  private flushQueued = false;
  private framesIn = 0;
  private framesRelayed = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private bytesRelayed = 0;
  private authenticated = 0;
  /** Sum of every live connection's partial-frame allocation (FrameReader.reserved). */
  private readerBytes = 0;
  private closePromise: Promise<void> | undefined;
  private allClosed: (() => void) | undefined;

  constructor(
    private readonly cfg: Config,
    private readonly registry: Registry,
    private readonly logSink: ((event: Record<string, unknown>) => void) | undefined,
    private readonly logs: ((event: string) => boolean) | undefined,
  ) {
    this.ownsRegistry = typeof cfg.registry === 'string';
    this.bindsByKey = new Buckets(cfg.bindsPerKey, cfg.bindIntervalMs);
    this.bindsByAddress = new Buckets(cfg.bindsPerAddress, cfg.bindIntervalMs);
    this.bindsRelay = new Bucket(cfg.bindsPerRelay, cfg.bindIntervalMs, performance.now());
    this.rooms = new RoomManager<Connection>(cfg.maxRoomSize);
    this.engine = cfg.rooms as RoomEngine<Connection> | undefined;
    this.engine?.attach({
      write: (conn, wire) => this.guard(conn, () => this.write(conn, wire)),
      refuse: (conn, code, detail) => this.guard(conn, () => this.refuse(conn, code, detail)),
      lost: (reason) => this.guard(undefined, () => this.onEngineLost(reason)),
      restored: () => this.log({ event: 'rooms_available' }),
    });
    this.server = createServer({ noDelay: true }, (s) => {
      try {
        // §3.2: TLS starts on the accepted socket, so caps and HANDSHAKE_TIMEOUT_MS cover its handshake.
        const tls = this.cfg.tls;
        this.onConnection(tls === undefined ? s : acceptTls(s, tls, (code) => this.log({ event: 'tls_failed', code })));
      } catch (e) {
        this.log({ event: 'internal_error', error: e instanceof Error ? e.message : String(e) });
        s.destroy();
      }
    });
    // Hard backstop under the fd limit: past this Node itself closes new sockets unanswered.
    this.server.maxConnections = cfg.maxConnections + REFUSAL_SLACK;
    // One sweep for all timeouts instead of a timer per connection: memory per idle connection stays
    // small and a frame costs no timer re-arm. Resolution is a tenth of the shorter timeout.
    const tick = Math.max(5, Math.min(1000, Math.floor(Math.min(cfg.handshakeTimeoutMs, cfg.idleTimeoutMs, cfg.frameTimeoutMs) / 10)));
    this.sweep = setInterval(() => this.guard(undefined, () => this.checkTimeouts()), tick);
    this.sweep.unref();
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => {
        clearInterval(this.sweep);
        const closed = this.ownsRegistry ? this.registry.close() : Promise.resolve();
        closed.then(
          () => reject(e),
          () => reject(e),
        );
      };
      this.server.once('error', onError);
      this.server.listen(this.cfg.port, this.cfg.host, async () => {
        this.server.off('error', onError);
        this.server.on('error', (e) => this.log({ event: 'server_error', error: e.message }));
        const a = this.server.address();
        if (a === null || typeof a === 'string') {
          onError(new Error('listening on something other than a TCP port'));
          return;
        }
        this.host = this.cfg.host;
        this.port = a.port;
        this.relayName = relayNameFor(this.host, this.port, this.cfg.relayName, this.cfg.tls);
        this.log({
          event: 'listening',
          host: this.host,
          port: this.port,
          tls: this.cfg.tls !== undefined,
          max_connections: this.cfg.maxConnections,
          max_room_size: this.cfg.maxRoomSize,
          registry: typeof this.cfg.registry === 'string' ? this.cfg.registry : 'external',
          bound_nicknames: await this.registry.count().catch(() => undefined),
        });
        resolve();
      });
    });
  }

  log(event: Record<string, unknown>): void {
    if (this.logSink === undefined) return;
    try {
      if (this.logs !== undefined && !this.logs(event['event'] as string)) return;
      this.logSink({ ts: new Date().toISOString(), ...event });
    } catch {
      // A failing log sink must not take a connection handler down with it.
    }
  }

  stats(): ServerStats {
    return {
      connections: this.conns.size,
      authenticated: this.authenticated,
      rooms: this.engine?.localRooms() ?? this.rooms.roomCount,
      framesIn: this.framesIn,
      framesRelayed: this.framesRelayed,
      errors: { ...this.errorCounts },
      maxConnections: this.cfg.maxConnections,
      bufferedBytes: this.bufferedBytes(),
      states: this.countStates(),
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      bytesRelayed: this.bytesRelayed,
      accepting: this.closePromise === undefined && this.server.listening && (this.engine?.available ?? true),
    };
  }

  private countStates(): Record<ServerState, number> {
    const n: Record<ServerState, number> = { AWAIT_HELLO: 0, AWAIT_AUTH: 0, READY: 0, IN_ROOM: 0, CLOSED: 0 };
    for (const c of this.conns) n[c.state]++;
    return n;
  }

  bindings(): Promise<number> {
    return this.registry.count();
  }

  // ---- accept --------------------------------------------------------------------------------------

  get maxFrameBytes(): number {
    return this.cfg.maxFrameBytes;
  }

  accept(stream: RelayStream): void {
    try {
      this.onConnection(stream);
    } catch (e) {
      this.log({ event: 'internal_error', error: e instanceof Error ? e.message : String(e) });
      stream.destroy();
    }
  }

  private onConnection(socket: RelayStream): void {
    socket.on('error', () => {
      // Resets and write errors end in 'close'; the error itself is the peer's business.
    });
    const remote = socket.remoteAddress;
    if (remote === undefined || this.closePromise !== undefined) {
      socket.destroy();
      return;
    }
    const addr = addressKey(remote);
    const fromAddr = this.perAddress.get(addr) ?? 0;
    // §7.1 "Resource limits": over a cap, refuse with TOO_MANY_CONNECTIONS rather than drop silently.
    const scope =
      this.conns.size >= this.cfg.maxConnections
        ? 'total'
        : fromAddr >= this.cfg.maxConnectionsPerAddress
          ? 'address'
          : this.perSubnet.get(subnetKey(remote)) >= this.cfg.maxConnectionsPerSubnet
            ? 'subnet'
          : this.bufferedBytes() >= this.cfg.bufferBudgetBytes
            ? 'memory'
            : undefined;
    if (scope !== undefined) {
      this.count('TOO_MANY_CONNECTIONS');
      this.log({ event: 'refuse', code: 'TOO_MANY_CONNECTIONS', addr: remote, scope });
      this.refusing.add(socket);
      socket.on('data', () => {}); // read and discard, so a close does not reset away our ERROR
      socket.end(encodeWire(frame('ERROR', { code: ERROR_CODES.TOO_MANY_CONNECTIONS.code, detail: `connection limit (${scope}) reached` })));
      const t = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
      t.unref();
      socket.on('close', () => {
        clearTimeout(t);
        this.refusing.delete(socket);
        this.maybeAllClosed();
      });
      return;
    }
    const now = performance.now();
    const conn = new Connection(this.nextId++, socket, addr, now, this.cfg.maxFrameBytes, this.cfg.rateBurst);
    this.conns.add(conn);
    if (!plainSocket(socket)) this.held.add(conn);
    this.perAddress.set(addr, fromAddr + 1);
    conn.subnet = subnetKey(remote);
    this.perSubnet.add(conn.subnet);
    this.log({ event: 'connect', conn: conn.id, addr: remote, remote_port: socket.remotePort });
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('close', () => this.guard(conn, () => this.onClose(conn)));
    // Cluster mode without its store: no new work is taken, and the client is told why.
    if (this.engine !== undefined && !this.engine.available) this.refuse(conn, 'SERVER_SHUTDOWN', 'cluster store unavailable');
  }

  /** The room engine lost its store: every connection is closed with SERVER_SHUTDOWN rather than diverge. */
  private onEngineLost(reason: string): void {
    this.log({ event: 'rooms_unavailable', reason, connections: this.conns.size });
    for (const conn of [...this.conns]) {
      conn.room = undefined; // the engine already forgot its members
      this.refuse(conn, 'SERVER_SHUTDOWN', 'cluster store unavailable');
    }
  }

  // ---- input ---------------------------------------------------------------------------------------

  /** Entry point for every byte a peer sends. Never throws. */
  private onData(conn: Connection, chunk: Buffer): void {
    // §3: after a closing ERROR the relay reads nothing more; bytes are drained and dropped.
    if (conn.closing) return;
    this.bytesIn += chunk.length;
    if (conn.state !== 'IN_ROOM' || this.engine !== undefined || conn.suspended || conn.reader.failure !== undefined) {
      this.onBytes(conn, chunk);
      return;
    }
    // A member of a room here: the frame a previous chunk began is finished by the frame reader, the
    // SENDs that follow are relayed in place, the rest (if any) goes through the reader again, all in
    // one batch of output.
    const outer = this.batching;
    this.batching = true;
    try {
      let pos = conn.reader.remaining;
      if (pos !== 0) {
        if (pos < 0 || pos >= chunk.length) {
          this.onBytes(conn, chunk);
          return;
        }
        this.onBytes(conn, chunk.subarray(0, pos));
        if (conn.closing) return;
        if (conn.suspended || conn.state !== 'IN_ROOM' || conn.reader.remaining !== 0 || conn.reader.failure !== undefined) {
          this.onBytes(conn, chunk.subarray(pos));
          return;
        }
      }
      let used: number;
      try {
        used = this.relaySends(conn, chunk, pos, performance.now());
      } catch (e) {
        this.guard(conn, () => this.onFailure(conn, e));
        return;
      }
      if (used === chunk.length) conn.partialSince = undefined;
      else if (!conn.closing) this.onBytes(conn, used === 0 ? chunk : chunk.subarray(used));
    } finally {
      if (!outer) {
        this.batching = false;
        this.flushOut();
      }
    }
  }

  /**
   * The busy room's hot path: the SENDs of `chunk` from `pos` on (of a connection IN_ROOM in this relay's
   * own rooms, whose reader is between frames at `pos`), relayed straight from the chunk. A frame qualifies when it
   * is complete, within the announced max_frame, a canonical SEND (`sendAt`) to the addressee of the
   * connection's previous SEND, who is still another member of its room, and within both rate limits:
   * then this has exactly the effects onFrame and onSend have for it (counters, the idle clock, both
   * token buckets, the DELIVER queued; the row IN_ROOM x SEND stays IN_ROOM), without the frame's buffer,
   * its decoded object or the table lookup. Returns where it stopped: the first frame that does not
   * qualify (anything else, a refusal, a partial frame) and all after it go to the generic path in order,
   * which decides them as it always has; nothing of that frame has been counted or taken here.
   */
  private relaySends(conn: Connection, chunk: Buffer, pos: number, now: number): number {
    const to = conn.lastTo;
    const head = conn.head;
    const room = conn.room;
    const bytes = conn.bytes;
    if (to === undefined || head === undefined || room === undefined || bytes === undefined || to === conn.nick) return pos;
    const limit = conn.reader.limit;
    const end = chunk.length;
    while (end - pos >= LIMITS.LENGTH_PREFIX_BYTES) {
      const n = chunk.readUInt32BE(pos);
      const start = pos + LIMITS.LENGTH_PREFIX_BYTES;
      if (n === 0 || n > limit || end - start < n) break;
      const at = sendAt(chunk, start, start + n);
      if (at < 0 || !sendToIs(chunk, to)) break;
      // onFrame's rate limits, decided before anything is taken.
      const tokens = this.refilled(conn, now);
      if (tokens < 1 || !bytes.has(now, n + LIMITS.LENGTH_PREFIX_BYTES)) break;
      const peer = this.rooms.member(room, to);
      if (peer === undefined) break;
      this.framesIn++;
      conn.lastFrameAt = now;
      conn.tokens = tokens - 1;
      conn.refillAt = now;
      bytes.take(now, n + LIMITS.LENGTH_PREFIX_BYTES);
      this.framesRelayed++;
      this.bytesRelayed += start + n - at;
      this.deliver(peer.handle, head, chunk, at, start + n - at);
      pos = start + n;
      if (conn.closing) break;
    }
    return pos;
  }

  /** The frame reader's path for bytes of `conn` (onData without the hot path). */
  private onBytes(conn: Connection, chunk: Buffer): void {
    let bodies: Buffer[];
    try {
      bodies = conn.reader.push(chunk);
    } catch (e) {
      this.account(conn);
      // A framing error (§3) with no complete frame before it in this chunk: final, unless frames of an
      // earlier chunk still wait behind a registry step (then it is acted on after them).
      if (!conn.suspended) this.guard(conn, () => this.onFailure(conn, e));
      return;
    }
    this.account(conn);
    if (conn.reader.atBoundary) conn.partialSince = undefined;
    else if (bodies.length > 0 || conn.partialSince === undefined) conn.partialSince = performance.now();
    if (this.readerBytes > this.cfg.bufferBudgetBytes) this.guard(undefined, () => this.shed());
    if (conn.suspended) {
      // Data that was already in flight when the socket was paused: it waits its turn.
      conn.backlog.push(...bodies);
      return;
    }
    this.runFrames(conn, bodies);
  }

  /**
   * Handles complete frames in order. A step that waits for the registry suspends the connection: the
   * rest wait in `backlog` and this resumes with them once the step has settled.
   */
  private runFrames(conn: Connection, bodies: Buffer[]): void {
    // Everything written while these frames are handled is queued per connection and written at the end,
    // so the frames one read produces for one reader leave in one write (one syscall, one buffer).
    const outer = this.batching;
    this.batching = true;
    // The frames of one read arrived together: one clock reading serves them all.
    const now = performance.now();
    try {
      for (let i = 0; i < bodies.length; i++) {
        if (conn.closing) break;
        // Per frame: a refusal that does not close (NO_SUCH_PEER, ROOM_FULL, NICK_IN_ROOM) must not drop
        // the frames after it in the same read.
        try {
          const pending = this.onFrame(conn, bodies[i]!, now);
          if (pending !== undefined) {
            this.suspend(conn, bodies.slice(i + 1), pending);
            return;
          }
        } catch (e) {
          this.guard(conn, () => this.onFailure(conn, e));
        }
      }
      // §3: a framing error later in the stream is answered after the frames before it, never ahead of them.
      const failure = conn.reader.failure;
      if (failure !== undefined && !conn.closing) this.guard(conn, () => this.onFailure(conn, failure));
    } finally {
      if (!outer) {
        this.batching = false;
        this.flushOut();
      }
    }
  }

  private suspend(conn: Connection, rest: Buffer[], pending: Promise<void>): void {
    conn.suspended = true;
    conn.backlog = rest;
    conn.socket.pause();
    const settle = (e: unknown): void => {
      conn.suspended = false;
      const backlog = conn.backlog;
      conn.backlog = [];
      if (e !== undefined) this.guard(conn, () => this.onFailure(conn, e));
      if (conn.closing) return;
      this.runFrames(conn, backlog);
      if (!conn.closing && !conn.suspended) conn.socket.resume();
    };
    pending.then(
      () => settle(undefined),
      (e: unknown) => settle(e ?? new Error('rejected')),
    );
  }

  /**
   * Runs an event handler so that nothing escapes into Node's event loop (an escaped exception would
   * end the process and every other connection with it); a failure is logged and ends only `conn`.
   */
  private guard(conn: Connection | undefined, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log({ event: 'internal_error', conn: conn?.id, error: e instanceof Error ? e.message : String(e) });
      if (conn !== undefined && !conn.closing) conn.socket.destroy();
    }
  }

  private onFailure(conn: Connection, e: unknown): void {
    if (e instanceof ProtocolError && e.scope === 'wire') {
      this.refuse(conn, e.errorName, e.message);
    } else {
      this.log({ event: 'internal_error', conn: conn.id, error: e instanceof Error ? e.message : String(e) });
      this.refuse(conn, 'INTERNAL_ERROR', 'internal error');
    }
  }

  /** `conn`'s frame tokens at `now`, refilled since `refillAt` (§7.1 "Resource limits"); nothing is changed. */
  private refilled(conn: Connection, now: number): number {
    return Math.min(this.cfg.rateBurst, conn.tokens + ((now - conn.refillAt) * this.cfg.rateFramesPerSecond) / 1000);
  }

  /** Handles one frame; returns a promise when its step waits for the registry (AUTH). */
  private onFrame(conn: Connection, body: Buffer, now: number): Promise<void> | undefined {
    this.framesIn++;
    conn.lastFrameAt = now;
    // §7.1 "Resource limits": token bucket, `rate` frames per second, RATE_BURST_FRAMES deep.
    conn.tokens = this.refilled(conn, now);
    conn.refillAt = now;
    if (conn.tokens < 1) throw new ProtocolError('RATE_LIMITED', `more than ${this.cfg.rateFramesPerSecond} frames per second`);
    conn.tokens -= 1;
    // The byte budget beside the frame rate: bytes of complete frames, prefix included.
    conn.bytes ??= new Bucket(this.cfg.rateBurstBytes, (this.cfg.rateBurstBytes * 1000) / this.cfg.rateBytesPerSecond, now);
    if (!conn.bytes.take(now, body.length + LIMITS.LENGTH_PREFIX_BYTES)) {
      throw new ProtocolError('RATE_LIMITED', `more than ${this.cfg.rateBytesPerSecond} bytes per second`);
    }

    // The canonical SEND, the frame the relay reads most, is read straight from its bytes; everything
    // else (and every defect) goes through the strict decoder, which names the error.
    const f = readSend(body, conn.lastTo) ?? decodeFrame(body, 'relay');
    if (f.type === 'JOIN') {
      // Join/leave churn: every JOIN (and so every LEAVE) makes the relay write to every member.
      conn.joins ??= new Bucket(this.cfg.joinsPerMinute, 60_000, now);
      if (!conn.joins.take(now)) throw new ProtocolError('RATE_LIMITED', `more than ${this.cfg.joinsPerMinute} JOINs per minute`);
    }
    const t = serverTransition(conn.state, f.type);
    if (t === undefined) throw new ProtocolError('UNEXPECTED_FRAME', `${f.type} in state ${conn.state}`);
    let pending: Promise<void> | undefined;
    try {
      pending = this.apply(conn, f);
    } catch (e) {
      throw this.stepError(conn, t, e);
    }
    if (pending !== undefined) {
      return pending.then(
        () => {
          if (!conn.closing) conn.state = t.next;
        },
        (e: unknown) => {
          throw this.stepError(conn, t, e);
        },
      );
    }
    if (!conn.closing) conn.state = t.next;
    return undefined;
  }

  /**
   * Only the refusals the table lists for a step may come out of it (§7.1); anything else is a bug in the
   * relay (or a failed registry), reported as INTERNAL_ERROR rather than blamed on the peer.
   */
  private stepError(conn: Connection, t: ServerTransition, e: unknown): ProtocolError {
    if (e instanceof ProtocolError && t.errors.includes(e.errorName)) return e;
    this.log({ event: 'internal_error', conn: conn.id, input: t.on, error: e instanceof Error ? e.message : String(e) });
    return new ProtocolError('INTERNAL_ERROR', 'internal error');
  }

  /** Performs the action of the table row for (conn.state, f.type); throws (or rejects with) only that row's refusals. */
  private apply(conn: Connection, f: RelayFrame): Promise<void> | undefined {
    switch (f.type) {
      case 'HELLO':
        this.onHello(conn, f);
        return undefined;
      case 'AUTH':
        return this.onAuth(conn, f);
      case 'RECOVER':
        return this.onAuth(conn, f, f);
      case 'SET_RECOVERY':
        return this.onSetRecovery(conn, f);
      case 'JOIN':
        if (this.engine !== undefined) return this.onEngineJoin(this.engine, conn, f);
        this.onJoin(conn, f);
        return undefined;
      case 'SEND':
        if (this.engine !== undefined) return this.onEngineSend(this.engine, conn, f);
        this.onSend(conn, f);
        return undefined;
      case 'LEAVE':
        if (this.engine !== undefined) return this.onEngineLeave(this.engine, conn);
        this.onLeave(conn);
        return undefined;
      case 'PING':
        // Every SEND before it was decided as it was read (in cluster mode too), so its refusal went first.
        this.send(conn, frame('PONG', { n: f.n }));
        return undefined;
      case 'ERROR':
        // The peer gave up: close without answering (an ERROR is never answered with an ERROR).
        this.log({ event: 'peer_error', conn: conn.id, nick: conn.nick, code: f.code });
        this.closeConn(conn, undefined);
        return undefined;
      default:
        // Unreachable while the table and this switch agree; the caller turns it into INTERNAL_ERROR.
        throw new Error(`no action for ${f.type}`);
    }
  }

  private onHello(conn: Connection, f: FrameOf<'HELLO'>): void {
    // §7.1 "Version": version 1 only, no negotiation.
    if (f.version !== PROTOCOL_VERSION) throw new ProtocolError('UNSUPPORTED_VERSION', `version ${f.version}; this relay speaks ${PROTOCOL_VERSION}`);
    // §8.1 by byte comparison with the one canonical template; the key itself is imported only for AUTH.
    if (!isTemplateSpki(f.key)) throw new ProtocolError('BAD_PUBLIC_KEY', 'not the canonical RSA-2048 SPKI with exponent 65537');
    conn.identity = { spki: Uint8Array.from(f.key) };
    conn.nick = f.nick;
    conn.nonce = randomBytes(LIMITS.NONCE_BYTES); // §7.3: fresh, from a CSPRNG
    this.send(conn, frame('CHALLENGE', { version: PROTOCOL_VERSION, nonce: conn.nonce, relay: this.relayName }));
  }

  /**
   * AUTH, or RECOVER (`recovery`: the same signature plus a recovery code and the next commitment, §7.5):
   * the signature first, then the quotas, then the registry; the code is hashed and compared only after
   * the key has been proven.
   */
  private async onAuth(conn: Connection, f: { sig: Uint8Array }, recovery?: FrameOf<'RECOVER'>): Promise<void> {
    const { identity, nick, nonce } = conn;
    if (identity === undefined || nick === undefined || nonce === undefined) throw new Error('AUTH without HELLO state');
    conn.nonce = undefined; // one signature per challenge
    conn.identity = undefined;
    // §7.3: the signature is checked first; only a proven key may touch the registry.
    // §7.3: bound to this relay's name and, over TLS, to this connection (RFC 9266 tls-exporter).
    const keyId = Buffer.from(identity.spki).toString('base64');
    const key = this.keyCache.get(keyId, identity.spki);
    if (!pssVerify(key, authMessage(nonce, nick, identity.spki, this.relayName, channelBinding(conn.socket)), f.sig)) {
      throw new ProtocolError('AUTH_FAILED', 'signature does not verify under the HELLO key');
    }
    this.keyCache.remember(keyId, key);
    // §7.1 "Quotas", after the proof of possession and before anything is bound.
    if (this.perKey.get(keyId) >= this.cfg.maxConnectionsPerKey) {
      throw new ProtocolError('TOO_MANY_CONNECTIONS', `more than ${this.cfg.maxConnectionsPerKey} connections of this key`);
    }
    if (this.perNick.get(nick) >= this.cfg.maxConnectionsPerNick) {
      throw new ProtocolError('TOO_MANY_CONNECTIONS', `more than ${this.cfg.maxConnectionsPerNick} connections of this nickname`);
    }
    const reserved = await this.reserveBinding(nick, keyId, conn.addr);
    if (conn.closing) return;
    // The commit happens off the event loop; WELCOME waits for it, so a welcomed binding is durable.
    let bound: BindResult | RecoverResult;
    try {
      if (recovery === undefined) bound = await this.registry.bind(nick, identity.spki);
      else {
        // §7.5: the commitment of the presented code; the registry compares it in constant time.
        const proof = sha256(recoveryCommitInput(nick, recovery.code));
        recovery.code.fill(0);
        bound = await this.registry.recover(nick, identity.spki, proof, recovery.commit);
      }
    } finally {
      if (reserved !== undefined) reserved.release(bound! === 'bound');
    }
    if (conn.closing) return; // timed out or shut down meanwhile
    // Counted at once (before another AUTH of this key can be handled), released in onClose.
    if (bound !== 'mismatch' && this.perKey.get(keyId) >= this.cfg.maxConnectionsPerKey) {
      throw new ProtocolError('TOO_MANY_CONNECTIONS', `more than ${this.cfg.maxConnectionsPerKey} connections of this key`);
    }
    if (bound !== 'mismatch') {
      conn.keyId = keyId;
      this.perKey.add(keyId);
      this.perNick.add(nick);
    }
    if (bound === 'mismatch') throw new ProtocolError('NICK_BOUND', `nickname ${nick} is bound to another key`);
    conn.spki = identity.spki;
    conn.authed = true;
    conn.reader.limit = this.cfg.maxFrameBytes; // §3: the announced max_frame from WELCOME on
    this.authenticated++;
    this.log({ event: 'auth', conn: conn.id, nick, binding: bound === 'bound' ? 'new' : bound === 'recovered' ? 'recovered' : 'existing' });
    this.send(
      conn,
      frame('WELCOME', {
        idle_ms: this.cfg.idleTimeoutMs,
        max_frame: this.cfg.maxFrameBytes,
        room_size: this.cfg.maxRoomSize,
        rate: this.cfg.rateFramesPerSecond,
      }),
    );
  }

  /** SET_RECOVERY (§7.5): the commitment is registered for this connection's nickname while it is still bound to its key. */
  private async onSetRecovery(conn: Connection, f: FrameOf<'SET_RECOVERY'>): Promise<void> {
    const ok = await this.registry.setRecovery(conn.nick!, conn.spki!, f.commit);
    if (conn.closing) return;
    if (!ok) throw new ProtocolError('NICK_BOUND', `nickname ${conn.nick!} is no longer bound to this key`);
    this.log({ event: 'recovery_set', conn: conn.id, nick: conn.nick });
    this.send(conn, frame('RECOVERY_SET', {}));
  }

  /**
   * For a nickname not bound yet, takes one token from each binding quota (key, address, relay) or
   * refuses with RATE_LIMITED; the tokens go back if the bind turns out not to create a binding. For a
   * bound nickname (a returning user) nothing is spent. While every quota has a token (the common case)
   * they are taken before the bind, which is then the only registry call of the AUTH, and given back at
   * once unless it created a binding; only when a quota is empty is the registry asked first, so a
   * returning user still gets in while new bindings are refused.
   */
  private async reserveBinding(nick: string, keyId: string, addr: string): Promise<{ release(used: boolean): void } | undefined> {
    let now = performance.now();
    let buckets = [this.bindsByKey.get(keyId, now), this.bindsByAddress.get(addr, now), this.bindsRelay];
    if (!buckets.every((b) => b.has(now))) {
      if ((await this.registry.lookup(nick)) !== undefined) return undefined;
      now = performance.now();
      buckets = [this.bindsByKey.get(keyId, now), this.bindsByAddress.get(addr, now), this.bindsRelay];
      const scope = ['key', 'address', 'relay'][buckets.findIndex((b) => !b.has(now))];
      if (scope !== undefined) throw new ProtocolError('RATE_LIMITED', `new nickname bindings per ${scope} exhausted for now`);
    }
    for (const b of buckets) b.take(now);
    return {
      release: (used) => {
        if (!used) for (const b of buckets) b.give();
      },
    };
  }

  private onJoin(conn: Connection, f: FrameOf<'JOIN'>): void {
    const nick = conn.nick!;
    const key = conn.spki!;
    const others = this.rooms.join(f.room, { nick, key, handle: conn }); // ROOM_FULL, NICK_IN_ROOM
    conn.room = f.room;
    this.log({ event: 'join', conn: conn.id, nick, room: f.room, members: others.length + 1 });
    // §7.1 "Joining": JOINED to the joiner, PEER_JOINED to the rest, before anything the joiner sends next.
    const epoch = this.rooms.epoch(f.room);
    this.send(conn, frame('JOINED', { room: f.room, epoch, members: others.map((m) => ({ nick: m.nick, key: m.key })) }));
    const joined = encodeWire(frame('PEER_JOINED', { nick, key, epoch }));
    for (const m of others) this.write(m.handle, joined);
  }

  // Cluster mode (spec/CLUSTER.md): the same rows of §7.1, with the engine deciding and fanning out.

  private async onEngineJoin(engine: RoomEngine<Connection>, conn: Connection, f: FrameOf<'JOIN'>): Promise<void> {
    const nick = conn.nick!;
    await engine.join(f.room, nick, conn.spki!, conn, (others, epoch) => {
      conn.room = f.room;
      this.log({ event: 'join', conn: conn.id, nick, room: f.room, members: others.length + 1 });
      // The engine has published PEER_JOINED to the others in the step that added the member.
      this.send(conn, frame('JOINED', { room: f.room, epoch, members: others.map((m) => ({ nick: m.nick, key: m.key })) }));
    });
    // Closed while the join was in flight: the member it added leaves again at once.
    if (conn.closing) this.leaveRoom(conn, 'disconnect');
  }

  private onEngineSend(engine: RoomEngine<Connection>, conn: Connection, f: FrameOf<'SEND'>): Promise<void> | undefined {
    // Counted once the engine took it: a SEND it refuses at once throws (RedisCluster: NO_SUCH_PEER for a
    // nickname not in this connection's view), and is no more relayed than onSend's refusals. A promise
    // means "read no more from this connection until it settles" (spec/CLUSTER.md §3).
    conn.lastTo = f.to;
    const wait = engine.send(conn, f.to, f.body);
    this.framesRelayed++;
    this.bytesRelayed += f.body.length;
    return wait;
  }

  private async onEngineLeave(engine: RoomEngine<Connection>, conn: Connection): Promise<void> {
    const room = conn.room;
    conn.room = undefined;
    await engine.leave(conn);
    this.log({ event: 'leave', conn: conn.id, nick: conn.nick, room, reason: 'leave' });
    if (!conn.closing) this.send(conn, frame('LEFT', {}));
  }

  private onSend(conn: Connection, f: FrameOf<'SEND'>): void {
    const room = conn.room!;
    conn.lastTo = f.to;
    const to = f.to === conn.nick ? undefined : this.rooms.member(room, f.to);
    if (to === undefined) throw new ProtocolError('NO_SUCH_PEER', `${f.to} is not another member of this room`);
    // §7.1 "Relaying": `from` is the authenticated nickname of this connection, never the client's claim.
    this.framesRelayed++;
    this.bytesRelayed += f.body.length;
    conn.head ??= deliverHead(conn.nick!);
    this.deliver(to.handle, conn.head, f.body, 0, f.body.length);
  }

  private onLeave(conn: Connection): void {
    this.leaveRoom(conn, 'leave');
    this.send(conn, frame('LEFT', {}));
  }

  /** Removes conn from its room (if any) and sends PEER_LEFT to those who remain (§7.1 "Leaving"). */
  private leaveRoom(conn: Connection, why: string): void {
    const room = conn.room;
    if (room === undefined || conn.nick === undefined) return;
    conn.room = undefined;
    if (this.engine !== undefined) {
      this.log({ event: 'leave', conn: conn.id, nick: conn.nick, room, reason: why });
      void this.engine.leave(conn);
      return;
    }
    const rest = this.rooms.leave(room, conn.nick);
    this.log({ event: 'leave', conn: conn.id, nick: conn.nick, room, reason: why, remaining: rest.length });
    if (rest.length === 0) return;
    const left = encodeWire(frame('PEER_LEFT', { nick: conn.nick, epoch: this.rooms.epoch(room) }));
    for (const m of rest) this.write(m.handle, left);
  }

  // ---- output --------------------------------------------------------------------------------------

  private send(conn: Connection, f: Frame): void {
    this.write(conn, encodeWire(f));
  }

  /**
   * Queues bytes for one connection. §7.1 "Resource limits": past the high-water mark the reader is too
   * slow; it is disconnected with SLOW_CONSUMER and the relay stops buffering for it, so one slow reader
   * costs at most WRITE_HIGH_WATER_BYTES plus one frame and never stalls anyone else.
   */
  private write(conn: Connection, bytes: Buffer): void {
    const out = this.outOf(conn);
    if (out === undefined) return;
    out.append(bytes);
    this.wrote(conn, out, bytes.length);
  }

  /** Queues DELIVER (the sender's `head`, then the body: `n` bytes of `src` at `at`) for `conn`, as `write` does. */
  private deliver(conn: Connection, head: Buffer, src: Uint8Array, at: number, n: number): void {
    const out = this.outOf(conn);
    if (out === undefined) return;
    this.wrote(conn, out, out.appendDeliverOf(head, src, at, n));
  }

  /**
   * The Outbox to queue `conn`'s output in, or undefined when nothing more may be written to it. Output
   * queued outside a batch (the cluster engine's deliveries, a registry step's WELCOME) is written once
   * the current callback is over, so a burst of them leaves in one write too.
   */
  private outOf(conn: Connection): Outbox | undefined {
    if (conn.closing || conn.socket.destroyed || !conn.socket.writable) return undefined;
    const out = (conn.out ??= new Outbox(this.spare));
    if (out.length === 0) {
      this.dirty.push(conn);
      if (!this.batching && !this.flushQueued) {
        this.flushQueued = true;
        queueMicrotask(() => this.guard(undefined, () => this.flushOut()));
      }
    }
    return out;
  }

  /** Counts `n` bytes queued for `conn`; past the high-water mark it is a slow consumer (§7.1). */
  private wrote(conn: Connection, out: Outbox, n: number): void {
    this.bytesOut += n;
    if (conn.socket.writableLength + out.length > this.cfg.writeHighWaterBytes) {
      this.refuse(conn, 'SLOW_CONSUMER', `more than ${this.cfg.writeHighWaterBytes} bytes unread`);
    }
  }

  /** Writes every connection's queued output, one write each. */
  private flushOut(): void {
    this.flushQueued = false;
    const dirty = this.dirty;
    this.dirty = [];
    for (const conn of dirty) this.flushConn(conn);
  }

  private flushConn(conn: Connection): void {
    const out = conn.out;
    const bytes = out?.take();
    if (bytes !== undefined && !conn.socket.destroyed && conn.socket.writable) {
      conn.socket.write(bytes);
      if (conn.socket.writableLength > 0) this.held.add(conn);
      // Nothing left in the socket's buffer: a plain socket's kernel took the bytes, nothing refers to them.
      else if (plainSocket(conn.socket)) out!.recycle();
    }
  }

  /** Sends ERROR `code`; closes the connection when the code's `closes` column says so (§9). */
  private refuse(conn: Connection, code: ErrorName, detail: string): void {
    if (conn.closing) return;
    this.count(code);
    this.log({ event: 'refuse', conn: conn.id, addr: conn.addr, nick: conn.nick, state: conn.state, code });
    if (ERROR_CODES[code].close) {
      this.closeConn(conn, code, detail);
    } else {
      this.write(conn, encodeWire(frame('ERROR', { code: ERROR_CODES[code].code, detail: clipDetail(detail) })));
    }
  }

  private count(code: ErrorName): void {
    this.errorCounts[code] = (this.errorCounts[code] ?? 0) + 1;
  }

  /**
   * Moves conn to CLOSED: leaves its room (PEER_LEFT to the rest at once), sends ERROR `code` if given,
   * half-closes, and destroys the socket after CLOSE_GRACE_MS if the peer has not closed by then.
   */
  private closeConn(conn: Connection, code: ErrorName | undefined, detail = ''): void {
    if (conn.closing) return;
    conn.closing = true;
    conn.state = 'CLOSED';
    this.leaveRoom(conn, code === undefined ? 'peer_error' : code);
    const s = conn.socket;
    // §3.2: an ERROR cannot reach a peer that has not finished its TLS handshake; nothing is kept for it.
    if (tlsHandshaking(s)) s.destroy();
    else if (!s.destroyed && s.writable) {
      // What was queued for it before this (frames of the batch being handled) goes first.
      s.cork();
      this.flushConn(conn);
      if (code !== undefined) s.write(encodeWire(frame('ERROR', { code: ERROR_CODES[code].code, detail: clipDetail(detail) })));
      s.end();
      this.held.add(conn); // corked: its bytes wait in the socket until uncorked
    } else conn.out?.take();
    conn.grace = setTimeout(() => s.destroy(), CLOSE_GRACE_MS);
    conn.grace.unref();
  }

  private onClose(conn: Connection): void {
    if (conn.grace !== undefined) clearTimeout(conn.grace);
    if (!conn.closing) {
      // §7.1 input `disconnect`: IN_ROOM leaves the room with PEER_LEFT; other states are forgotten.
      conn.closing = true;
      this.leaveRoom(conn, 'disconnect');
      conn.state = 'CLOSED';
    }
    this.conns.delete(conn);
    this.held.delete(conn);
    this.readerBytes -= conn.charged;
    conn.charged = 0;
    this.perSubnet.remove(conn.subnet);
    if (conn.keyId !== undefined) {
      this.perKey.remove(conn.keyId);
      this.perNick.remove(conn.nick!);
    }
    const n = (this.perAddress.get(conn.addr) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(conn.addr);
    else this.perAddress.set(conn.addr, n);
    if (conn.authed) this.authenticated--;
    this.log({ event: 'disconnect', conn: conn.id, nick: conn.nick });
    this.maybeAllClosed();
  }

  private checkTimeouts(): void {
    const now = performance.now();
    for (const conn of this.conns) {
      if (conn.closing) continue;
      const handshaking = conn.state === 'AWAIT_HELLO' || conn.state === 'AWAIT_AUTH';
      // §7.1 "Timeouts": READY within HANDSHAKE_TIMEOUT_MS of accept; a frame at least every idle_ms.
      const late = handshaking && now - conn.acceptedAt >= this.cfg.handshakeTimeoutMs;
      const idle = now - conn.lastFrameAt >= this.cfg.idleTimeoutMs;
      // A frame begun must be finished in time: a trickled frame cannot hold its buffer for idle_ms.
      const slow = conn.partialSince !== undefined && now - conn.partialSince >= this.cfg.frameTimeoutMs;
      if ((late || idle || slow) && serverTransition(conn.state, 'timeout') !== undefined) {
        const why = late ? 'handshake not completed in time' : slow ? 'frame not completed in time' : 'no frame received in idle_ms';
        this.guard(conn, () => this.refuse(conn, 'TIMEOUT', why));
      }
    }
    if (this.bufferedBytes() > this.cfg.bufferBudgetBytes) this.shed();
    this.bindsByKey.prune(now);
    this.bindsByAddress.prune(now);
  }

  /** Keeps `readerBytes` equal to the sum of the live connections' partial-frame allocations. */
  private account(conn: Connection): void {
    const now = conn.reader.reserved;
    this.readerBytes += now - conn.charged;
    conn.charged = now;
  }

  /** Bytes held for all connections: partial frames being read plus output not yet taken by the kernel. */
  private bufferedBytes(): number {
    let out = 0;
    for (const c of this.held) {
      const n = c.socket.writableLength + (c.socket.pendingInput ?? 0);
      // A plain socket whose buffer the kernel has emptied holds nothing until the relay writes again.
      if (n === 0 && plainSocket(c.socket)) this.held.delete(c);
      out += n;
    }
    return this.readerBytes + out;
  }

  /**
   * §7.1 "Buffer budget": over BUFFER_BUDGET_BYTES, the connections that hold the most are closed, largest
   * first, until the relay is back under it: one holding a partial frame with TIMEOUT (it has not finished
   * its frame), one holding unread output with SLOW_CONSUMER. A closed connection's buffers are released
   * at once (its reader is dropped; its output is discarded when the socket is destroyed).
   */
  private shed(): void {
    const cost = (c: Connection): number => c.charged + c.socket.writableLength + (c.socket.pendingInput ?? 0);
    const live = [...this.conns].filter((c) => !c.closing && cost(c) > 0).sort((a, b) => cost(b) - cost(a));
    let total = this.bufferedBytes();
    for (const c of live) {
      if (total <= this.cfg.bufferBudgetBytes) break;
      const held = cost(c);
      const output = c.socket.writableLength >= c.charged + (c.socket.pendingInput ?? 0);
      this.log({ event: 'shed', conn: c.id, bytes: held });
      this.refuse(c, output ? 'SLOW_CONSUMER' : 'TIMEOUT', output ? 'relay buffer budget exceeded' : 'relay buffer budget exceeded by a partial frame');
      this.readerBytes -= c.charged;
      c.charged = 0;
      if (output) c.socket.destroy();
      total -= held;
    }
  }

  // ---- shutdown ------------------------------------------------------------------------------------

  private maybeAllClosed(): void {
    if (this.allClosed !== undefined && this.conns.size === 0 && this.refusing.size === 0) this.allClosed();
  }

  close(): Promise<void> {
    if (this.closePromise !== undefined) return this.closePromise;
    this.closePromise = (async () => {
      clearInterval(this.sweep);
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      const drained = new Promise<void>((resolve) => {
        this.allClosed = resolve;
      });
      this.log({ event: 'shutdown', connections: this.conns.size });
      // §7.1 "Shutdown": ERROR SERVER_SHUTDOWN to every connection, then close it.
      for (const conn of [...this.conns]) this.refuse(conn, 'SERVER_SHUTDOWN', 'relay shutting down');
      this.maybeAllClosed();
      await drained;
      await stopped;
      if (this.ownsRegistry) await this.registry.close();
      await this.engine?.close();
      this.log({ event: 'stopped' });
    })();
    return this.closePromise;
  }
}

/**
 * Starts a relay and resolves once it accepts connections (`port` then holds the real port). Rejects
 * with RangeError for an option out of range and with the listen error (EADDRINUSE, ...) otherwise.
 */
export async function startServer(opts: ServerOptions = {}): Promise<RelayServer> {
  const cfg = resolveConfig(opts);
  const fdLimit = openFileLimit();
  if (fdLimit !== undefined) {
    // Keep FD_HEADROOM descriptors free for the registry, the listener, stdio and refused sockets.
    const ceiling = Math.max(1, fdLimit - LIMITS.FD_HEADROOM - REFUSAL_SLACK);
    if (cfg.maxConnections > ceiling) {
      opts.log?.({ ts: new Date().toISOString(), event: 'connection_cap_lowered', requested: cfg.maxConnections, cap: ceiling, fd_limit: fdLimit });
      cfg.maxConnections = ceiling;
    }
  }
  const registry = typeof cfg.registry === 'string' ? await SqliteRegistry.open(cfg.registry, { expiryMs: cfg.bindingExpiryMs }) : cfg.registry;
  const relay = new Relay(cfg, registry, opts.log, opts.logs);
  await relay.listen();
  return relay;
}

export { channelBinding } from './relay-name.js';
