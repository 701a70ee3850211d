/**
 * Trust-on-first-use pin store (src/client/pins.ts, issue 14 point 2): first sight, match, change, verify;
 * SQLite persistence under the private-file rules; unverified pins bounded with LRU eviction, verified
 * pins never evicted; a flood costs the same per member at the end as at the start; a corrupt, oversized
 * or busy store degrades instead of refusing to start; the legacy pins.json imported once.
 */
import t from 'tap';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { LEGACY_PINS_FILE, MAX_UNVERIFIED_PINS, parseLegacy, PinStore, PinStoreError, PINS_DB } from '../../src/client/pins.js';
import { PrivateFileError } from '../../src/files/private.js';
import { generateIdentity } from '../../src/crypto/rsa.js';
import { fingerprint } from '../../src/crypto/safety.js';

const k1 = generateIdentity().spki;
const k2 = generateIdentity().spki;

function home(t: { teardown(f: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'e2ee-pins-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const turn = () => new Promise<void>((r) => setImmediate(r));

t.test('first key is new, the same key matches, another key is a change naming both fingerprints', async (t) => {
  const s = await PinStore.open(home(t));
  t.equal(s.mode, 'read-write');
  t.equal(s.warning, null);
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
  s.close();
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

t.test('pins persist across opens, written on the next turn, in 0600 files', async (t) => {
  const dir = home(t);
  const a = await PinStore.open(dir);
  a.pin('127.0.0.1:55555', 'bob', k1);
  a.verify('127.0.0.1:55555', 'bob');
  const early = new Database(join(dir, PINS_DB), { readonly: true });
  t.equal(early.prepare('SELECT count(*) FROM pins').pluck().get(), 0, 'not written inside the caller');
  await turn();
  t.equal(early.prepare('SELECT count(*) FROM pins').pluck().get(), 1, 'written on the next turn');
  early.close();
  for (const f of [PINS_DB, `${PINS_DB}-wal`]) t.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is 0600`);
  a.close();
  const b = await PinStore.open(dir);
  t.same(b.check('127.0.0.1:55555', 'bob', k1), { status: 'match', verified: true });
  t.same(b.get('127.0.0.1:55555', 'bob')?.key, k1);
  b.close();
  t.notOk(readFileSync(join(dir, PINS_DB)).includes('PRIVATE'), 'public keys only');
});

t.test('unverified pins are bounded, least recently used evicted first; verified pins never evicted', async (t) => {
  const dir = home(t);
  const s = await PinStore.open(dir, { maxUnverified: 3 });
  s.pin('h', 'v', k1);
  s.verify('h', 'v');
  for (const n of ['a', 'b', 'c']) s.pin('h', n, k1);
  await turn();
  s.pin('h', 'a', k1); // a session with a again: a is now the most recently used
  await turn();
  s.pin('h', 'd', k2);
  await turn();
  t.same(s.check('h', 'b', k1), { status: 'new' }, 'b, least recently used, was evicted');
  for (const n of ['a', 'c']) t.equal(s.check('h', n, k1).status, 'match', `${n} kept`);
  t.equal(s.check('h', 'd', k2).status, 'match');
  for (let i = 0; i < 20; i++) s.pin('h', `x${i}`, k2);
  await turn();
  t.same(s.check('h', 'v', k1), { status: 'match', verified: true }, 'the verified pin survives any number of new members');
  t.same(s.count(), { unverified: 3, verified: 1 });
  s.close();
  const again = await PinStore.open(dir, { maxUnverified: 3 });
  t.same(again.count(), { unverified: 3, verified: 1 }, 'the bound holds on disk');
  again.close();

  const m = PinStore.memory({ maxUnverified: 2 });
  m.pin('h', 'v', k1);
  m.verify('h', 'v');
  for (const n of ['a', 'b', 'c']) m.pin('h', n, k1);
  t.same(m.count(), { unverified: 2, verified: 1 }, 'an in-memory store is bounded the same way');
  t.equal(m.check('h', 'a', k1).status, 'new');
  t.equal(m.check('h', 'v', k1).status, 'match');
});

t.test('3,000 members pinned one by one: the last 500 cost at most 2x the first 500; the store opens again', async (t) => {
  const dir = home(t);
  const s = await PinStore.open(dir);
  s.pin('h', 'friend', k1);
  s.verify('h', 'friend');
  await turn();
  const perMember: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const t0 = performance.now();
    s.pin('h', `m${i}`, i % 2 === 0 ? k1 : k2);
    s.flush(); // what the next turn would do: one member, one small transaction
    perMember.push(performance.now() - t0);
    if (i % 100 === 0) await turn();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const first = median(perMember.slice(0, 500));
  const last = median(perMember.slice(-500));
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  t.comment(`first 500: median ${first.toFixed(3)} ms, total ${sum(perMember.slice(0, 500)).toFixed(1)} ms; last 500: median ${last.toFixed(3)} ms, total ${sum(perMember.slice(-500)).toFixed(1)} ms; ratio ${(last / first).toFixed(2)}`);
  t.ok(last <= 2 * first, `per-member cost at the end (${last.toFixed(3)} ms) is at most 2x the start (${first.toFixed(3)} ms)`);
  const n = s.count();
  t.ok(n.unverified <= MAX_UNVERIFIED_PINS && n.unverified >= MAX_UNVERIFIED_PINS - 50, `bounded at MAX_UNVERIFIED_PINS (${n.unverified})`);
  t.equal(n.verified, 1);
  s.close();
  const again = await PinStore.open(dir);
  t.equal(again.warning, null, 'opens again without a warning');
  t.same(again.check('h', 'friend', k1), { status: 'match', verified: true });
  t.equal(again.check('h', 'm2999', k2).status, 'match', 'the newest pins are kept');
  t.equal(again.check('h', 'm0', k1).status, 'new', 'the oldest were evicted');
  again.close();
});

t.test('a corrupt store is a warning and nothing is written; an oversized one is read only', async (t) => {
  const dir = home(t);
  writeFileSync(join(dir, PINS_DB), 'this is not a database at all, just some text'.repeat(200), { mode: 0o600 });
  const bad = await PinStore.open(dir);
  t.equal(bad.mode, 'memory');
  t.match(bad.warning, /pins\.db/, 'the warning names the file');
  bad.pin('h', 'bob', k1);
  t.equal(bad.check('h', 'bob', k1).status, 'match', 'pins of this run are kept in memory');
  bad.close();
  t.ok(readFileSync(join(dir, PINS_DB), 'utf8').startsWith('this is not'), 'the file is left as it was');

  const dir2 = home(t);
  const w = await PinStore.open(dir2);
  for (let i = 0; i < 40; i++) w.pin('h', `n${i}`, k1);
  w.verify('h', 'n0');
  w.close();
  const size = statSync(join(dir2, PINS_DB)).size;
  const ro = await PinStore.open(dir2, { maxBytes: size - 1 });
  t.equal(ro.mode, 'read-only');
  t.match(ro.warning, /larger than/);
  t.same(ro.check('h', 'n0', k1), { status: 'match', verified: true }, 'existing pins still protect');
  ro.pin('h', 'new', k2);
  t.equal(ro.check('h', 'new', k2).status, 'match');
  ro.close();
  const after = await PinStore.open(dir2);
  t.equal(after.check('h', 'new', k2).status, 'new', 'nothing was written to the oversized store');
  after.close();

  const dir3 = home(t);
  const other = new Database(join(dir3, PINS_DB));
  other.exec('CREATE TABLE t (x)');
  other.close();
  chmodSync(join(dir3, PINS_DB), 0o600);
  const foreign = await PinStore.open(dir3);
  t.equal(foreign.mode, 'memory', 'a SQLite file that is not a pin store is not written either');
  foreign.close();
});

t.test('store files open to others, owned by no one we know or reached through a link are refused', async (t) => {
  const dir = home(t);
  (await PinStore.open(dir)).close();
  chmodSync(join(dir, PINS_DB), 0o644);
  await t.rejects(PinStore.open(dir), { code: 'INSECURE_PERMISSIONS' });
  chmodSync(join(dir, PINS_DB), 0o600);
  const dir2 = home(t);
  symlinkSync(join(dir, PINS_DB), join(dir2, PINS_DB));
  await t.rejects(PinStore.open(dir2), { code: 'INSECURE_PERMISSIONS' }, 'a symbolic link is refused');
  const dir3 = home(t);
  symlinkSync(join(dir3, 'elsewhere'), join(dir3, PINS_DB));
  await t.rejects(PinStore.open(dir3), { code: 'INSECURE_PERMISSIONS' }, 'a dangling link is refused, not written through');
  t.notOk(existsSync(join(dir3, 'elsewhere')));
});

t.test('a store locked by another process is retried, then reported with its path; the store goes read only', async (t) => {
  const dir = home(t);
  const errors: PrivateFileError[] = [];
  const s = await PinStore.open(dir, { onWriteError: (e) => errors.push(e) });
  const locker = new Database(join(dir, PINS_DB));
  locker.exec('BEGIN EXCLUSIVE');
  s.pin('h', 'bob', k1);
  await turn();
  t.equal(errors.length, 0, 'a busy store is retried, not failed at once');
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (errors.length > 0) {
        clearInterval(poll);
        resolve();
      }
    }, 20);
  });
  t.equal(errors[0]!.code, 'IO');
  t.equal(errors[0]!.path, join(dir, PINS_DB));
  t.equal(s.mode, 'read-only');
  t.equal(s.check('h', 'bob', k1).status, 'match', 'the pin is kept in memory');
  locker.exec('ROLLBACK');
  locker.close();
  s.close();

  const dir2 = home(t);
  const s2 = await PinStore.open(dir2, { onWriteError: (e) => errors.push(e) });
  const l2 = new Database(join(dir2, PINS_DB));
  l2.exec('BEGIN EXCLUSIVE');
  s2.pin('h', 'bob', k1);
  await turn();
  l2.exec('ROLLBACK');
  l2.close();
  await new Promise((r) => setTimeout(r, 400));
  t.equal(s2.mode, 'read-write', 'released in time: written on a retry');
  s2.close();
  t.equal((await PinStore.open(dir2)).check('h', 'bob', k1).status, 'match');
});

t.test('a full store reports the failed write with its path', async (t) => {
  const dir = home(t);
  const errors: PrivateFileError[] = [];
  const s = await PinStore.open(dir, { maxBytes: 64 * 1024, onWriteError: (e) => errors.push(e) });
  for (let i = 0; i < 400 && errors.length === 0; i++) {
    s.pin('h', `n${i}`, k1);
    s.flush();
  }
  t.equal(errors.length, 1, 'one report');
  t.equal(errors[0]!.path, join(dir, PINS_DB));
  t.equal(s.mode, 'read-only');
  s.close();
});

t.test('the legacy pins.json is imported once, then renamed; a damaged one is left in place with a warning', async (t) => {
  const dir = home(t);
  const legacy = {
    format: 'e2ee-chat pins v1',
    servers: { 'h:1': { bob: { key: Buffer.from(k1).toString('hex'), verified: true }, carol: { key: Buffer.from(k2).toString('hex'), verified: false } } },
  };
  writeFileSync(join(dir, LEGACY_PINS_FILE), JSON.stringify(legacy), { mode: 0o600 });
  const s = await PinStore.open(dir);
  t.same(s.check('h:1', 'bob', k1), { status: 'match', verified: true });
  t.same(s.check('h:1', 'carol', k2), { status: 'match', verified: false });
  s.close();
  t.notOk(existsSync(join(dir, LEGACY_PINS_FILE)));
  t.ok(existsSync(join(dir, `${LEGACY_PINS_FILE}.migrated`)));
  legacy.servers['h:1'].bob.key = Buffer.from(k2).toString('hex');
  writeFileSync(join(dir, LEGACY_PINS_FILE), JSON.stringify(legacy), { mode: 0o600 });
  const again = await PinStore.open(dir);
  t.same(again.check('h:1', 'bob', k1), { status: 'match', verified: true }, 'not imported a second time');
  again.close();

  const dir2 = home(t);
  writeFileSync(join(dir2, LEGACY_PINS_FILE), '{', { mode: 0o600 });
  const w = await PinStore.open(dir2);
  t.match(w.warning, /pins\.json/);
  t.equal(w.mode, 'read-write', 'the new store works');
  w.close();
  t.ok(existsSync(join(dir2, LEGACY_PINS_FILE)), 'left in place');

  const dir3 = home(t);
  writeFileSync(join(dir3, LEGACY_PINS_FILE), JSON.stringify(legacy), { mode: 0o666 });
  chmodSync(join(dir3, LEGACY_PINS_FILE), 0o666);
  await t.rejects(PinStore.open(dir3), { code: 'INSECURE_PERMISSIONS' }, 'a pins.json others could write is not trusted');
});

t.test('a damaged legacy file is refused exactly, not guessed at', async (t) => {
  const cases: [string, string][] = [
    ['not JSON', '{'],
    ['wrong format tag', JSON.stringify({ format: 'other', servers: {} })],
    ['extra top-level field', JSON.stringify({ format: 'e2ee-chat pins v1', servers: {}, x: 1 })],
    ['key not hex', JSON.stringify({ format: 'e2ee-chat pins v1', servers: { h: { bob: { key: 'zz', verified: false } } } })],
    ['verified not boolean', JSON.stringify({ format: 'e2ee-chat pins v1', servers: { h: { bob: { key: 'ab', verified: 1 } } } })],
    ['server not an object', JSON.stringify({ format: 'e2ee-chat pins v1', servers: { h: [] } })],
    ['key too long', JSON.stringify({ format: 'e2ee-chat pins v1', servers: { h: { bob: { key: 'ab'.repeat(513), verified: false } } } })],
  ];
  for (const [name, text] of cases) t.throws(() => parseLegacy(Buffer.from(text)), PinStoreError, name);
});

t.test('pins of earlier versions, kept under the address as typed, move to the relay identity once; the verified pin wins', async (t) => {
  const dir = home(t);
  const s = await PinStore.open(dir);
  s.pin('LOCALHOST:7000', 'bob', k1);
  s.verify('LOCALHOST:7000', 'bob');
  s.pin('127.0.0.1:7000', 'bob', k2); // the same relay under another spelling, first seen again (the old client)
  s.pin('127.0.0.1:7000', 'carol', k2);
  s.pin('relay.example.com:7000', 'dave', k1);
  s.close();
  // What the store of an earlier version looks like: the migration marker absent.
  const db = new Database(join(dir, PINS_DB));
  db.prepare("DELETE FROM meta WHERE name = 'relay_ids'").run();
  db.close();
  const again = await PinStore.open(dir);
  t.same(again.check('localhost:7000', 'bob', k1), { status: 'match', verified: true }, 'the verified pin of either spelling wins');
  t.equal(again.check('localhost:7000', 'carol', k2).status, 'match');
  t.equal(again.check('relay.example.com:7000', 'dave', k1).status, 'match', 'a canonical row stays');
  t.same(again.list().map((p) => `${p.relay} ${p.nick}`), ['localhost:7000 bob', 'localhost:7000 carol', 'relay.example.com:7000 dave'], 'no row is left under an old spelling');
  again.close();
});

t.test('the fingerprint index across relays names where a nickname is verified with another key', async (t) => {
  const s = await PinStore.open(home(t));
  s.pin('localhost:7000', 'bob', k1);
  s.verify('localhost:7000', 'bob');
  s.pin('relay.example.com:443', 'bob', k2); // unverified: no warning from it
  t.same(s.verifiedElsewhere('localhost:7001', 'bob', k2), [{ relay: 'localhost:7000', fingerprint: fingerprint(k1) }]);
  t.same(s.verifiedElsewhere('localhost:7001', 'bob', k1), [], 'the same key verified elsewhere: nothing to warn about');
  t.same(s.verifiedElsewhere('localhost:7000', 'bob', k2), [], 'the relay itself is not "elsewhere" (that is a key change)');
  t.same(s.verifiedElsewhere('localhost:7001', 'carol', k2), [], 'another nickname');
  s.flush();
  t.same(s.verifiedElsewhere('localhost:7001', 'bob', k2), [{ relay: 'localhost:7000', fingerprint: fingerprint(k1) }], 'the same once written');
  s.pin('localhost:7000', 'bob', k2); // re-pinned in this run: unverified now
  t.same(s.verifiedElsewhere('localhost:7001', 'bob', k1), [], 'a pin changed in this run counts as it is now');
  s.close();
});

t.test('forget removes the pins of a nickname, on one relay or all, verified or not', async (t) => {
  const dir = home(t);
  const s = await PinStore.open(dir);
  s.pin('localhost:7000', 'bob', k1);
  s.verify('localhost:7000', 'bob');
  s.pin('relay.example.com:443', 'bob', k2);
  s.pin('localhost:7000', 'carol', k2);
  s.flush();
  s.pin('localhost:7000', 'erin', k1); // not written yet
  t.equal(s.forget('bob', 'localhost:7000'), 1);
  t.equal(s.check('localhost:7000', 'bob', k1).status, 'new', 'the next key is first seen again');
  t.equal(s.check('relay.example.com:443', 'bob', k2).status, 'match', 'the other relay keeps its pin');
  t.equal(s.forget('erin'), 1, 'a pin not written yet is forgotten too');
  t.equal(s.forget('bob'), 1);
  t.equal(s.forget('bob'), 0, 'nothing left');
  s.close();
  const again = await PinStore.open(dir);
  t.same(again.list().map((p) => p.nick), ['carol'], 'forgotten for good');
  again.close();
  const ro = await PinStore.open(dir);
  ro.close();
  t.throws(() => ro.forget('carol'), PrivateFileError, 'a closed (read only) store cannot forget');
});
