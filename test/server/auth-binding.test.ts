// AUTH bound to the relay (spec/PROTOCOL.md §7.3): a malicious relay X that a client dialled tries to
// log in to relay Y as that client by passing Y's CHALLENGE on and Y the client's AUTH. Real relays, a
// real ChatClient and a frame-level man in the middle on 127.0.0.1.
import t from 'tap';
import { connect, createServer, type Socket } from 'node:net';
import { ChatClient, ClientFailure } from '../../src/client/chat-client.js';
import { nodeClient } from '../../src/client/node-client.js';
import { decodeFrame, encodeWire, frame, FrameReader, type RelayFrame } from '../../src/codec/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { authMessage, generateIdentity, pssSign } from '../../src/crypto/rsa.js';
import { TLS_BINDING } from '../../src/protocol/tls.js';
import { loadTlsCredentials } from '../../src/server/tls.js';
import { makeCerts } from './tls-certs.js';
import { relayIdentity } from '../../src/protocol/relay-id.js';
import { channelBinding, startServer } from '../../src/server/index.js';
import { certificateDnsName, isWildcard, relayNameFor } from '../../src/server/relay-name.js';
import { Proc, startClient, startServerProc, tempDir } from '../client/procs.js';

type Teardown = { teardown(fn: () => unknown): void };

/**
 * Relay X: accepts clients and opens one connection to `upstream` per client, forwarding frames both
 * ways. `rewrite` may change what goes to the client (the CHALLENGE). Records every frame the client sent.
 */
async function manInTheMiddle(t: Teardown, upstream: number, rewrite: (f: RelayFrame, port: number) => RelayFrame) {
  const fromClient: RelayFrame[] = [];
  const sockets: Socket[] = [];
  const srv = createServer((client) => {
    const up = connect({ host: '127.0.0.1', port: upstream });
    sockets.push(client, up);
    const toUp = new FrameReader();
    const toClient = new FrameReader();
    client.on('data', (d) => {
      for (const b of toUp.push(d)) {
        fromClient.push(decodeFrame(b, 'relay'));
        up.write(encodeWire(decodeFrame(b, 'relay')));
      }
    });
    up.on('data', (d) => {
      for (const b of toClient.push(d)) client.write(encodeWire(rewrite(decodeFrame(b, 'relay'), port)));
    });
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => srv.close(() => r()));
  });
  return { port, fromClient };
}

async function relayY(t: Teardown) {
  const y = await startServer({ port: 0 });
  t.teardown(() => y.close());
  return y;
}

function client(t: Teardown, port: number, nick: string): ChatClient {
  const { privateKey, spki } = generateIdentity();
  const c = nodeClient({ host: '127.0.0.1', port, nick, identity: { privateKey, spki } });
  t.teardown(() => c.close());
  return c;
}

async function failureOf(c: ChatClient): Promise<ClientFailure> {
  const e = await c.connect().then(
    () => null,
    (err: unknown) => err,
  );
  if (!(e instanceof ClientFailure)) throw new Error(`expected a ClientFailure, got ${String(e)}`);
  return e;
}

t.test('the relay announces its name in CHALLENGE: relayIdentity(host, port), or the configured name', async (t) => {
  const y = await relayY(t);
  t.equal(y.relayName, relayIdentity('127.0.0.1', y.port));
  t.equal(y.relayName, `localhost:${y.port}`, 'a loopback listener is localhost (the canonical spelling of the pins)');
  const named = await startServer({ port: 0, relayName: 'chat.example.org:55555' });
  t.teardown(() => named.close());
  t.equal(named.relayName, 'chat.example.org:55555');
  await t.rejects(startServer({ port: 0, relayName: '' }), RangeError);
});

t.test("relay X passes relay Y's CHALLENGE on unchanged: the client refuses it (WRONG_RELAY) and signs nothing", async (t) => {
  const y = await relayY(t);
  const x = await manInTheMiddle(t, y.port, (f) => f);
  const e = await failureOf(client(t, x.port, 'victim'));
  t.equal(e.error?.errorName, 'WRONG_RELAY');
  t.notOk(x.fromClient.some((f) => f.type === 'AUTH'), 'no AUTH was made');
});

t.test("relay X puts its own name in Y's CHALLENGE: the client signs for X, and Y refuses the replayed AUTH (AUTH_FAILED)", async (t) => {
  const y = await relayY(t);
  const x = await manInTheMiddle(t, y.port, (f, port) => (f.type === 'CHALLENGE' ? frame('CHALLENGE', { version: f.version, nonce: f.nonce, relay: relayIdentity('127.0.0.1', port) }) : f));
  const e = await failureOf(client(t, x.port, 'victim'));
  t.equal(e.error?.errorName, 'AUTH_FAILED', 'Y verifies over its own name and refuses');
  t.ok(x.fromClient.some((f) => f.type === 'AUTH'), 'the AUTH did reach Y');
  // The same nickname is still free on Y: nothing was bound by the replay.
  const owner = client(t, y.port, 'victim');
  await t.resolves(owner.connect(), 'the real user authenticates at Y directly (WELCOME)');
});

// Over TLS the AUTH covers the connection's tls-exporter value (RFC 9266): an AUTH made over one TLS
// connection (what a relay in the middle would replay) is refused on another, and one without it too.
const certDir = mkdtempSync(join(tmpdir(), 'e2ee-authbind-'));
t.teardown(() => rmSync(certDir, { recursive: true, force: true }));
const certs = makeCerts(certDir);

function tlsFrames(port: number): Promise<{ sock: TLSSocket; next(): Promise<RelayFrame | 'closed'> }> {
  return new Promise((resolve, reject) => {
    const sock = tlsConnect({ host: '127.0.0.1', port, ca: certs.ca, ALPNProtocols: [TLS_BINDING.ALPN] });
    const reader = new FrameReader();
    const queue: (RelayFrame | 'closed')[] = [];
    const waiters: ((f: RelayFrame | 'closed') => void)[] = [];
    const put = (f: RelayFrame | 'closed') => (waiters.length > 0 ? waiters.shift()!(f) : queue.push(f));
    sock.on('data', (d) => {
      for (const b of reader.push(d)) put(decodeFrame(b, 'relay'));
    });
    sock.on('close', () => put('closed'));
    sock.once('error', reject);
    sock.once('secureConnect', () => resolve({ sock, next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((r) => waiters.push(r))) }));
  });
}

t.test('over TLS, AUTH binds the TLS connection: its own tls-exporter value gets WELCOME, another connection\'s or none gets AUTH_FAILED', async (t) => {
  const y = await startServer({ port: 0, tls: loadTlsCredentials(certs.certFile, certs.keyFile) });
  t.teardown(() => y.close());
  const { privateKey, spki } = generateIdentity();
  const other = await tlsFrames(y.port);
  t.teardown(() => other.sock.destroy());
  const otherCb = new Uint8Array(other.sock.exportKeyingMaterial(32, TLS_BINDING.EXPORTER_LABEL, Buffer.alloc(0)));
  const attempt = async (nick: string, cbOf: (own: Uint8Array) => Uint8Array): Promise<RelayFrame | 'closed'> => {
    const c = await tlsFrames(y.port);
    t.teardown(() => c.sock.destroy());
    c.sock.write(encodeWire(frame('HELLO', { version: 2, nick, key: spki })));
    const ch = await c.next();
    if (ch === 'closed' || ch.type !== 'CHALLENGE') throw new Error('no CHALLENGE');
    const own = new Uint8Array(c.sock.exportKeyingMaterial(32, TLS_BINDING.EXPORTER_LABEL, Buffer.alloc(0)));
    c.sock.write(encodeWire(frame('AUTH', { sig: pssSign(privateKey, authMessage(ch.nonce, nick, spki, ch.relay, cbOf(own))) })));
    return c.next();
  };
  const replayed = await attempt('tlsuser', () => otherCb);
  t.equal(replayed !== 'closed' && replayed.type === 'ERROR' ? replayed.code : undefined, 8, "another TLS connection's binding: AUTH_FAILED");
  const unbound = await attempt('tlsuser', () => new Uint8Array(0));
  t.equal(unbound !== 'closed' && unbound.type === 'ERROR' ? unbound.code : undefined, 8, 'no binding over TLS: AUTH_FAILED');
  const bound = await attempt('tlsuser', (own) => own);
  t.equal(bound !== 'closed' ? bound.type : bound, 'WELCOME', 'its own binding: WELCOME');
});

t.test('the channel binding is empty without TLS', async (t) => {
  t.same(channelBinding({} as never), new Uint8Array(0));
});

t.test('the default relay name: the listener as dialled; on a wildcard the certificate\'s DNS name, else required', async (t) => {
  t.equal(relayNameFor('127.0.0.1', 55555, undefined, undefined), 'localhost:55555');
  t.equal(relayNameFor('Chat.Example.', 443, undefined, undefined), 'chat.example:443', 'one spelling, as the client computes it');
  t.equal(relayNameFor('0.0.0.0', 55555, 'chat.example.org:55555', undefined), 'chat.example.org:55555', 'a given name wins');
  const relayCert = loadTlsCredentials(certs.certFile, certs.keyFile);
  const otherCert = loadTlsCredentials(certs.wrongNameCertFile, certs.wrongNameKeyFile);
  t.equal(relayNameFor('0.0.0.0', 55555, undefined, otherCert), 'other.example:55555', 'wildcard + TLS: the first DNS name of the certificate');
  t.equal(relayNameFor('::', 7, undefined, relayCert), 'localhost:7');
  t.throws(() => relayNameFor('0.0.0.0', 55555, undefined, undefined), RangeError, 'wildcard without TLS: no name to tell');
  t.throws(() => relayNameFor('::', 55555, undefined, undefined), RangeError);
  t.throws(() => relayNameFor('127.0.0.1', 1, 'x'.repeat(256), undefined), RangeError, 'longer than RELAY_NAME_MAX_BYTES');
  t.equal(certificateDnsName(certs.ca), undefined, 'a certificate without a DNS name gives none');
  t.equal(certificateDnsName(Buffer.from('not a certificate')), undefined);
  t.ok(isWildcard('0.0.0.0') && isWildcard('::') && isWildcard('[::]') && !isWildcard('127.0.0.1') && !isWildcard('chat.example'));
  await t.rejects(startServer({ port: 0, host: '0.0.0.0' }), RangeError, 'the library refuses before listening');
});

t.test('README defaults: a relay on 127.0.0.1 is the same relay dialled as localhost or 127.0.0.1 (one name, both welcomed)', async (t) => {
  const y = await relayY(t);
  for (const [i, host] of ['127.0.0.1', 'localhost', 'LocalHost'].entries()) {
    const { privateKey, spki } = generateIdentity();
    const c = nodeClient({ host, port: y.port, nick: `spelled${i}`, identity: { privateKey, spki } });
    t.teardown(() => c.close());
    await t.resolves(c.connect(), `dialled as ${host}`);
    t.equal(c.relayName, y.relayName, `${host}: the name the relay announces`);
    c.close();
  }
});

t.test('CLI: a proxy without --relay-name is WRONG_RELAY (exit 7, the announced name shown); with it the chat works; bad names are usage errors', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db'), args: ['--name', 'Chat.Example.ORG:55555'] });
  const x = await manInTheMiddle(t, port, (f) => f);
  const refused = startClient(t, { port: x.port, nick: 'alice', home: join(dir, 'a') });
  t.equal((await refused.exited).code, 7, 'exit 7: a protocol error of the relay');
  const said = refused.err.join('\n');
  t.match(said, /WRONG_RELAY/);
  t.match(said, /"chat\.example\.org:55555"/, 'the name the relay announced, in its one spelling (the relay canonicalised --name)');
  t.notOk(x.fromClient.some((f) => f.type === 'AUTH'), 'nothing was signed');
  const named = startClient(t, { port: x.port, relayName: 'chat.example.org:55555', nick: 'alice', home: join(dir, 'a') });
  await named.waitFor(/^\* joined lobby as alice/);
  named.end();
  t.equal((await named.exited).code, 0, '--relay-name: the relay behind the proxy');
  t.equal((await startClient(t, { port, relayName: 'no port', nick: 'bob', home: join(dir, 'b') }).exited).code, 2, '--relay-name without a port: usage');
  const wild = new Proc(['server', '--host', '0.0.0.0', '--port', '0', '--registry', ':memory:']);
  t.equal((await wild.exited).code, 2, 'server --host 0.0.0.0 without --name or a certificate: usage');
  t.match(wild.err.join('\n'), /--name HOST:PORT/);
  const bad = new Proc(['server', '--port', '0', '--registry', ':memory:', '--name', 'nameonly']);
  t.equal((await bad.exited).code, 2, 'server --name without a port: usage');
});
