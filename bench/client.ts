/**
 * The load generator's raw-frame relay client, on the wire kit's relay connection
 * (src/wirekit/relay-conn.ts): connects, authenticates (spec §7.3) and joins a room on
 * our relay, or sends the one pairing frame to the bare pipe relay, and then hands every frame body to a
 * benchmark's handler. The same code drives both relays, so a ratio compares relays, not clients.
 *
 * After setup the hot path does not decode frames: byte 3 of every body is the frame type (a frame is a
 * fixmap whose first key is the fixstr "t" and whose type code is a positive fixint, spec §4 rule 9), which
 * is all a counter or an echo needs. ERROR frames are decoded and end the connection with their code.
 */
import { connect, type Socket } from 'node:net';
import { decodeFrame, encodeWire, frame, type RelayFrame } from '../src/codec/index.js';
import { errorName } from '../src/protocol/errors.js';
import type { Keys } from '../src/wirekit/identity.js';
import { authFrame, RelayConn, type Invalid } from '../src/wirekit/relay-conn.js';

export interface RelayAddr {
  readonly kind: 'server' | 'pipe';
  readonly host: string;
  readonly port: number;
}

/** An identity key of the wire kit's (src/wirekit/identity.ts). */
export type Identity = Keys;

/** Frame type codes the hot path looks at (spec §5). */
export const T = { SEND: 0x09, DELIVER: 0x0a, PING: 0x0d, PONG: 0x0e, ERROR: 0x0f, PEER_LEFT: 0x08 } as const;

/** Offset of the type code in a frame body: fixmap header, fixstr "t" (2 bytes), then the code. */
export const TYPE_OFFSET = 3;

export class RawConn extends RelayConn<Socket> {
  /** The peer's identity key as the relay listed it (placeholder bytes on the pipe relay). */
  peerKey: Uint8Array | null = null;
  peerNick: string | null = null;
  /** After setup, every frame body goes here. */
  onBody: ((body: Buffer) => void) | null = null;
  /** Whether this connection joined its room second (it found its peer in JOINED): the initiator (§7.2). */
  laterJoiner = false;
  /** Set once the connection failed; the benchmark reports it. */
  failure: string | null = null;
  private keepalive: NodeJS.Timeout | null = null;
  private pings = 0;
  private goneResolve!: () => void;
  /** Resolves once the connection has ended. */
  readonly gone: Promise<void>;
  private phase: 'hello' | 'auth' | 'welcome' | 'join' | 'peer' | 'ready' = 'hello';
  private joinedResolve!: () => void;
  private readyResolve!: () => void;
  private setupReject!: (e: Error) => void;
  /** Resolves once JOINED arrived (the room has us); `ready` once the peer is known too. */
  readonly joined: Promise<void>;
  readonly ready: Promise<void>;

  constructor(
    readonly addr: RelayAddr,
    readonly nick: string,
    readonly room: string,
    private readonly id: Keys,
  ) {
    super({ socket: connect({ host: addr.host, port: addr.port, noDelay: true }) });
    this.gone = new Promise((r) => (this.goneResolve = r));
    let rejectJoined!: (e: Error) => void;
    this.joined = new Promise((res, rej) => {
      this.joinedResolve = res;
      rejectJoined = rej;
    });
    this.ready = new Promise((res, rej) => {
      this.readyResolve = res;
      this.setupReject = (e) => {
        rej(e);
        rejectJoined(e);
      };
    });
    // A rejection nobody awaits yet (joined settles first) must not crash the worker.
    this.joined.catch(() => {});
    this.ready.catch(() => {});
    this.socket.on('connect', () => {
      if (addr.kind === 'pipe') {
        this.phase = 'join';
        this.send(frame('JOIN', { room }));
      } else {
        this.sendHello(nick, id.spki);
      }
    });
  }

  /** The socket (its writableLength is the benchmark's backlog figure). */
  get sock(): Socket {
    return this.socket;
  }

  /** Writes straight to the socket (the hot path): false when its buffer is full. */
  override write(buf: Uint8Array): boolean {
    return this.socket.write(buf);
  }

  override close(): void {
    if (this.keepalive) clearInterval(this.keepalive);
    this.socket.destroy();
  }

  private fail(why: string): void {
    this.failure ??= why;
    this.setupReject(new Error(`${this.nick}: ${why}`));
    this.socket.destroy();
  }

  protected override handleEnd(error?: Error): void {
    if (error !== undefined) this.fail(`socket: ${error.message}`);
    if (this.keepalive) clearInterval(this.keepalive);
    if (this.phase !== 'ready') this.fail('closed during setup');
    this.goneResolve();
  }

  protected override handleInvalid(a: Invalid): void {
    this.fail(`framing: ${a.error instanceof Error ? a.error.message : String(a.error)}`);
  }

  protected override handleBody(body: Buffer): void {
    if (this.failure !== null) return;
    if (this.phase === 'ready') {
      const t = body[TYPE_OFFSET];
      if (t === T.ERROR || t === T.PEER_LEFT) return this.fail(describe(body));
      if (this.onBody !== null && (t === T.DELIVER || t === T.SEND)) this.onBody(body);
      return;
    }
    this.setupFrame(body);
  }

  private setupFrame(body: Buffer): void {
    let f: RelayFrame;
    try {
      f = decodeFrame(body, 'relay');
    } catch (e) {
      return this.fail(`decode: ${(e as Error).message}`);
    }
    if (f.type === 'ERROR') return this.fail(`ERROR ${errorName(f.code) ?? f.code}`);
    switch (this.phase) {
      case 'hello':
        if (f.type !== 'CHALLENGE') return this.fail(`expected CHALLENGE, got ${f.type}`);
        this.phase = 'welcome';
        // JOIN right behind AUTH, in one write, as the reference client does (spec §7.4 "JOIN behind AUTH").
        this.write(Buffer.concat([encodeWire(authFrame(f, this.nick, this.id)), encodeWire(frame('JOIN', { room: this.room }))]));
        return;
      case 'welcome':
        if (f.type !== 'WELCOME') return this.fail(`expected WELCOME, got ${f.type}`);
        // Keepalive as a real client does (spec §7.1 "Timeouts"), so long setups do not time out.
        this.keepalive = setInterval(() => this.send(frame('PING', { n: this.pings++ })), Math.max(1000, Math.floor(f.idle_ms / 3)));
        this.keepalive.unref();
        this.phase = 'join';
        return;
      case 'join':
        if (f.type !== 'JOINED') return this.fail(`expected JOINED, got ${f.type}`);
        this.joinedResolve();
        this.laterJoiner = f.members.length > 0;
        if (f.members.length > 0) return this.peerKnown(f.members[0]!.nick, f.members[0]!.key);
        this.phase = 'peer';
        return;
      case 'peer':
        if (f.type === 'PONG') return;
        if (f.type !== 'PEER_JOINED') return this.fail(`expected PEER_JOINED, got ${f.type}`);
        return this.peerKnown(f.nick, f.key);
      default:
        return this.fail(`unexpected ${f.type}`);
    }
  }

  private peerKnown(nick: string, key: Uint8Array): void {
    this.peerNick = nick;
    this.peerKey = key;
    this.phase = 'ready';
    this.readyResolve();
  }
}

function describe(body: Buffer): string {
  try {
    const f = decodeFrame(body, 'relay');
    if (f.type === 'ERROR') return `ERROR ${errorName(f.code) ?? f.code}`;
    return f.type;
  } catch (e) {
    return `undecodable frame: ${(e as Error).message}`;
  }
}

/**
 * Opens `count` things with at most `limit` in progress at once: `open(i)` resolves when connection i
 * no longer needs a slot (it joined its room). Keeps the listen backlog and the relay's accept queue from
 * overflowing when thousands of clients connect.
 */
export async function bounded<T>(count: number, limit: number, open: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(count);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) {
      const i = next++;
      out[i] = await open(i);
    }
  });
  await Promise.all(lanes);
  return out;
}
