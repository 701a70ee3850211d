// TLS 1.3 on the relay's TCP listener and its web listener (spec/PROTOCOL.md §3.2), over real TLS on
// 127.0.0.1 with certificates made by openssl for the test: AUTH and a chat over TLS, the tls-exporter
// channel binding equal on both ends, wrong CA / wrong name / TLS 1.2 / foreign ALPN refused, a
// never-finished handshake cut off by HANDSHAKE_TIMEOUT_MS, caps refused inside TLS, https and wss.
import t, { type Test } from 'tap';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect as netConnect, createServer as netServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { WebSocket } from 'ws';
import { ChatClient, ClientFailure, type ChatClientOptions } from '../../src/client/chat-client.js';
import { nodeClient, type NodeChatClientOptions } from '../../src/client/node-client.js';
import { isCertificateError, readCaFile, systemCa, tcpTransport } from '../../src/client/tcp.js';
import type { Transport } from '../../src/client/transport.js';
import { frame } from '../../src/codec/index.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { startServer, type ServerOptions } from '../../src/server/index.js';
import { acceptTls, channelBindingOf, ClientHelloGate, credentialsFrom, type HelloProgress, loadTlsCredentials, TLS_ALPN, TlsConfigError, tlsExporter, type TlsCredentials, type TlsStream } from '../../src/server/tls.js';
import { startWeb, webListenerAllowed, WS_PATH, WS_SUBPROTOCOL } from '../../src/server/web.js';
import { WsStream } from '../../src/server/ws-stream.js';
import { run as runClient, EXIT } from '../../src/cli/client.js';
import { plainTcpWarning, run as runServer } from '../../src/cli/server.js';
import { identities, TestClient, type Identity } from './helpers.js';
import { makeCerts, type TestCerts } from './tls-certs.js';
import { capturedHello, padded, refragment } from './tls-hello.js';

const dir = mkdtempSync(join(tmpdir(), 'e2ee-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const certs: TestCerts = makeCerts(dir);
const creds: TlsCredentials = loadTlsCredentials(certs.certFile, certs.keyFile);
const [alice, bob] = identities(2) as [Identity, Identity];

async function relay(t: Test, opts: ServerOptions = {}) {
  const logs: Record<string, unknown>[] = [];
  const s = await startServer({ port: 0, tls: creds, log: (e) => logs.push(e), ...opts });
  t.teardown(() => s.close());
  return { s, logs };
}

function client(t: Test, port: number, nick: string, id: Identity, extra: Partial<NodeChatClientOptions> = {}): ChatClient {
  const c = nodeClient({ host: '127.0.0.1', port, nick, identity: id, ...extra });
  t.teardown(() => c.close());
  return c;
}

/** A raw TLS client as Node makes it, resolved on secureConnect or rejected with the error. */
function rawTls(port: number, extra: ConnectionOptions = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: certs.ca, ALPNProtocols: [TLS_ALPN], ...extra });
    s.once('secureConnect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Resolves when `sock` is closed (by the peer or locally). */
function closedOf(sock: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (sock.destroyed) return resolve();
    sock.once('close', () => resolve());
  });
}

/** Polls `cond` every 20 ms, at most `tries` times (bounded; no wall-clock assertion). */
async function until(cond: () => boolean, tries = 1500): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

t.test('two clients chat over TLS 1.3 with the CA: AUTH, JOIN, texts both ways', async (t) => {
  const { s, logs } = await relay(t);
  const tls = { ca: certs.ca };
  const a = client(t, s.port, 'alice', alice, { transport: tcpTransport('127.0.0.1', s.port, tls) });
  const b = client(t, s.port, 'bob', bob, { transport: tcpTransport('localhost', s.port, tls) });
  await a.connect();
  await a.join('lobby');
  const estA = new Promise((r) => a.once('established', r));
  await b.connect();
  await b.join('lobby');
  await estA;
  const got = new Promise<{ text: string }>((r) => b.once('text', r));
  a.send('over tls');
  t.equal((await got).text, 'over tls', 'text arrives through the TLS relay');
  t.ok(logs.some((e) => e['event'] === 'listening' && e['tls'] === true), 'the listening event says tls');
  t.equal(s.stats().authenticated, 2);
});

t.test('the tls-exporter value is the same 32 bytes on the relay connection and the client transport', async (t) => {
  // The relay's own accept path (acceptTls) and the client's transport, face to face.
  let serverSide: TlsStream | undefined;
  const secured = new Promise<void>((resolve) => {
    const srv = netServer((raw) => {
      const st = acceptTls(raw, creds);
      serverSide = st;
      st.on('error', () => {});
      st.once('secure', () => resolve());
    });
    t.teardown(() => srv.close());
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      let tr: Transport | undefined;
      const opened = new Promise<void>((r) => {
        tr = tcpTransport('127.0.0.1', port, { ca: certs.ca })({ open: r, data: () => {}, invalid: () => {}, drain: () => {}, close: () => {} });
      });
      void opened.then(() => (clientValue = tr!.channelBinding!()));
      t.teardown(() => tr?.end());
    });
  });
  let clientValue: Uint8Array | undefined;
  await secured;
  t.ok(await until(() => clientValue !== undefined), 'the client transport opened');
  const relayValue = channelBindingOf(serverSide!);
  t.equal(relayValue?.length, 32, '32 bytes on the relay');
  t.same(Buffer.from(relayValue!), Buffer.from(clientValue!), 'equal on both ends');
  t.same(Buffer.from(tlsExporter(serverSide)!), Buffer.from(relayValue!));
  t.equal(tlsExporter(new Object()), undefined, 'nothing for a non-TLS stream');
  t.equal(tcpTransport('127.0.0.1', 1)({ open: () => {}, data: () => {}, invalid: () => {}, drain: () => {}, close: () => {} }).channelBinding!(), undefined, 'nothing on plain TCP');
});

t.test('a client that does not trust the certificate fails with kind certificate', async (t) => {
  const { s } = await relay(t);
  const wrongCa = client(t, s.port, 'alice', alice, { transport: tcpTransport('127.0.0.1', s.port, { ca: certs.otherCa }) });
  const e1 = await wrongCa.connect().then(() => undefined, (e: unknown) => e);
  t.ok(e1 instanceof ClientFailure && e1.kind === 'certificate', 'another CA: certificate');
  // The system store does not hold the test CA.
  const system = client(t, s.port, 'alice', alice, { transport: tcpTransport('127.0.0.1', s.port, {}) });
  const e2 = await system.connect().then(() => undefined, (e: unknown) => e);
  t.ok(e2 instanceof ClientFailure && e2.kind === 'certificate', 'system store: certificate');
  t.equal(s.stats().authenticated, 0, 'nobody got in');
});

t.test('a certificate for another name is refused (hostname verification)', async (t) => {
  const other = loadTlsCredentials(certs.wrongNameCertFile, certs.wrongNameKeyFile);
  const { s } = await relay(t, { tls: other });
  for (const host of ['127.0.0.1', 'localhost']) {
    const c = client(t, s.port, 'alice', alice, { transport: tcpTransport(host, s.port, { ca: certs.ca }) });
    const e = await c.connect().then(() => undefined, (e: unknown) => e);
    t.ok(e instanceof ClientFailure && e.kind === 'certificate', `--host ${host}: certificate`);
  }
  t.ok(isCertificateError('ERR_TLS_CERT_ALTNAME_INVALID') && !isCertificateError('ECONNREFUSED') && !isCertificateError(undefined));
});

t.test('TLS 1.2, a foreign ALPN and plain TCP are refused; no ALPN is accepted', async (t) => {
  const { s, logs } = await relay(t);
  const e12 = await rawTls(s.port, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }).then(() => undefined, (e: NodeJS.ErrnoException) => e);
  t.ok(e12 !== undefined, `a TLS 1.2-only client is refused (${e12?.code})`);
  const eh2 = await rawTls(s.port, { ALPNProtocols: ['h2', 'http/1.1'] }).then(() => undefined, (e: NodeJS.ErrnoException) => e);
  t.ok(eh2 !== undefined, `a client offering only h2/http1.1 is refused (${eh2?.code})`);
  t.ok(await until(() => logs.filter((e) => e['event'] === 'tls_failed').length >= 2), 'both logged as tls_failed');
  t.same(
    logs.filter((e) => e['event'] === 'tls_failed').map((e) => e['code']),
    ['ERR_SSL_UNSUPPORTED_PROTOCOL', 'ERR_SSL_NO_APPLICATION_PROTOCOL'],
    'with the OpenSSL reason',
  );
  const noAlpn = await rawTls(s.port, { ALPNProtocols: [] });
  const c = TestClient.over(noAlpn);
  t.equal((await c.auth('alice', alice)).type, 'WELCOME', 'no ALPN offered: accepted, and AUTH works');
  c.destroy();
  // A client that speaks plain TCP to a TLS relay gets nowhere.
  const plain = client(t, s.port, 'bob', bob);
  const e = await plain.connect().then(() => undefined, (e: unknown) => e);
  t.ok(e instanceof ClientFailure && (e.kind === 'connect' || e.kind === 'connection'), 'a plain client fails to connect');
});

t.test('a TLS client against a plain relay fails to connect, not as a certificate failure', async (t) => {
  const s = await startServer({ port: 0 });
  t.teardown(() => s.close());
  const c = client(t, s.port, 'alice', alice, { transport: tcpTransport('127.0.0.1', s.port, { ca: certs.ca }) });
  const e = await c.connect().then(() => undefined, (e: unknown) => e);
  t.ok(e instanceof ClientFailure && e.kind === 'connect', 'kind connect');
});

t.test('a peer that opens TCP and never finishes the TLS handshake is cut off by the handshake timeout', async (t) => {
  const { s } = await relay(t, { handshakeTimeoutMs: 300 });
  // One sends nothing; one sends a record header declaring a 4 KiB ClientHello and 100 bytes of it.
  const silent = netConnect({ host: '127.0.0.1', port: s.port });
  const partial = netConnect({ host: '127.0.0.1', port: s.port });
  for (const x of [silent, partial]) x.on('error', () => {});
  await Promise.all([silent, partial].map((x) => new Promise((r) => x.once('connect', r))));
  partial.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x10, 0x00, 0x01, 0x00, 0x0f, 0xfc]), Buffer.alloc(100, 0x03)]));
  t.ok(await until(() => s.stats().connections === 2), 'both are held as connections while they handshake');
  t.ok(await until(() => s.stats().bufferedBytes === 256), 'the partial ClientHello is counted in the buffer budget (the gate\'s first 256 bytes)');
  await Promise.all([closedOf(silent), closedOf(partial)]);
  t.pass('the relay closed both');
  t.ok(await until(() => s.stats().connections === 0), 'and forgot them');
  t.equal(s.stats().errors.TIMEOUT, 2, 'each counted as TIMEOUT');
  t.equal(s.stats().bufferedBytes, 0, 'nothing held');
});

/** Sends `bytes` on a raw TCP connection; resolves with what came back until the relay closed. */
async function firstAnswer(port: number, bytes: Buffer, step = bytes.length): Promise<Buffer> {
  const sock = netConnect({ host: '127.0.0.1', port });
  sock.on('error', () => {});
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => {
    chunks.push(d);
    // A ServerHello is enough to know the ClientHello reached TLS; nothing here finishes the handshake.
    if (Buffer.concat(chunks)[5] === 2) sock.destroy();
  });
  await new Promise((r) => sock.once('connect', r));
  for (let o = 0; o < bytes.length && !sock.destroyed; o += step) {
    sock.write(bytes.subarray(o, o + step));
    await new Promise((r) => setImmediate(r));
  }
  await closedOf(sock);
  return Buffer.concat(chunks);
}

const alert = (description: number) => Buffer.from([0x15, 3, 3, 0, 2, 2, description]);

t.test('the ClientHello gate (MAX_CLIENT_HELLO_BYTES): at the limit it reaches TLS, one byte over it is refused with illegal_parameter', async (t) => {
  const { s, logs } = await relay(t);
  const hello = await capturedHello();
  t.ok(hello.length < 2048, `Node's ClientHello is ${hello.length} bytes`);
  const at = await firstAnswer(s.port, padded(hello, LIMITS.MAX_CLIENT_HELLO_BYTES), 100);
  t.equal(at[0], 0x16, 'a ClientHello of exactly MAX_CLIENT_HELLO_BYTES, trickled in 100-byte writes: TLS answers with a handshake record');
  t.equal(at[5], 2, 'a ServerHello');
  const over = await firstAnswer(s.port, padded(hello, LIMITS.MAX_CLIENT_HELLO_BYTES + 1));
  t.same(over, alert(47), 'one byte more: the fatal illegal_parameter alert, then the close');
  // Refused on the handshake header: 9 bytes that declare a ClientHello too long to fit.
  const declared = await firstAnswer(s.port, Buffer.from([0x16, 3, 1, 0x40, 0, 1, 0, 0x3f, 0xfc]));
  t.same(declared, alert(47), 'a declared length over the limit is refused on the 9 header bytes');
  t.ok(await until(() => s.stats().connections === 0), 'all forgotten');
  t.same(
    // (The at-limit one reached TLS and was then reset by the test: OpenSSL's ECONNRESET, not the gate's.)
    logs.filter((e) => e['event'] === 'tls_failed' && String(e['code']).startsWith('ERR_TLS_')).map((e) => e['code']),
    ['ERR_TLS_CLIENT_HELLO_TOO_LARGE', 'ERR_TLS_CLIENT_HELLO_TOO_LARGE'],
    'logged with the gate\'s code',
  );
});

t.test('the ClientHello gate: a ClientHello split over records and trickled byte by byte still completes the handshake and AUTH', async (t) => {
  const { s } = await relay(t);
  // A proxy that re-frames the client's first flight into 7-byte records and writes them one byte at a time.
  const proxy = netServer((inbound) => {
    const out = netConnect({ host: '127.0.0.1', port: s.port });
    out.on('error', () => inbound.destroy());
    inbound.on('error', () => out.destroy());
    let first: Buffer | undefined = Buffer.alloc(0);
    inbound.on('data', async (d: Buffer) => {
      if (first === undefined) return void out.write(d);
      first = Buffer.concat([first, d]);
      if (first.length < 5 || first.length < 5 + first.readUInt16BE(3)) return;
      const whole = first;
      first = undefined;
      const rec = whole.subarray(0, 5 + whole.readUInt16BE(3));
      const wire = Buffer.concat([refragment(rec, 7), whole.subarray(rec.length)]);
      inbound.pause();
      for (const b of wire) {
        out.write(Buffer.from([b]));
        await new Promise((r) => setImmediate(r));
      }
      inbound.resume();
    });
    out.on('data', (d: Buffer) => inbound.write(d));
    out.on('close', () => inbound.destroy());
    inbound.on('close', () => out.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  t.teardown(() => proxy.close());
  const via = (proxy.address() as { port: number }).port;
  const sock = await new Promise<TLSSocket>((resolve, reject) => {
    const c = tlsConnect({ host: '127.0.0.1', port: via, ca: certs.ca, servername: 'localhost', ALPNProtocols: [TLS_ALPN] });
    c.once('secureConnect', () => resolve(c));
    c.once('error', reject);
  });
  t.equal(sock.getProtocol(), 'TLSv1.3');
  const c = TestClient.over(sock);
  t.equal((await c.auth('alice', alice)).type, 'WELCOME', 'AUTH through the fragmented, trickled ClientHello');
  c.destroy();
});

t.test('the ClientHello gate: what is not a ClientHello is refused before TLS sees it', async (t) => {
  const { s, logs } = await relay(t);
  t.same(await firstAnswer(s.port, Buffer.from([0x15, 3, 3, 0, 2, 2, 40])), alert(10), 'an alert record first: unexpected_message');
  t.same(await firstAnswer(s.port, Buffer.from([0x16, 3, 1, 0, 4, 2, 0, 0, 0])), alert(10), 'a handshake record with a ServerHello: unexpected_message');
  t.same(await firstAnswer(s.port, Buffer.from([0x16, 3, 1, 0x40, 0x01])), alert(22), 'a record over 2^14 bytes: record_overflow');
  t.same(await firstAnswer(s.port, Buffer.from([0x16, 3, 1, 0, 0])), alert(22), 'an empty handshake record: record_overflow');
  t.same(await firstAnswer(s.port, Buffer.from('GET / HTTP/1.1\r\n\r\n')), Buffer.alloc(0), 'not TLS at all (HTTP): closed without an alert');
  t.ok(await until(() => s.stats().connections === 0), 'all forgotten');
  t.same(
    logs.filter((e) => e['event'] === 'tls_failed').map((e) => e['code']),
    ['ERR_TLS_UNEXPECTED_MESSAGE', 'ERR_TLS_UNEXPECTED_MESSAGE', 'ERR_TLS_RECORD_OVERFLOW', 'ERR_TLS_RECORD_OVERFLOW', 'ERR_TLS_WRONG_VERSION_NUMBER'],
  );
});

t.test('ClientHelloGate: holds at most twice what came (and at least 256 bytes), never past its limit', async (t) => {
  const hello = await capturedHello();
  const g = new ClientHelloGate();
  let p: HelloProgress = 'more';
  for (let i = 0; i < hello.length && p === 'more'; i++) {
    p = g.push(hello.subarray(i, i + 1));
    if (i < hello.length - 1) {
      t.equal(p, 'more');
      t.ok(g.held <= Math.max(256, 2 * (i + 1)), `after ${i + 1} bytes it holds ${g.held}`);
    }
  }
  t.equal(p, 'complete', 'byte by byte to the last byte');
  t.same(Buffer.concat(g.bytes()), hello, 'and gives back exactly the bytes it got');
  // The chunk that completes it may carry more (a ChangeCipherSpec): kept, in order, also past the limit.
  const small = new ClientHelloGate(hello.length);
  const ccs = Buffer.from([0x14, 3, 3, 0, 1, 1]);
  t.equal(small.push(Buffer.concat([hello, ccs])), 'complete');
  t.same(Buffer.concat(small.bytes()), Buffer.concat([hello, ccs]));
  t.ok(small.held <= hello.length, 'its buffer stays within the limit');
  // Full, but the records' headers left no room for the rest of the message.
  const split = refragment(hello, 10);
  const tight = new ClientHelloGate(hello.length + 5);
  t.equal(tight.push(split), 'too_large', 'a ClientHello whose record headers push it past the limit');
  t.equal(new ClientHelloGate().push(Buffer.from([0x16, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3])), 'more');
  t.equal(new ClientHelloGate().push(Buffer.from([0x16, 2, 0])), 'more', 'an incomplete record header waits');
  t.equal(new ClientHelloGate().push(Buffer.from([0x16, 2, 0, 0, 1])), 'version');
  const across = new ClientHelloGate();
  t.equal(across.push(Buffer.from([0x16, 3, 1, 0, 2, 1, 0])), 'more', 'the handshake header split over two records');
  t.equal(across.push(Buffer.from([0x16, 3, 1, 0, 4, 0, 2, 0xaa, 0xbb])), 'complete');
  t.equal(new ClientHelloGate().push(Buffer.from([0x16, 3, 1, 0, 2, 1, 0, 0x17, 3, 3, 0, 1, 0])), 'unexpected', 'application data inside a ClientHello');
});

t.test('over a cap, the refusal TOO_MANY_CONNECTIONS arrives inside TLS', async (t) => {
  const { s } = await relay(t, { maxConnectionsPerAddress: 1 });
  const first = TestClient.over(await rawTls(s.port));
  await first.auth('alice', alice);
  const second = TestClient.over(await rawTls(s.port));
  t.equal(await second.expectError(), 'TOO_MANY_CONNECTIONS', 'an ERROR frame the client can read');
  first.destroy();
});

t.test('TLS credentials: missing, not PEM, key not the certificate\'s', async (t) => {
  const bad = join(dir, 'not.pem');
  writeFileSync(bad, 'hello');
  const cases: [string, string, string][] = [
    [join(dir, 'missing.crt'), certs.keyFile, '--tls-cert'],
    [certs.certFile, join(dir, 'missing.key'), '--tls-key'],
    [bad, certs.keyFile, '--tls-cert'],
    [certs.keyFile, certs.keyFile, '--tls-cert'],
    [certs.certFile, certs.wrongNameKeyFile, '--tls-key'],
  ];
  for (const [c, k, flag] of cases) {
    let caught: unknown;
    try {
      loadTlsCredentials(c, k);
    } catch (e) {
      caught = e;
    }
    t.ok(caught instanceof TlsConfigError && caught.flag === flag, `${flag} at fault`);
  }
  t.throws(() => credentialsFrom(certs.cert, Buffer.from('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')), TlsConfigError);
  t.ok(loadTlsCredentials(certs.selfSignedCertFile, certs.selfSignedKeyFile), 'the README command makes usable credentials');
  t.throws(() => readCaFile(join(dir, 'missing.crt')), /--tls-ca/);
  t.throws(() => readCaFile(bad), /--tls-ca/);
  t.ok(readCaFile(certs.caFile).length > 0);
  t.same(systemCa({ SSL_CERT_FILE: certs.caFile }).slice(-1), [certs.ca.toString('utf8')], 'SSL_CERT_FILE names the bundle');
  t.ok(systemCa({}).length > 100, 'the system store holds the public roots');
});

t.test('the README self-signed certificate, given as --tls-ca, is trusted', async (t) => {
  const { s } = await relay(t, { tls: loadTlsCredentials(certs.selfSignedCertFile, certs.selfSignedKeyFile) });
  const c = client(t, s.port, 'alice', alice, { transport: tcpTransport('127.0.0.1', s.port, { ca: readCaFile(certs.selfSignedCertFile) }) });
  t.equal((await c.connect()).maxFrame, s.maxFrameBytes, 'WELCOME over TLS');
});

t.test('the web listener over https and wss with the same credentials', async (t) => {
  const { s } = await relay(t);
  const root = t.testdir({ 'index.html': '<!doctype html><title>t</title>', 'app.js': '' });
  const web = await startWeb(s, { host: '127.0.0.1', port: 0, root, tls: creds });
  t.teardown(() => web.close());
  t.equal(web.origin, `https://127.0.0.1:${web.port}`, 'an https origin');
  const res = await new Promise<{ status: number; csp: string; proto: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: web.port, path: '/', ca: certs.ca, minVersion: 'TLSv1.3' }, (r) => {
      r.resume();
      resolve({ status: r.statusCode ?? 0, csp: String(r.headers['content-security-policy']), proto: (r.socket as TLSSocket).getProtocol() ?? '' });
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(res.status, 200);
  t.equal(res.proto, 'TLSv1.3');
  t.match(res.csp, `connect-src wss://127.0.0.1:${web.port}${WS_PATH};`, 'the page may connect to its wss endpoint only');
  const e12 = await new Promise<unknown>((resolve) => {
    const req = request({ host: '127.0.0.1', port: web.port, path: '/', ca: certs.ca, maxVersion: 'TLSv1.2' }, () => resolve(undefined));
    req.on('error', resolve);
    req.end();
  });
  t.ok(e12 instanceof Error, 'https refuses TLS 1.2');

  const ws = new WebSocket(`wss://127.0.0.1:${web.port}${WS_PATH}`, [WS_SUBPROTOCOL], { ca: certs.ca, origin: web.origin });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const c = TestClient.over(new WsStream(ws, undefined, undefined, s.maxFrameBytes));
  t.equal((await c.auth('alice', alice)).type, 'WELCOME', 'AUTH over wss');
  c.send(frame('PING', { n: 1 }));
  t.equal((await c.expect('PONG')).n, 1);
  const bad = new WebSocket(`wss://127.0.0.1:${web.port}${WS_PATH}`, [WS_SUBPROTOCOL], { ca: certs.otherCa, origin: web.origin });
  const err = await new Promise<NodeJS.ErrnoException>((resolve) => bad.once('error', resolve));
  t.ok(isCertificateError(err.code), `wss with another CA: ${err.code}`);
  ws.close();
});

t.test('the wss connection carries the tls-exporter of its TLS socket', async (t) => {
  const { s } = await relay(t);
  const root = t.testdir({ 'index.html': '<!doctype html><title>t</title>' });
  let seen: Uint8Array | undefined;
  // The relay's accept, observed: the stream it is handed has the channel binding of the TLS under it.
  const accept = s.accept.bind(s);
  const observed = { ...s, maxFrameBytes: s.maxFrameBytes, accept: (st: Parameters<typeof s.accept>[0]) => {
    seen = channelBindingOf(st);
    accept(st);
  } };
  const web = await startWeb(observed, { host: '127.0.0.1', port: 0, root, tls: creds });
  t.teardown(() => web.close());
  const ws = new WebSocket(`wss://127.0.0.1:${web.port}${WS_PATH}`, [WS_SUBPROTOCOL], { ca: certs.ca, origin: web.origin });
  const clientValue = await new Promise<Buffer>((resolve, reject) => {
    ws.once('upgrade', (res) => {
      const sock = res.socket as TLSSocket;
      resolve(sock.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)));
    });
    ws.once('error', reject);
  });
  await new Promise<void>((r) => (ws.readyState === ws.OPEN ? r() : ws.once('open', () => r())));
  t.ok(await until(() => seen !== undefined));
  t.same(Buffer.from(seen!), clientValue, 'equal to the browser side value');
  ws.close();
});

t.test('the web listener rule: TLS anywhere, plain HTTP on loopback, or --web-insecure', async (t) => {
  t.ok(webListenerAllowed('0.0.0.0', true, false), 'TLS: any address');
  t.ok(webListenerAllowed('127.0.0.1', false, false), 'plain on loopback');
  t.ok(webListenerAllowed('0.0.0.0', false, true), 'plain off loopback with --web-insecure');
  t.notOk(webListenerAllowed('0.0.0.0', false, false), 'plain off loopback without it: refused');
  t.notOk(webListenerAllowed('192.0.2.1', false, false));
  const { s } = await relay(t);
  await t.rejects(startWeb(s, { host: '0.0.0.0', port: 0, root: t.testdir({ 'index.html': '' }) }), RangeError, 'startWeb refuses it too');
});

t.test('TLS files: a key readable by group or others, or a certificate writable by them, is refused (--tls-key / --tls-cert at fault)', async (t) => {
  const copy = (from: string, name: string, mode: number): string => {
    const p = join(dir, name);
    copyFileSync(from, p);
    chmodSync(p, mode);
    return p;
  };
  const at = (c: string, k: string): string | undefined => {
    try {
      loadTlsCredentials(c, k);
      return undefined;
    } catch (e) {
      return e instanceof TlsConfigError ? e.flag : String(e);
    }
  };
  t.equal(at(certs.certFile, copy(certs.keyFile, 'k600.key', 0o600)), undefined, 'mode 600 key, 644 certificate: accepted');
  t.equal(at(certs.certFile, copy(certs.keyFile, 'k400.key', 0o400)), undefined, 'mode 400 key: accepted');
  for (const mode of [0o640, 0o604, 0o644, 0o660]) t.equal(at(certs.certFile, copy(certs.keyFile, `k${mode.toString(8)}.key`, mode)), '--tls-key', `key mode ${mode.toString(8)}`);
  for (const mode of [0o664, 0o646]) t.equal(at(copy(certs.certFile, `c${mode.toString(8)}.crt`, mode), certs.keyFile), '--tls-cert', `certificate mode ${mode.toString(8)}`);
  t.equal(at(certs.certFile, dir), '--tls-key', 'a folder is not a key file');
  const reg = ['--registry', ':memory:', '--port', '0'];
  t.equal(await runServer(['--tls-cert', certs.certFile, '--tls-key', join(dir, 'k644.key'), ...reg]), 2, 'the relay refuses a world-readable key with status 2');
});

t.test('TLS flags: usage errors exit 2 before anything listens', async (t) => {
  const reg = ['--registry', ':memory:', '--port', '0'];
  t.equal(await runServer(['--tls-cert', certs.certFile, ...reg]), 2, '--tls-cert without --tls-key');
  t.equal(await runServer(['--tls-key', certs.keyFile, ...reg]), 2, '--tls-key without --tls-cert');
  t.equal(await runServer(['--tls-cert', join(dir, 'missing'), '--tls-key', certs.keyFile, ...reg]), 2, 'unreadable certificate');
  t.equal(await runServer(['--tls-cert', certs.certFile, '--tls-key', certs.wrongNameKeyFile, ...reg]), 2, 'the key of another certificate');
  t.equal(await runServer(['--host', '0.0.0.0', '--web-port', '0', ...reg]), 2, 'plain HTTP off loopback without --web-insecure');
  const home = join(dir, 'client-home');
  t.equal(await runClient(['--tls-ca', join(dir, 'missing'), '--nick', 'a', '--home', home]), EXIT.USAGE, 'client: unreadable --tls-ca');
  t.equal(await runClient(['--tls-ca', certs.keyFile, '--nick', 'a', '--home', home]), EXIT.USAGE, 'client: --tls-ca without a certificate');
  t.equal(EXIT.TLS_CERTIFICATE, 10, 'the documented status of a certificate failure');
});

t.test('plain TCP beyond loopback is warned about; with TLS or on loopback it is not', async (t) => {
  t.match(plainTcpWarning('0.0.0.0', false), /without TLS/);
  t.match(plainTcpWarning('192.0.2.7', false), /192\.0\.2\.7/);
  t.equal(plainTcpWarning('0.0.0.0', true), null, 'TLS: no warning');
  for (const h of ['127.0.0.1', '::1', 'localhost']) t.equal(plainTcpWarning(h, false), null, `${h}: no warning`);
});
