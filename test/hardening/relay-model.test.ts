// Model-based test of the relay (spec §7.1) with fast-check's fc.commands / fc.asyncModelRun: random
// sequences of connect, join, relay, leave, disconnect, malformed frame and slow read across four clients
// and two rooms of at most three, run against a real relay on loopback and checked against a small model:
// - no room ever over its limit (a join to a full room is ROOM_FULL, the room's JOINED lists at most two);
// - every accepted SEND is delivered exactly once, in order, to the addressee only, from the sender's nick;
// - nothing is delivered after a leave or a disconnect, and the others learn of it (PEER_LEFT) at once;
// - no state is left behind by a closed connection (connection and room counts return to the model's).
// After each command every connected client that is reading proves what it received with a PING/PONG
// fence: the frames before its PONG must be exactly the ones the model predicts, nothing more. The model
// is the wire kit's (src/wirekit/relay-model.ts RoomModel, beside the per-connection model the fuzzer,
// the kit and test/server/transitions.test.ts use).
import t from 'tap';
import fc from 'fast-check';
import { frame } from '../../src/codec/index.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { startServer, type RelayServer } from '../../src/server/index.js';
import { identity, RawConnection, type Identity } from '../../src/wirekit/relay-conn.js';
import { describeReceived, RoomModel } from '../../src/wirekit/relay-model.js';

const CLIENTS = 4;
const ROOM_SIZE = 3;

type Model = RoomModel;

interface Real {
  server: RelayServer;
  ids: Identity[];
  conns: (RawConnection | undefined)[];
  fence: number;
  run: number;
  executed: number;
  stats: Record<string, number>;
}

const nickOf = (r: Real, i: number): string => r.ids[i]!.nick;

/** Reads one client's frames up to its fence PONG; returns them as descriptions. */
async function fenceOne(r: Real, i: number): Promise<string[]> {
  const c = r.conns[i]!;
  const n = ++r.fence;
  c.send(frame('PING', { n }));
  const got: string[] = [];
  for (let k = 0; k < 1000; k++) {
    const f = await c.next(20_000);
    if (f.type === 'PONG' && f.n === n) return got;
    if (f.type === 'closed') throw new Error(`client ${i}: the relay closed before the fence PONG`);
    got.push(describeReceived(f));
  }
  throw new Error('no fence PONG after 1000 frames');
}

/** The actor first (its frames are processed before anyone's fence), then every reading client. */
async function check(m: Model, r: Real, actor?: number): Promise<void> {
  const order = [...(actor !== undefined ? [actor] : []), ...Array.from({ length: CLIENTS }, (_, i) => i).filter((i) => i !== actor)];
  for (const i of order) {
    if (m.state[i] === 'OFF' || m.paused[i]) continue;
    const got = await fenceOne(r, i);
    const want = m.take(i);
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`client ${i}: received ${JSON.stringify(got)}, model says ${JSON.stringify(want)}`);
  }
  const { connections, rooms } = m.counts();
  for (const v of m.rooms.values()) if (v.length > ROOM_SIZE) throw new Error('model room over its limit');
  const st = r.server.stats();
  if (st.connections !== connections || st.rooms !== rooms) throw new Error(`relay holds ${st.connections} connections / ${st.rooms} rooms, model ${connections} / ${rooms}`);
}

/** Waits (bounded) until the relay's connection count equals the model's, after a close it must notice. */
async function settle(m: Model, r: Real): Promise<void> {
  const want = m.counts().connections;
  for (let k = 0; k < 2000 && r.server.stats().connections !== want; k++) await new Promise((res) => setTimeout(res, 5));
}

/** The k-th client (mod their number) among those `ok` admits: commands name a choice, not a client, so few are skipped. */
function pick(m: Readonly<Model>, k: number, ok: (i: number) => boolean): number | undefined {
  const xs = Array.from({ length: CLIENTS }, (_, i) => i).filter(ok);
  return xs.length === 0 ? undefined : xs[k % xs.length];
}

/**
 * A command on one client: the k-th (mod their number) of the clients `eligible` admits, so commands
 * name a choice, not a client, and few are skipped; `act` runs it for that client (`this.i`).
 */
abstract class OnClient implements fc.AsyncCommand<Model, Real> {
  protected i = 0;
  constructor(readonly k: number) {}
  protected abstract eligible(m: Readonly<Model>, i: number): boolean;
  protected abstract act(m: Model, r: Real): Promise<void>;
  check = (m: Readonly<Model>): boolean => pick(m, this.k, (i) => this.eligible(m, i)) !== undefined;
  async run(m: Model, r: Real): Promise<void> {
    r.executed++;
    this.i = pick(m, this.k, (i) => this.eligible(m, i))!;
    await this.act(m, r);
  }
}

class Connect extends OnClient {
  protected eligible(m: Readonly<Model>, i: number): boolean {
    return m.state[i] === 'OFF';
  }
  protected async act(m: Model, r: Real): Promise<void> {
    const c = await RawConnection.open(r.server.host, r.server.port);
    await c.authenticate(r.ids[this.i]!);
    r.conns[this.i] = c;
    m.connect(this.i);
    await check(m, r, this.i);
  }
  override toString = () => `connect(${this.i})`;
}

class Join extends OnClient {
  constructor(k: number, readonly room: string) {
    super(k);
  }
  protected eligible(m: Readonly<Model>, i: number): boolean {
    return m.state[i] === 'READY' && !m.paused[i];
  }
  protected async act(m: Model, r: Real): Promise<void> {
    r.conns[this.i]!.send(frame('JOIN', { room: this.room }));
    if (m.join(this.i, this.room) === 'full') r.stats['room full'] = (r.stats['room full'] ?? 0) + 1;
    await check(m, r, this.i);
  }
  override toString = () => `join(${this.i}, ${this.room})`;
}

class Send extends OnClient {
  constructor(k: number, readonly j: number, readonly tag: number) {
    super(k);
  }
  private to = 0;
  protected eligible(m: Readonly<Model>, i: number): boolean {
    return m.state[i] === 'IN_ROOM' && !m.paused[i];
  }
  protected async act(m: Model, r: Real): Promise<void> {
    // Three times in four to a member of the sender's room when there is one, else to anyone (itself too).
    const mates = m.mates(this.i);
    this.to = this.tag % 4 !== 0 && mates.length > 0 ? mates[this.j % mates.length]! : this.j;
    const body = `m${r.run}-${this.tag}-${this.i}>${this.to}`;
    r.conns[this.i]!.send(frame('SEND', { to: nickOf(r, this.to), body: Buffer.from(body) }));
    const outcome = m.send(this.i, this.to, body);
    r.stats[outcome] = (r.stats[outcome] ?? 0) + 1;
    await check(m, r, this.i);
  }
  override toString = () => `send(${this.i} -> ${this.to})`;
}

class Leave extends OnClient {
  protected eligible(m: Readonly<Model>, i: number): boolean {
    return m.state[i] === 'IN_ROOM' && !m.paused[i];
  }
  protected async act(m: Model, r: Real): Promise<void> {
    r.conns[this.i]!.send(frame('LEAVE', {}));
    m.leave(this.i);
    await check(m, r, this.i);
  }
  override toString = () => `leave(${this.i})`;
}

class Disconnect extends OnClient {
  protected eligible(m: Readonly<Model>, i: number): boolean {
    return m.state[i] !== 'OFF';
  }
  protected async act(m: Model, r: Real): Promise<void> {
    r.conns[this.i]!.close();
    r.conns[this.i] = undefined;
    m.drop(this.i);
    await settle(m, r);
    await check(m, r);
  }
  override toString = () => `disconnect(${this.i})`;
}

class Malformed extends OnClient {
  constructor(k: number, readonly kind: number) {
    super(k);
  }
  protected eligible(m: Readonly<Model>, i: number): boolean {
    return m.state[i] !== 'OFF' && !m.paused[i];
  }
  protected async act(m: Model, r: Real): Promise<void> {
    const c = r.conns[this.i]!;
    const [bytes, code] = [
      [Buffer.from([0, 0, 0, 0]), ERROR_CODES.MALFORMED_FRAME.code],
      [Buffer.from([0xff, 0xff, 0xff, 0xff]), ERROR_CODES.FRAME_TOO_LARGE.code],
      [Buffer.from('0000000381a174', 'hex'), ERROR_CODES.MALFORMED_FRAME.code],
      [Buffer.from('0000000381a17421', 'hex').subarray(0, 7), ERROR_CODES.MALFORMED_FRAME.code],
      [Buffer.from('0000000481a17421', 'hex'), ERROR_CODES.UNKNOWN_FRAME_TYPE.code],
    ][this.kind % 5] as [Buffer, number];
    c.write(bytes);
    // Whatever was queued for it arrives first; then the ERROR and the close (spec §3, §9).
    const pending = m.take(this.i);
    const got: string[] = [];
    for (let k = 0; k < 1000; k++) {
      const f = await c.next(20_000);
      if (f.type === 'closed') break;
      got.push(describeReceived(f));
    }
    const want = [...pending, `ERROR ${code}`];
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`malformed(${this.i}): got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    c.close();
    r.conns[this.i] = undefined;
    m.drop(this.i);
    await settle(m, r);
    await check(m, r);
  }
  override toString = () => `malformed(${this.i}, ${this.kind % 5})`;
}

class Pause extends OnClient {
  protected eligible(m: Readonly<Model>, i: number): boolean {
    return m.state[i] !== 'OFF' && !m.paused[i];
  }
  protected async act(m: Model, r: Real): Promise<void> {
    r.conns[this.i]!.socket.pause();
    m.paused[this.i] = true;
    await check(m, r);
  }
  override toString = () => `slow-read(${this.i})`;
}

class Resume extends OnClient {
  protected eligible(m: Readonly<Model>, i: number): boolean {
    return m.state[i] !== 'OFF' && m.paused[i] === true;
  }
  protected async act(m: Model, r: Real): Promise<void> {
    r.conns[this.i]!.socket.resume();
    m.paused[this.i] = false;
    await check(m, r, this.i);
  }
  override toString = () => `resume(${this.i})`;
}

const client = fc.integer({ min: 0, max: CLIENTS - 1 });
const connect = client.map((i) => new Connect(i));
const join = fc.tuple(client, fc.constantFrom('ra', 'ra', 'ra', 'rb')).map(([i, room]) => new Join(i, room));
const send = fc.tuple(client, client, fc.nat(1_000_000)).map(([i, j, tag]) => new Send(i, j, tag));
// Connect, join and send are listed three times each: most sequences then reach full rooms and traffic.
const commands = fc.commands(
  [
    connect,
    connect,
    connect,
    join,
    join,
    join,
    send,
    send,
    send,
    client.map((i) => new Leave(i)),
    client.map((i) => new Disconnect(i)),
    fc.tuple(client, fc.nat(4)).map(([i, k]) => new Malformed(i, k)),
    client.map((i) => new Pause(i)),
    client.map((i) => new Resume(i)),
  ],
  { maxCommands: 60, size: 'max' },
);

t.test('the relay against its model: random command sequences over four clients and two rooms', async (t) => {
  let run = 0;
  let commandsRun = 0;
  const stats: Record<string, number> = {};
  const keys = Array.from({ length: CLIENTS }, (_, i) => identity(`mkey${i}`, true));
  await fc.assert(
    fc.asyncProperty(commands, async (cmds) => {
      const server = await startServer({ port: 0, maxRoomSize: ROOM_SIZE });
      run++;
      const real: Real = {
        server,
        ids: keys.map((k, i) => ({ ...k, nick: `m${run}c${i}` })),
        conns: Array.from({ length: CLIENTS }, () => undefined),
        fence: 0,
        run,
        executed: 0,
        stats,
      };
      const model = new RoomModel(CLIENTS, ROOM_SIZE, (i) => real.ids[i]!.nick);
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        commandsRun += real.executed;
        // No state left behind: every connection closed, the relay holds nothing.
        for (const c of real.conns) c?.close();
        for (let k = 0; k < 2000 && (server.stats().connections !== 0 || server.stats().rooms !== 0); k++) await new Promise((res) => setTimeout(res, 5));
        const st = server.stats();
        if (st.connections !== 0 || st.rooms !== 0) throw new Error(`after closing everything the relay holds ${st.connections} connections, ${st.rooms} rooms`);
      } finally {
        for (const c of real.conns) c?.close();
        await server.close();
      }
    }),
    { numRuns: 60, seed: 4242, endOnFailure: true },
  );
  t.ok(run >= 60, `${run} runs, ${commandsRun} commands checked against the model`);
  t.ok((stats['room full'] ?? 0) > 0 && (stats['delivered'] ?? 0) > 0, `outcomes covered: ${JSON.stringify(stats)}`);
});
