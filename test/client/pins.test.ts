/** Trust-on-first-use pin store (src/client/pins.ts): first sight, match, change, verify, persistence. */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PinStore, PinStoreError, PINS_FILE } from '../../src/client/pins.js';
import { generateIdentity } from '../../src/crypto/rsa.js';
import { fingerprint } from '../../src/crypto/safety.js';

const k1 = generateIdentity().spki;
const k2 = generateIdentity().spki;

function home(t: { teardown(f: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'e2ee-pins-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test('first key is new, the same key matches, another key is a change naming both fingerprints', async (t) => {
  const s = PinStore.load(home(t));
  t.same(s.check('h:1', 'bob', k1), { status: 'new' });
  s.pin('h:1', 'bob', k1);
  t.same(s.check('h:1', 'bob', k1), { status: 'match', verified: false });
  const c = s.check('h:1', 'bob', k2);
  t.equal(c.status, 'changed');
  if (c.status === 'changed') {
    t.equal(c.pinnedFingerprint, fingerprint(k1));
    t.equal(c.offeredFingerprint, fingerprint(k2));
  }
  t.same(s.check('h:2', 'bob', k2), { status: 'new' }, 'pins are per server (host:port as given)');
  t.same(s.check('h:1', 'carol', k1), { status: 'new' }, 'and per nickname');
});

t.test('verify marks a pin; re-pinning another key drops the mark; same key keeps it', async (t) => {
  const s = PinStore.memory();
  t.notOk(s.verify('h', 'bob'), 'nothing to verify');
  s.pin('h', 'bob', k1);
  t.ok(s.verify('h', 'bob'));
  t.same(s.check('h', 'bob', k1), { status: 'match', verified: true });
  s.pin('h', 'bob', k1);
  t.equal(s.get('h', 'bob')?.verified, true, 'same key keeps verified');
  s.pin('h', 'bob', k2);
  t.same(s.check('h', 'bob', k2), { status: 'match', verified: false }, 'a new key starts unverified');
});

t.test('pins persist across loads, in a 0600 file', async (t) => {
  const dir = home(t);
  const a = PinStore.load(dir);
  a.pin('127.0.0.1:55555', 'bob', k1);
  a.verify('127.0.0.1:55555', 'bob');
  t.equal(statSync(join(dir, PINS_FILE)).mode & 0o777, 0o600);
  const b = PinStore.load(dir);
  t.same(b.check('127.0.0.1:55555', 'bob', k1), { status: 'match', verified: true });
  t.same(b.get('127.0.0.1:55555', 'bob')?.key, k1);
  t.notOk(readFileSync(join(dir, PINS_FILE), 'utf8').includes('PRIVATE'), 'public keys only');
});

t.test('a damaged pin file is refused, not treated as empty', async (t) => {
  const cases: [string, string][] = [
    ['not JSON', '{'],
    ['wrong format tag', JSON.stringify({ format: 'other', servers: {} })],
    ['extra top-level field', JSON.stringify({ format: 'e2ee-chat pins v1', servers: {}, x: 1 })],
    ['key not hex', JSON.stringify({ format: 'e2ee-chat pins v1', servers: { h: { bob: { key: 'zz', verified: false } } } })],
    ['verified not boolean', JSON.stringify({ format: 'e2ee-chat pins v1', servers: { h: { bob: { key: 'ab', verified: 1 } } } })],
    ['server not an object', JSON.stringify({ format: 'e2ee-chat pins v1', servers: { h: [] } })],
  ];
  for (const [name, text] of cases) {
    const dir = home(t);
    writeFileSync(join(dir, PINS_FILE), text);
    t.throws(() => PinStore.load(dir), PinStoreError, name);
  }
});
