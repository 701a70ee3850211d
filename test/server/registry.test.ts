// The nickname registry behind its async interface (spec §7.1 "Nickname binding"): first key wins,
// constant-time comparison, concurrent binds of one nickname decide once, bindings survive a restart
// and a crash of the relay right after WELCOME (issue 12: writes off the event loop, durability kept).
import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { frame } from '../../src/codec/index.js';
import { authMessage, pssSign } from '../../src/crypto/rsa.js';
import { sameKey, SqliteRegistry } from '../../src/server/registry.js';
import { startServer } from '../../src/server/index.js';
import { identities, TestClient, type Identity } from './helpers.js';

const [alice, bob] = identities(2) as [Identity, Identity];
const MAIN = join(fileURLToPath(new URL('../..', import.meta.url)), 'dist', 'src', 'cli', 'main.js');

t.test('bind: bound, then known for the same key, mismatch for another; lookup returns the bound key', async (t) => {
  const r = await SqliteRegistry.open(':memory:');
  t.teardown(() => r.close());
  t.equal(await r.lookup('alice'), undefined);
  t.equal(await r.bind('alice', alice.spki), 'bound');
  t.equal(await r.bind('alice', alice.spki), 'known');
  t.equal(await r.bind('alice', bob.spki), 'mismatch');
  t.same(await r.lookup('alice'), alice.spki);
  t.equal(await r.count(), 1);
});

t.test('concurrent binds of one nickname with different keys: exactly one is bound (one batch, one commit)', async (t) => {
  const dir = t.testdir({});
  const r = await SqliteRegistry.open(join(dir, 'reg.db'));
  t.teardown(() => r.close());
  const keys = [alice.spki, bob.spki];
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => r.bind(i % 2 === 0 ? 'x' : `n${i}`, keys[(i >> 1) % 2]!)));
  const forX = results.filter((_, i) => i % 2 === 0);
  t.equal(forX.filter((x) => x === 'bound').length, 1, 'one bind of x wins');
  t.equal(forX.filter((x) => x === 'bound' || x === 'known' || x === 'mismatch').length, 20);
  t.equal(results.filter((_, i) => i % 2 === 1).every((x) => x === 'bound'), true, 'distinct nicknames all bind');
  t.equal(await r.count(), 21);
});

t.test('bindings survive close and reopen; close is idempotent and later calls reject', async (t) => {
  const file = join(t.testdir({}), 'sub', 'reg.db');
  const r = await SqliteRegistry.open(file);
  t.equal(await r.bind('alice', alice.spki), 'bound');
  await r.close();
  await r.close();
  await t.rejects(r.bind('bob', bob.spki));
  await t.rejects(r.count());
  const again = await SqliteRegistry.open(file);
  t.teardown(() => again.close());
  t.equal(await again.bind('alice', bob.spki), 'mismatch');
  t.equal(await again.bind('alice', alice.spki), 'known');
});

t.test('an unusable path fails open, not the first AUTH', async (t) => {
  const dir = t.testdir({ file: 'x' });
  await t.rejects(SqliteRegistry.open(join(dir, 'file', 'reg.db')));
});

t.test('sameKey compares equal-length keys by content and unequal lengths as different', async (t) => {
  t.equal(sameKey(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), true);
  t.equal(sameKey(Uint8Array.of(1, 2), Uint8Array.of(1, 3)), false);
  t.equal(sameKey(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 3)), false);
});

t.test('a relay given its own Registry uses it and leaves it open at close', async (t) => {
  const r = await SqliteRegistry.open(':memory:');
  t.teardown(() => r.close());
  const s = await startServer({ registry: r });
  const c = await TestClient.connect(s.port);
  await c.auth('alice', alice);
  await s.close();
  t.same(await r.lookup('alice'), alice.spki, 'the binding went to the given registry');
  t.equal(await r.bind('bob', bob.spki), 'bound', 'still open after the relay closed');
});

t.test('a binding confirmed by WELCOME survives SIGKILL of the relay right after it', async (t) => {
  const file = join(t.testdir({}), 'reg.db');
  const start = () =>
    new Promise<{ port: number; kill: () => Promise<void> }>((resolve, reject) => {
      const child = spawn(process.execPath, [MAIN, 'server', '--port', '0', '--registry', file], { stdio: ['ignore', 'pipe', 'ignore'] });
      t.teardown(() => void child.kill('SIGKILL'));
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on [^:]+:(\d+)\n/.exec(out);
        if (m !== null) resolve({ port: Number(m[1]), kill: () => new Promise((res) => (child.once('exit', () => res()), child.kill('SIGKILL'))) });
      });
      child.once('exit', (code) => reject(new Error(`relay exited ${String(code)}`)));
    });
  const first = await start();
  const a = await TestClient.connect(first.port);
  await a.auth('alice', alice);
  await first.kill(); // no shutdown, no checkpoint: only what was committed before WELCOME remains
  const second = await start();
  const other = await TestClient.connect(second.port);
  other.send(frame('HELLO', { version: 2, nick: 'alice', key: bob.spki }));
  const ch = await other.expect('CHALLENGE');
  other.send(frame('AUTH', { sig: pssSign(bob.privateKey, authMessage(ch.nonce, 'alice', bob.spki, ch.relay, new Uint8Array(0))) }));
  t.equal(await other.expectError(), 'NICK_BOUND', 'another key for the welcomed nickname is refused');
  const c = await TestClient.connect(second.port);
  t.equal((await c.auth('alice', alice)).type, 'WELCOME', 'the welcomed key still authenticates');
  await second.kill();
});
