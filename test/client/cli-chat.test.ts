/**
 * The scriptable contract of `e2ee-chat client` (issue 5), end to end: messages both ways, room full,
 * unacknowledged messages listed. A real relay process and real client processes on 127.0.0.1, through pipes.
 */
import t from 'tap';
import { join } from 'node:path';
import { safetyOf, startClient, startServerProc, tempDir } from './procs.js';

const TEN_KB = 'x'.repeat(5000) + 'é'.repeat(2500) + 'END'; // 10003 UTF-8 bytes, one message
const NON_ASCII = 'Grüße, 你好, Здравствуйте, ☃ and 🙂';

t.test('two clients exchange messages both ways, long and non-ASCII, with acks and equal safety numbers', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const alice = startClient(t, { port, nick: 'alice', home: join(dir, 'alice') });
  await alice.waitFor(/^\* joined lobby as alice/);
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  // Typed once bob is present, before the session exists: kept for bob and sent once it does.
  await alice.waitFor(/^\* bob joined/);
  alice.write('hello bob');
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
  // The one line on stderr: the recovery code of alice's first binding on this relay (spec §7.5).
  t.same(alice.err.filter((l) => !l.startsWith('recovery code for alice at ')), [], 'nothing else on alice stderr');
  t.equal(alice.err.length, 1, 'the recovery code, once');
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
  const full = c.err.filter((l) => l.includes('ROOM_FULL'));
  t.equal(full.length, 1, 'stderr names ROOM_FULL, once');
  t.match(full[0], /\b2 members\b.*--max-room-size/, "and says what it means: the room's size and the relay's flag (issue 15 point 2)");
  t.notOk(a.out.some((l) => l.includes('c joined')), 'the members never saw c');
  a.end();
  b.end();
  t.equal((await a.exited).code, 0);
  t.equal((await b.exited).code, 0);
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
  t.equal((await alice.exited).code, 9, 'status 9: input ended, but a message was not delivered');
});

t.test('a line longer than one message may be is split into several, in order, nothing lost', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db'), args: ['--max-frame-bytes', '1024'] });
  const alice = startClient(t, { port, nick: 'alice', home: join(dir, 'alice') });
  await alice.waitFor(/^\* joined /);
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  await bob.waitFor(/^\* secure session with alice/);
  const line = Array.from({ length: 400 }, (_, i) => `w${i}`).join(' ') + ' Ende-ü';
  alice.write(line);
  alice.end();
  t.equal((await alice.exited).code, 0);
  bob.end();
  t.equal((await bob.exited).code, 0);
  const pieces = bob.out.filter((l) => l.startsWith('alice: ')).map((l) => l.slice('alice: '.length));
  t.ok(pieces.length > 1, `split into ${pieces.length} messages`);
  t.equal(pieces.join(''), line, 'the pieces join back to the line');
  t.ok(pieces.every((p) => Buffer.byteLength(p) < 1024));
});
