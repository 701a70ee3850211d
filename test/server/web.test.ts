// The relay's web listener over real connections on 127.0.0.1 (spec/PROTOCOL.md §3.1): a WebSocket
// connection is an ordinary §7.1 connection (it meets a TCP client in one room), text and oversized
// messages are refused with their §9 codes and close codes, the upgrade checks Host, Origin, path and
// subprotocol, and every HTTP response carries the security headers with the files' hashes as listed.
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { frame } from '../../src/codec/index.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { startServer, type RelayServer, type ServerOptions } from '../../src/server/index.js';
import { isLoopback, originOf, parseOrigin, securityHeaders, startWeb, WS_PATH, WS_SUBPROTOCOL, type WebListener, type WebOptions } from '../../src/server/web.js';
import { WS_CLOSE_ERROR_BASE, WS_CLOSE_POLICY, WS_READ_BYTES, WS_READS_BASE, WsStream } from '../../src/server/ws-stream.js';
import { identities, TestClient, type Identity } from './helpers.js';
import { encodeFrame } from '../../src/codec/index.js';
import { identity as kitIdentity } from '../../src/wirekit/relay-conn.js';
import { WsRawConnection } from '../../src/wirekit/relay-ws-conn.js';
import { OP, wsFrame } from '../../src/wirekit/ws.js';
import { WebSocketServer } from 'ws';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

const [alice, bob] = identities(2) as [Identity, Identity];
const main = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

const FILES = {
  'index.html': '<!doctype html><title>t</title><script src="app.js"></script>',
  'app.js': 'console.log(1);\n',
  'style.css': 'body{}\n',
};

interface Setup {
  relay: RelayServer;
  web: WebListener;
  logs: Record<string, unknown>[];
}

async function setup(t: Test, opts: ServerOptions = {}, web: Partial<WebOptions> = {}): Promise<Setup> {
  const logs: Record<string, unknown>[] = [];
  const relay = await startServer({ ...opts, log: (e) => logs.push(e) });
  const root = t.testdir(FILES);
  const w = await startWeb(relay, { host: '127.0.0.1', port: 0, root, log: (e) => logs.push(e), ...web });
  t.teardown(async () => {
    await relay.close();
    await w.close();
  });
  return { relay, web: w, logs };
}

interface WsOpen {
  client: TestClient<WsStream>;
  ws: WebSocket;
  closed: Promise<number>;
}

/** Opens the WebSocket endpoint as a browser on `origin` would (default: the relay's own origin). */
function openWs(web: WebListener, origin: string | undefined = web.origin, protocol: string | undefined = WS_SUBPROTOCOL): Promise<WsOpen> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${web.port}${WS_PATH}`, protocol === undefined ? [] : [protocol], origin === undefined ? {} : { origin });
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.once('open', () => {
      ws.off('error', reject);
      resolve({ client: TestClient.over(new WsStream(ws, undefined, undefined, 16384)), ws, closed });
    });
    ws.once('error', reject);
  });
}

/** The HTTP status an upgrade attempt is refused with. */
function refusedStatus(port: number, headers: Record<string, string>, path = WS_PATH): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers } });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      reject(new Error('upgrade accepted'));
    });
    req.on('error', reject);
    req.end();
  });
}

function get(port: number, path: string, host = `127.0.0.1:${port}`, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { Host: host } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('a TCP client and a WebSocket client meet in one room and relay both ways', async (t) => {
  const { relay, web } = await setup(t);
  const tcp = await TestClient.connect(relay.port);
  await tcp.auth('alice', alice);
  tcp.send(frame('JOIN', { room: 'lobby' }));
  await tcp.expect('JOINED');

  const { client: wsc } = await openWs(web);
  const welcome = await wsc.auth('bob', bob);
  t.equal(welcome.max_frame, relay.maxFrameBytes, 'WELCOME announces the max_frame that maxPayload enforces');
  wsc.send(frame('JOIN', { room: 'lobby' }));
  const joined = await wsc.expect('JOINED');
  t.same(joined.members.map((m) => m.nick), ['alice']);
  t.equal((await tcp.expect('PEER_JOINED')).nick, 'bob');

  wsc.send(frame('SEND', { to: 'alice', body: new Uint8Array([1, 2, 3]) }));
  const d1 = await tcp.expect('DELIVER');
  t.same([d1.from, [...d1.body]], ['bob', [1, 2, 3]]);
  tcp.send(frame('SEND', { to: 'bob', body: new Uint8Array([4, 5]) }));
  const d2 = await wsc.expect('DELIVER');
  t.same([d2.from, [...d2.body]], ['alice', [4, 5]]);
  t.equal(relay.stats().authenticated, 2);

  wsc.destroy();
  t.equal((await tcp.expect('PEER_LEFT')).nick, 'bob', 'a closed WebSocket leaves the room like a TCP disconnect');
  tcp.destroy();
});

t.test('a text message is MALFORMED_FRAME: ERROR 1, then close code 4001', async (t) => {
  const { relay, web } = await setup(t);
  const { client, ws, closed } = await openWs(web);
  ws.send('hello');
  t.equal(await client.expectError(), 'MALFORMED_FRAME');
  t.equal(await closed, WS_CLOSE_ERROR_BASE + ERROR_CODES.MALFORMED_FRAME.code);
  t.equal(relay.stats().errors.MALFORMED_FRAME, 1, 'counted by the relay like a TCP framing error');
});

t.test('an empty binary message is MALFORMED_FRAME like a zero length prefix', async (t) => {
  const { web } = await setup(t);
  const { client, ws, closed } = await openWs(web);
  ws.send(Buffer.alloc(0));
  t.equal(await client.expectError(), 'MALFORMED_FRAME');
  t.equal(await closed, 4001);
});

t.test('a message over max_frame is refused at its header: close 1009, counted as FRAME_TOO_LARGE', async (t) => {
  const { relay, web } = await setup(t, { maxFrameBytes: 2048 });
  const { ws, closed } = await openWs(web);
  ws.send(Buffer.alloc(2049, 0x80));
  t.equal(await closed, 1009);
  t.equal(relay.stats().errors.FRAME_TOO_LARGE, 1);
});

/** One binary WebSocket message holding frame `f` (§3.1), as a client writes it. */
const message = (f: Parameters<typeof encodeFrame>[0]): Buffer => wsFrame({ opcode: OP.BINARY, payload: encodeFrame(f) });

// §3: errors never overtake frames. ws fails a connection on the header of an oversized message, in
// the same read as the frames before it, while the relay may still be working on them (SET_RECOVERY
// waits for a registry write, AUTH for its signature check): their answers go out first, then the close.
t.test('frames before a message over max_frame are answered first, then close 1009 without an ERROR', async (t) => {
  const { relay, web } = await setup(t, { maxFrameBytes: 2048 });
  const c = await WsRawConnection.open('127.0.0.1', web.port);
  t.teardown(() => c.close());
  await c.authenticate(kitIdentity('wsorder1'));
  c.raw(Buffer.concat([message(frame('SET_RECOVERY', { commit: new Uint8Array(32).fill(7) })), message(frame('PING', { n: 41 })), wsFrame({ opcode: OP.BINARY, declared: 2049 })]));
  t.equal((await c.next()).type, 'RECOVERY_SET', 'the registry step before the oversized header is answered');
  const pong = await c.next();
  t.same(pong.type === 'PONG' ? pong.n : pong.type, 41, 'then the PING behind it');
  t.equal((await c.next()).type, 'closed', 'then the close, with no ERROR frame');
  t.equal(c.closeCode, 1009);
  t.equal(relay.stats().errors.FRAME_TOO_LARGE, 1, 'counted as FRAME_TOO_LARGE');
});

t.test('an AUTH refused before a message over max_frame: its ERROR first, then close 4000 + its code', async (t) => {
  const { relay, web } = await setup(t);
  const c = await WsRawConnection.open('127.0.0.1', web.port);
  t.teardown(() => c.close());
  const id = kitIdentity('wsorder2');
  c.send(frame('HELLO', { version: 2, nick: id.nick, key: id.spki }));
  await c.expect('CHALLENGE');
  c.raw(Buffer.concat([message(frame('AUTH', { sig: new Uint8Array(256).fill(1) })), wsFrame({ opcode: OP.BINARY, declared: 2 ** 32 })]));
  const err = await c.next();
  t.equal(err.type === 'ERROR' ? err.code : err.type, ERROR_CODES.AUTH_FAILED.code, 'AUTH_FAILED, not overtaken by the oversized header');
  t.equal((await c.next()).type, 'closed');
  t.equal(c.closeCode, WS_CLOSE_ERROR_BASE + ERROR_CODES.AUTH_FAILED.code, 'the first error is final (§3): its close code');
  t.equal(relay.stats().errors.FRAME_TOO_LARGE, undefined, 'the oversized message was never reached');
});

t.test('an RFC 6455 violation after a frame: the frame is answered, then close 1002 (MALFORMED_FRAME)', async (t) => {
  const { relay, web } = await setup(t);
  const c = await WsRawConnection.open('127.0.0.1', web.port);
  t.teardown(() => c.close());
  await c.authenticate(kitIdentity('wsorder3'));
  c.raw(Buffer.concat([message(frame('SET_RECOVERY', { commit: new Uint8Array(32).fill(9) })), wsFrame({ opcode: OP.BINARY, payload: Buffer.from([1]), masked: false })]));
  t.equal((await c.next()).type, 'RECOVERY_SET');
  t.equal((await c.next()).type, 'closed');
  t.equal(c.closeCode, 1002);
  t.equal(relay.stats().errors.MALFORMED_FRAME, 1);
});

/** Writes `bytes` one per read of the relay's socket: each write waits until the relay holds it (bounded). */
async function oneByteReads(c: WsRawConnection, relay: RelayServer, bytes: Buffer): Promise<number> {
  let n = 0;
  for (const b of bytes) {
    if (c.closeCode !== undefined) break;
    const before = relay.stats().bufferedBytes;
    c.raw(Buffer.from([b]));
    n++;
    for (let i = 0; i < 400 && relay.stats().bufferedBytes === before && c.closeCode === undefined; i++) await new Promise((r) => setTimeout(r, 5));
  }
  return n;
}

// §3.1: ws holds an incomplete message as the reads it came in, each a Buffer of its own; a peer
// trickling one byte per read would make the relay hold ~80x what it sent (measured 2026-12-02: 83.7x
// for 20 connections trickling 4000 bytes each before login). So a message may take WS_READS_BASE reads
// plus one per WS_READ_BYTES; past that, close 1008, counted as MALFORMED_FRAME.
t.test('a message in too many small reads fails the connection with close 1008; a small frame byte by byte is still read', async (t) => {
  const { relay, web } = await setup(t);
  const c = await WsRawConnection.open('127.0.0.1', web.port);
  t.teardown(() => c.close());
  await c.authenticate(kitIdentity('wsreads1'));
  const ping = message(frame('PING', { n: 7 }));
  t.ok(ping.length <= WS_READS_BASE, 'a PING message fits the base allowance');
  t.equal(await oneByteReads(c, relay, ping), ping.length);
  const pong = await c.next();
  t.same(pong.type === 'PONG' ? pong.n : pong.type, 7, 'a small frame sent one byte per read is answered');
  t.ok(relay.stats().bufferedBytes < 1024, 'nothing held once the message completed');
  // A 4000-byte message: its header in one read, then one byte per read.
  c.raw(wsFrame({ opcode: OP.BINARY, declared: 4000 }));
  for (let i = 0; i < 400 && relay.stats().bufferedBytes === 0; i++) await new Promise((r) => setTimeout(r, 5));
  const sent = await oneByteReads(c, relay, Buffer.alloc(4000, 0x41));
  t.equal((await c.next()).type, 'closed', 'no ERROR frame: the close stands for it');
  t.equal(c.closeCode, WS_CLOSE_POLICY);
  t.equal(sent, WS_READS_BASE, 'the read after the allowance (header + WS_READS_BASE bytes) fails it');
  t.equal(relay.stats().errors.MALFORMED_FRAME, 1, 'counted as MALFORMED_FRAME');
});

t.test('a large message in reads of WS_READ_BYTES each is read whole', async (t) => {
  const { relay, web } = await setup(t);
  const c = await WsRawConnection.open('127.0.0.1', web.port);
  t.teardown(() => c.close());
  await c.authenticate(kitIdentity('wsreads2'));
  await c.join('wsreads');
  const wire = message(frame('SEND', { to: 'nobody-z9', body: Buffer.alloc(6000, 5) }));
  let reads = 0;
  for (let off = 0; off < wire.length; off += WS_READ_BYTES) {
    const before = relay.stats().bufferedBytes;
    c.raw(wire.subarray(off, off + WS_READ_BYTES));
    reads++;
    for (let i = 0; i < 400 && relay.stats().bufferedBytes === before && off + WS_READ_BYTES < wire.length; i++) await new Promise((r) => setTimeout(r, 5));
  }
  t.ok(reads > WS_READS_BASE, `more reads (${reads}) than the base allowance`);
  const err = await c.next();
  t.equal(err.type === 'ERROR' ? err.code : err.type, ERROR_CODES.NO_SUCH_PEER.code, 'the whole SEND was read and answered');
  c.send(frame('PING', { n: 3 }));
  const pong = await c.next();
  t.same(pong.type === 'PONG' ? pong.n : pong.type, 3, 'and the connection stays open');
});

t.test('the held close is bounded: a stream whose owner never answers still gets close 1009', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64, handleProtocols: () => WS_SUBPROTOCOL });
  t.teardown(() => new Promise<void>((r) => wss.close(() => r())));
  await once(wss, 'listening');
  const streams: WsStream[] = [];
  const inputs: Buffer[] = [];
  wss.on('connection', (ws) => {
    // Nobody reads the refusal or ends the stream: only the bound closes the connection.
    const s = new WsStream(ws, undefined, undefined, 64, 50);
    s.on('data', (b: Buffer) => inputs.push(b));
    streams.push(s);
  });
  const c = await WsRawConnection.open('127.0.0.1', (wss.address() as AddressInfo).port);
  t.teardown(() => c.close());
  c.raw(wsFrame({ opcode: OP.BINARY, declared: 65 }));
  t.equal((await c.next()).type, 'closed');
  t.equal(c.closeCode, 1009);
  t.same(inputs.map((b) => b.readUInt32BE(0)), [65], 'the stream carried the refusal: a prefix declaring max_frame + 1');
  const s = streams[0]!;
  if (!s.destroyed) await once(s, 'close');
  t.ok(s.destroyed, 'and the stream ended with it');
});

t.test('a message of exactly max_frame is read and decoded (here: not msgpack, MALFORMED_FRAME)', async (t) => {
  const { relay, web } = await setup(t, { maxFrameBytes: 2048 });
  const { client, ws, closed } = await openWs(web);
  await client.auth('alice', alice); // before WELCOME only MAX_PRELOGIN_FRAME_BYTES is read (§3)
  ws.send(Buffer.alloc(2048, 0xc1));
  t.equal(await client.expectError(), 'MALFORMED_FRAME');
  t.equal(await closed, 4001);
  t.equal(relay.stats().errors.FRAME_TOO_LARGE, undefined);
});

t.test('the §7.1 timeouts apply: no HELLO in time is TIMEOUT, close 4013', async (t) => {
  const { web } = await setup(t, { handshakeTimeoutMs: 150 });
  const { client, closed } = await openWs(web);
  t.equal(await client.expectError(), 'TIMEOUT');
  t.equal(await closed, WS_CLOSE_ERROR_BASE + ERROR_CODES.TIMEOUT.code);
});

t.test('WebSocket pings are no activity: answered at most once a second, and idle_ms still expires', async (t) => {
  const { web } = await setup(t, { idleTimeoutMs: 300 });
  const { client, ws, closed } = await openWs(web);
  await client.auth('bob', bob);
  let pongs = 0;
  ws.on('pong', () => pongs++);
  let pings = 0;
  const timer = setInterval(() => {
    if (ws.readyState === ws.OPEN && pings < 40) {
      ws.ping();
      pings++;
    }
  }, 25);
  t.teardown(() => clearInterval(timer));
  t.equal(await client.expectError(), 'TIMEOUT');
  t.equal(await closed, 4013);
  clearInterval(timer);
  t.ok(pings >= 3, `sent ${pings} pings`);
  t.ok(pongs >= 1 && pongs < pings, `${pongs} pongs for ${pings} pings`);
});

t.test('the per-address cap counts WebSocket connections: over it, TOO_MANY_CONNECTIONS', async (t) => {
  const { relay, web } = await setup(t, { maxConnectionsPerAddress: 1 });
  const tcp = await TestClient.connect(relay.port);
  await tcp.auth('alice', alice);
  const { client, closed } = await openWs(web);
  t.equal(await client.expectError(), 'TOO_MANY_CONNECTIONS');
  t.equal(await closed, 4016);
  tcp.destroy();
});

t.test('a graceful shutdown reaches WebSocket clients: SERVER_SHUTDOWN, close 4017', async (t) => {
  const { relay, web } = await setup(t);
  const { client, closed } = await openWs(web);
  await client.auth('bob', bob);
  void relay.close();
  t.equal(await client.expectError(), 'SERVER_SHUTDOWN');
  t.equal(await closed, 4017);
});

t.test('the upgrade is refused for a foreign Origin, a wrong path, no subprotocol and an unknown Host', async (t) => {
  const { web, relay } = await setup(t, {}, { allowOrigins: ['https://chat.example'] });
  const key = { 'Sec-WebSocket-Protocol': WS_SUBPROTOCOL };
  t.equal(await refusedStatus(web.port, { ...key, Origin: 'http://evil.example' }), 403, 'foreign origin');
  t.equal(await refusedStatus(web.port, { ...key, Origin: `http://localhost:${web.port}` }), 403, 'another name for the same address is another origin');
  t.equal(await refusedStatus(web.port, { ...key, Origin: web.origin }, '/other'), 404, 'wrong path');
  t.equal(await refusedStatus(web.port, { Origin: web.origin }), 400, 'no subprotocol');
  t.equal(await refusedStatus(web.port, { 'Sec-WebSocket-Protocol': 'chat, other', Origin: web.origin }), 400, 'wrong subprotocol');
  t.equal(await refusedStatus(web.port, { ...key, Origin: web.origin, Host: `rebound.example:${web.port}` }), 421, 'DNS-rebound Host');
  // The allowed origin list: a page served by a TLS proxy for chat.example may connect.
  const ok = await openWs(web, 'https://chat.example');
  ok.ws.close();
  const own = await openWs(web);
  own.ws.close();
  await Promise.all([ok.closed, own.closed]);
  t.equal(relay.stats().errors.TOO_MANY_CONNECTIONS, undefined);
  // A foreign page is refused by the ws client too (its 'unexpected-response' path).
  await t.rejects(openWs(web, 'http://evil.example'));
});

t.test('every response carries the CSP and security headers; files are served with the listed hashes', async (t) => {
  const { web } = await setup(t);
  const want = securityHeaders(`ws://127.0.0.1:${web.port}${WS_PATH}`);
  t.equal(
    want['Content-Security-Policy'],
    `default-src 'none'; script-src 'self'; style-src 'self'; connect-src ws://127.0.0.1:${web.port}/v1/ws; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
  );
  t.same(
    web.manifest.map((f) => [f.path, f.sha256]),
    Object.entries(FILES)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, body]) => [`/${name}`, createHash('sha256').update(body).digest('hex')]),
  );
  for (const [path, name] of [['/', 'index.html'], ['/index.html', 'index.html'], ['/app.js', 'app.js'], ['/style.css', 'style.css']] as const) {
    const r = await get(web.port, path);
    t.equal(r.status, 200, path);
    t.equal(r.body.toString(), FILES[name], path);
    for (const [h, v] of Object.entries(want)) t.equal(r.headers[h.toLowerCase()], v, `${path} ${h}`);
  }
  t.match((await get(web.port, '/app.js')).headers['content-type'], /^text\/javascript/);
  const listing = JSON.parse((await get(web.port, '/manifest.json')).body.toString()) as { path: string; sha256: string }[];
  t.same(listing, web.manifest.map((f) => ({ path: f.path, sha256: f.sha256 })), '/manifest.json is the printed manifest');
  const module = await get(web.port, '/manifest.js');
  t.match(module.headers['content-type'], /^text\/javascript/, 'the manifest as a module, for the page (script-src, not connect-src)');
  t.equal(module.body.toString(), `export default ${JSON.stringify(listing)};\n`);
  const missing = await get(web.port, '/../package.json');
  t.equal(missing.status, 404, 'only manifest files exist');
  t.equal(missing.headers['content-security-policy'], want['Content-Security-Policy'], 'a 404 carries the headers too');
  t.equal((await get(web.port, '/', `rebound.example:${web.port}`)).status, 421, 'unknown Host: no page for a rebound name');
  t.equal((await get(web.port, '/', undefined, 'POST')).status, 405);
  const head = await get(web.port, '/app.js', undefined, 'HEAD');
  t.same([head.status, head.body.length], [200, 0]);
});

t.test('plain HTTP on a non-loopback address needs insecure; origins are checked', async (t) => {
  const relay = await startServer({});
  t.teardown(() => relay.close());
  await t.rejects(startWeb(relay, { host: '0.0.0.0', port: 0, root: t.testdir(FILES) }), RangeError);
  await t.rejects(startWeb(relay, { host: '127.0.0.1', port: 0, root: t.testdir({ 'app.js': '' }) }), RangeError, 'no index.html');
  await t.rejects(startWeb(relay, { host: '127.0.0.1', port: 0, root: t.testdir(FILES), allowOrigins: ['https://x.example/path'] }), RangeError);
  t.ok(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('[::1]') && isLoopback('localhost') && isLoopback('127.1.2.3'));
  t.notOk(isLoopback('0.0.0.0') || isLoopback('10.0.0.1') || isLoopback('::'));
  t.equal(originOf('http', '::1', 80), 'http://[::1]:80');
  t.equal(parseOrigin('https://chat.example/'), 'https://chat.example');
  t.throws(() => parseOrigin('ftp://x'), RangeError);
  t.throws(() => parseOrigin('not a url'), RangeError);
});

t.test('e2ee-chat server --web-port 0 prints the web URL and the manifest, and serves it', async (t) => {
  const root = t.testdir(FILES);
  const child = spawn(process.execPath, [main, 'server', '--port', '0', '--registry', ':memory:', '--web-port', '0', '--web-root', root], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  const m = await new Promise<RegExpExecArray>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const hit = /^listening on 127\.0\.0\.1:\d+\nweb on http:\/\/127\.0\.0\.1:(\d+)\/\n((?:web sha256 [0-9a-f]{64} \/\S+\n){3})/.exec(out);
      if (hit !== null) resolve(hit);
    });
    child.on('exit', (code) => reject(new Error(`exited ${String(code)}: ${out}`)));
  });
  const port = Number(m[1]);
  const listed = new Map(m[2]!.trim().split('\n').map((l) => [l.split(' ')[3]!, l.split(' ')[2]!]));
  const r = await get(port, '/app.js');
  t.equal(listed.get('/app.js'), createHash('sha256').update(r.body).digest('hex'), 'the printed hash is the served file');
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.equal(await exited, 0);
});

t.test('e2ee-chat server refuses plain HTTP off loopback without --web-insecure, and web flags without --web-port', async (t) => {
  const root = t.testdir(FILES);
  const off = spawnSync(process.execPath, [main, 'server', '--host', '0.0.0.0', '--port', '0', '--registry', ':memory:', '--web-port', '0', '--web-root', root], { encoding: 'utf8' });
  t.equal(off.status, 2);
  t.equal(off.stdout, '', 'nothing listens');
  const flags = spawnSync(process.execPath, [main, 'server', '--web-insecure'], { encoding: 'utf8' });
  t.equal(flags.status, 2);
});
