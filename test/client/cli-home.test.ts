/**
 * `e2ee-chat client` and its --home (issue 14 point 3), real processes: a folder others can write and a
 * pin store others can read are refused at start with status 2 and the path; a pin write that fails while
 * running (the store locked by another process past the retries) is a local error naming the file, status
 * 8, never a relay protocol error.
 */
import t from 'tap';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startClient, startServerProc, tempDir } from './procs.js';

t.test('a group-writable --home and a world-readable pins.db are refused with status 2 naming the path', async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'shared');
  mkdirSync(home, { mode: 0o700 });
  chmodSync(home, 0o775);
  const c = startClient(t, { port: 1, nick: 'alice', home });
  c.end();
  t.equal((await c.exited).code, 2);
  t.ok(c.err.some((l) => l.includes(home) && l.includes('INSECURE_PERMISSIONS')), 'the message names the folder');

  const home2 = join(dir, 'h2');
  mkdirSync(home2, { mode: 0o700 });
  const db = new Database(join(home2, 'pins.db'));
  db.close();
  chmodSync(join(home2, 'pins.db'), 0o644);
  const c2 = startClient(t, { port: 1, nick: 'alice', home: home2 });
  c2.end();
  t.equal((await c2.exited).code, 2);
  t.ok(c2.err.some((l) => l.includes(join(home2, 'pins.db'))), 'the message names the file');
});

t.test('a pin store that cannot be written is a local error with its path and status 8', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const home = join(dir, 'alice');
  const alice = startClient(t, { port, nick: 'alice', home, room: 'r' });
  await alice.waitFor(/^\* joined r as alice/);
  // Another process holds the store's write lock for longer than the client retries.
  const locker = new Database(join(home, 'pins.db'));
  locker.exec('BEGIN EXCLUSIVE');
  t.teardown(() => {
    locker.exec('ROLLBACK');
    locker.close();
  });
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob'), room: 'r' });
  await alice.waitFor(/^\* secure session with bob/);
  const code = (await alice.exited).code;
  t.equal(code, 8, 'status 8: a local file error');
  t.ok(alice.err.some((l) => l.includes('local error') && l.includes(join(home, 'pins.db'))), 'stderr names the file');
  t.notOk(alice.err.some((l) => /protocol|invalid frame/i.test(l)), 'not reported as the relay\'s fault');
  bob.end();
  t.equal((await bob.exited).code, 0);
});
