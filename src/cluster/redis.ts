/**
 * Cluster mode (spec/CLUSTER.md): relays share rooms, nicknames and delivery through one Redis. This
 * module is the relay's RoomEngine and Registry for it; the invariants live in the Lua scripts of
 * ./scripts.ts, each one atomic step, and model/cluster.pml checks the same steps.
 *
 * Delivery: every relay subscribes to its own channel; the scripts publish PEER_JOINED and PEER_LEFT to
 * the channel of the addressee's relay in the same step that changes the membership, so one subscriber
 * connection sees them in the order Redis decided them. Each member's relay keeps the member's view of
 * its room (the JOIN reply, then the PEER_JOINED and PEER_LEFT written to it: nickname -> membership
 * token). A SEND is decided against the sender's view (NO_SUCH_PEER at once for a nickname not in it)
 * and published with a plain PUBLISH to the addressee's relay, without waiting (one Redis connection
 * keeps the order); the frames of a turn for one addressee go as one W message, written to its socket
 * in one write, and the W messages of a turn for one relay as one PUBLISH (an M message). An event carries the addressee's membership token: a relay writes it only to the
 * connection holding that token now, holds it while that connection's JOIN reply is still in flight
 * (JOINED goes first), and drops it otherwise (the member left: nothing is delivered after LEFT); a
 * DELIVER message also carries its sender's token, and is written only while that token is in the
 * addressee's view (so never from a member after its PEER_LEFT, nor from a relay reaped meanwhile).
 */
import { randomBytes } from 'node:crypto';
import { Command, Redis } from 'ioredis';
import { encodeWire, frame } from '../codec/index.js';
import { ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import type { EngineMember, RoomEngine, RoomSink } from '../room/engine.js';
import { deliverHead, Outbox, Spare } from '../server/deliver.js';
import type { BindingRow, BindResult, RecoverResult, Registry } from '../server/registry.js';
import { defineScripts, RedisRegistry } from './registry.js';
import { CLUSTER_TIMINGS, type ClusterScript } from './tables.js';

/**
 * Most events held for one connection while its JOIN reply is in flight (spec/CLUSTER.md §3). One more,
 * or more bytes than the relay's write high-water mark, and the connection is dropped with
 * SLOW_CONSUMER: an event is never discarded while its connection stays, so no member diverges silently.
 */
export const MAX_PENDING_EVENTS = 1024;

/** A connection's SENDs go to Redis in batches (one PUBLISH per addressee) of at most this many frames and bytes. */
export const MAX_BATCH_FRAMES = 256;
export const MAX_BATCH_BYTES = 256 * 1024;
/**
 * Bytes of one connection's batches sent to Redis and not yet answered; past this the relay stops reading
 * that connection until the oldest batch is answered (so a fast sender cannot queue without bound in
 * front of Redis). A bound in bytes, not in batches: the batches of a busy connection are as large as its
 * reads; four full batches.
 */
export const MAX_IN_FLIGHT_BYTES = 4 * MAX_BATCH_BYTES;
/** Offset of the type code in a frame body (fixmap, fixstr "t", code: spec §4 rule 9) and DELIVER's code. */
const TYPE_OFFSET = 3;
const DELIVER_CODE = 10;
/** The kinds of a pub/sub message (spec/CLUSTER.md §3). */
const KIND_J = 0x4a;
const KIND_L = 0x4c;
const KIND_W = 0x57;
/** Several W messages for one relay in one PUBLISH: "M", then each as a 4-byte length and its bytes. */
const KIND_M = 0x4d;

export interface RedisAddress {
  host: string;
  port: number;
  db: number;
}

/** Parses `redis://HOST:PORT[/DB]` strictly (no user, password, query or fragment). */
export function parseRedisUrl(s: string): RedisAddress {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new RangeError(`--redis: expected redis://HOST:PORT[/DB], got '${s}'`);
  }
  const db = u.pathname === '' || u.pathname === '/' ? '0' : u.pathname.slice(1);
  if (u.protocol !== 'redis:' || u.hostname === '' || u.port === '' || u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '' || !/^[0-9]{1,2}$/.test(db)) {
    throw new RangeError(`--redis: expected redis://HOST:PORT[/DB], got '${s}'`);
  }
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { host, port: Number(u.port), db: Number(db) };
}

export interface ClusterOptions {
  /** Members per room, the relay's room_size. */
  maxRoomSize: number;
  heartbeatMs?: number;
  presenceTtlMs?: number;
  reapIntervalMs?: number;
  /** Events held per joining connection (default MAX_PENDING_EVENTS). */
  maxPendingEvents?: number;
  /** Bytes held per joining connection (default WRITE_HIGH_WATER_BYTES, the relay's own output bound). */
  maxPendingBytes?: number;
  log?: (event: Record<string, unknown>) => void;
  /** Milliseconds after which an unused binding expires (default BINDING_EXPIRY_MS, spec §7.5). */
  bindingExpiryMs?: number | undefined;
}

/** Another member of a local member's room, as that member was told of it. */
interface Peer {
  token: string;
  /** The channel of its relay, and the start of a PUBLISH to it (publishHead). */
  channel: string;
  head: Buffer;
  /**
   * The start of a W message from the local member to it: room for the PUBLISH command's start
   * (reserve(head) bytes, filled in by publishCommand), then "W\n<its token>\n<local member's token>\n".
   */
  header: Buffer;
  /**
   * The PUBLISH of the W message to it being laid out (header, then DELIVER frames one after the other,
   * then CRLF, in one buffer); one Outbox per peer, so each batch starts at about the size of the last ones.
   */
  out: Outbox;
}

/** A message held for a joining connection, to be handled in order once JOINED is written. */
interface Held {
  kind: number;
  /** J, L: the nickname; W: the sender's token. */
  subject: string;
  /** J: the joiner's token. */
  token: string;
  wire: Buffer;
}

interface Local<H> {
  handle: H;
  nick: string;
  /** The constant start of this member's DELIVERs (deliverHead of its nickname). */
  head: Buffer;
  room: string;
  token: string;
  /**
   * The other members as this connection has been told of them (JOINED's list, then each PEER_JOINED and
   * PEER_LEFT written to it), by nickname; and their tokens. SENDs are decided against it, and a DELIVER
   * message is written only from a token in it.
   */
  peers: Map<string, Peer>;
  peerTokens: Set<string>;
  /** Messages that arrived before JOINED was written; undefined once active. */
  pending: Held[] | undefined;
  /** Events (frames) and bytes in `pending`. */
  pendingEvents: number;
  pendingBytes: number;
  /** The connection was dropped because `pending` overflowed: its join, once answered, is undone. */
  overflowed: boolean;
  /** SENDs not yet sent to Redis: the addressees (in the order first addressed; each its Peer.out), the batch's frames and bytes. */
  batch: Set<Peer>;
  batchFrames: number;
  batchBytes: number;
  /** Batches sent and not yet answered, oldest first (they never reject), and their bytes. */
  flights: Promise<void>[];
  flightBytes: number;
}

type Call = (...args: (string | Buffer | number)[]) => Promise<unknown>;

/** RoomEngine and Registry over one Redis (standalone, Redis 7). */
export class RedisCluster<H extends object> implements RoomEngine<H>, Registry {
  readonly relayId: string;
  private relayEpoch: string;
  private readonly cmd: Redis;
  private readonly registry: RedisRegistry;
  private readonly sub: Redis;
  private sink: RoomSink<H> | undefined;
  private readonly byHandle = new Map<H, Local<H>>();
  private readonly byToken = new Map<string, Local<H>>();
  /** Connections with SENDs not yet sent to Redis, and the pending flush of them. */
  private readonly dirty = new Set<Local<H>>();
  /**
   * W messages taken from the connections' batches and not yet published: per channel, in the order
   * taken (one PUBLISH per relay and turn); and the connections they came from, with their bytes.
   */
  private readonly outgoing = new Map<string, { head: Buffer; ms: Buffer[] }>();
  /**
   * A batch buffer whose PUBLISH Redis has answered (so the socket has written it whole and nothing
   * refers to it) starts the next batch, instead of a fresh buffer of tens of KB per batch, which V8
   * counts as external memory and collects with full mark-compacts.
   */
  private readonly spare = new Spare();
  private outgoingFrom: { local: Local<H>; bytes: number }[] = [];
  private flushing: NodeJS.Immediate | undefined;
  private nextToken = 1;
  private timers: NodeJS.Timeout[] = [];
  /** Leave scripts in flight: close() waits for them so a clean shutdown leaves no member behind. */
  private readonly leaving = new Set<Promise<unknown>>();
  private up = false;
  private closed = false;
  private readonly heartbeatMs: number;
  private readonly ttlMs: number;
  private readonly reapMs: number;
  private readonly maxPendingEvents: number;
  private readonly maxPendingBytes: number;
  /** Connections dropped with SLOW_CONSUMER because their held events overflowed (spec/CLUSTER.md §3). */
  pendingOverflows = 0;
  /** DELIVER messages dropped because their sender's token was not in the addressee's view (spec/CLUSTER.md §3). */
  droppedFromNonMembers = 0;

  private constructor(
    addr: RedisAddress,
    private readonly opts: ClusterOptions,
  ) {
    this.relayId = randomBytes(8).toString('hex');
    this.relayEpoch = this.relayId;
    this.heartbeatMs = opts.heartbeatMs ?? CLUSTER_TIMINGS.HEARTBEAT_MS;
    this.ttlMs = opts.presenceTtlMs ?? CLUSTER_TIMINGS.PRESENCE_TTL_MS;
    this.reapMs = opts.reapIntervalMs ?? CLUSTER_TIMINGS.REAP_INTERVAL_MS;
    this.maxPendingEvents = opts.maxPendingEvents ?? MAX_PENDING_EVENTS;
    this.maxPendingBytes = opts.maxPendingBytes ?? LIMITS.WRITE_HIGH_WATER_BYTES;
    // No offline queue: while Redis is unreachable a command fails at once instead of waiting, so the
    // relay refuses work rather than promising what it cannot keep.
    const common = {
      host: addr.host,
      port: addr.port,
      db: addr.db,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
      retryStrategy: (n: number) => Math.min(200 * n, 2000),
    };
    this.cmd = new Redis(common);
    this.sub = new Redis(common);
    defineScripts(this.cmd);
    this.registry = new RedisRegistry(this.cmd, opts.bindingExpiryMs, () => this.available);
    for (const c of [this.cmd, this.sub]) {
      c.on('error', () => {
        // Reported through 'close' below; ioredis reconnects on its own.
      });
      c.on('close', () => this.onLost('redis connection lost'));
      c.on('ready', () => void this.onReady());
    }
    this.sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
      // Nothing read from Redis may throw into ioredis's parser (it would end the process).
      try {
        this.onMessage(message);
      } catch (e) {
        this.log({ event: 'cluster_bad_message', error: e instanceof Error ? e.message : String(e) });
      }
    });
  }

  /** Connects both Redis connections, registers this relay's presence and starts its timers. */
  static async connect<H extends object>(url: string, opts: ClusterOptions): Promise<RedisCluster<H>> {
    const c = new RedisCluster<H>(parseRedisUrl(url), opts);
    try {
      await Promise.all([c.cmd.connect(), c.sub.connect()]);
      await c.checkPubsubLimit();
      await c.register();
    } catch (e) {
      c.cmd.disconnect();
      c.sub.disconnect();
      throw e;
    }
    c.timers.push(setInterval(() => void c.heartbeat(), c.heartbeatMs));
    c.timers.push(setInterval(() => void c.reap(), c.reapMs));
    for (const t of c.timers) t.unref();
    return c;
  }

  /**
   * Redis holds what it has published to a subscriber that reads slowly in that connection's output
   * buffer, bounded only by `client-output-buffer-limit pubsub` (spec/CLUSTER.md §3 "A slow subscriber").
   * A relay refuses to start on a Redis that sets no hard limit for the class (the backlog of a stalled
   * relay would then grow without bound in Redis); where CONFIG is not allowed it says it could not check.
   */
  private async checkPubsubLimit(): Promise<void> {
    const limit = await this.cmd.config('GET', 'client-output-buffer-limit').then(parsePubsubLimit, () => undefined);
    if (limit === undefined) {
      this.log({ event: 'cluster_pubsub_limit_unknown' });
      return;
    }
    if (limit.hardBytes === 0) throw new RangeError('Redis client-output-buffer-limit pubsub has no hard limit: set one (the default is 32mb 8mb 60)');
    this.log({ event: 'cluster_pubsub_limit', hard_bytes: limit.hardBytes, soft_bytes: limit.softBytes, soft_seconds: limit.softSeconds });
  }

  private log(e: Record<string, unknown>): void {
    try {
      this.opts.log?.({ ts: new Date().toISOString(), ...e });
    } catch {
      // a failing log sink changes nothing here
    }
  }

  private call(name: ClusterScript, buffer = false): Call {
    const fn = (this.cmd as unknown as Record<string, Call>)[name.replaceAll('-', '_') + (buffer ? 'Buffer' : '')];
    if (fn === undefined) throw new Error(`script ${name} not defined`);
    return fn.bind(this.cmd);
  }

  private get aliveKey(): string {
    return `e2ee:relay:${this.relayEpoch}:alive`;
  }

  /** Presence key and relay set entry; subscribes to this relay's channel. */
  private async register(): Promise<void> {
    await this.sub.subscribe(`e2ee:deliver:${this.relayEpoch}`);
    await this.cmd.multi().set(this.aliveKey, '1', 'PX', this.ttlMs).sadd('e2ee:relays', this.relayEpoch).exec();
    this.up = true;
    this.log({ event: 'cluster_joined', relay: this.relayEpoch });
  }

  private async onReady(): Promise<void> {
    if (this.up || this.closed || this.sink === undefined) return;
    if (this.cmd.status !== 'ready' || this.sub.status !== 'ready') return;
    // After a loss every local member was dropped; a new epoch leaves the old one's leftovers (if Redis
    // kept them) to the reaper, which announces PEER_LEFT for them once its presence key expires.
    try {
      await this.sub.unsubscribe();
      this.relayEpoch = `${this.relayId}-${randomBytes(4).toString('hex')}`;
      await this.register();
      this.sink.restored();
    } catch {
      // still down: the next 'ready' retries
    }
  }

  /** The store failed: every local member is dropped and the relay told to stop taking work. */
  private onLost(reason: string): void {
    if (!this.up || this.closed) return;
    this.up = false;
    this.log({ event: 'cluster_unavailable', reason });
    this.byHandle.clear();
    this.byToken.clear();
    this.outgoing.clear();
    this.outgoingFrom = [];
    this.sink?.lost(reason);
  }

  private async heartbeat(): Promise<void> {
    if (!this.up) return;
    try {
      const ok = await this.call('refresh-relay-presence')(this.aliveKey, this.ttlMs);
      if (ok !== 1) this.onLost('presence expired');
    } catch {
      this.onLost('heartbeat failed');
    }
  }

  private async reap(): Promise<void> {
    if (!this.up) return;
    try {
      const n = (await this.call('reap-dead-relays')()) as number;
      if (n > 0) this.log({ event: 'cluster_reaped', members: n });
    } catch {
      // a failed reap is retried on the next tick; a lost store is reported by the heartbeat
    }
  }

  // ---- pub/sub -------------------------------------------------------------------------------------

  /** One message from this relay's channel: an event, or (M) several W messages in order. */
  private onMessage(msg: Buffer): void {
    if (msg[0] !== KIND_M) {
      this.onEvent(msg);
      return;
    }
    let o = 1;
    while (o < msg.length) {
      if (o + 4 > msg.length) throw new RangeError('cluster message: truncated section length');
      const len = msg.readUInt32BE(o);
      o += 4;
      if (len === 0 || o + len > msg.length || msg[o] !== KIND_W) throw new RangeError('cluster message: bad section');
      this.onEvent(msg.subarray(o, o + len));
      o += len;
    }
  }

  private onEvent(msg: Buffer): void {
    const a = msg.indexOf(10);
    const b = msg.indexOf(10, a + 1);
    const c = msg.indexOf(10, b + 1);
    if (a !== 1 || b < 0 || c < 0) return;
    const local = this.byToken.get(msg.toString('latin1', a + 1, b));
    if (local === undefined) return; // left (or never joined) here: nothing after LEFT
    // J, L: the nickname the event is about; W: the sender's membership token.
    const subject = msg.toString('latin1', b + 1, c);
    const payload = msg.subarray(c + 1);
    const kind = msg[0]!;
    let wire: Buffer;
    let token = '';
    let frames = 1;
    switch (kind) {
      case KIND_J: {
        // "<epoch>\n<joiner's token>\n<key>", the room epoch the join script set (PROTOCOL.md §7.1 "Room epoch").
        const d = payload.indexOf(10);
        const e = d < 0 ? -1 : payload.indexOf(10, d + 1);
        const epoch = e < 0 ? NaN : Number(payload.toString('latin1', 0, d));
        if (!Number.isSafeInteger(epoch) || epoch < 1) throw new Error('no room epoch in the message');
        token = payload.toString('latin1', d + 1, e);
        if (!validToken(token)) throw new Error('no member token in the message');
        wire = encodeWire(frame('PEER_JOINED', { nick: subject, key: new Uint8Array(payload.subarray(e + 1)), epoch }));
        break;
      }
      case KIND_L: {
        // "<epoch>", the epoch after the leave.
        const epoch = Number(payload.toString('latin1'));
        if (!Number.isSafeInteger(epoch) || epoch < 1) throw new Error('no room epoch in the message');
        wire = encodeWire(frame('PEER_LEFT', { nick: subject, epoch }));
        break;
      }
      case KIND_W:
        frames = deliverFrames(payload);
        wire = payload;
        if (local.pending === undefined) {
          // The common case, without allocating: a member's DELIVERs, checked against its view.
          if (local.peerTokens.has(subject)) this.sink?.write(local.handle, wire);
          else this.droppedFromNonMembers++;
          return;
        }
        break;
      default:
        return;
    }
    const ev: Held = { kind, subject, token, wire };
    if (local.pending === undefined) {
      this.applyEvent(local, ev);
      return;
    }
    if (local.pendingEvents + frames <= this.maxPendingEvents && local.pendingBytes + wire.length <= this.maxPendingBytes) {
      local.pending.push(ev);
      local.pendingEvents += frames;
      local.pendingBytes += wire.length;
      return;
    }
    this.overflow(local);
  }

  /**
   * Writes one message to its member's connection, in the order received, keeping the member's view:
   * PEER_JOINED adds the joiner, PEER_LEFT removes the leaver, and DELIVER frames are written only from
   * a sender in the view (else dropped: it left, or was reaped, before they arrived).
   */
  private applyEvent(local: Local<H>, ev: Held): void {
    if (ev.kind === KIND_W) {
      if (!local.peerTokens.has(ev.subject)) {
        this.droppedFromNonMembers++;
        return;
      }
    } else if (ev.kind === KIND_J) {
      this.addPeer(local, ev.subject, ev.token);
    } else {
      const old = local.peers.get(ev.subject);
      if (old !== undefined) {
        local.peers.delete(ev.subject);
        local.peerTokens.delete(old.token);
      }
    }
    this.sink?.write(local.handle, ev.wire);
  }

  private addPeer(local: Local<H>, nick: string, token: string): void {
    const old = local.peers.get(nick);
    if (old !== undefined) local.peerTokens.delete(old.token);
    const channel = `e2ee:deliver:${token.slice(0, token.lastIndexOf('.'))}`;
    const head = publishHead(channel);
    const header = Buffer.concat([Buffer.alloc(reserve(head)), Buffer.from(`W\n${token}\n${local.token}\n`, 'latin1')]);
    local.peers.set(nick, { token, channel, head, header, out: new Outbox(this.spare) });
    local.peerTokens.add(token);
  }

  /**
   * A joining connection's held events overflowed: this relay has fallen too far behind its store to
   * keep that member's stream whole. Rather than drop an event and let the member diverge, the member
   * is dropped: routing stops, the connection is closed with SLOW_CONSUMER (counted and logged by the
   * relay), and join() undoes the membership once its reply arrives (PEER_LEFT to the others).
   */
  private overflow(local: Local<H>): void {
    const held = local.pendingEvents;
    const bytes = local.pendingBytes;
    local.pending = [];
    local.pendingEvents = 0;
    local.pendingBytes = 0;
    local.overflowed = true;
    this.byToken.delete(local.token);
    this.pendingOverflows++;
    this.log({ event: 'cluster_pending_overflow', held, bytes, max_events: this.maxPendingEvents, max_bytes: this.maxPendingBytes });
    this.sink?.refuse(local.handle, 'SLOW_CONSUMER', `more than ${this.maxPendingEvents} events or ${this.maxPendingBytes} bytes held while joining`);
  }

  // ---- RoomEngine ----------------------------------------------------------------------------------

  attach(sink: RoomSink<H>): void {
    this.sink = sink;
  }

  get available(): boolean {
    return this.up && !this.closed;
  }

  localRooms(): number {
    return new Set([...this.byHandle.values()].map((l) => l.room)).size;
  }

  async join(room: string, nick: string, key: Uint8Array, handle: H, joined: (others: EngineMember[], epoch: number) => void): Promise<void> {
    if (!this.available) throw new Error('cluster store unavailable');
    const token = `${this.relayEpoch}.${this.nextToken++}`;
    const local: Local<H> = { handle, nick, head: deliverHead(nick), room, token, peers: new Map(), peerTokens: new Set(), pending: [], pendingEvents: 0, pendingBytes: 0, overflowed: false, batch: new Set(), batchFrames: 0, batchBytes: 0, flights: [], flightBytes: 0 };
    this.byToken.set(token, local);
    let reply: Buffer[];
    try {
      reply = (await this.call('join-if-room-has-space', true)(
        `e2ee:room:${room}`,
        this.aliveKey,
        nick,
        this.opts.maxRoomSize,
        token,
        this.relayEpoch,
        room,
        Buffer.from(key),
      )) as Buffer[];
    } catch (e) {
      this.byToken.delete(token);
      throw e;
    }
    const status = reply[0]?.toString('latin1');
    if (status !== 'OK') {
      this.byToken.delete(token);
      if (status === 'NICK_IN_ROOM' || status === 'ROOM_FULL') throw new ProtocolError(status, `${nick} cannot join ${room}`);
      throw new Error(`join: ${String(status)}`);
    }
    if (local.overflowed) {
      // Dropped while the join was in flight (SLOW_CONSUMER, see overflow): the member it added leaves.
      await this.leaveToken(local);
      return;
    }
    if (this.byToken.get(token) !== local) {
      // The store was lost while the join was in flight: its member will be reaped.
      throw new Error('cluster store lost during join');
    }
    const epoch = Number(reply[1]?.toString('latin1'));
    const others: { seq: number; m: EngineMember }[] = [];
    for (let i = 2; i + 3 < reply.length; i += 4) {
      const m = { nick: reply[i + 1]!.toString('latin1'), key: new Uint8Array(reply[i + 3]!) };
      others.push({ seq: Number(reply[i]!.toString('latin1')), m });
      this.addPeer(local, m.nick, reply[i + 2]!.toString('latin1'));
    }
    others.sort((x, y) => x.seq - y.seq);
    this.byHandle.set(handle, local);
    joined(others.map((o) => o.m), epoch);
    const held = local.pending ?? [];
    local.pending = undefined;
    local.pendingEvents = 0;
    local.pendingBytes = 0;
    for (const ev of held) this.applyEvent(local, ev);
  }

  send(handle: H, to: string, body: Uint8Array): Promise<void> | undefined {
    const local = this.byHandle.get(handle);
    if (local === undefined || !this.available) throw new Error('not a member here');
    // Decided against what this connection has been told of its room (never itself): as on one relay.
    const peer = local.peers.get(to);
    if (peer === undefined) throw new ProtocolError('NO_SUCH_PEER', `${to} is not another member of this room`);
    // The DELIVER is built here, where `from` is the authenticated nickname (§7.1 "Relaying"); the
    // addressee's relay writes the bytes as they come.
    if (local.batchFrames === 0) this.dirty.add(local);
    if (!local.batch.has(peer)) {
      local.batch.add(peer);
      peer.out.append(peer.header);
    }
    local.batchBytes += peer.out.appendDeliver(local.head, body);
    if (++local.batchFrames >= MAX_BATCH_FRAMES || local.batchBytes >= MAX_BATCH_BYTES) {
      this.flush(local);
      this.publish();
    } else {
      this.scheduleFlush();
    }
    return local.flightBytes >= MAX_IN_FLIGHT_BYTES ? local.flights[0] : undefined;
  }

  /** Flushes every connection's batch once the current I/O phase is over (all reads of this turn). */
  private scheduleFlush(): void {
    if (this.flushing !== undefined) return;
    this.flushing = setImmediate(() => {
      this.flushing = undefined;
      const all = [...this.dirty];
      for (const l of all) this.flush(l);
      this.publish();
    });
  }

  /** Takes `local`'s batch, one W message per addressee, into `outgoing` (published by publish()). */
  private flush(local: Local<H>): void {
    this.dirty.delete(local);
    if (local.batchFrames === 0) return;
    const batch = local.batch;
    const bytes = local.batchBytes;
    local.batch = new Set();
    local.batchFrames = 0;
    local.batchBytes = 0;
    for (const peer of batch) {
      peer.out.append(CRLF);
      const m = peer.out.take()!;
      const q = this.outgoing.get(peer.channel);
      if (q === undefined) this.outgoing.set(peer.channel, { head: peer.head, ms: [m] });
      else q.ms.push(m);
    }
    this.outgoingFrom.push({ local, bytes });
  }

  /**
   * Publishes what flush() took, one PUBLISH per relay: its W messages in the order taken, as one M
   * message when there are several (spec/CLUSTER.md §3). A failed PUBLISH (Redis lost) ends the
   * connections it carried with INTERNAL_ERROR; the promise kept in their `flights` never rejects.
   */
  private publish(): void {
    if (this.outgoingFrom.length === 0) return;
    const sent: Promise<unknown>[] = [];
    for (const { head, ms } of this.outgoing.values()) {
      // The command's bytes go to the socket as they are (RawPublish): no copy by ioredis.
      let b: Buffer;
      if (ms.length === 1) {
        b = ms[0]!;
      } else {
        b = this.joinMessages(head, ms);
        for (const m of ms) this.spare.put(whole(m));
      }
      const c = new RawPublish(publishCommand(head, b));
      this.cmd.sendCommand(c);
      sent.push(c.promise.then(() => this.spare.put(whole(b))));
    }
    this.outgoing.clear();
    const from = this.outgoingFrom;
    this.outgoingFrom = [];
    const p = (sent.length === 1 ? sent[0]! : Promise.all(sent)).then(
      () => {},
      (e: unknown) => {
        this.log({ event: 'cluster_send_failed', error: e instanceof Error ? e.message : String(e) });
        for (const f of from) this.sink?.refuse(f.local.handle, 'INTERNAL_ERROR', 'send failed');
      },
    );
    for (const f of from) {
      f.local.flights.push(p);
      f.local.flightBytes += f.bytes;
    }
    void p.then(() => {
      for (const f of from) {
        const i = f.local.flights.indexOf(p);
        if (i >= 0) f.local.flights.splice(i, 1);
        f.local.flightBytes -= f.bytes;
      }
    });
  }

  /**
   * Several W messages (each as flush() took it: reserve(head) bytes, the message, CRLF) as the one M
   * message of a PUBLISH laid out the same way: "M", then each as a 4-byte big-endian length and its bytes.
   */
  private joinMessages(head: Buffer, ms: Buffer[]): Buffer {
    const at = reserve(head);
    let n = at + 1 + CRLF.length;
    for (const m of ms) n += 4 + m.length - at - CRLF.length;
    const out = (this.spare.get(n) ?? Buffer.allocUnsafe(n)).subarray(0, n);
    out[at] = KIND_M;
    let o = at + 1;
    for (const m of ms) {
      o = out.writeUInt32BE(m.length - at - CRLF.length, o);
      o += m.copy(out, o, at, m.length - CRLF.length);
    }
    CRLF.copy(out, o);
    return out;
  }

  async leave(handle: H): Promise<void> {
    const local = this.byHandle.get(handle);
    if (local === undefined) return;
    // Stop routing first: an event decided before the leave but arriving after it is dropped.
    this.byHandle.delete(handle);
    this.byToken.delete(local.token);
    // Every SEND read before the leave is published before the leave script runs (one connection keeps
    // the order), so its addressee gets it before the PEER_LEFT.
    this.flush(local);
    this.publish();
    await this.leaveToken(local);
  }

  /** Runs leave-and-announce for one membership; close() waits for those in flight. */
  private async leaveToken(local: Local<H>): Promise<void> {
    const p = this.call('leave-and-announce')(`e2ee:room:${local.room}`, local.nick, local.token, local.room).catch(() => {
      // Store unreachable: the member stays until this relay's presence expires and it is reaped.
    });
    this.leaving.add(p);
    await p;
    this.leaving.delete(p);
  }

  // ---- Registry (./registry.ts, on this relay's command connection) --------------------------------

  bind(nick: string, spki: Uint8Array): Promise<BindResult> {
    return this.registry.bind(nick, spki);
  }

  recover(nick: string, spki: Uint8Array, proof: Uint8Array, commit: Uint8Array): Promise<RecoverResult> {
    return this.registry.recover(nick, spki, proof, commit);
  }

  setRecovery(nick: string, spki: Uint8Array, commit: Uint8Array): Promise<boolean> {
    return this.registry.setRecovery(nick, spki, commit);
  }

  lookup(nick: string): Promise<Uint8Array | undefined> {
    return this.registry.lookup(nick);
  }

  list(): Promise<BindingRow[]> {
    return this.registry.list();
  }

  release(nick: string): Promise<boolean> {
    return this.registry.release(nick);
  }

  count(): Promise<number> {
    return this.registry.count();
  }

  /** Leaves every local member (PEER_LEFT to the rest), removes this relay's presence, disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const t of this.timers) clearInterval(t);
    const handles = [...this.byHandle.keys()];
    await Promise.all(handles.map((h) => this.leave(h)));
    await Promise.all([...this.leaving]);
    this.closed = true;
    try {
      if (this.up) await this.cmd.multi().del(this.aliveKey).srem('e2ee:relays', this.relayEpoch).exec();
    } catch {
      // gone already: the key expires on its own
    }
    this.up = false;
    this.cmd.disconnect();
    this.sub.disconnect();
  }
}

/**
 * The `pubsub` class of a `CONFIG GET client-output-buffer-limit` reply (`['client-output-buffer-limit',
 * 'normal 0 0 0 slave ... pubsub 33554432 8388608 60']`, bytes and seconds), or undefined when the reply
 * has no such class.
 */
export function parsePubsubLimit(reply: unknown): { hardBytes: number; softBytes: number; softSeconds: number } | undefined {
  if (!Array.isArray(reply) || reply.length !== 2 || typeof reply[1] !== 'string') return undefined;
  const m = /(?:^| )pubsub ([0-9]{1,19}) ([0-9]{1,19}) ([0-9]{1,19})(?: |$)/.exec(reply[1]);
  if (m === null) return undefined;
  return { hardBytes: Number(m[1]), softBytes: Number(m[2]), softSeconds: Number(m[3]) };
}

/** RESP of `PUBLISH <channel>` up to its message's length: "*3\r\n$7\r\nPUBLISH\r\n$<n>\r\n<channel>\r\n". */
function publishHead(channel: string): Buffer {
  return Buffer.from(`*3\r\n$7\r\nPUBLISH\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n`, 'latin1');
}

/** Bytes kept free before a message for publishHead and "$<length>\r\n" (up to 9 digits: a message is far under 1 GB). */
function reserve(head: Buffer): number {
  return head.length + 12;
}

const CRLF = Buffer.from('\r\n', 'latin1');

/**
 * The PUBLISH command of the message that `b` holds after reserve(head) free bytes and before a final
 * CRLF: writes `head` and "$<message length>\r\n" right before the message, and returns the command's
 * bytes (a view of `b`).
 */
function publishCommand(head: Buffer, b: Buffer): Buffer {
  const at = reserve(head);
  const len = `$${b.length - at - CRLF.length}\r\n`;
  const start = at - len.length - head.length;
  head.copy(b, start);
  b.write(len, at - len.length, 'latin1');
  return b.subarray(start);
}

/**
 * The whole buffer under `b` when `b` starts it (what a Spare may keep), else `b` (which a Spare refuses).
 * Never a slab of Node's Buffer pool (exactly Buffer.poolSize bytes, shared by small Buffers still in
 * use): a pooled `b` is returned as it is, whatever Spare's size bounds are.
 */
function whole(b: Buffer): Buffer {
  const n = b.buffer.byteLength;
  return b.byteOffset === 0 && n > b.length && n > Buffer.poolSize ? Buffer.from(b.buffer, 0, n) : b;
}

/**
 * PUBLISH whose RESP bytes the relay laid out itself (publishCommand): ioredis writes them as they are,
 * instead of concatenating a copy of the message into a new command buffer, and matches the integer
 * reply as for any command on the connection, in order.
 */
class RawPublish extends Command {
  constructor(private readonly bytes: Buffer) {
    super('publish', [], { replyEncoding: null });
  }

  override toWritable(): Buffer {
    return this.bytes;
  }
}

/** A membership token as relays make them: `<relay id>.<counter>` (spec/CLUSTER.md §1). */
function validToken(t: string): boolean {
  return /^[0-9a-f]{16}(?:-[0-9a-f]{8})?\.[0-9]{1,15}$/.test(t);
}

/**
 * Checks a W message's payload: whole DELIVER frames, each a length prefix of 1..MAX_FRAME_BYTES and a
 * body whose type code is DELIVER. Returns how many; throws on anything else (logged and dropped by the
 * caller, never written to a client).
 */
function deliverFrames(p: Buffer): number {
  let n = 0;
  let o = 0;
  while (o < p.length) {
    if (o + LIMITS.LENGTH_PREFIX_BYTES > p.length) throw new RangeError('cluster message: truncated length prefix');
    const len = p.readUInt32BE(o);
    o += LIMITS.LENGTH_PREFIX_BYTES;
    if (len < TYPE_OFFSET + 1 || len > LIMITS.MAX_FRAME_BYTES || o + len > p.length) throw new RangeError('cluster message: bad frame length');
    if (p[o + TYPE_OFFSET] !== DELIVER_CODE) throw new RangeError('cluster message: not a DELIVER frame');
    o += len;
    n++;
  }
  if (n === 0) throw new RangeError('cluster message: no frame');
  return n;
}
