/**
 * `e2ee-chat client` exit statuses (usage, cannot connect, connection lost) and room secrets, with real
 * relay and client processes on 127.0.0.1.
 */
import t from 'tap';
import { join } from 'node:path';
import { startClient, startServerProc, tempDir, freePort } from './procs.js';


t.test('exit statuses: 2 usage, 6 cannot connect, 6 connection lost', async (t) => {
  const dir = tempDir(t);
  const bad = startClient(t, { port: 1, nick: 'x', home: join(dir, 'x'), args: ['--port', 'many'] });
  t.equal((await bad.exited).code, 2, 'bad --port');
  const noNick = startClient(t, { port: 1, nick: 'bad nick!', home: join(dir, 'x') });
  t.equal((await noNick.exited).code, 2, 'nickname outside the alphabet');
  // A --home that cannot be created is a usage error at once (Node's recursive mkdir never returns
  // under /proc; the client creates one level at a time).
  const noHome = startClient(t, { port: 1, nick: 'x', home: '/proc/e2ee-chat-nonexistent/home' });
  noHome.end();
  t.equal((await noHome.exited).code, 2, '--home under /proc: status 2, no endless loop');
  t.ok(noHome.err.some((l) => l.includes('/proc/e2ee-chat-nonexistent')), 'stderr names the path');

  const closed = await freePort();
  // --handshake-timeout is seconds from 0.1 to 3600, written as digits (no exponent, sign or unit).
  for (const v of ['0', '0.05', '1e3', '3601', ' 1']) {
    const c = startClient(t, { port: closed, nick: 'x', home: join(dir, 'x'), args: ['--handshake-timeout', v] });
    c.end();
    t.equal((await c.exited).code, 2, `--handshake-timeout ${JSON.stringify(v)}: usage`);
    t.ok(c.err.some((l) => l.includes('--handshake-timeout')), 'the error names the option');
  }
  for (const v of ['0.1']) {
    const c = startClient(t, { port: closed, nick: 'x', home: join(dir, 'x'), args: ['--handshake-timeout', v] });
    c.end();
    t.equal((await c.exited).code, 6, `--handshake-timeout ${v}: accepted, then cannot connect`);
  }
  const nobody = startClient(t, { port: closed, nick: 'x', home: join(dir, 'x') });
  nobody.end();
  t.equal((await nobody.exited).code, 6, 'nothing listening: status 6');
  t.equal(nobody.err.filter((l) => l.includes('ECONNREFUSED')).length, 1, 'the error is printed once');
  // §8.2: a psk must be high-entropy; the CLI refuses a room secret under 16 bytes before connecting
  // (status 2), while one of exactly 16 bytes gets as far as connecting (status 6, nothing listening).
  const shortSecret = startClient(t, { port: closed, nick: 'x', home: join(dir, 'x'), env: { E2EE_CHAT_ROOM_SECRET: 'fifteen-bytes!!' } });
  shortSecret.end();
  t.equal((await shortSecret.exited).code, 2, 'room secret of 15 bytes: usage');
  const minSecret = startClient(t, { port: closed, nick: 'x', home: join(dir, 'x'), env: { E2EE_CHAT_ROOM_SECRET: 'sixteen-bytes!!!' } });
  minSecret.end();
  t.equal((await minSecret.exited).code, 6, 'room secret of 16 bytes: accepted, then cannot connect');

  const srv = await startServerProc(t, { registry: join(dir, 'reg.db') });
  // --reconnect 0: the old contract, a lost connection ends the client (test/client/cli-reconnect.test.ts has the default).
  const a = startClient(t, { port: srv.port, nick: 'a', home: join(dir, 'a'), args: ['--reconnect', '0'] });
  await a.waitFor(/^\* joined /);
  a.write('nobody will get this');
  await a.waitFor(/^\* not sent \(nobody else in the room\): nobody will get this$/);
  srv.proc.kill('SIGTERM');
  const e = await a.exited;
  t.equal(e.code, 6, 'relay shut down: status 6');
  t.ok(a.err.some((l) => l.includes('SERVER_SHUTDOWN')), 'stderr names SERVER_SHUTDOWN');
  t.ok(a.out.includes('* not sent (nobody else in the room): nobody will get this'), 'the line is reported as not sent, never kept for later');
});

t.test('clients with different room secrets never establish a session', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const a = startClient(t, { port, nick: 'a', home: join(dir, 'a'), env: { E2EE_CHAT_ROOM_SECRET: 'one secret of 28 random-ish' } });
  await a.waitFor(/^\* joined /);
  const b = startClient(t, { port, nick: 'b', home: join(dir, 'b'), env: { E2EE_CHAT_ROOM_SECRET: 'another secret, also long' } });
  const failed = await b.waitFor(/^\* session with a failed: /);
  t.match(failed, /^\* session with a failed: BAD_KEY_CONFIRMATION; your room secrets differ/, 'the initiator refuses the responder (§8.2 psk), and says why');
  // The responder learns it from b's refusal notice within the handshake, not from a 30 s timeout.
  t.match(await a.waitFor(/^\* session with b failed: /), /^\* session with b failed: UNEXPECTED_FRAME; your room secrets differ/, 'the responder names it too');
  t.notOk(b.out.some((l) => l.startsWith('* secure session')));
  a.end();
  b.end();
  await Promise.all([a.exited, b.exited]);
});

t.test('a frozen relay (SIGSTOP) is noticed: an unanswered PING ends the connection as lost (status 6)', async (t) => {
  const dir = tempDir(t);
  // A short idle timeout makes the client PING every second (idle_ms / 3), so the deadline is short too.
  const srv = await startServerProc(t, { registry: join(dir, 'reg.db'), args: ['--idle-timeout-ms', '3000'] });
  const a = startClient(t, { port: srv.port, nick: 'a', home: join(dir, 'a'), args: ['--reconnect', '0'] });
  await a.waitFor(/^\* joined /);
  const b = startClient(t, { port: srv.port, nick: 'b', home: join(dir, 'b'), args: ['--reconnect', '0'] });
  await a.waitFor(/^\* secure session with b/);
  srv.proc.kill('SIGSTOP');
  t.teardown(() => srv.proc.kill('SIGCONT'));
  // Issue 15: a message sent into the freeze stayed unacknowledged with no warning.
  a.write('sent into the freeze');
  t.equal((await a.exited).code, 6, 'connection lost, although TCP never closed');
  t.ok(a.err.some((l) => /PING/.test(l)), 'stderr says the relay did not answer');
  t.ok(a.out.some((l) => /^\* not delivered to b \(.*\): sent into the freeze$/.test(l)), 'the text sent into the freeze is listed as not delivered');
  t.equal((await b.exited).code, 6, 'b notices the freeze too');
  srv.proc.kill('SIGCONT');
});
