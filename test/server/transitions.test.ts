// Every (state, frame) pair of the relay's per-connection machine (spec/PROTOCOL.md §7.1), over real TCP,
// judged by the wire kit's relay model (src/wirekit/relay-model.ts, the fuzzer's oracle): the model says
// what the relay must answer to the frame in that state and where the connection then is; the relay's
// answer must be that, the model's next state must be the table row's (UNEXPECTED_FRAME and CLOSED for
// a pair not in the table), and a probe that only that state accepts shows the relay is there too.
import t, { type Test } from 'tap';
import { frame, type RelayFrame } from '../../src/codec/index.js';
import { FRAMES, type FrameName } from '../../src/protocol/frames.js';
import { authMessage, pssSign } from '../../src/crypto/rsa.js';
import { startServer } from '../../src/server/index.js';
import { serverTransition, type ServerState } from '../../src/protocol/relay-machine.js';
import { identity, RawConnection } from '../../src/wirekit/relay-conn.js';
import { ConnectionOracle, describe, frameItem } from '../../src/wirekit/relay-model.js';
import { LIMITS } from '../../src/protocol/limits.js';

const id = identity('transitions', true);
const server = await startServer({ maxConnectionsPerAddress: 1000 });
t.teardown(() => server.close());

const RELAY_FRAMES = (Object.keys(FRAMES) as FrameName[]).filter((n) => FRAMES[n].layer === 'relay') as RelayFrame['type'][];
const LIVE: ServerState[] = ['AWAIT_HELLO', 'AWAIT_AUTH', 'READY', 'IN_ROOM'];
t.equal(RELAY_FRAMES.length, 18, 'every relay frame of the catalogue is an input');

let serial = 0;

interface Conn {
  c: RawConnection;
  nick: string;
  /** The relay model of this connection: its state, nonce and relay name as the relay announced them. */
  model: ConnectionOracle;
}

/** Sends `f` and requires the answer the model expects; returns the mismatch, or undefined. */
async function step(conn: Conn, f: RelayFrame): Promise<string | undefined> {
  const exp = conn.model.expect(frameItem(f));
  conn.c.send(f);
  const got = await conn.c.next();
  return conn.model.observe(exp, got.type === 'closed' ? undefined : got);
}

/** A connection driven into `state` by the table's own success paths, each step judged by the model. */
async function inState(state: ServerState): Promise<Conn> {
  const nick = `n${++serial}`;
  const c = await RawConnection.open('127.0.0.1', server.port);
  const conn: Conn = { c, nick, model: new ConnectionOracle({ state: 'AWAIT_HELLO', maxFrame: LIMITS.MAX_PRELOGIN_FRAME_BYTES, nick, spki: id.spki, peers: new Set(), registry: new Map() }) };
  const walk: RelayFrame['type'][] = ['HELLO', 'AUTH', 'JOIN'];
  for (const type of walk.slice(0, LIVE.indexOf(state))) {
    const mismatch = await step(conn, sample(type, conn));
    if (mismatch !== undefined) throw new Error(`reaching ${state}, ${type}: ${mismatch}`);
  }
  if (conn.model.ctx.state !== state) throw new Error(`reaching ${state}: the model is in ${conn.model.ctx.state}`);
  return conn;
}

/** AUTH's signature over the nonce and relay name of the connection's CHALLENGE (or a junk one before it). */
function sig(conn: Conn): Uint8Array {
  const { nonce, relayName } = conn.model.ctx;
  return conn.model.ctx.state !== 'AWAIT_AUTH' || nonce === undefined ? new Uint8Array(256).fill(1) : pssSign(id.privateKey, authMessage(nonce, conn.nick, id.spki, relayName ?? '', new Uint8Array(0)));
}

/** A valid instance of every relay frame, as a client could put it on the wire. */
function sample(type: RelayFrame['type'], conn: Conn): RelayFrame {
  const k32 = new Uint8Array(32).fill(7);
  switch (type) {
    case 'HELLO':
      return frame('HELLO', { version: 2, nick: conn.nick, key: id.spki });
    case 'CHALLENGE':
      return frame('CHALLENGE', { version: 2, nonce: k32, relay: 'r' });
    case 'AUTH':
      return frame('AUTH', { sig: sig(conn) });
    case 'WELCOME':
      return frame('WELCOME', { idle_ms: 1000, max_frame: 65536, room_size: 2, rate: 10 });
    case 'JOIN':
      return frame('JOIN', { room: `room-${conn.nick}` });
    case 'JOINED':
      return frame('JOINED', { room: 'r', epoch: 1, members: [] });
    case 'PEER_JOINED':
      return frame('PEER_JOINED', { nick: 'x', key: id.spki, epoch: 2 });
    case 'PEER_LEFT':
      return frame('PEER_LEFT', { nick: 'x', epoch: 3 });
    case 'SEND':
      return frame('SEND', { to: 'nobody', body: k32 });
    case 'DELIVER':
      return frame('DELIVER', { from: 'x', body: k32 });
    case 'LEAVE':
      return frame('LEAVE', {});
    case 'LEFT':
      return frame('LEFT', {});
    case 'PING':
      return frame('PING', { n: 7 });
    case 'PONG':
      return frame('PONG', { n: 7 });
    case 'ERROR':
      return frame('ERROR', { code: 18, detail: '' });
    case 'RECOVER':
      // A free nickname: RECOVER binds it with the new commitment (§7.5), whatever the code.
      return frame('RECOVER', {
        sig: sig(conn),
        code: new Uint8Array(16).fill(3),
        commit: k32,
      });
    case 'SET_RECOVERY':
      return frame('SET_RECOVERY', { commit: k32 });
    case 'RECOVERY_SET':
      return frame('RECOVERY_SET', {});
  }
}

/** A step that only `state` accepts, proving the relay holds the connection there (the model judges the answer). */
async function probe(t: Test, state: ServerState, conn: Conn): Promise<void> {
  const probes: Partial<Record<ServerState, RelayFrame>> = {
    AWAIT_AUTH: sample('AUTH', conn),
    READY: frame('JOIN', { room: `probe-${conn.nick}` }),
    IN_ROOM: frame('LEAVE', {}),
  };
  const f = probes[state];
  if (state === 'CLOSED') t.equal((await conn.c.next()).type, 'closed', 'closed without another frame');
  else if (f === undefined) t.fail(`no probe for ${state}`);
  else t.equal(await step(conn, f), undefined, `in ${state}: ${f.type} is answered as the model says`);
}

for (const state of LIVE) {
  for (const input of RELAY_FRAMES) {
    const row = serverTransition(state, input);
    const title = row === undefined ? `${input} in ${state} is not in the table: UNEXPECTED_FRAME, close` : `${input} in ${state}: ${row.action}, next ${row.next}`;
    t.test(title, async (t) => {
      const conn = await inState(state);
      const f = sample(input, conn);
      const exp = conn.model.expect(frameItem(f));
      if (row === undefined) t.match(exp, { kind: 'error', codes: ['UNEXPECTED_FRAME'] }, 'the model: UNEXPECTED_FRAME');
      else if (exp.kind === 'error') t.ok(exp.codes.every((c) => row.errors.includes(c)), `the model's refusal ${exp.codes.join('|')} is listed in the row`);
      conn.c.send(f);
      const got = await conn.c.next();
      t.equal(conn.model.observe(exp, got.type === 'closed' ? undefined : got), undefined, `the relay answers ${describe(exp)}`);
      t.equal(conn.model.ctx.state, row?.next ?? 'CLOSED', 'the model is in the next state of the row');
      await probe(t, conn.model.ctx.state, conn);
      t.same(conn.c.violations, [], 'every byte from the relay was a valid relay frame');
      conn.c.close();
    });
  }
}
