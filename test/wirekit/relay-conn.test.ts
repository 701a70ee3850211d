/**
 * The wire kit's RelayConn (src/wirekit/relay-conn.ts) on a fake byte stream: a user that drops the
 * connection on an invalid frame takes nothing after it, and the end of the connection answers every
 * wait in progress.
 */
import t from 'tap';
import { Duplex } from 'node:stream';
import { encodeWire, frame } from '../../src/codec/index.js';
import { RelayConn, type Arrival, type Invalid } from '../../src/wirekit/relay-conn.js';

/** A §3 byte stream the test feeds by hand (what the client writes is dropped). */
function fakeStream(): Duplex {
  return new Duplex({
    read() {},
    write(_c, _e, cb) {
      cb();
    },
  });
}

/** A user that drops the connection on the first invalid arrival, as the server tests' TestClient does. */
class Dropping extends RelayConn {
  invalid = 0;
  protected override handleInvalid(_a: Invalid): void {
    this.invalid++;
    this.socket.destroy();
  }
}

const left = (nick: string): Buffer => encodeWire(frame('PEER_LEFT', { nick, epoch: 1 }));
// Framed correctly (length 1), body 0xc1: a byte msgpack never uses (§4).
const badBody = Buffer.from([0, 0, 0, 1, 0xc1]);

const describe = (a: Arrival): string => (a.kind === 'frame' ? `${a.frame.type} ${(a.frame as { nick?: string }).nick}` : a.kind);

t.test('frames after an invalid one in the same chunk are not queued once the user dropped the connection', async (t) => {
  const s = fakeStream();
  const c = new Dropping({ socket: s });
  s.push(Buffer.concat([left('before'), badBody, left('after')]));
  t.same([describe(await c.arrival()), describe(await c.arrival())], ['PEER_LEFT before', 'closed']);
  t.equal(c.invalid, 1);
  t.equal(describe(await c.arrival()), 'closed', 'closed is sticky');
});

t.test('a framing error after the invalid body of the same chunk is not reported either', async (t) => {
  const s = fakeStream();
  const c = new Dropping({ socket: s });
  s.push(Buffer.concat([left('before'), badBody, Buffer.from([0xff, 0xff, 0xff, 0xff])]));
  t.equal(describe(await c.arrival()), 'PEER_LEFT before');
  t.equal(describe(await c.arrival()), 'closed');
  t.equal(c.invalid, 1);
});

t.test('the base connection queues an invalid arrival and goes on with the frames after it', async (t) => {
  const s = fakeStream();
  const c = new RelayConn({ socket: s });
  s.push(Buffer.concat([left('before'), badBody, left('after')]));
  t.same([describe(await c.arrival()), describe(await c.arrival()), describe(await c.arrival())], ['PEER_LEFT before', 'invalid', 'PEER_LEFT after']);
  c.close();
});

t.test('the end of the connection resolves every wait in progress, unbounded ones included', async (t) => {
  const s = fakeStream();
  const c = new RelayConn({ socket: s });
  const waits = [c.arrival(), c.arrival(), c.arrival()];
  // Let the three waits register before the end arrives.
  await new Promise((r) => setImmediate(r));
  s.destroy();
  t.same((await Promise.all(waits)).map(describe), ['closed', 'closed', 'closed']);
  t.equal(describe(await c.arrival()), 'closed', 'and every later one');
});
