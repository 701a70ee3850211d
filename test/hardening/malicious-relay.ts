// A malicious relay for tests: a man in the middle in front of the reference relay that sees every frame
// and may rewrite what each client receives (substitute identity keys in JOINED / PEER_JOINED, drop,
// duplicate, hold back and reorder, replay, truncate DELIVER bodies, forge DELIVER.from) or make frames up
// (members that never joined: `legs`). Clients still
// authenticate to the real relay through it (spec §7.3 signs the relay's nonce and name, which it passes
// on), so the only power it has is the one a malicious relay has: over what it forwards. It stands for
// the relay itself, not for a relay in front of another one: its clients address it by the real relay's
// name (`relayName`, the ChatClient option and the CLI's --relay-name), which CHALLENGE announces.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { decodeFrame, encodeWire, FrameReader, type RelayFrame } from '../../src/codec/index.js';
import { relayIdentity } from '../../src/protocol/relay-id.js';
import { startServer, type RelayServer } from '../../src/server/index.js';

/** One client's leg through the proxy. */
export interface Leg {
  /** The nickname the client claimed in HELLO (known once HELLO went by). */
  nick: string | undefined;
  /**
   * Sends a frame (or raw bytes, as they are) to the client now. Membership events are numbered for this
   * client as a relay numbers them (spec §7.1 "Room epoch"): JOINED keeps its epoch, and every
   * PEER_JOINED and PEER_LEFT forwarded or made up gets the next one, so dropping or inventing events
   * keeps the client's epochs consecutive, as a malicious relay would (it can number as it likes).
   */
  toClient(f: RelayFrame | Buffer): void;
  /** The epoch of the last membership event sent to this client. */
  epoch: number;
}

/** Decides what the client receives for each frame the real relay sent it: [] drops it. */
export type Attack = (f: RelayFrame, leg: Leg) => (RelayFrame | Buffer)[];

export const honest: Attack = (f) => [f];

/** The type of the e2e frame a DELIVER carries, or undefined when it does not decode. */
export function carried(f: RelayFrame): string | undefined {
  if (f.type !== 'DELIVER') return undefined;
  try {
    return decodeFrame(f.body, 'e2e').type;
  } catch {
    return undefined;
  }
}

export class MaliciousRelay {
  private readonly sockets = new Set<Socket>();
  attack: Attack = honest;
  /** Each client's leg by the nickname of its HELLO, for frames the relay makes up (PEER_JOINED floods). */
  readonly legs = new Map<string, Leg>();
  /** Frames the real relay sent, per client nick, and what the proxy forwarded instead. */
  readonly seen: { to: string | undefined; frame: RelayFrame }[] = [];

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
    /** The relay name its clients address (§7.3): the real relay's, as it announces it in CHALLENGE. */
    readonly relayName: string,
  ) {}

  static async start(upstreamHost: string, upstreamPort: number): Promise<MaliciousRelay> {
    let self: MaliciousRelay | undefined;
    const server = createServer((client) => self!.onClient(client, upstreamHost, upstreamPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('no address');
    self = new MaliciousRelay(server, '127.0.0.1', a.port, relayIdentity(upstreamHost, upstreamPort));
    return self;
  }

  private onClient(client: Socket, host: string, port: number): void {
    const up = connect({ host, port });
    this.sockets.add(client).add(up);
    client.setNoDelay(true);
    up.setNoDelay(true);
    const leg: Leg = {
      nick: undefined,
      epoch: 0,
      toClient: (f) => {
        if (!Buffer.isBuffer(f)) {
          if (f.type === 'JOINED') leg.epoch = f.epoch;
          else if (f.type === 'PEER_JOINED' || f.type === 'PEER_LEFT') f = { ...f, epoch: ++leg.epoch };
        }
        if (!client.destroyed) client.write(Buffer.isBuffer(f) ? f : encodeWire(f));
      },
    };
    const c2s = new FrameReader();
    const s2c = new FrameReader();
    client.on('data', (chunk: Buffer) => {
      up.write(chunk); // client bytes go through unchanged; the proxy only reads the nick from HELLO
      try {
        for (const b of c2s.push(chunk)) {
          const f = decodeFrame(b, 'relay');
          if (f.type === 'HELLO') {
            leg.nick = f.nick;
            this.legs.set(f.nick, leg);
          }
        }
      } catch {
        // a client's malformed frame is the real relay's business
      }
    });
    up.on('data', (chunk: Buffer) => {
      let bodies: Buffer[] = [];
      try {
        bodies = s2c.push(chunk);
      } catch {
        client.destroy();
        return;
      }
      for (const b of bodies) {
        const f = decodeFrame(b, 'relay');
        this.seen.push({ to: leg.nick, frame: f });
        for (const out of this.attack(f, leg)) leg.toClient(out);
      }
    });
    const end = (): void => {
      client.destroy();
      up.destroy();
      this.sockets.delete(client);
      this.sockets.delete(up);
    };
    client.on('close', end);
    up.on('close', end);
    client.on('error', end);
    up.on('error', end);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A real relay in process (room size `roomSize`) with a MaliciousRelay in front of it, and the list of
 * clients a test makes: at teardown the clients are closed, then the malicious relay, then the relay.
 */
export async function behindMalicious(t: { teardown(fn: () => unknown): void }, roomSize: number): Promise<{ relay: RelayServer; mitm: MaliciousRelay; clients: { close(): void }[] }> {
  const relay = await startServer({ port: 0, maxRoomSize: roomSize });
  const mitm = await MaliciousRelay.start(relay.host, relay.port);
  const clients: { close(): void }[] = [];
  t.teardown(async () => {
    for (const c of clients) c.close();
    await mitm.close();
    await relay.close();
  });
  return { relay, mitm, clients };
}
