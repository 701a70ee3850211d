/**
 * The scriptable contract of `e2ee-chat client` (issue 5), end to end: a real relay process and real
 * client processes on 127.0.0.1, talking through pipes.
 */
import t from 'tap';
import { join } from 'node:path';
import { safetyOf, fingerprintOf, startClient, startServerProc, tempDir, freePort } from './procs.js';

const TEN_KB = 'x'.repeat(5000) + 'é'.repeat(2500) + 'END'; // 10003 UTF-8 bytes, one message
const NON_ASCII = 'Grüße, 你好, Здравствуйте, ☃ and 🙂';

t.test('two clients exchange messages both ways, long and non-ASCII, with acks and equal safety numbers', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const alice = startClient(t, { port, nick: 'alice', home: join(dir, 'alice') });
  await alice.waitFor(/^\* joined lobby as alice/);
  // Typed before anyone else is present: queued and sent once a session exists.
  alice.write('hello bob');
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  const sa = safetyOf(await alice.waitFor(/^\* secure session with bob/));
  const sb = safetyOf(await bob.waitFor(/^\* secure session with alice/));
  t.equal(sa, sb, 'both clients print the same safety number');
  t.match(sa, /^(\d{5} ){11}\d{5}$/, 'twelve groups of five digits');

  t.equal(await bob.waitFor(/^alice: /), 'alice: hello bob', 'the queued line arrives once the session exists');
  bob.write(NON_ASCII);
  bob.write(TEN_KB);
  t.equal(await alice.waitFor(/^bob: G/), `bob: ${NON_ASCII}`, 'non-ASCII text arrives intact');
  t.equal(await alice.waitFor(/^bob: x/), `bob: ${TEN_KB}`, 'a 10 KB message arrives intact');
  alice.write(TEN_KB);
  t.equal(await bob.waitFor(/^alice: x/), `alice: ${TEN_KB}`, 'and the other way round');

  await alice.waitFor(/^\* delivered to bob #/);
  await bob.waitFor(/^\* delivered to alice #/);
  alice.end();
  bob.end();
  const [ea, eb] = await Promise.all([alice.exited, bob.exited]);
  t.equal(ea.code, 0, 'alice exits 0 at end of input');
  t.equal(eb.code, 0, 'bob exits 0 at end of input');
  // Every message each side sent was acknowledged: sent lines and delivered lines pair up.
  for (const [who, p] of [['alice', alice], ['bob', bob]] as const) {
    const sent = p.out.filter((l) => l.startsWith('* sent to ')).map((l) => l.replace('* sent to ', ''));
    const delivered = p.out.filter((l) => l.startsWith('* delivered to ')).map((l) => l.replace('* delivered to ', ''));
    t.same(delivered.sort(), sent.sort(), `${who}: every sent message is shown as delivered`);
    t.notOk(p.out.some((l) => l.includes('not delivered')), `${who}: nothing listed as undelivered`);
  }
  t.same(alice.err, [], 'nothing on alice stderr');
});

t.test('a third client is refused with status 3 (room full)', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const a = startClient(t, { port, nick: 'a', home: join(dir, 'a') });
  const b = startClient(t, { port, nick: 'b', home: join(dir, 'b') });
  await a.waitFor(/^\* secure session with b/);
  await b.waitFor(/^\* secure session with a/);
  const c = startClient(t, { port, nick: 'c', home: join(dir, 'c') });
  c.end();
  const ec = await c.exited;
  t.equal(ec.code, 3, 'status 3');
  t.ok(c.err.some((l) => l.includes('ROOM_FULL')), 'stderr names ROOM_FULL');
  t.notOk(a.out.some((l) => l.includes('c joined')), 'the members never saw c');
  a.end();
  b.end();
  t.equal((await a.exited).code, 0);
  t.equal((await b.exited).code, 0);
});

t.test('a restarted client with the same --home keeps its identity; a wrong passphrase is status 4', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const env = { E2EE_CHAT_PASSPHRASE: 'correct horse battery staple' };
  const home = join(dir, 'alice');
  const first = startClient(t, { port, nick: 'alice', home, env, noPassphrase: false });
  const created = await first.waitFor(/^\* created identity key/);
  t.ok(created, 'the first run creates the key');
  const fp1 = fingerprintOf(await first.waitFor(/^\* joined lobby as alice/));
  first.end();
  t.equal((await first.exited).code, 0);

  const again = startClient(t, { port, nick: 'alice', home, env, noPassphrase: false });
  const fp2 = fingerprintOf(await again.waitFor(/^\* joined lobby as alice/));
  again.end();
  t.equal((await again.exited).code, 0, 'the relay accepts the same nickname with the same key');
  t.equal(fp2, fp1, 'same fingerprint after restart');
  t.notOk(again.out.some((l) => l.startsWith('* created identity key')), 'no new key on the second run');

  const wrong = startClient(t, { port, nick: 'alice', home, env: { E2EE_CHAT_PASSPHRASE: 'wrong' }, noPassphrase: false });
  wrong.end();
  t.equal((await wrong.exited).code, 4, 'wrong passphrase: status 4');

  const none = startClient(t, { port, nick: 'carol', home: join(dir, 'carol'), noPassphrase: false });
  none.end();
  t.equal((await none.exited).code, 2, 'no passphrase and no --no-passphrase for a new key: usage error');
});

t.test('a nickname bound to another key is refused with status 4', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const a = startClient(t, { port, nick: 'alice', home: join(dir, 'a1') });
  await a.waitFor(/^\* joined /);
  a.end();
  t.equal((await a.exited).code, 0);
  const impostor = startClient(t, { port, nick: 'alice', home: join(dir, 'a2') });
  impostor.end();
  t.equal((await impostor.exited).code, 4, 'NICK_BOUND: status 4');
  t.ok(impostor.err.some((l) => l.includes('NICK_BOUND')));
});

t.test('a peer that comes back with a new key triggers the warning and status 5', async (t) => {
  const dir = tempDir(t);
  const first = await startServerProc(t, { registry: join(dir, 'reg1.db') });
  const port = first.port;
  const alice = startClient(t, { port, nick: 'alice', home: join(dir, 'alice') });
  await alice.waitFor(/^\* joined /);
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  const pinned = fingerprintOf(await alice.waitFor(/^\* bob joined/));
  await alice.waitFor(/^\* secure session with bob/);
  alice.end();
  bob.end();
  await Promise.all([alice.exited, bob.exited]);

  // A relay with a fresh registry on the same host:port (the pins are keyed by it): "bob" can now
  // register another key. Alice's pin for bob must catch it.
  first.proc.kill();
  await first.proc.exited;
  await startServerProc(t, { port, registry: join(dir, 'reg2.db') });
  const bob2 = startClient(t, { port, nick: 'bob', home: join(dir, 'bob-new') });
  await bob2.waitFor(/^\* joined /);
  bob2.write('it is me, honest');
  const alice2 = startClient(t, { port, nick: 'alice', home: join(dir, 'alice') });
  const warning = await alice2.waitFor(/^\* WARNING: the identity key of bob CHANGED/);
  t.ok(warning.includes(pinned), 'the warning names the pinned fingerprint');
  const offered = fingerprintOf(await alice2.waitFor(/^\* bob joined/));
  t.ok(warning.includes(offered) && offered !== pinned, 'and the new one');
  const e = await alice2.exited;
  t.equal(e.code, 5, 'status 5');
  t.notOk(alice2.out.some((l) => l.startsWith('bob: ') || l.startsWith('* secure session')), 'no session, no message from the changed key');
  await bob2.waitFor(/^\* alice left/);
  t.notOk(bob2.out.some((l) => l.startsWith('* secure session')), 'the impostor never got a session');
  bob2.end();
  await bob2.exited;
});

t.test('a member that leaves with messages unacknowledged gets them listed', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const alice = startClient(t, { port, nick: 'alice', home: join(dir, 'alice') });
  await alice.waitFor(/^\* joined /);
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  await alice.waitFor(/^\* secure session with bob/);
  await bob.waitFor(/^\* secure session with alice/);
  // Bob stops reading: alice's message is relayed but never acknowledged; then bob vanishes.
  bob.kill('SIGSTOP');
  alice.write('are you still there?');
  const sent = await alice.waitFor(/^\* sent to bob #\d+$/);
  const seq = /#(\d+)$/.exec(sent)![1];
  bob.kill('SIGKILL');
  await alice.waitFor(/^\* bob left$/);
  const listed = await alice.waitFor(/^\* not delivered to bob/);
  t.equal(listed, `* not delivered to bob (#${seq} not acknowledged): are you still there?`);
  alice.end();
  t.equal((await alice.exited).code, 0);
});

t.test('exit statuses: 2 usage, 6 cannot connect, 6 connection lost', async (t) => {
  const dir = tempDir(t);
  const bad = startClient(t, { port: 1, nick: 'x', home: join(dir, 'x'), args: ['--port', 'many'] });
  t.equal((await bad.exited).code, 2, 'bad --port');
  const noNick = startClient(t, { port: 1, nick: 'bad nick!', home: join(dir, 'x') });
  t.equal((await noNick.exited).code, 2, 'nickname outside the alphabet');

  const closed = await freePort();
  const nobody = startClient(t, { port: closed, nick: 'x', home: join(dir, 'x') });
  nobody.end();
  t.equal((await nobody.exited).code, 6, 'nothing listening: status 6');

  const srv = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const a = startClient(t, { port: srv.port, nick: 'a', home: join(dir, 'a') });
  await a.waitFor(/^\* joined /);
  a.write('nobody will get this');
  srv.proc.kill('SIGTERM');
  const e = await a.exited;
  t.equal(e.code, 6, 'relay shut down: status 6');
  t.ok(a.err.some((l) => l.includes('SERVER_SHUTDOWN')), 'stderr names SERVER_SHUTDOWN');
});

t.test('clients with different room secrets never establish a session', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const a = startClient(t, { port, nick: 'a', home: join(dir, 'a'), env: { E2EE_CHAT_ROOM_SECRET: 'one secret' } });
  await a.waitFor(/^\* joined /);
  const b = startClient(t, { port, nick: 'b', home: join(dir, 'b'), env: { E2EE_CHAT_ROOM_SECRET: 'another' } });
  const failed = await b.waitFor(/^\* session with a failed: /);
  t.equal(failed, '* session with a failed: BAD_KEY_CONFIRMATION', 'the initiator refuses the responder (§8.2 psk)');
  t.notOk(b.out.some((l) => l.startsWith('* secure session')));
  a.end();
  b.end();
  await Promise.all([a.exited, b.exited]);
});
