// Quotas (spec §7.1 "Quotas", §10), against the real relay over loopback: connections per key, per
// nickname and per subnet; new nickname bindings per key, per address and per relay; JOIN churn and the
// byte rate per connection; and the connection hog of issue 12 (one key from many loopback addresses)
// while a fresh user still gets WELCOME. Each refusal is asserted by its code.
import t, { type Test } from 'tap';
import { authMessage, pssSign } from '../../src/crypto/rsa.js';
import { encodeWire, frame } from '../../src/codec/index.js';
import { startServer, type ServerOptions } from '../../src/server/index.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { errorNameOf, identities, TestClient, type Identity } from './helpers.js';

const [alice, bob, carol, hog] = identities(4) as [Identity, Identity, Identity, Identity];

async function withServer(t: Test, opts: ServerOptions = {}) {
  const s = await startServer(opts);
  t.teardown(() => s.close());
  return s;
}

/** HELLO and AUTH; resolves with 'WELCOME' or the refusal's code name. */
async function tryAuth(port: number, nick: string, id: Identity, from?: string): Promise<{ c: TestClient; got: string | number }> {
  const c = await TestClient.connect(port, from);
  c.send(frame('HELLO', { version: 2, nick, key: id.spki }));
  const ch = await c.next();
  if (ch === 'closed') return { c, got: 'closed' };
  if (ch.type === 'ERROR') return { c, got: ch.code };
  if (ch.type !== 'CHALLENGE') return { c, got: ch.type };
  c.send(frame('AUTH', { sig: pssSign(id.privateKey, authMessage(ch.nonce, nick, id.spki, ch.relay, new Uint8Array(0))) }));
  const w = await c.next();
  if (w === 'closed') return { c, got: 'closed' };
  return { c, got: w.type === 'ERROR' ? errorNameOf(w.code) : w.type };
}

t.test('connections per key at the defaults: the fifth AUTH of one key is TOO_MANY_CONNECTIONS, another key still gets WELCOME; a slot freed is usable again', async (t) => {
  t.equal(LIMITS.MAX_CONNECTIONS_PER_KEY, 4, 'issue 12: 4 by default');
  const s = await withServer(t);
  const held: TestClient[] = [];
  for (let i = 0; i < LIMITS.MAX_CONNECTIONS_PER_KEY; i++) {
    const r = await tryAuth(s.port, `a${i}`, alice);
    t.equal(r.got, 'WELCOME', `connection ${i + 1} of the key`);
    held.push(r.c);
  }
  t.equal((await tryAuth(s.port, 'a9', alice)).got, 'TOO_MANY_CONNECTIONS');
  t.equal((await tryAuth(s.port, 'b0', bob)).got, 'WELCOME', 'another key is not affected');
  held[0]!.destroy();
  await new Promise((r) => setTimeout(r, 50));
  t.equal((await tryAuth(s.port, 'a9', alice)).got, 'WELCOME');
});

t.test('connections per nickname', async (t) => {
  const s = await withServer(t, { maxConnectionsPerNick: 2, maxConnectionsPerKey: 10 });
  t.equal((await tryAuth(s.port, 'alice', alice)).got, 'WELCOME');
  t.equal((await tryAuth(s.port, 'alice', alice)).got, 'WELCOME');
  t.equal((await tryAuth(s.port, 'alice', alice)).got, 'TOO_MANY_CONNECTIONS');
  t.equal((await tryAuth(s.port, 'alice2', alice)).got, 'WELCOME', 'the same key under another nickname');
});

t.test('new bindings per key: past the quota RATE_LIMITED; bound nicknames and other keys still pass', async (t) => {
  const s = await withServer(t, { bindsPerKey: 3, maxConnectionsPerKey: 100 });
  for (let i = 0; i < 3; i++) t.equal((await tryAuth(s.port, `k${i}`, alice)).got, 'WELCOME');
  t.equal((await tryAuth(s.port, 'k3', alice)).got, 'RATE_LIMITED');
  t.equal((await tryAuth(s.port, 'k0', alice)).got, 'WELCOME', 'a returning nickname costs no binding');
  t.equal((await tryAuth(s.port, 'bob', bob)).got, 'WELCOME');
  t.equal((await tryAuth(s.port, 'k3', alice)).got, 'RATE_LIMITED', 'a refusal consumed nothing but is still refused');
});

t.test('new bindings per address and per relay', async (t) => {
  const s = await withServer(t, { bindsPerAddress: 2, maxConnectionsPerKey: 100 });
  t.equal((await tryAuth(s.port, 'p0', alice, '127.0.0.2')).got, 'WELCOME');
  t.equal((await tryAuth(s.port, 'p1', bob, '127.0.0.2')).got, 'WELCOME');
  t.equal((await tryAuth(s.port, 'p2', carol, '127.0.0.2')).got, 'RATE_LIMITED', 'a third key from the same address');
  t.equal((await tryAuth(s.port, 'p2', carol, '127.0.0.3')).got, 'WELCOME', 'from another address');
  const r = await withServer(t, { bindsPerRelay: 2, maxConnectionsPerKey: 100 });
  t.equal((await tryAuth(r.port, 'q0', alice, '127.0.0.2')).got, 'WELCOME');
  t.equal((await tryAuth(r.port, 'q1', bob, '127.0.0.3')).got, 'WELCOME');
  t.equal((await tryAuth(r.port, 'q2', carol, '127.0.0.4')).got, 'RATE_LIMITED', 'relay-wide, whatever the address');
  t.equal((await tryAuth(r.port, 'q0', alice, '127.0.0.5')).got, 'WELCOME', 'bound nicknames still authenticate');
});

t.test('connections per IPv4 /24 beside the per-address cap', async (t) => {
  const s = await withServer(t, { maxConnectionsPerSubnet: 3 });
  const open: TestClient[] = [];
  for (const a of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) open.push(await TestClient.connect(s.port, a));
  const over = await TestClient.connect(s.port, '127.0.0.5');
  t.equal(await over.expectError(), 'TOO_MANY_CONNECTIONS', 'a fourth address of the same /24');
  for (const c of open) c.destroy();
});

t.test('JOIN churn per connection: past JOINS_PER_MINUTE the JOIN is RATE_LIMITED', async (t) => {
  const s = await withServer(t, { joinsPerMinute: 3 });
  const c = await TestClient.connect(s.port);
  await c.auth('alice', alice);
  for (let i = 0; i < 3; i++) {
    c.send(frame('JOIN', { room: 'r' }));
    await c.expect('JOINED');
    c.send(frame('LEAVE', {}));
    await c.expect('LEFT');
  }
  c.send(frame('JOIN', { room: 'r' }));
  t.equal(await c.expectError(), 'RATE_LIMITED');
});

t.test('the byte rate beside the frame rate: small frames within the frame rate still hit the byte budget', async (t) => {
  const s = await withServer(t, { rateBytesPerSecond: 1, rateBurstBytes: 65536, rateBurst: 1_000_000, rateFramesPerSecond: 1_000_000 });
  const c = await TestClient.connect(s.port);
  await c.auth('alice', alice);
  const ping = encodeWire(frame('PING', { n: 1 }));
  c.raw(Buffer.concat(Array.from({ length: Math.ceil(65536 / ping.length) + 10 }, () => ping)));
  const frames = await c.drainUntilClosed();
  const last = frames.at(-1);
  t.ok(frames.length > 1000, 'PONGs for the pings within the budget');
  t.equal(last?.type === 'ERROR' ? last.code : undefined, 14, 'then ERROR RATE_LIMITED (14)');
});

t.test('a connection hog: one key from 16 loopback addresses gets MAX_CONNECTIONS_PER_KEY connections, a fresh user still gets WELCOME', async (t) => {
  const s = await withServer(t);
  const cap = LIMITS.MAX_CONNECTIONS_PER_KEY;
  const results: (string | number)[] = [];
  const clients: TestClient[] = [];
  for (let a = 2; a < 18; a++) {
    const tries = await Promise.all(Array.from({ length: Math.ceil((cap + 16) / 16) }, () => tryAuth(s.port, 'hog', hog, `127.0.0.${a}`)));
    for (const r of tries) {
      results.push(r.got);
      clients.push(r.c);
    }
  }
  t.equal(results.filter((r) => r === 'WELCOME').length, cap, 'the hog holds MAX_CONNECTIONS_PER_KEY connections');
  t.equal(results.filter((r) => r === 'TOO_MANY_CONNECTIONS').length, results.length - cap, 'every other AUTH is refused');
  t.ok(results.length > cap);
  t.equal((await tryAuth(s.port, 'fresh', alice)).got, 'WELCOME', 'a fresh user still gets in');
  for (const c of clients) c.destroy();
});
