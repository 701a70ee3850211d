// Operating `e2ee-chat server` (a real child process, built CLI in dist/): --metrics-port serves
// Prometheus text and /healthz; the default log names no nickname, room or address (--log-metadata and
// --log-level open it up); SIGHUP reopens --log-file and keeps the relay running; a port in use is one
// human line and exit 1; and a log pipe that nobody reads never stalls the relay.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readFileSync, readSync, renameSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { frame } from '../../src/codec/index.js';
import { CLI, startServerProc } from '../client/procs.js';
import { identities, TestClient, type Identity } from './helpers.js';
import { makeCerts } from './tls-certs.js';

const [alice, bob] = identities(2) as [Identity, Identity];

t.before(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npx tsc first`);
});

function fetchText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  if (m === null) throw new Error(`no ${name} in the metrics`);
  return Number(m[1]);
}

/** alice and bob in one room, `n` texts from alice delivered to bob. */
async function chat(port: number, room: string, n: number, names = ['alice', 'bob']): Promise<TestClient[]> {
  const a = await TestClient.connect(port);
  await a.auth(names[0]!, alice);
  a.send(frame('JOIN', { room }));
  await a.expect('JOINED');
  const b = await TestClient.connect(port);
  await b.auth(names[1]!, bob);
  b.send(frame('JOIN', { room }));
  await b.expect('JOINED');
  await a.expect('PEER_JOINED');
  for (let i = 0; i < n; i++) a.send(frame('SEND', { to: names[1]!, body: Buffer.from([i & 255]) }));
  for (let i = 0; i < n; i++) await b.expect('DELIVER');
  return [a, b];
}

const events = (lines: string[]) => lines.filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

t.test('--metrics-port 0 prints the URL once ready; the figures follow real traffic; /healthz is 200', async (t) => {
  const dir = t.testdir({});
  const { proc, port } = await startServerProc(t, { registry: join(dir, 'r.db'), args: ['--metrics-port', '0'] });
  const line = await proc.waitFor(/^metrics on /);
  const m = /^metrics on (http:\/\/127\.0\.0\.1:(\d+)\/metrics)$/.exec(line);
  t.ok(m !== null, line);
  const url = m![1]!;
  t.equal(proc.out.indexOf(line), 1, 'after the listening line');
  const before = (await fetchText(url)).body;
  const [a, b] = await chat(port, 'room-x', 25);
  const after = await fetchText(url);
  t.equal(after.status, 200);
  t.equal(metric(before, 'e2ee_relay_frames_relayed_total'), 0);
  t.equal(metric(after.body, 'e2ee_relay_frames_relayed_total'), 25);
  t.equal(metric(after.body, 'e2ee_relay_connections{state="IN_ROOM"}'), 2);
  t.equal(metric(after.body, 'e2ee_relay_rooms'), 1);
  t.equal(metric(after.body, 'e2ee_relay_registry_bindings'), 2);
  t.ok(metric(after.body, 'e2ee_relay_bytes_received_total') > metric(before, 'e2ee_relay_bytes_received_total'));
  t.ok(metric(after.body, 'e2ee_relay_log_lines_total{outcome="written"}') >= 1, 'the log counts its lines');
  t.equal((await fetchText(url.replace('/metrics', '/healthz'))).status, 200);
  a!.destroy();
  b!.destroy();
  proc.kill('SIGTERM');
  t.equal((await proc.exited).code, 0);
});

t.test('the default log has no nickname, room or address; --log-level debug --log-metadata has them', async (t) => {
  const dir = t.testdir({});
  const seen: Record<string, string> = {};
  for (const [name, args] of [
    ['default', ['--log-level', 'debug']],
    ['metadata', ['--log-level', 'debug', '--log-metadata']],
  ] as const) {
    const { proc, port } = await startServerProc(t, { registry: join(dir, `${name}.db`), args: [...args] });
    const [a, b] = await chat(port, 'room-q7w', 3, ['nick-q7w', 'nick-r8x']);
    a!.send(frame('SEND', { to: 'nobody-z9', body: Buffer.from([1]) }));
    t.equal(await a!.expectError(), 'NO_SUCH_PEER');
    a!.destroy();
    b!.destroy();
    proc.kill('SIGTERM');
    t.equal((await proc.exited).code, 0);
    seen[name] = proc.err.join('\n');
    t.ok(events(proc.err).every((e) => typeof e['event'] === 'string'), `${name}: JSON lines`);
  }
  for (const s of ['nick-q7w', 'nick-r8x', 'room-q7w', '"addr":"127.0.0.1"', 'remote_port']) {
    t.notOk(seen['default']!.includes(s), `not in the default log: ${s}`);
    t.ok(seen['metadata']!.includes(s), `in the --log-metadata log: ${s}`);
  }
  const ev = events(seen['default']!.split('\n'));
  t.ok(ev.some((e) => e['event'] === 'auth'), 'per-connection events at debug');
  t.ok(ev.some((e) => e['event'] === 'refusals' && (e['codes'] as Record<string, number>)['NO_SUCH_PEER'] === 1), 'refusals aggregated with their codes');
  t.ok(ev.some((e) => e['event'] === 'connect' && /^[A-Za-z0-9_-]{12}$/.test(String(e['addr']))), 'the address as a keyed hash');

  // At the default level (info), a connection costs no line at all.
  const { proc, port } = await startServerProc(t, { registry: join(dir, 'info.db') });
  const [a, b] = await chat(port, 'room-q7w', 3);
  a!.destroy();
  b!.destroy();
  proc.kill('SIGTERM');
  await proc.exited;
  const names = events(proc.err).map((e) => String(e['event']));
  t.same(
    names.filter((n) => ['connect', 'auth', 'join', 'leave', 'disconnect', 'refuse'].includes(n)),
    [],
    'info: no line per connection event',
  );
  t.same(
    names.filter((n) => ['listening', 'signal', 'shutdown', 'stopped'].includes(n)),
    ['listening', 'signal', 'shutdown', 'stopped'],
    'info: the relay life cycle',
  );
});

t.test('SIGHUP reopens --log-file (rotation) and the relay keeps serving; without a log file it is ignored', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'relay.log');
  const { proc, port } = await startServerProc(t, { registry: join(dir, 'r.db'), args: ['--log-file', file, '--log-level', 'debug'] });
  t.same(proc.err, [], 'nothing on stderr with a log file');
  const [a, b] = await chat(port, 'r1', 2);
  a!.destroy();
  b!.destroy();
  renameSync(file, `${file}.1`);
  proc.child.kill('SIGHUP');
  const read = (f: string) => (existsSync(f) ? events(readFileSync(f, 'utf8').split('\n')) : []);
  for (let i = 0; i < 500 && !read(file).some((e) => e['event'] === 'log_reopened'); i++) await new Promise((r) => setTimeout(r, 10));
  const [c, d] = await chat(port, 'r2', 2, ['carol', 'dave']);
  c!.destroy();
  d!.destroy();
  proc.kill('SIGTERM');
  t.equal((await proc.exited).code, 0, 'SIGHUP did not stop it; SIGTERM then exits 0');
  const old = read(`${file}.1`);
  const now = read(file);
  t.ok(old.some((e) => e['event'] === 'listening') && old.some((e) => e['event'] === 'auth'), 'the rotated file has the first part');
  t.ok(old.some((e) => e['event'] === 'signal' && e['signal'] === 'SIGHUP'));
  t.equal(now[0]?.['event'], 'log_reopened', 'the new file starts with log_reopened');
  t.ok(now.filter((e) => e['event'] === 'auth').length >= 2, 'the second chat is in the new file');
  t.equal(now.at(-1)?.['event'], 'stopped');

  const plain = await startServerProc(t, { registry: join(dir, 'p.db') });
  plain.proc.child.kill('SIGHUP');
  await plain.proc.waitFor(/"signal":"SIGHUP"/, 0, 'err');
  const [e, f] = await chat(plain.port, 'r3', 1);
  t.pass('still serving after SIGHUP');
  e!.destroy();
  f!.destroy();
  plain.proc.kill('SIGTERM');
  t.equal((await plain.proc.exited).code, 0);
});

t.test('a port in use, for the relay or the metrics: one human line on stderr, exit 1', async (t) => {
  const dir = t.testdir({});
  const { proc, port } = await startServerProc(t, { registry: join(dir, 'a.db'), args: ['--metrics-port', '0'] });
  const mport = Number(/:(\d+)\/metrics$/.exec(await proc.waitFor(/^metrics on /))![1]);
  for (const [what, args] of [
    ['relay', ['--port', String(port)]],
    ['metrics', ['--port', '0', '--metrics-port', String(mport)]],
  ] as const) {
    const r = spawnSync(process.execPath, [CLI, 'server', ...args, '--registry', join(dir, `${what}.db`)], { encoding: 'utf8' });
    t.equal(r.status, 1, `${what}: exit 1`);
    // The metrics listener starts after the relay, whose own start and stop are logged as JSON lines.
    const lines = r.stderr.split('\n').filter((l) => l !== '' && !(what === 'metrics' && l.startsWith('{"')));
    t.equal(lines.length, 1, `${what}: one human line: ${lines.join(' | ')}`);
    t.throws(() => JSON.parse(lines[0]!), `${what}: not JSON`);
    t.ok(lines[0]!.includes(String(what === 'relay' ? port : mport)), `${what}: names the port`);
    t.equal(r.stdout, '', `${what}: nothing on stdout`);
  }
  const bad = spawnSync(process.execPath, [CLI, 'server', '--port', '0', '--log-level', 'loud'], { encoding: 'utf8' });
  t.equal(bad.status, 2, 'an unknown log level is a usage error');
  const orphan = spawnSync(process.execPath, [CLI, 'server', '--port', '0', '--metrics-host', '127.0.0.1'], { encoding: 'utf8' });
  t.equal(orphan.status, 2, '--metrics-host needs --metrics-port');
  proc.kill('SIGTERM');
  t.equal((await proc.exited).code, 0);
});

t.test('a log pipe that nobody reads does not stall the relay: clients keep chatting', async (t) => {
  const dir = t.testdir({});
  const fifo = join(dir, 'stderr.fifo');
  t.equal(spawnSync('mkfifo', [fifo]).status, 0);
  // The relay's stderr is this FIFO (blocking, 64 KiB), and nothing reads it until the end.
  const errFd = openSync(fifo, constants.O_RDWR);
  const child = spawn(
    process.execPath,
    [CLI, 'server', '--port', '0', '--registry', join(dir, 'r.db'), '--log-level', 'debug', '--log-metadata', '--metrics-port', '0', '--max-connections-per-address', '100000', '--max-connections-per-subnet', '100000'],
    { stdio: ['ignore', 'pipe', errFd] },
  );
  closeSync(errFd);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  const ready = await new Promise<RegExpExecArray>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening on 127\.0\.0\.1:(\d+)\nmetrics on (\S+)\n/.exec(out);
      if (m !== null) resolve(m);
    });
    void exited.then((c) => reject(new Error(`relay exited ${String(c)}`)));
  });
  const port = Number(ready[1]);
  const url = ready[2]!;
  const queued = async () => metric((await fetchText(url)).body, 'e2ee_relay_log_queued_bytes');

  // Fill the pipe: short connections with a bad first frame, three debug lines each (connect, refuse,
  // disconnect), until more bytes wait than the FIFO could ever take (bounded: 4,000 connections).
  let conns = 0;
  while ((await queued()) < 256 * 1024 && conns < 4000) {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const c = await TestClient.connect(port);
        c.raw(Buffer.alloc(4)); // a zero length prefix: MALFORMED_FRAME
        await c.drainUntilClosed();
      }),
    );
    conns += 50;
  }
  const stalled = await queued();
  t.ok(stalled >= 256 * 1024, `${stalled} log bytes wait after ${conns} connections: the pipe is full and the writer waits`);

  // With the log stalled, a pair logs in, joins and exchanges 200 texts, and PINGs are answered.
  const [a, b] = await chat(port, 'stalled-room', 200);
  for (let i = 0; i < 20; i++) {
    b!.send(frame('PING', { n: i }));
    t.equal((await b!.expect('PONG')).n, i);
  }
  const body = (await fetchText(url)).body;
  t.ok(metric(body, 'e2ee_relay_frames_relayed_total') === 200, 'every text relayed while the log was stalled');
  t.ok(metric(body, 'e2ee_relay_log_queued_bytes') <= 1 << 20, 'the log queue stays within its bound');
  a!.destroy();
  b!.destroy();

  // Now read the pipe: the relay writes what waited (with a log_dropped line if it dropped) and exits 0.
  const rd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  let text = '';
  const buf = Buffer.alloc(65536);
  const drain = setInterval(() => {
    for (;;) {
      try {
        const n = readSync(rd, buf);
        if (n === 0) break;
        text += buf.subarray(0, n).toString();
      } catch {
        break;
      }
    }
  }, 5);
  child.kill('SIGTERM');
  t.equal(await exited, 0);
  clearInterval(drain);
  for (;;) {
    try {
      const n = readSync(rd, buf);
      if (n === 0) break;
      text += buf.subarray(0, n).toString();
    } catch {
      break;
    }
  }
  closeSync(rd);
  const got = events(text.split('\n'));
  t.ok(got.length > 0 && got.every((e) => typeof e['event'] === 'string'), `${got.length} JSON lines read afterwards`);
  t.equal(got.at(-1)?.['event'], 'stopped', 'the last line is written once the pipe is read');
});

t.test('plain TCP beyond loopback: a warning on stderr (and an insecure_listener event); none on loopback or with TLS', async (t) => {
  const dir = t.testdir({});
  const certs = makeCerts(dir);
  const run = async (name: string, args: string[]) => {
    const { proc } = await startServerProc(t, { registry: join(dir, `${name}.db`), args });
    proc.kill('SIGTERM');
    t.equal((await proc.exited).code, 0, `${name}: exit 0 on SIGTERM`);
    return { warned: events(proc.err.filter((l) => l.startsWith('{'))).some((e) => e['event'] === 'insecure_listener'), human: proc.err.filter((l) => l !== '' && !l.startsWith('{')) };
  };
  const open = await run('open', ['--host', '0.0.0.0', '--name', 'chat.example:55555']);
  t.ok(open.warned, '0.0.0.0 without TLS: logged as insecure_listener');
  t.equal(open.human.length, 1, `and one line for a person: ${open.human.join(' | ')}`);
  t.ok(open.human[0]?.includes('0.0.0.0'), 'naming the address');
  for (const [name, args] of [
    ['loopback', []],
    ['tls', ['--host', '0.0.0.0', '--tls-cert', certs.certFile, '--tls-key', certs.keyFile]],
  ] as const) {
    const r = await run(name, [...args]);
    t.notOk(r.warned, `${name}: no insecure_listener`);
    t.same(r.human, [], `${name}: no line for a person`);
  }
});
