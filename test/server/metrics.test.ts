// The metrics and health endpoint (src/server/metrics.ts), scraped over loopback from a real relay while
// real clients log in, join, relay and get refused: every figure moves with the traffic, no label carries
// a nickname, room name, key or address, and /healthz follows whether the relay accepts connections.
import t from 'tap';
import { get, request } from 'node:http';
import { frame } from '../../src/codec/index.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { startServer } from '../../src/server/index.js';
import { Logger } from '../../src/server/log.js';
import { startMetrics } from '../../src/server/metrics.js';
import { identities, TestClient, type Identity } from './helpers.js';

const [alice, bob] = identities(2) as [Identity, Identity];

function fetchText(url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Parses Prometheus text into `name{labels}` -> value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+?(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m !== null) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

t.test('/metrics follows real traffic; labels are fixed names only', async (t) => {
  const relay = await startServer({ port: 0 });
  t.teardown(() => relay.close());
  const m = await startMetrics(relay, { host: '127.0.0.1', port: 0 });
  t.teardown(() => m.close());
  t.equal(m.url, `http://127.0.0.1:${m.port}/metrics`);
  const scrape = async () => {
    const r = await fetchText(m.url);
    t.equal(r.status, 200);
    return { values: parse(r.body), text: r.body, type: r.type };
  };

  const before = await scrape();
  t.match(before.type, /^text\/plain; version=0\.0\.4/);
  const v0 = before.values;
  t.equal(v0.get('e2ee_relay_up'), 1);
  for (const st of ['AWAIT_HELLO', 'AWAIT_AUTH', 'READY', 'IN_ROOM', 'CLOSED']) t.equal(v0.get(`e2ee_relay_connections{state="${st}"}`), 0, `no connection in ${st}`);
  t.equal(v0.get('e2ee_relay_rooms'), 0);
  t.equal(v0.get('e2ee_relay_registry_bindings'), 0);
  t.equal(v0.get('e2ee_relay_frames_relayed_total'), 0);
  t.equal(v0.get('e2ee_relay_refusals_total{code="NO_SUCH_PEER"}'), 0, 'every §9 code is there from the start');
  t.equal([...v0.keys()].filter((k) => k.startsWith('e2ee_relay_refusals_total{')).length, Object.keys(ERROR_CODES).length);
  t.ok(v0.has('nodejs_eventloop_lag_seconds'), 'event loop lag');
  t.ok(v0.has('nodejs_eventloop_lag_p99_seconds'));
  t.ok(v0.has('process_resident_memory_bytes'));
  t.equal(v0.get('e2ee_relay_connections_max'), relay.stats().maxConnections);

  const room = 'room-metrics-9d2e';
  const a = await TestClient.connect(relay.port);
  await a.auth('alice-m7', alice);
  a.send(frame('JOIN', { room }));
  await a.expect('JOINED');
  const b = await TestClient.connect(relay.port);
  await b.auth('bob-m7', bob);
  const pending = await TestClient.connect(relay.port); // stays in AWAIT_HELLO
  pending.raw(Buffer.from([0, 0, 1, 0, 0x83])); // declares 256 bytes, sends 1: a partial frame is held
  for (let i = 0; i < 500 && relay.stats().bufferedBytes < 256; i++) await new Promise((r) => setTimeout(r, 10));
  const mid = (await scrape()).values;
  t.equal(mid.get('e2ee_relay_connections{state="IN_ROOM"}'), 1);
  t.equal(mid.get('e2ee_relay_connections{state="READY"}'), 1);
  t.equal(mid.get('e2ee_relay_connections{state="AWAIT_HELLO"}'), 1);
  t.equal(mid.get('e2ee_relay_rooms'), 1);
  t.equal(mid.get('e2ee_relay_registry_bindings'), 2, 'two nicknames bound');
  t.ok(mid.get('e2ee_relay_buffered_bytes')! >= 256, `the partial frame is counted (${mid.get('e2ee_relay_buffered_bytes')} bytes)`);

  b.send(frame('JOIN', { room }));
  await b.expect('JOINED');
  await a.expect('PEER_JOINED');
  for (let i = 0; i < 10; i++) a.send(frame('SEND', { to: 'bob-m7', body: Buffer.alloc(100, i) }));
  for (let i = 0; i < 10; i++) await b.expect('DELIVER');
  a.send(frame('SEND', { to: 'nobody', body: Buffer.alloc(1) }));
  t.equal(await a.expectError(), 'NO_SUCH_PEER');
  const after = await scrape();
  const v1 = after.values;
  t.equal(v1.get('e2ee_relay_connections{state="IN_ROOM"}'), 2);
  t.equal(v1.get('e2ee_relay_frames_relayed_total'), 10);
  t.equal(v1.get('e2ee_relay_bytes_relayed_total'), 1000);
  t.equal(v1.get('e2ee_relay_refusals_total{code="NO_SUCH_PEER"}'), 1);
  t.ok(v1.get('e2ee_relay_frames_received_total')! >= 2 * 3 + 11, 'HELLO, AUTH, JOIN each, the SENDs');
  t.ok(v1.get('e2ee_relay_bytes_received_total')! > v0.get('e2ee_relay_bytes_received_total')! + 1000);
  t.ok(v1.get('e2ee_relay_bytes_sent_total')! > 10 * 100, 'the DELIVERs and the rest');

  // Nothing a client chose appears anywhere in the text, nor any address; labels take fixed values.
  for (const s of ['alice-m7', 'bob-m7', room, '127.0.0.1', Buffer.from(alice.spki).toString('base64').slice(60, 90)]) {
    t.notOk(after.text.includes(s), `${s} is not in the metrics`);
  }
  const labelValues = new Set<string>();
  for (const k of v1.keys()) for (const lm of k.matchAll(/(\w+)="([^"]*)"/g)) labelValues.add(`${lm[1]}=${lm[2]}`);
  const allowed = /^(state=(AWAIT_HELLO|AWAIT_AUTH|READY|IN_ROOM|CLOSED)|code=[A-Z_]+|le=([0-9.e+-]+|\+Inf)|type=\w+|kind=\w+|space=\w+|version=v[\d.]+|major=\d+|minor=\d+|patch=\d+|quantile=[\d.]+)$/;
  t.same([...labelValues].filter((l) => !allowed.test(l)), [], 'every label value is a fixed name');

  // Health and the rest of the listener.
  t.equal((await fetchText(m.url.replace('/metrics', '/healthz'))).status, 200);
  t.equal((await fetchText(m.url.replace('/metrics', '/other'))).status, 404);
  t.equal((await fetchText(m.url, 'POST')).status, 405);
  const head = await fetchText(m.url, 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.body, '');
  a.destroy();
  b.destroy();
  pending.destroy();
  const closing = relay.close();
  const health = await fetchText(m.url.replace('/metrics', '/healthz'));
  t.equal(health.status, 503, '/healthz is 503 once the relay no longer accepts connections');
  t.equal((await scrape()).values.get('e2ee_relay_up'), 0);
  await closing;
});

t.test('the log queue and drops are reported when a logger is given', async (t) => {
  const relay = await startServer({ port: 0 });
  t.teardown(() => relay.close());
  const log = await Logger.create({ file: `${t.testdir({})}/relay.log` });
  const m = await startMetrics(relay, { host: '127.0.0.1', port: 0, logStats: () => log.stats() });
  t.teardown(() => m.close());
  log.log({ event: 'listening' });
  await log.flush();
  const v = parse((await fetchText(m.url)).body);
  t.equal(v.get('e2ee_relay_log_lines_total{outcome="written"}'), 1);
  t.equal(v.get('e2ee_relay_log_lines_total{outcome="dropped"}'), 0);
  t.equal(v.get('e2ee_relay_log_queued_bytes'), 0);
  await log.close();
});

t.test('a metrics port in use rejects with EADDRINUSE; an IPv6 host is bracketed in the URL', async (t) => {
  const relay = await startServer({ port: 0 });
  t.teardown(() => relay.close());
  const m = await startMetrics(relay, { host: '127.0.0.1', port: 0 });
  t.teardown(() => m.close());
  await t.rejects(startMetrics(relay, { host: '127.0.0.1', port: m.port }), { code: 'EADDRINUSE' });
  const v6 = await startMetrics(relay, { host: '::1', port: 0 }).catch(() => undefined);
  if (v6 !== undefined) {
    t.equal(v6.url, `http://[::1]:${v6.port}/metrics`);
    const body = await new Promise<number>((resolve, reject) => get(v6.url, (r) => resolve(r.statusCode ?? 0)).on('error', reject));
    t.equal(body, 200);
    await v6.close();
  } else {
    t.comment('no IPv6 loopback on this machine');
  }
});
