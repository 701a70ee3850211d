/**
 * The cluster's nickname registry in a real Redis (spec/PROTOCOL.md §7.5, spec/CLUSTER.md §1): a code
 * registered through one relay lets a new key take the nickname over through another, once; without it
 * NICK_BOUND; expiry; the operator's list and release on a separate connection, seen by the relays at
 * once; commitments compared exactly in the script.
 */
import t from 'tap';
import { frame } from '../../src/codec/index.js';
import { RedisCluster } from '../../src/cluster/redis.js';
import { RedisRegistry } from '../../src/cluster/registry.js';
import { authMessage, pssSign } from '../../src/crypto/rsa.js';
import { sha256 } from '../../src/crypto/primitives.js';
import { recoveryCommitInput } from '../../src/crypto/recovery.js';
import { startServer, type RelayServer } from '../../src/server/index.js';
import { identities, TestClient, type Identity } from '../server/helpers.js';
import { TestRedis } from './redis-helper.js';

const redis = await TestRedis.start();
t.teardown(() => redis.stop());
const [K1, K2, K3] = identities(3) as [Identity, Identity, Identity];
const code = (b: number) => new Uint8Array(16).fill(b);
const commit = (nick: string, c: Uint8Array) => sha256(recoveryCommitInput(nick, c));

async function relay(bindingExpiryMs?: number): Promise<RelayServer> {
  const cluster = await RedisCluster.connect<object>(redis.url, { maxRoomSize: 2, bindingExpiryMs });
  return startServer({ port: 0, registry: cluster, rooms: cluster });
}

async function recoverAt(port: number, nick: string, id: Identity, c: Uint8Array, next: Uint8Array) {
  const cl = await TestClient.connect(port);
  cl.send(frame('HELLO', { version: 2, nick, key: id.spki }));
  const { nonce, relay } = await cl.expect('CHALLENGE');
  cl.send(frame('RECOVER', { sig: pssSign(id.privateKey, authMessage(nonce, nick, id.spki, relay, new Uint8Array(0))), code: c, commit: commit(nick, next) }));
  const answer = await cl.next();
  cl.destroy();
  return answer;
}

async function authAt(port: number, nick: string, id: Identity) {
  const cl = await TestClient.connect(port);
  cl.send(frame('HELLO', { version: 2, nick, key: id.spki }));
  const { nonce, relay } = await cl.expect('CHALLENGE');
  cl.send(frame('AUTH', { sig: pssSign(id.privateKey, authMessage(nonce, nick, id.spki, relay, new Uint8Array(0))) }));
  const answer = await cl.next();
  cl.destroy();
  return answer;
}

t.test('takeover through another relay with the code, once; without it NICK_BOUND', async (t) => {
  const [a, b] = [await relay(), await relay()];
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const c = await TestClient.connect(a.port);
  await c.auth('ann', K1);
  c.send(frame('SET_RECOVERY', { commit: commit('ann', code(1)) }));
  await c.expect('RECOVERY_SET');
  t.match(await authAt(b.port, 'ann', K2), { type: 'ERROR', code: 9 }, 'AUTH with a new key: NICK_BOUND');
  t.match(await recoverAt(b.port, 'ann', K2, code(2), code(3)), { type: 'ERROR', code: 9 }, 'another code: NICK_BOUND');
  t.match(await recoverAt(b.port, 'ann', K2, code(1), code(3)), { type: 'WELCOME' }, 'the code: WELCOME');
  t.match(await recoverAt(a.port, 'ann', K3, code(1), code(4)), { type: 'ERROR', code: 9 }, 'the spent code: NICK_BOUND');
  t.match(await authAt(a.port, 'ann', K2), { type: 'WELCOME' }, 'the new key is the binding at every relay');
  c.send(frame('SET_RECOVERY', { commit: commit('ann', code(5)) }));
  t.equal(await c.expectError(), 'NICK_BOUND', 'the old key can no longer register a code');
  t.match(await recoverAt(a.port, 'ann', K3, code(3), code(6)), { type: 'WELCOME' }, 'the fresh code works');
});

t.test('the operator lists and releases on its own connection; the relays see it at once', async (t) => {
  const a = await relay();
  const admin = await RedisRegistry.connect(redis.url);
  t.teardown(async () => {
    await a.close();
    await admin.close();
  });
  t.match(await authAt(a.port, 'bea', K1), { type: 'WELCOME' });
  const rows = (await admin.list()).filter((r) => r.nick === 'bea');
  t.equal(rows.length, 1);
  t.same(rows[0]!.spki, K1.spki);
  t.equal(rows[0]!.recovery, false);
  t.equal(rows[0]!.expired, false);
  t.match(await authAt(a.port, 'bea', K2), { type: 'ERROR', code: 9 });
  t.equal(await admin.release('bea'), true);
  t.equal(await admin.release('bea'), false);
  t.match(await authAt(a.port, 'bea', K2), { type: 'WELCOME' }, 'released: another key binds it, no restart');
  t.same(await admin.lookup('bea'), K2.spki);
});

t.test('expiry in Redis: the same key keeps it, another takes it once unused long enough', async (t) => {
  const a = await relay(300);
  t.teardown(() => a.close());
  const before = await a.bindings();
  t.match(await authAt(a.port, 'cid', K1), { type: 'WELCOME' });
  t.match(await authAt(a.port, 'cid', K2), { type: 'ERROR', code: 9 });
  t.equal(await a.bindings(), before + 1);
  await new Promise((r) => setTimeout(r, 400));
  t.match(await authAt(a.port, 'cid', K1), { type: 'WELCOME' }, 'the same key renews it');
  await new Promise((r) => setTimeout(r, 400));
  t.match(await authAt(a.port, 'cid', K2), { type: 'WELCOME' }, 'expired: another key takes it');
});

t.test('the recovery script compares every byte: a commitment one bit off is refused', async (t) => {
  const reg = await RedisRegistry.connect(redis.url);
  t.teardown(() => reg.close());
  t.equal(await reg.bind('dan', K1.spki), 'bound');
  t.equal(await reg.setRecovery('dan', K2.spki, commit('dan', code(1))), false, 'only the bound key registers');
  t.equal(await reg.setRecovery('dan', K1.spki, commit('dan', code(1))), true);
  for (const i of [0, 15, 31]) {
    const off = Uint8Array.from(commit('dan', code(1)));
    off[i]! ^= 0x80;
    t.equal(await reg.recover('dan', K2.spki, off, commit('dan', code(2))), 'mismatch', `byte ${i} off`);
  }
  t.equal(await reg.recover('dan', K2.spki, commit('dan', code(1)), commit('dan', code(2))), 'recovered');
  t.equal(await reg.recover('eve', K3.spki, commit('eve', code(9)), commit('eve', code(8))), 'bound', 'a free nickname is bound');
});
