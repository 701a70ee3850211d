// The encrypted local history (src/client/history.ts): what is stored comes back, nothing readable is on
// disk, another identity or a moved or altered row reads nothing, the store is bounded, and the history
// files get the keystore's checks (mode, owner, symlink, type).
import t from 'tap';
import Database from 'better-sqlite3';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { History, HistoryError, HISTORY_FILE, MAX_TEXT_BYTES, type HistoryRecord } from '../../src/client/history.js';

const keyOf = () => generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 }).privateKey;
const alice = keyOf();
const other = keyOf();

function home(t: { teardown(f: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'e2ee-history-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const rec = (text: string, over: Partial<HistoryRecord> = {}): HistoryRecord => ({
  dir: 'out',
  from: 'alice',
  to: ['bob'],
  text,
  sentAt: null,
  shownAt: 1_764_600_000_000,
  state: 'sent',
  ...over,
});

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return e instanceof HistoryError ? e.code : `not a HistoryError: ${String(e)}`;
  }
  return undefined;
};

t.test('records come back per conversation, oldest first, with updates applied', async (t) => {
  const dir = home(t);
  const h = History.open(dir, alice);
  const a = h.add('127.0.0.1:55555', 'lobby', rec('first'));
  h.add('127.0.0.1:55555', 'lobby', rec('second', { dir: 'in', from: 'bob', to: ['alice'], state: 'received', sentAt: 1_764_600_000_500 }));
  h.add('127.0.0.1:55555', 'other-room', rec('elsewhere'));
  h.add('relay.example:55555', 'lobby', rec('another relay'));
  t.ok(h.update('127.0.0.1:55555', 'lobby', a, { state: 'delivered' }), 'update of an existing record');
  t.notOk(h.update('127.0.0.1:55555', 'other-room', a, { state: 'delivered' }), 'an id of another conversation is not updated');
  const { records, unreadable } = h.last('127.0.0.1:55555', 'lobby', 10);
  t.equal(unreadable, 0);
  t.same(
    records.map((r) => [r.text, r.state, r.from, r.sentAt, r.room]),
    [
      ['first', 'delivered', 'alice', null, 'lobby'],
      ['second', 'received', 'bob', 1_764_600_000_500, 'lobby'],
    ],
  );
  t.same(h.last('127.0.0.1:55555', 'lobby', 1).records.map((r) => r.text), ['second'], 'the last n only');
  t.same(h.all().records.map((r) => r.text), ['first', 'second', 'elsewhere', 'another relay'], 'export sees every conversation');
  h.close();
  // Reopened by the same identity, everything is there.
  const again = History.open(dir, alice);
  t.equal(again.count(), 4);
  t.same(again.last('127.0.0.1:55555', 'other-room', 5).records.map((r) => r.text), ['elsewhere']);
  again.close();
});

t.test('no text, nickname, room or relay name is readable in any history file', async (t) => {
  const dir = home(t);
  const h = History.open(dir, alice);
  for (let i = 0; i < 50; i++) h.add('secret-relay.example:4444', 'hidden-room-name', rec(`door code is 4711 #${i}`, { from: 'zebulon', to: ['quentin'] }));
  // Before close (WAL not checkpointed) and after: neither the main file nor the WAL holds plaintext.
  const scan = () => {
    for (const f of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, f));
      for (const needle of ['door code', '4711', 'zebulon', 'quentin', 'hidden-room-name', 'secret-relay']) {
        t.notOk(bytes.includes(Buffer.from(needle)), `${f} does not contain "${needle}"`);
      }
    }
  };
  scan();
  h.close();
  scan();
  t.ok(readdirSync(dir).includes(HISTORY_FILE));
});

t.test('another identity, a moved row or an altered byte reads nothing', async (t) => {
  const dir = home(t);
  const h = History.open(dir, alice);
  h.add('r', 'lobby', rec('one'));
  h.add('r', 'lobby', rec('two'));
  h.add('r', 'side', rec('three'));
  h.close();

  const stranger = History.open(dir, other);
  t.same(stranger.last('r', 'lobby', 10), { records: [], unreadable: 0 }, "another identity cannot even find alice's conversation");
  t.same(stranger.all(), { records: [], unreadable: 3 }, 'and opens none of its rows');
  stranger.close();

  const raw = new Database(join(dir, HISTORY_FILE));
  const rows = raw.prepare('SELECT id, tag, ct FROM records ORDER BY id').all() as { id: number; tag: Buffer; ct: Buffer }[];
  // Move row "three" into the lobby conversation, and flip one byte of row "two".
  raw.prepare('UPDATE records SET tag = ? WHERE id = ?').run(rows[0]!.tag, rows[2]!.id);
  const flipped = Buffer.from(rows[1]!.ct);
  flipped[3] = flipped[3]! ^ 1;
  raw.prepare('UPDATE records SET ct = ? WHERE id = ?').run(flipped, rows[1]!.id);
  raw.close();

  const back = History.open(dir, alice);
  const got = back.last('r', 'lobby', 10);
  t.same(got.records.map((r) => r.text), ['one'], 'only the untouched row is shown');
  t.equal(got.unreadable, 2, 'the moved and the altered row are counted, not shown');
  back.close();
});

t.test('the store is bounded: the oldest records go first, and an oversized text is refused', async (t) => {
  const dir = home(t);
  const h = History.open(dir, alice, { maxRecords: 10 });
  for (let i = 0; i < 25; i++) h.add('r', 'lobby', rec(`m${i}`));
  t.equal(h.count(), 10);
  t.same(h.last('r', 'lobby', 100).records.map((r) => r.text), Array.from({ length: 10 }, (_, i) => `m${i + 15}`));
  t.throws(() => h.add('r', 'lobby', rec('x'.repeat(MAX_TEXT_BYTES + 1))), RangeError);
  h.add('r', 'lobby', rec('x'.repeat(MAX_TEXT_BYTES)));
  h.clear();
  t.equal(h.count(), 0, 'clear deletes every record');
  h.close();
  History.remove(dir);
  t.same(readdirSync(dir), [], 'remove deletes the files');
});

t.test('history files get the keystore checks', async (t) => {
  const dir = home(t);
  History.open(dir, alice).close();
  const path = join(dir, HISTORY_FILE);
  t.equal((readFileSync(path).length > 0), true);

  chmodSync(path, 0o644);
  t.equal(codeOf(() => History.open(dir, alice)), 'INSECURE_PERMISSIONS', 'mode 0644 refused');
  chmodSync(path, 0o600);
  History.open(dir, alice).close();

  const linked = home(t);
  symlinkSync(path, join(linked, HISTORY_FILE));
  t.equal(codeOf(() => History.open(linked, alice)), 'INSECURE_PERMISSIONS', 'a symlink refused');

  const wal = home(t);
  symlinkSync('/dev/null', join(wal, HISTORY_FILE + '-wal'));
  t.equal(codeOf(() => History.open(wal, alice)), 'INSECURE_PERMISSIONS', 'a planted symlink at the WAL path refused');
  t.notOk(existsSync(join(wal, HISTORY_FILE)), 'and nothing was created');

  const asDir = home(t);
  mkdirSync(join(asDir, HISTORY_FILE));
  t.equal(codeOf(() => History.open(asDir, alice)), 'CORRUPT', 'a directory is not a history');

  const garbage = home(t);
  writeFileSync(join(garbage, HISTORY_FILE), 'this is not sqlite at all, just text', { mode: 0o600 });
  t.equal(codeOf(() => History.open(garbage, alice)), 'CORRUPT', 'garbage refused');

  const foreign = home(t);
  const db = new Database(join(foreign, HISTORY_FILE));
  db.exec("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL); INSERT INTO meta VALUES ('format', 'something else v9')");
  db.close();
  chmodSync(join(foreign, HISTORY_FILE), 0o600);
  t.equal(codeOf(() => History.open(foreign, alice)), 'CORRUPT', 'another format refused');
});

t.test('records of earlier versions, kept under the address as typed, move to the relay identity once (issue 14 point 6)', async (t) => {
  const dir = home(t);
  const h = History.open(dir, alice);
  // What an earlier client wrote: conversations keyed by `host:port` as the user typed it.
  h.add('127.0.0.1:55555', 'lobby', rec('typed as 127.0.0.1'));
  h.add('LOCALHOST:55555', 'lobby', rec('typed as LOCALHOST'));
  h.add('Relay.Example.:7000', 'lobby', rec('a named relay'));
  h.add('localhost:55555', 'other', rec('already an identity'));
  h.close();
  const raw = new Database(join(dir, HISTORY_FILE));
  raw.prepare("DELETE FROM meta WHERE k = 'relay_ids'").run(); // the marker earlier versions did not write
  raw.close();
  const again = History.open(dir, alice);
  t.same(again.last('localhost:55555', 'lobby', 10).records.map((r) => [r.text, r.relay]), [
    ['typed as 127.0.0.1', 'localhost:55555'],
    ['typed as LOCALHOST', 'localhost:55555'],
  ], 'both spellings of the loopback relay are one conversation');
  t.same(again.last('relay.example:7000', 'lobby', 10).records.map((r) => r.text), ['a named relay']);
  t.same(again.last('127.0.0.1:55555', 'lobby', 10).records, [], 'nothing is left under the typed spelling');
  t.same(again.last('localhost:55555', 'other', 10).records.map((r) => r.text), ['already an identity']);
  t.equal(again.count(), 4, 'moved, not copied');
  t.equal(again.all().unreadable, 0, 'every moved row opens under its new tag');
  again.close();
  // Once: a row written under a typed spelling after the move stays where it was put.
  const third = History.open(dir, alice);
  third.add('127.0.0.1:1', 'lobby', rec('later'));
  third.close();
  const fourth = History.open(dir, alice);
  t.same(fourth.last('127.0.0.1:1', 'lobby', 10).records.map((r) => r.text), ['later'], 'the move runs once');
  fourth.close();
});
