// The fuzzer over the WebSocket transport (spec §3.1, issue 18 point 7), against the relay as a child
// process with --web-port 0: every WebSocket tail (text, empty and oversized messages, RFC 6455
// violations, client closes), before and after login, gets the ERROR and close code the spec names; every
// hostile upgrade gets its HTTP status; a wrong expectation is reported (the checks can fail); and a short
// run of both transports, fragmented messages with pings between fragments included, has no failure.
import t from 'tap';
import { fuzz } from '../../fuzz/engine.js';
import { IdentityBook, makeCase, runCase } from '../../fuzz/harness.js';
import { Prng } from '../../fuzz/prng.js';
import { loadSeeds } from '../../fuzz/seeds.js';
import { ServerProcess } from '../../fuzz/server-process.js';
import { runUpgradeCase, upgradeCase, wsTail } from '../../fuzz/ws.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { WsRawConnection } from '../../src/wirekit/relay-ws-conn.js';
import { identity } from '../../src/wirekit/relay-conn.js';
import { OP, wsFrame } from '../../src/wirekit/ws.js';

const { seeds, raw } = loadSeeds(new URL('../../vectors/codec.json', import.meta.url).pathname);
const D = { replyMs: 15_000 };

t.test('every WebSocket tail, before and after login, is answered with its ERROR and close code', async (t) => {
  const server = await ServerProcess.start(['--web-port', '0']);
  t.teardown(() => server.stop());
  const book = new IdentityBook();
  const seen = new Set<string>();
  for (let i = 0; i < 600 && seen.size < 2 * 19; i++) {
    const tail = wsTail(new Prng(i * 7 + 1), LIMITS.MAX_FRAME_BYTES);
    const state = (['READY', 'IN_ROOM', 'AWAIT_HELLO', 'AWAIT_AUTH'] as const)[i % 4]!;
    const key = `${tail.name.replace(/-\d+$/, '')}/${state.startsWith('AWAIT') ? 'before' : 'after'} login`;
    if (seen.has(key)) continue;
    seen.add(key);
    const c = { ...makeCase(77, i, seeds, raw, book, ['ws']), state, payload: Buffer.alloc(0), cuts: [], ws: { fragSeed: i, peerWs: i % 2 === 0, tail } };
    const r = await runCase(server, c, book, new Map(), D);
    t.ok(r.ok && r.tail === tail.name, `${key}: ${r.ok ? (r.tail !== undefined ? 'as §3.1 says' : 'tail not sent') : r.failure}`);
  }
  t.equal(seen.size, 2 * 19, 'all 19 kinds, each before and after login');
  t.same(server.problems, [], 'no internal error in the relay log');
});

t.test('a wrong expectation fails: the tail checks can fail', async (t) => {
  const server = await ServerProcess.start(['--web-port', '0']);
  t.teardown(() => server.stop());
  const book = new IdentityBook();
  const unmasked = { name: 'unmasked', bytes: wsFrame({ opcode: OP.BINARY, payload: Buffer.from([0x81, 0xa1, 0x74, 0x01]), masked: false }), closeCodes: [1000] };
  const c = { ...makeCase(78, 0, seeds, raw, book, ['ws']), state: 'READY' as const, payload: Buffer.alloc(0), cuts: [], ws: { fragSeed: 1, peerWs: false, tail: unmasked } };
  const r = await runCase(server, c, book, new Map(), D);
  t.notOk(r.ok);
  t.match(r.failure, /close code 1002, expected 1000/);
  const text = { name: 'text', bytes: wsFrame({ opcode: OP.TEXT, payload: Buffer.from('hi') }), error: 'AUTH_FAILED' as const, closeCodes: [4003] };
  const r2 = await runCase(server, { ...c, ws: { fragSeed: 1, peerWs: false, tail: text } }, book, new Map(), D);
  t.match(r2.failure, /expected ERROR AUTH_FAILED, got ERROR 1/);
});

t.test('hostile upgrades get their HTTP status, never 101; a valid upgrade after them still gets WELCOME', async (t) => {
  const server = await ServerProcess.start(['--web-port', '0']);
  t.teardown(() => server.stop());
  const origin = `http://${server.host}:${server.wsPort!}`;
  const names = new Set<string>();
  const r = new Prng(5);
  for (let i = 0; i < 80; i++) {
    const u = upgradeCase(r, origin);
    names.add(u.name.replace(/-\d+$/, ''));
    t.equal(await runUpgradeCase(server.host, server.wsPort!, u, D.replyMs), undefined, u.name);
  }
  t.ok(names.size >= 12, `${names.size} kinds of upgrade: ${[...names].sort().join(', ')}`);
  const wrong = { name: 'expects-101', options: {}, expect: [400] };
  t.match(await runUpgradeCase(server.host, server.wsPort!, wrong, D.replyMs), /got 101/, 'a valid upgrade is 101, so expecting 400 fails');
  const c = await WsRawConnection.open(server.host, server.wsPort!);
  const { welcome } = await c.authenticate(identity('wsafter'));
  t.equal(welcome.max_frame, LIMITS.MAX_FRAME_BYTES);
  c.close();
  t.same(server.problems, []);
});

t.test('a short run over both transports: every answer as the oracle says, relay healthy after every batch', async (t) => {
  const report = await fuzz({ seed: 20261202, iterations: 480, batchSize: 8, minimise: false, maxFailures: 20, deadlines: D });
  t.equal(report.cases, 480);
  t.ok(report.byTransport.ws > 100 && report.byTransport.tcp > 100, `${report.byTransport.tcp} TCP and ${report.byTransport.ws} WebSocket cases`);
  t.ok(report.upgrades > 0, `${report.upgrades} hostile upgrades`);
  t.ok(Object.keys(report.tails).length > 5, `tails: ${JSON.stringify(report.tails)}`);
  t.equal(report.failureCount, 0, report.failures.map((f) => `x${f.count} case ${String(f.caseIndex)}: ${f.what}`).join(' | ') || 'no failure');
});
