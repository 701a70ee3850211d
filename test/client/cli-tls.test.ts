/**
 * `e2ee-chat server --tls-cert/--tls-key` and `e2ee-chat client --tls-ca/--tls` as real processes on
 * 127.0.0.1 (spec/PROTOCOL.md §3.2): a whole chat through a recording proxy shows no nickname, room name
 * or text on the wire over TLS (and, as the control, shows them without TLS); an untrusted certificate
 * ends the client with status 10; the web listener prints an https URL. The flags' usage errors are
 * checked in process, in test/server/tls.test.ts.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { RecordingProxy, startClient, startServerProc, tempDir } from './procs.js';
import { makeCerts } from '../server/tls-certs.js';

// One set of certificates and one home per nickname for the whole file (each home makes an RSA key once).
const dir = tempDir(t, 'e2ee-clitls-');
const certs = makeCerts(dir);
const home = (nick: string) => join(dir, `home-${nick}`);

const NICKS = ['alicetls7', 'bobtls9'] as const;
const ROOM = 'roomtls42';
const TEXTS = ['PLAINTEXT-first-7c1e meet at noon', 'PLAINTEXT-second-93ab bring the keys'] as const;

/** A chat of two scripted clients through a recording proxy; returns every byte the proxy saw. */
async function recordedChat(t: Test, tls: boolean): Promise<Buffer> {
  const { port: relayPort } = await startServerProc(t, {
    registry: join(dir, `reg-${tls}.db`),
    args: tls ? ['--tls-cert', certs.certFile, '--tls-key', certs.keyFile] : [],
  });
  const proxy = new RecordingProxy(relayPort);
  const port = await proxy.listen();
  t.teardown(() => proxy.close());
  const args = tls ? ['--tls-ca', certs.caFile] : [];
  const a = startClient(t, { port, relayName: `localhost:${relayPort}`, nick: NICKS[0], home: home(NICKS[0]), room: ROOM, args });
  await a.waitFor(/^\* joined /);
  const b = startClient(t, { port, relayName: `localhost:${relayPort}`, nick: NICKS[1], home: home(NICKS[1]), room: ROOM, args });
  await a.waitFor(/^\* secure session with /);
  await b.waitFor(/^\* secure session with /);
  a.write(TEXTS[0]);
  b.write(TEXTS[1]);
  t.equal(await b.waitFor(/^alicetls7: /), `${NICKS[0]}: ${TEXTS[0]}`, 'b got the text');
  t.equal(await a.waitFor(/^bobtls9: /), `${NICKS[1]}: ${TEXTS[1]}`, 'a got the text');
  await a.waitFor(/^\* delivered to /);
  await b.waitFor(/^\* delivered to /);
  a.end();
  b.end();
  t.equal((await a.exited).code, 0);
  t.equal((await b.exited).code, 0);
  return proxy.bytes();
}

/** Which of the secrets appear in `wire`. */
function found(wire: Buffer): string[] {
  return [...NICKS, ROOM, ...TEXTS.map((x) => x.slice(0, 20))].filter((s) => wire.includes(Buffer.from(s)));
}

t.test('over TLS a recording proxy finds no nickname, room name or text; without TLS it does', async (t) => {
  const withTls = await recordedChat(t, true);
  t.ok(withTls.length > 5000, `the proxy recorded the TLS chat (${withTls.length} bytes)`);
  t.equal(withTls[0], 0x16, 'the first byte is a TLS handshake record');
  t.same(found(withTls), [], 'nothing of the chat is in the TLS bytes');
  const plain = await recordedChat(t, false);
  t.same(found(plain), [...NICKS, ROOM], 'control: without TLS nicknames and the room name are on the wire (texts stay end-to-end encrypted)');
});

t.test('a client that does not trust the relay certificate exits 10; the web listener is https', async (t) => {
  const root = t.testdir({ 'index.html': '<!doctype html><title>t</title>' });
  const { port, proc } = await startServerProc(t, {
    registry: join(dir, 'reg-exit.db'),
    args: ['--tls-cert', certs.certFile, '--tls-key', certs.keyFile, '--web-port', '0', '--web-root', root],
  });
  t.match(await proc.waitFor(/^web on /), /^web on https:\/\/127\.0\.0\.1:\d+\/$/, 'the same certificate makes the web listener https');
  const nick = NICKS[0];
  const wrong = startClient(t, { port, nick, home: home(nick), args: ['--tls-ca', certs.otherCaFile] });
  wrong.end();
  t.equal((await wrong.exited).code, 10, '--tls-ca with another CA: 10');
  t.ok(wrong.err.some((l) => l.includes('UNABLE_TO_VERIFY_LEAF_SIGNATURE')), 'stderr names the verification result');
  const system = startClient(t, { port, nick, home: home(nick), args: ['--tls'] });
  system.end();
  t.equal((await system.exited).code, 10, '--tls: the system store does not hold the test CA: 10');
  // --tls with SSL_CERT_FILE naming the test CA as the system bundle: trusted.
  const named = startClient(t, { port, nick, home: home(nick), args: ['--tls'], env: { SSL_CERT_FILE: certs.caFile } });
  await named.waitFor(/^\* joined lobby as /);
  named.end();
  t.equal((await named.exited).code, 0, '--tls with SSL_CERT_FILE: joined, exit 0');
  const plainToTls = startClient(t, { port, nick, home: home(nick) });
  plainToTls.end();
  t.equal((await plainToTls.exited).code, 6, 'no TLS against a TLS relay: 6 (connection)');
});
