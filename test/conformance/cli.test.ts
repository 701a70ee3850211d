/**
 * `e2ee-chat conformance` as a program: against the reference relay started as a child process it exits
 * 0 and writes the JSON report; against a relay that never answers it exits 1 and prints the failures;
 * usage errors exit 2.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SERVER_CASES } from '../../src/conformance/server-cases.js';
import { startBroken } from './fixtures/broken.js';

const MAIN = 'dist/src/cli/main.js';

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function startRelay(dir: string, web = false): Promise<{ child: ChildProcess; target: string; web?: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      // The WebSocket run keeps the relay's timeouts longer: its cases wait for none of them.
      [MAIN, 'server', '--port', '0', '--registry', join(dir, 'registry.db'), ...(web ? ['--handshake-timeout-ms', '10000', '--idle-timeout-ms', '10000', '--web-port', '0'] : ['--handshake-timeout-ms', '2000', '--idle-timeout-ms', '3000'])],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+:\d+)/.exec(out);
      const w = /web on https?:\/\/(\S+:\d+)\//.exec(out);
      if (m && !web) resolve({ child, target: m[1]! });
      if (m && w) resolve({ child, target: m[1]!, web: w[1]! });
    });
    child.on('exit', (code) => reject(new Error(`relay exited ${String(code)} before listening`)));
  });
}

t.test('against the reference relay: exit 0, a PASS line per case, and the JSON report', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-conf-cli-'));
  const relay = await startRelay(dir);
  t.teardown(() => {
    relay.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  const json = join(dir, 'results.json');
  const r = await run(['conformance', 'server', '--target', relay.target, '--handshake-ms', '2000', '--json', json]);
  t.equal(r.code, 0, r.stdout.split('\n').filter((l) => l.startsWith('FAIL') || l.startsWith('  ')).join('\n'));
  t.equal(r.stdout.split('\n').filter((l) => l.startsWith('PASS ')).length, SERVER_CASES.length - 1);
  const report = JSON.parse(readFileSync(json, 'utf8')) as { kind: string; summary: Record<string, number>; results: Array<{ id: string; status: string }> };
  t.equal(report.kind, 'server');
  t.same(report.summary, { total: SERVER_CASES.length, pass: SERVER_CASES.length - 1, fail: 0, skip: 1, error: 0 });
  t.same(
    report.results.map((x) => x.id),
    SERVER_CASES.map((c) => c.id),
  );
});

t.test('against a relay that never answers: exit 1, and each failure says what was expected and what arrived', async (t) => {
  const fx = await startBroken('silent');
  t.teardown(() => fx.close());
  const r = await run(['conformance', 'server', '--target', `${fx.host}:${fx.port}`, '--only', '3', '--wait-ms', '300']);
  t.equal(r.code, 1);
  const lines = r.stdout.split('\n');
  const failed = lines.filter((l) => l.startsWith('FAIL '));
  t.ok(failed.length > 0);
  t.equal(failed.length, lines.filter((l) => l.trim().startsWith('expected:')).length);
  t.equal(failed.length, lines.filter((l) => l.trim().startsWith('arrived:')).length);
  t.notOk(lines.some((l) => l.startsWith('PASS ')));
});

t.test('--transport ws: the §3 cases over the relay\'s WebSocket endpoint pass, and the report names the transport', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-conf-cli-'));
  const relay = await startRelay(dir, true);
  t.teardown(() => {
    relay.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  const json = join(dir, 'results.json');
  const r = await run(['conformance', 'server', '--target', relay.web!, '--transport', 'ws', '--only', '3', '--handshake-ms', '10000', '--wait-ms', '15000', '--json', json]);
  t.equal(r.code, 0, r.stdout.split('\n').filter((l) => l.startsWith('FAIL') || l.startsWith('  ')).join('\n'));
  const report = JSON.parse(readFileSync(json, 'utf8')) as { transport: string; summary: Record<string, number> };
  t.equal(report.transport, 'ws');
  t.ok(report.summary.pass! > 10 && report.summary.fail === 0, JSON.stringify(report.summary));
  // The TCP port is not a WebSocket endpoint: every case fails on its upgrade, exit 1.
  const wrong = await run(['conformance', 'server', '--target', relay.target, '--transport', 'ws', '--only', 'framing_zero', '--wait-ms', '3000']);
  t.equal(wrong.code, 1);
  t.match(wrong.stdout, /expected: a WebSocket upgrade/);
});

t.test('usage errors exit 2', async (t) => {
  t.equal((await run(['conformance', 'server', '--target', '127.0.0.1:1', '--transport', 'quic'])).code, 2);
  t.equal((await run(['conformance'])).code, 2);
  t.equal((await run(['conformance', 'server'])).code, 2);
  t.equal((await run(['conformance', 'server', '--target', 'nohost'])).code, 2);
  t.equal((await run(['conformance', 'server', '--target', '127.0.0.1:1', '--wait-ms', 'x'])).code, 2);
  t.equal((await run(['conformance', 'server', '--target', '127.0.0.1:1', '--only', 'no_such_case'])).code, 2);
  t.equal((await run(['conformance', 'client'])).code, 2);
  t.equal((await run(['conformance', 'bogus'])).code, 2);
  const list = await run(['conformance', 'server', '--list']);
  t.equal(list.code, 0);
  t.equal(list.stdout.trim().split('\n').length, SERVER_CASES.length);
});
