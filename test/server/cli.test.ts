// `e2ee-chat server` as a real child process (built CLI in dist/): the listening line, JSON-line logs,
// graceful shutdown on SIGTERM and SIGINT (clients get SERVER_SHUTDOWN, exit 0), a registry file that
// survives a restart, and argument errors.
import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { frame } from '../../src/codec/index.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { authMessage, pssSign } from '../../src/crypto/rsa.js';
import { defaultRegistryPath } from '../../src/cli/server.js';
import { identities, TestClient, type Identity } from './helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const [alice, bob, mallory] = identities(3) as [Identity, Identity, Identity];

interface Running {
  child: ChildProcess;
  port: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the server and resolves once it printed its listening line. */
function startCli(t: Test, args: string[], env: NodeJS.ProcessEnv = process.env, nofile?: number): Promise<Running> {
  const argv = [MAIN, 'server', '--port', '0', ...args];
  // With `nofile`, the relay runs under that open-file limit (the shell lowers it, then execs node).
  const child =
    nofile === undefined
      ? spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env })
      : spawn('sh', ['-c', `ulimit -n ${nofile} && exec "$0" "$@"`, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening on 127\.0\.0\.1:(\d+)\n/.exec(out);
      if (m !== null) resolve({ child, port: Number(m[1]), stdout: () => out, stderr: () => err, exited });
    });
    void exited.then(({ code }) => reject(new Error(`server exited (${String(code)}) before listening: ${err}`)));
  });
}

t.before(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npx tsc first`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: every client gets SERVER_SHUTDOWN, the process exits 0`, async (t) => {
    const dir = t.testdir({});
    const srv = await startCli(t, ['--registry', join(dir, 'reg', 'registry.db')]);
    const a = await TestClient.connect(srv.port);
    await a.auth('alice', alice);
    a.send(frame('JOIN', { room: 'r' }));
    await a.expect('JOINED');
    const b = await TestClient.connect(srv.port);
    await b.auth('bob', bob);
    const pending = await TestClient.connect(srv.port); // still in AWAIT_HELLO
    srv.child.kill(signal);
    for (const [name, c] of [['alice', a], ['bob', b], ['pending', pending]] as const) {
      t.equal(await c.expectError(), 'SERVER_SHUTDOWN', `${name} got SERVER_SHUTDOWN`);
      t.equal(await c.next(), 'closed', `${name} closed`);
    }
    const { code } = await srv.exited;
    t.equal(code, 0, 'exit status 0');
    t.equal(srv.stdout(), `listening on 127.0.0.1:${srv.port}\n`, 'stdout is exactly the listening line');
    const events = srv
      .stderr()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    t.ok(events.length > 0 && events.every((e) => typeof e['event'] === 'string'), 'stderr is JSON lines, each an event');
    const shutdowns = events.filter((e) => e['event'] === 'refusals').reduce((n, e) => n + ((e['codes'] as Record<string, number>)['SERVER_SHUTDOWN'] ?? 0), 0);
    t.equal(shutdowns, 3, 'each shutdown refusal counted in the refusals line');
    t.equal(events[events.length - 1]?.['event'], 'stopped');
    t.ok(existsSync(join(dir, 'reg', 'registry.db')), 'the registry folder and file were created');
  });
}

t.test('the registry file keeps nickname bindings across a restart of the process', async (t) => {
  const dir = t.testdir({});
  const reg = join(dir, 'registry.db');
  const first = await startCli(t, ['--registry', reg]);
  const a = await TestClient.connect(first.port);
  await a.auth('alice', alice);
  first.child.kill('SIGTERM');
  t.equal(await a.expectError(), 'SERVER_SHUTDOWN');
  t.equal((await first.exited).code, 0);

  const second = await startCli(t, ['--registry', reg, '--log-level', 'debug', '--log-metadata']);
  const m = await TestClient.connect(second.port);
  m.send(frame('HELLO', { version: 2, nick: 'alice', key: mallory.spki }));
  const ch = await m.expect('CHALLENGE');
  m.send(frame('AUTH', { sig: pssSign(mallory.privateKey, authMessage(ch.nonce, 'alice', mallory.spki, ch.relay, new Uint8Array(0))) }));
  t.equal(await m.expectError(), 'NICK_BOUND');
  const a2 = await TestClient.connect(second.port);
  await a2.auth('alice', alice);
  t.pass('alice with her own key is welcome after the restart');
  a2.destroy();
  second.child.kill('SIGTERM');
  t.equal((await second.exited).code, 0);
  const refusals = second
    .stderr()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e['event'] === 'refuse');
  t.ok(refusals.some((e) => e['code'] === 'NICK_BOUND' && e['nick'] === 'alice'), 'NICK_BOUND logged with its code (and, with --log-metadata, the nickname)');
});

t.test('with no --registry the default lives under XDG_STATE_HOME and its folder is created', async (t) => {
  const dir = t.testdir({});
  const env = { ...process.env, XDG_STATE_HOME: join(dir, 'state') };
  const expected = defaultRegistryPath(env);
  t.equal(expected, join(dir, 'state', 'e2ee-chat', 'registry.db'));
  const srv = await startCli(t, [], env);
  const a = await TestClient.connect(srv.port);
  await a.auth('alice', alice);
  srv.child.kill('SIGTERM');
  t.equal((await srv.exited).code, 0);
  t.ok(existsSync(expected), 'registry created at the default path');
});

t.test('--help prints the options and exits 0; bad arguments exit 2', async (t) => {
  const help = spawnSync(process.execPath, [MAIN, 'server', '--help'], { encoding: 'utf8' });
  t.equal(help.status, 0);
  for (const flag of ['--host', '--port', '--max-room-size', '--registry', '--handshake-timeout-ms', '--idle-timeout-ms', '--max-connections', '--max-connections-per-address', '--rate', '--rate-burst', '--write-high-water-bytes', '--max-frame-bytes']) {
    t.ok(help.stdout.includes(flag), `--help lists ${flag}`);
  }
  for (const bad of [['--port', 'abc'], ['--port', '70000'], ['--max-room-size', '1'], ['--max-room-size', '193'], ['--max-room-size', '257'], ['--rate', '-5'], ['--rate', '9'], ['--idle-timeout-ms', '2999'], ['--max-frame-bytes', '653'], ['--nope'], ['stray']]) {
    const r = spawnSync(process.execPath, [MAIN, 'server', ...bad], { encoding: 'utf8' });
    t.equal(r.status, 2, `${bad.join(' ')} exits 2`);
    t.equal(r.stdout, '', `${bad.join(' ')} prints nothing on stdout`);
  }
});

t.test('a port in use is one human line on stderr and exit 1', async (t) => {
  const dir = t.testdir({});
  const first = await startCli(t, ['--registry', join(dir, 'a.db')]);
  const r = spawnSync(process.execPath, [MAIN, 'server', '--port', String(first.port), '--registry', join(dir, 'b.db')], { encoding: 'utf8' });
  t.equal(r.status, 1);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  t.equal(lines.length, 1, 'one line');
  t.ok(lines[0]!.includes(`127.0.0.1:${first.port}`) && !lines[0]!.startsWith('{'), 'naming the address, not JSON');
  first.child.kill('SIGTERM');
  t.equal((await first.exited).code, 0);
});

t.test('under a low open-file limit the cap keeps FD_HEADROOM free: extra connections are refused, never dropped by EMFILE', async (t) => {
  const dir = t.testdir({});
  const nofile = 200;
  const srv = await startCli(t, ['--registry', join(dir, 'r.db'), '--max-connections', '100000', '--max-connections-per-address', '100000'], process.env, nofile);
  const events = () =>
    srv
      .stderr()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const cap = nofile - LIMITS.FD_HEADROOM - LIMITS.FD_HEADROOM / 2;
  t.equal(events().find((e) => e['event'] === 'listening')?.['max_connections'], cap, `cap lowered to ${cap}`);
  const n = cap + 60;
  const clients: TestClient[] = [];
  for (let i = 0; i < n; i++) clients.push(await TestClient.connect(srv.port));
  for (const c of clients) c.send(frame('HELLO', { version: 2, nick: 'alice', key: alice.spki }));
  const outcomes = await Promise.all(
    clients.map(async (c) => {
      const r = await c.next();
      return r === 'closed' ? 'closed' : r.type === 'ERROR' ? `ERROR ${r.code}` : r.type;
    }),
  );
  const count = (o: string) => outcomes.filter((x) => x === o).length;
  t.equal(count('CHALLENGE'), cap, `exactly ${cap} connections held`);
  t.equal(count('CHALLENGE') + count('ERROR 16') + count('closed'), n, 'every other one refused (TOO_MANY_CONNECTIONS) or closed');
  t.ok(count('ERROR 16') > 0, `refusals answered with TOO_MANY_CONNECTIONS (${count('ERROR 16')})`);
  t.notOk(events().some((e) => e['event'] === 'server_error' || e['event'] === 'internal_error'), 'no accept error (EMFILE) and no internal error');
  // Free most places: the listener still accepts and serves once the relay has seen the closes.
  const held = clients.filter((_, i) => outcomes[i] === 'CHALLENGE');
  for (const c of held.slice(10)) c.destroy();
  // Bounded retries: the relay may not have seen the closes yet when the first attempt arrives.
  let welcomed = false;
  for (let i = 0; i < 100 && !welcomed; i++) {
    const late = await TestClient.connect(srv.port);
    try {
      await late.auth('bob', bob);
      welcomed = true;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
    late.destroy();
  }
  t.ok(welcomed, 'a new connection is served after places were freed');
  srv.child.kill('SIGTERM');
  t.equal((await srv.exited).code, 0);
});
