// Nickname recovery and expiry at the relay (spec/PROTOCOL.md §7.5), over real TCP and a real SQLite
// registry: a recovery code registered with SET_RECOVERY lets a new key take the nickname over with
// RECOVER (once: the code is spent and the new commitment replaces it); without it, or with another
// code, a new key gets NICK_BOUND; an unused binding expires; the registry's list and release.
import t from 'tap';
import { join } from 'node:path';
import { frame } from '../../src/codec/index.js';
import { authMessage, pssSign } from '../../src/crypto/rsa.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { recoveryCommit } from '../../src/crypto/recovery.js';
import { sha256 } from '../../src/crypto/primitives.js';
import { recoveryCommitInput } from '../../src/crypto/recovery.js';
import { expiryPolicy, SqliteRegistry } from '../../src/server/registry.js';
import { startServer } from '../../src/server/index.js';
import { identities, TestClient, type Identity } from './helpers.js';

const [alice, lost, bob, carol] = identities(4) as [Identity, Identity, Identity, Identity];
const NO_CB = new Uint8Array(0); // plain TCP: no channel binding (§7.3)
const code = (b: number) => new Uint8Array(16).fill(b);
const commitOf = (nick: string, c: Uint8Array) => recoveryCommit(nodeBackend, nick, c);

/** HELLO, CHALLENGE, then RECOVER signed as AUTH would be; resolves with the first answer. */
async function recover(port: number, nick: string, id: Identity, c: Uint8Array, next: Uint8Array) {
  const cl = await TestClient.connect(port);
  cl.send(frame('HELLO', { version: 2, nick, key: id.spki }));
  const { nonce, relay } = await cl.expect('CHALLENGE');
  cl.send(frame('RECOVER', { sig: pssSign(id.privateKey, authMessage(nonce, nick, id.spki, relay, NO_CB)), code: c, commit: await commitOf(nick, next) }));
  return { cl, answer: await cl.next() };
}

t.test('with the code a new key takes the nickname over, once; without it, or with another code, NICK_BOUND', async (t) => {
  const file = join(t.testdir({}), 'reg.db');
  const s = await startServer({ registry: file });
  t.teardown(() => s.close());
  const first = await TestClient.connect(s.port);
  await first.auth('alice', lost);
  first.send(frame('SET_RECOVERY', { commit: await commitOf('alice', code(1)) }));
  await first.expect('RECOVERY_SET');
  first.destroy();

  // A new key by plain AUTH: refused as before.
  const plain = await TestClient.connect(s.port);
  plain.send(frame('HELLO', { version: 2, nick: 'alice', key: alice.spki }));
  const { nonce, relay } = await plain.expect('CHALLENGE');
  plain.send(frame('AUTH', { sig: pssSign(alice.privateKey, authMessage(nonce, 'alice', alice.spki, relay, NO_CB)) }));
  t.equal(await plain.expectError(), 'NICK_BOUND', 'AUTH with a new key: NICK_BOUND');

  const wrong = await recover(s.port, 'alice', alice, code(2), code(3));
  t.match(wrong.answer, { type: 'ERROR', code: 9 }, 'RECOVER with another code: NICK_BOUND');
  t.equal(await wrong.cl.next(), 'closed');

  const right = await recover(s.port, 'alice', alice, code(1), code(4));
  t.match(right.answer, { type: 'WELCOME' }, 'RECOVER with the code: WELCOME');
  right.cl.destroy();

  const again = await recover(s.port, 'alice', bob, code(1), code(5));
  t.match(again.answer, { type: 'ERROR', code: 9 }, 'the spent code releases nothing any more');
  const old = await TestClient.connect(s.port);
  old.send(frame('HELLO', { version: 2, nick: 'alice', key: lost.spki }));
  const ch = await old.expect('CHALLENGE');
  old.send(frame('AUTH', { sig: pssSign(lost.privateKey, authMessage(ch.nonce, 'alice', lost.spki, ch.relay, NO_CB)) }));
  t.equal(await old.expectError(), 'NICK_BOUND', 'the old key is refused now');
  const now = await TestClient.connect(s.port);
  await now.auth('alice', alice);
  t.pass('the new key logs in with AUTH');
  now.destroy();
  const next = await recover(s.port, 'alice', carol, code(4), code(6));
  t.match(next.answer, { type: 'WELCOME' }, 'the fresh code registered by the takeover releases it');
  next.cl.destroy();
});

t.test('RECOVER of a free nickname binds it with the commitment; a bound one without commitment is NICK_BOUND', async (t) => {
  const s = await startServer({});
  t.teardown(() => s.close());
  const free = await recover(s.port, 'dave', alice, code(7), code(8));
  t.match(free.answer, { type: 'WELCOME' });
  free.cl.destroy();
  const moved = await recover(s.port, 'dave', bob, code(8), code(9));
  t.match(moved.answer, { type: 'WELCOME' }, 'the commitment sent with it was registered');
  moved.cl.destroy();
  const c = await TestClient.connect(s.port);
  await c.auth('erin', alice);
  c.destroy();
  const none = await recover(s.port, 'erin', bob, code(0), code(1));
  t.match(none.answer, { type: 'ERROR', code: 9 }, 'no commitment registered: nothing releases it');
});

t.test('SET_RECOVERY for a nickname taken over since AUTH: NICK_BOUND', async (t) => {
  const s = await startServer({});
  t.teardown(() => s.close());
  const a = await TestClient.connect(s.port);
  await a.auth('frank', lost);
  a.send(frame('SET_RECOVERY', { commit: await commitOf('frank', code(1)) }));
  await a.expect('RECOVERY_SET');
  const moved = await recover(s.port, 'frank', alice, code(1), code(2));
  t.match(moved.answer, { type: 'WELCOME' });
  a.send(frame('SET_RECOVERY', { commit: await commitOf('frank', code(3)) }));
  t.equal(await a.expectError(), 'NICK_BOUND', 'the old key can no longer register a code');
});

t.test('a binding unused for the expiry is free for another key; the same key keeps it', async (t) => {
  const s = await startServer({ bindingExpiryMs: 300 });
  t.teardown(() => s.close());
  const a = await TestClient.connect(s.port);
  await a.auth('gina', alice);
  a.destroy();
  const early = await TestClient.connect(s.port);
  early.send(frame('HELLO', { version: 2, nick: 'gina', key: bob.spki }));
  const ch = await early.expect('CHALLENGE');
  early.send(frame('AUTH', { sig: pssSign(bob.privateKey, authMessage(ch.nonce, 'gina', bob.spki, ch.relay, NO_CB)) }));
  t.equal(await early.expectError(), 'NICK_BOUND', 'within the expiry: NICK_BOUND');
  t.equal(await s.bindings(), 1);
  await new Promise((r) => setTimeout(r, 400));
  t.equal(await s.bindings(), 0, 'expired bindings are not counted');
  const same = await TestClient.connect(s.port);
  await same.auth('gina', alice);
  t.pass('the same key renews its expired binding');
  same.destroy();
  await new Promise((r) => setTimeout(r, 400));
  const other = await TestClient.connect(s.port);
  await other.auth('gina', bob);
  t.pass('after the expiry another key takes it');
  other.destroy();
});

t.test('registry: recover, setRecovery, list and release; commitments compared exactly', async (t) => {
  const r = await SqliteRegistry.open(':memory:', { expiryMs: 60_000 });
  t.teardown(() => r.close());
  const c1 = sha256(recoveryCommitInput('hana', code(1)));
  t.equal(await r.bind('hana', alice.spki), 'bound');
  t.equal(await r.setRecovery('hana', bob.spki, c1), false, 'only the bound key registers a commitment');
  t.equal(await r.setRecovery('hana', alice.spki, c1), true);
  const flipped = Uint8Array.from(c1);
  flipped[31]! ^= 1;
  t.equal(await r.recover('hana', bob.spki, flipped, c1), 'mismatch', 'one bit off: mismatch');
  t.equal(await r.recover('hana', bob.spki, c1, flipped), 'recovered');
  t.same(await r.lookup('hana'), bob.spki);
  t.equal(await r.bind('ivan', carol.spki), 'bound');
  const rows = await r.list();
  t.same(rows.map((x) => [x.nick, x.recovery, x.expired]), [['hana', true, false], ['ivan', false, false]]);
  t.same(rows[0]!.spki, bob.spki);
  t.ok(rows[0]!.usedAt >= rows[0]!.boundAt);
  t.equal(await r.release('hana'), true);
  t.equal(await r.release('hana'), false, 'nothing left to release');
  t.equal(await r.lookup('hana'), undefined);
  t.equal(await r.bind('hana', alice.spki), 'bound', 'a released nickname is free');
});

t.test('expiry policy: touch interval bounded by BINDING_TOUCH_MS and expiry / 8; bad values refused', async (t) => {
  t.same(expiryPolicy(800), { expiryMs: 800, touchMs: 100 });
  t.equal(expiryPolicy().touchMs, 3600000);
  t.equal(expiryPolicy(1).touchMs, 1);
  t.throws(() => expiryPolicy(0), RangeError);
  t.throws(() => expiryPolicy(1.5), RangeError);
});

t.test('a registry written by a version 1 relay gains the new columns and keeps its bindings', async (t) => {
  const file = join(t.testdir({}), 'v1.db');
  const { createRequire } = await import('node:module');
  const Database = createRequire(import.meta.url)('better-sqlite3') as new (f: string) => { exec(s: string): void; prepare(s: string): { run(...a: unknown[]): void }; close(): void };
  const db = new Database(file);
  db.exec('CREATE TABLE nick_binding (nick TEXT PRIMARY KEY NOT NULL, spki BLOB NOT NULL, bound_at INTEGER NOT NULL) STRICT');
  db.prepare('INSERT INTO nick_binding VALUES (?, ?, ?)').run('old', Buffer.from(alice.spki), Date.now());
  db.close();
  const r = await SqliteRegistry.open(file);
  t.teardown(() => r.close());
  t.equal(await r.bind('old', alice.spki), 'known');
  t.equal(await r.bind('old', bob.spki), 'mismatch');
  t.same((await r.list()).map((x) => [x.nick, x.recovery]), [['old', false]]);
  await t.rejects(SqliteRegistry.open(join(t.testdir({}), 'missing.db'), { create: false }), 'create: false refuses a missing file');
});
