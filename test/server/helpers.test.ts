/**
 * The server tests' TestClient (test/server/helpers.ts) on bytes from a stand-in relay on 127.0.0.1:
 * 'closed' only for a connection the server closed cleanly; bytes that are not valid relay frames make
 * `next()` reject, so a test that expects 'closed' (a refusal, a join that is never answered) cannot pass
 * on garbage.
 */
import t from 'tap';
import { createServer, type Server, type Socket } from 'node:net';
import { encodeWire, frame } from '../../src/codec/index.js';
import { TestClient } from './helpers.js';

/** A one-connection stand-in relay that writes `bytes` then ends the connection. */
async function standIn(bytes: Buffer): Promise<{ port: number; server: Server }> {
  const server = createServer((s: Socket) => s.end(bytes));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  if (a === null || typeof a === 'string') throw new Error('no port');
  return { port: a.port, server };
}

const peerLeft = encodeWire(frame('PEER_LEFT', { nick: 'alice', epoch: 1 }));
// A length prefix of 1 and body 0xc1, a byte msgpack never uses (§4): framed correctly, not a frame.
const badBody = Buffer.from([0, 0, 0, 1, 0xc1]);

t.test('a clean close after a frame is the frame, then closed', async (t) => {
  const { port, server } = await standIn(peerLeft);
  t.teardown(() => server.close());
  const c = await TestClient.connect(port);
  t.equal((await c.expect('PEER_LEFT')).nick, 'alice');
  t.equal(await c.next(), 'closed');
  t.equal(await c.next(), 'closed', 'closed is sticky');
});

t.test('an invalid body makes next() reject instead of resolving closed', async (t) => {
  const { port, server } = await standIn(Buffer.concat([peerLeft, badBody]));
  t.teardown(() => server.close());
  const c = await TestClient.connect(port);
  t.equal((await c.expect('PEER_LEFT')).nick, 'alice', 'the frame before the invalid one still arrives');
  await t.rejects(c.next());
  t.ok(c.streamError);
  await t.rejects(c.drainUntilClosed(), 'drainUntilClosed does not take garbage for a close');
});

t.test('broken framing (a length over the limit) makes next() reject', async (t) => {
  const { port, server } = await standIn(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  t.teardown(() => server.close());
  const c = await TestClient.connect(port);
  await t.rejects(c.next());
});
