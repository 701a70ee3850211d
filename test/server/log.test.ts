// The relay's operator log (src/server/log.ts): no nickname, room or address unless asked for, levels,
// refusals aggregated per address per interval, writes that never block the event loop (a real FIFO that
// nobody reads), a bounded queue with counted drops, reopen after rotation, and the one-line start failure.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Logger, MAX_AGGREGATED_ADDRESSES, startFailure } from '../../src/server/log.js';

const lines = (file: string): Record<string, unknown>[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const person = { nick: 'alice-7f3a', room: 'room-c0ffee', addr: '203.0.113.77', remote_port: 40404 };

t.test('by default no nickname, room or remote port, and a keyed hash instead of the address', async (t) => {
  const file = join(t.testdir({}), 'relay.log');
  const log = await Logger.create({ file, level: 'debug' });
  log.log({ event: 'join', conn: 1, ...person, members: 2 });
  log.log({ event: 'join', conn: 2, ...person, addr: '203.0.113.78' });
  log.log({ event: 'connect', conn: 3, addr: '203.0.113.77', remote_port: 5 });
  t.equal(await log.close(), true);
  const got = lines(file);
  const text = readFileSync(file, 'utf8');
  for (const v of ['alice-7f3a', 'room-c0ffee', '203.0.113', '40404']) t.notOk(text.includes(v), `${v} is not in the log`);
  t.equal(got.length, 3);
  t.match(got[0], { event: 'join', conn: 1, members: 2 });
  t.notOk('nick' in got[0]! || 'room' in got[0]! || 'remote_port' in got[0]!, 'the fields are left out, not emptied');
  t.match(got[0]!['addr'], /^[A-Za-z0-9_-]{12}$/, 'the address as a 12-character hash');
  t.equal(got[2]!['addr'], got[0]!['addr'], 'one address, one hash within a run');
  t.not(got[1]!['addr'], got[0]!['addr'], 'another address, another hash');
  t.equal(typeof got[0]!['ts'], 'string', 'a time stamp is added');

  const other = await Logger.create({ file: join(t.testdir({}), 'x.log') });
  t.not(other.address('203.0.113.77'), log.address('203.0.113.77'), 'a new key per logger: hashes do not link runs');
  await other.close();
  const keyed = await Logger.create({ file: join(t.testdir({}), 'y.log'), hashKey: new Uint8Array(32) });
  const again = await Logger.create({ file: join(t.testdir({}), 'z.log'), hashKey: new Uint8Array(32) });
  t.equal(keyed.address('203.0.113.77'), again.address('203.0.113.77'), 'the same key gives the same hash');
  await keyed.close();
  await again.close();
});

t.test('--log-metadata writes them as they are', async (t) => {
  const file = join(t.testdir({}), 'relay.log');
  const log = await Logger.create({ file, level: 'debug', metadata: true });
  log.log({ event: 'join', conn: 1, ...person });
  await log.close();
  t.match(lines(file)[0], { event: 'join', ...person });
});

t.test('levels: per-connection events are debug, the default is info, warn hides info', async (t) => {
  const dir = t.testdir({});
  const events = [{ event: 'connect', conn: 1 }, { event: 'listening', port: 1 }, { event: 'shed', bytes: 9 }, { event: 'internal_error' }, { event: 'something_new' }];
  const seen: Record<string, string[]> = {};
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    const file = join(dir, `${level}.log`);
    const log = await Logger.create({ file, level });
    for (const e of events) log.log(e);
    await log.close();
    seen[level] = lines(file).map((e) => String(e['event']));
  }
  t.same(seen['debug'], ['connect', 'listening', 'shed', 'internal_error', 'something_new']);
  t.same(seen['info'], ['listening', 'shed', 'internal_error', 'something_new'], 'an unlisted event is info');
  t.same(seen['warn'], ['shed', 'internal_error']);
  t.same(seen['error'], ['internal_error']);
  await t.rejects(Logger.create({ level: 'verbose' as 'info' }), RangeError);
  t.equal(Logger.levelOf('auth'), 'debug');
});

t.test('refusals are counted per address and code and written once per interval', async (t) => {
  const file = join(t.testdir({}), 'relay.log');
  const log = await Logger.create({ file, intervalMs: 60_000 });
  for (let i = 0; i < 40; i++) log.log({ event: 'refuse', conn: i, addr: '198.51.100.1', code: i % 4 === 0 ? 'TIMEOUT' : 'RATE_LIMITED', nick: 'mallory' });
  for (let i = 0; i < 3; i++) log.log({ event: 'refuse', addr: '198.51.100.2', code: 'TOO_MANY_CONNECTIONS' });
  log.log({ event: 'refuse', code: 'SERVER_SHUTDOWN' });
  t.equal(await log.flush(), true);
  t.same(lines(file), [], 'nothing written for a refusal at info before the interval ends');
  log.flushRefusals();
  await log.flush();
  const got = lines(file);
  t.equal(got.length, 3, 'one line per address');
  t.match(got[0], { event: 'refusals', interval_ms: 60_000, addr: log.address('198.51.100.1'), total: 40, codes: { TIMEOUT: 10, RATE_LIMITED: 30 } });
  t.match(got[1], { addr: log.address('198.51.100.2'), total: 3, codes: { TOO_MANY_CONNECTIONS: 3 } });
  t.match(got[2], { addr: '-', total: 1 });
  t.notOk(readFileSync(file, 'utf8').includes('mallory'));
  log.flushRefusals();
  await log.flush();
  t.equal(lines(file).length, 3, 'a new interval starts empty');

  // The map of one interval is bounded: further addresses are counted under 'other'.
  for (let i = 0; i < MAX_AGGREGATED_ADDRESSES + 50; i++) log.log({ event: 'refuse', addr: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, code: 'TIMEOUT' });
  log.log({ event: 'stopped' });
  await log.close();
  const all = lines(file).slice(3);
  t.equal(all.length, MAX_AGGREGATED_ADDRESSES + 2, 'one line per counted address, one for the rest, then stopped');
  t.match(all.at(-2), { addr: 'other', total: 50 });
  t.equal(all.at(-1)!['event'], 'stopped', 'the counts are written before the last line');

  const debug = join(t.testdir({}), 'debug.log');
  const d = await Logger.create({ file: debug, level: 'debug' });
  d.log({ event: 'refuse', addr: '198.51.100.1', code: 'TIMEOUT' });
  await d.close();
  t.same(lines(debug).map((e) => e['event']), ['refuse', 'refusals'], 'at debug each refusal is written as well');
});

t.test('a FIFO nobody reads: log() never blocks, the queue stays bounded, drops are counted and reported', async (t) => {
  const fifo = join(t.testdir({}), 'fifo');
  t.equal(spawnSync('mkfifo', [fifo]).status, 0);
  // O_RDWR: the open does not wait for a reader; O_NONBLOCK: a full FIFO answers EAGAIN.
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  t.teardown(() => closeSync(fd));
  // Fill the FIFO first (64 KiB on Linux), with lines the reader below will see too.
  let filled = 0;
  const filler = Buffer.from(JSON.stringify({ event: 'filler' }) + '\n');
  for (let i = 0; i < 100_000; i++) {
    try {
      writeSync(fd, filler);
      filled++;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw e;
    }
  }
  t.ok(filled > 0, `the FIFO is full after ${filled} lines`);
  const max = 32 * 1024;
  const log = await Logger.create({ fd, maxQueuedBytes: max });
  const line = { event: 'listening', pad: 'x'.repeat(200) };
  // 2,000 lines of ~250 bytes are 500 KB. Were a write synchronous and blocking, this loop would never end.
  for (let i = 0; i < 2000; i++) log.log({ ...line, i });
  const s = log.stats();
  t.ok(s.queuedBytes <= max, `queued ${s.queuedBytes} <= ${max}`);
  t.ok(s.dropped > 0, `${s.dropped} lines dropped`);
  t.equal(await log.flush(100), false, 'the queue cannot drain while nobody reads');
  // Now read everything: the queue drains and a log_dropped line reports the loss.
  const buf = Buffer.alloc(65536);
  let read = '';
  for (let i = 0; i < 2000; i++) {
    try {
      const n = readSync(fd, buf);
      read += buf.subarray(0, n).toString();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      if (await log.flush(20)) break;
    }
  }
  for (;;) {
    try {
      const n = readSync(fd, buf);
      read += buf.subarray(0, n).toString();
    } catch {
      break;
    }
  }
  const got = read
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(got.filter((e) => e['event'] === 'filler').length, filled);
  const dropped = got.find((e) => e['event'] === 'log_dropped');
  t.ok(dropped !== undefined, 'a log_dropped line once writing resumed');
  t.equal(got.filter((e) => e['event'] === 'listening').length + Number(dropped?.['lines']), 2000, 'every line written or counted as dropped');
  t.equal(log.stats().written, got.length - filled);
  const order = got.filter((e) => e['event'] === 'listening').map((e) => Number(e['i']));
  t.same(order, [...order].sort((a, b) => a - b), 'lines that were written are in order');
  t.equal(await log.close(), true);
});

t.test('a log whose reader went away stops writing and counts the lines as dropped', async (t) => {
  const fifo = join(t.testdir({}), 'fifo');
  t.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const r = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const w = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  closeSync(r);
  t.teardown(() => closeSync(w));
  const log = await Logger.create({ fd: w });
  log.log({ event: 'listening' });
  t.equal(await log.flush(), true);
  log.log({ event: 'listening' });
  t.equal(log.stats().dropped, 2, 'EPIPE: the line and the next one dropped');
  t.equal(log.stats().written, 0);
  await log.close();
});

t.test('reopen: after the file was renamed, lines go to a new file of the same name', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'relay.log');
  const log = await Logger.create({ file });
  log.log({ event: 'listening', n: 1 });
  await log.flush();
  renameSync(file, `${file}.1`);
  log.log({ event: 'listening', n: 2 }); // still the old file: it is open
  t.equal(await log.reopen(), true);
  log.log({ event: 'listening', n: 3 });
  await log.close();
  t.same(lines(`${file}.1`).map((e) => e['n']), [1, 2]);
  t.same(
    lines(file).map((e) => [e['event'], e['n']]),
    [
      ['log_reopened', undefined],
      ['listening', 3],
    ],
  );
  const plain = await Logger.create({ fd: openSync(join(dir, 'fd.log'), 'a') });
  t.equal(await plain.reopen(), false, 'nothing to reopen without a file');
  await plain.close();
  await t.rejects(Logger.create({ file: join(dir, 'no', 'such', 'dir', 'x.log') }), { code: 'ENOENT' });
});

t.test('a start failure is one human line: the port in use, no JSON', async (t) => {
  const a = createServer();
  await new Promise<void>((r) => a.listen(0, '127.0.0.1', r));
  t.teardown(() => a.close());
  const port = (a.address() as { port: number }).port;
  const b = createServer();
  const err = await new Promise<Error>((r) => {
    b.once('error', r);
    b.listen(port, '127.0.0.1');
  });
  const line = startFailure(err, 'relay');
  t.notOk(line.includes('\n'));
  t.ok(line.includes(`127.0.0.1:${port}`), line);
  t.throws(() => JSON.parse(line));
  t.ok(startFailure(Object.assign(new Error('x'), { code: 'EACCES', address: '::1', port: 80 }), 'relay').includes('[::1]:80'));
  t.ok(startFailure(Object.assign(new Error('x'), { code: 'EADDRNOTAVAIL', address: '192.0.2.1', port: 1 }), 'relay').includes('192.0.2.1:1'));
  t.notOk(startFailure(new Error('two\nlines'), 'relay').includes('\n'));
});
