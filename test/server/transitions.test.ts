// Every (state, frame) pair of the relay's per-connection machine (spec/PROTOCOL.md §7.1), over real TCP:
// a pair in the table produces its action and lands in the listed next state (checked by a probe that
// only that state accepts); a pair not in the table is ERROR UNEXPECTED_FRAME and the connection closes.
import t, { type Test } from 'tap';
import { frame, type Frame, type RelayFrame } from '../../src/codec/index.js';
import { FRAMES, type FrameName } from '../../src/protocol/frames.js';
import { authMessage, pssSign } from '../../src/crypto/rsa.js';
import { startServer } from '../../src/server/index.js';
import { serverTransition, type ServerState } from '../../src/protocol/relay-machine.js';
import { identities, TestClient } from './helpers.js';

const [id] = identities(1) as [ReturnType<typeof identities>[number]];
const server = await startServer({ maxConnectionsPerAddress: 1000 });
t.teardown(() => server.close());

const RELAY_FRAMES = (Object.keys(FRAMES) as FrameName[]).filter((n) => FRAMES[n].layer === 'relay') as RelayFrame['type'][];
const LIVE: ServerState[] = ['AWAIT_HELLO', 'AWAIT_AUTH', 'READY', 'IN_ROOM'];
t.equal(RELAY_FRAMES.length, 18, 'every relay frame of the catalogue is an input');

let serial = 0;

interface Conn {
  c: TestClient;
  nick: string;
  nonce: Uint8Array | undefined;
}

/** A connection driven into `state` by the table's own success paths. */
async function inState(state: ServerState): Promise<Conn> {
  const nick = `n${++serial}`;
  const c = await TestClient.connect(server.port);
  const conn: Conn = { c, nick, nonce: undefined };
  if (state === 'AWAIT_HELLO') return conn;
  c.send(frame('HELLO', { version: 2, nick, key: id.spki }));
  conn.nonce = (await c.expect('CHALLENGE')).nonce;
  if (state === 'AWAIT_AUTH') return conn;
  c.send(frame('AUTH', { sig: pssSign(id.privateKey, authMessage(conn.nonce, nick, id.spki, server.relayName, new Uint8Array(0))) }));
  await c.expect('WELCOME');
  conn.nonce = undefined;
  if (state === 'READY') return conn;
  c.send(frame('JOIN', { room: `room-${nick}` }));
  await c.expect('JOINED');
  return conn;
}

/** A valid instance of every relay frame, as a client could put it on the wire. */
function sample(type: RelayFrame['type'], conn: Conn): Frame {
  const k32 = new Uint8Array(32).fill(7);
  switch (type) {
    case 'HELLO':
      return frame('HELLO', { version: 2, nick: conn.nick, key: id.spki });
    case 'CHALLENGE':
      return frame('CHALLENGE', { version: 2, nonce: k32, relay: 'r' });
    case 'AUTH':
      return frame('AUTH', {
        sig: conn.nonce === undefined ? new Uint8Array(256).fill(1) : pssSign(id.privateKey, authMessage(conn.nonce, conn.nick, id.spki, server.relayName, new Uint8Array(0))),
      });
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
        sig: conn.nonce === undefined ? new Uint8Array(256).fill(1) : pssSign(id.privateKey, authMessage(conn.nonce, conn.nick, id.spki, server.relayName, new Uint8Array(0))),
        code: new Uint8Array(16).fill(3),
        commit: k32,
      });
    case 'SET_RECOVERY':
      return frame('SET_RECOVERY', { commit: k32 });
    case 'RECOVERY_SET':
      return frame('RECOVERY_SET', {});
  }
}

/** What the relay answers when the row's action succeeds (or, for SEND to a non-member, its refusal). */
async function checkAction(t: Test, type: RelayFrame['type'], conn: Conn, errors: readonly string[]): Promise<void> {
  const c = conn.c;
  switch (type) {
    case 'HELLO':
      conn.nonce = (await c.expect('CHALLENGE')).nonce;
      t.equal(conn.nonce.length, 32, 'CHALLENGE carries a 32-byte nonce');
      return;
    case 'AUTH':
    case 'RECOVER':
      await c.expect('WELCOME');
      conn.nonce = undefined;
      t.pass('WELCOME');
      return;
    case 'SET_RECOVERY':
      await c.expect('RECOVERY_SET');
      t.pass('RECOVERY_SET');
      return;
    case 'JOIN':
      t.equal((await c.expect('JOINED')).room, `room-${conn.nick}`);
      return;
    case 'PING':
      t.equal((await c.expect('PONG')).n, 7, 'PONG echoes n');
      return;
    case 'SEND': {
      // No other member is called "nobody": the listed refusal, which does not close.
      const code = await c.expectError();
      t.equal(code, 'NO_SUCH_PEER');
      t.ok(errors.includes('NO_SUCH_PEER'), 'the refusal is listed in the row');
      return;
    }
    case 'LEAVE':
      await c.expect('LEFT');
      t.pass('LEFT');
      return;
    case 'ERROR':
      return; // an ERROR is never answered; the probe for CLOSED checks the close
    default:
      t.fail(`no expectation written for ${type}`);
  }
}

/** A step that only `state` accepts, proving the connection is in it. */
async function probe(t: Test, state: ServerState, conn: Conn): Promise<void> {
  const c = conn.c;
  switch (state) {
    case 'AWAIT_AUTH':
      c.send(sample('AUTH', conn));
      await c.expect('WELCOME');
      t.pass('in AWAIT_AUTH: a correct AUTH is welcomed');
      return;
    case 'READY':
      c.send(frame('JOIN', { room: `probe-${conn.nick}` }));
      await c.expect('JOINED');
      t.pass('in READY: JOIN is accepted');
      return;
    case 'IN_ROOM':
      c.send(frame('LEAVE', {}));
      await c.expect('LEFT');
      t.pass('in IN_ROOM: LEAVE is accepted');
      return;
    case 'CLOSED':
      t.equal(await c.next(), 'closed', 'closed without another frame');
      return;
    default:
      t.fail(`no probe for ${state}`);
  }
}

for (const state of LIVE) {
  for (const input of RELAY_FRAMES) {
    const row = serverTransition(state, input);
    const title = row === undefined ? `${input} in ${state} is not in the table: UNEXPECTED_FRAME, close` : `${input} in ${state}: ${row.action}, next ${row.next}`;
    t.test(title, async (t) => {
      const conn = await inState(state);
      conn.c.send(sample(input, conn));
      if (row === undefined) {
        t.equal(await conn.c.expectError(), 'UNEXPECTED_FRAME');
        t.equal(await conn.c.next(), 'closed');
      } else {
        await checkAction(t, input, conn, row.errors);
        await probe(t, row.next, conn);
      }
      conn.c.destroy();
    });
  }
}
