// Recovering on a real terminal (tmux), issue 15 points 1 and 2 as the new user met them: a relay frozen
// with SIGSTOP is noticed by its silence, the line sent into it is listed as not acknowledged, a line typed
// while reconnecting goes back into the input, and after SIGCONT `/resend` sends the held one again
// through the new session (never by itself); a session that failed (here: a relay that altered one
// handshake frame) is started again with `/retry NICK`; a nickname already in the room (NICK_IN_ROOM)
// says what to do, once, with status 3. Real relay, proxy and member processes on 127.0.0.1.
import t from 'tap';
import { join } from 'node:path';
import { decodeFrame, encodeFrame, frame } from '../../src/codec/index.js';
import { carried, MaliciousRelay } from '../hardening/malicious-relay.js';
import { CLI, startClient, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';

t.test('a frozen relay: noticed, the held line listed, a line typed meanwhile kept in the input, /resend after SIGCONT', async (t) => {
  const dir = tempDir(t);
  // PINGs every 5 s (idle / 3), so a silent relay is noticed within about 10 s of the last frame sent.
  const relay = await startServerProc(t, { registry: join(dir, 'reg.db'), args: ['--idle-timeout-ms', '15000'] });
  const port = relay.port;
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob'), args: ['--reconnect', '120', '--no-history'] });
  await bob.waitFor(/^\* joined /);
  const alice = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', join(dir, 'alice'), '--no-passphrase', '--no-history']);
  await alice.waitFor(/end-to-end session with bob established/);
  await bob.waitFor(/^\* secure session with alice/);
  await alice.waitFor(/alice@lobby>$/);

  const pid = relay.proc.child.pid!;
  process.kill(pid, 'SIGSTOP');
  let frozen = true;
  t.teardown(() => {
    if (frozen) process.kill(pid, 'SIGCONT');
  });
  const bobMark = bob.out.length;
  alice.type('said into the freeze');
  alice.keys('Enter');
  await alice.waitFor(/alice: said into the freeze #1$/);
  const lost = await alice.waitFor(/connection lost: the relay did not answer a PING/);
  t.ok(lost.some((l) => /^\s+! for bob: said into the freeze$/.test(l)), 'the line sent into the freeze is listed as not acknowledged');
  await alice.waitFor(/\(reconnecting: attempt \d+ in \d+ s\) alice@lobby>/);
  alice.type('typed while down');
  alice.keys('Enter');
  await alice.waitFor(/NOT sent: reconnecting\. Your line is back in the input/);
  await alice.waitFor(/alice@lobby> typed while down$/);
  await bob.waitFor(/^\* connection lost \(/, bobMark);

  const aliceMark = alice.screen(true).length;
  process.kill(pid, 'SIGCONT');
  frozen = false;
  await alice.waitFor(/1 message not acknowledged before the drop: \/resend sends it again/);
  await bob.waitFor(/^\* reconnected to lobby after /, bobMark);
  await bob.waitFor(/^\* secure session with alice/, bobMark);
  // The first session's line is in the scrollback too: wait (bounded polls) for a second one.
  const sessions = () => alice.screen(true).slice(aliceMark - 1).filter((l) => /end-to-end session with bob established/.test(l)).length;
  for (let i = 0; i < 600 && sessions() === 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(sessions(), 1, 'a new session after the reconnect');
  t.match(alice.screen().at(-1), /alice@lobby> typed while down$/, 'the line typed while down is still in the input');
  t.notOk(bob.out.some((l) => l.startsWith('alice: ')), 'nothing reached bob yet: the held line is not resent by itself');

  alice.keys('Enter');
  t.equal(await bob.waitFor(/^alice: /, bobMark), 'alice: typed while down', 'the kept line is sent with Enter once back');
  alice.type('/resend');
  alice.keys('Enter');
  await alice.waitFor(/sent again to bob: said into the freeze$/);
  t.equal(await bob.waitFor(/^alice: said/, bobMark), 'alice: said into the freeze', '/resend delivers the held line through the new session');
  t.equal(bob.out.filter((l) => l === 'alice: said into the freeze').length, 1, 'once');
  alice.type('/resend');
  alice.keys('Enter');
  await alice.waitFor(/nothing to resend$/);
  alice.type('/quit');
  alice.keys('Enter');
  t.equal(await alice.waitExit(), 0);
  bob.end();
  t.equal((await bob.exited).code, 0, 'bob got everything he was sent');
});

t.test('a session that failed is started again with /retry NICK', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const mitm = await MaliciousRelay.start('127.0.0.1', port);
  t.teardown(() => mitm.close());
  // The relay alters the signature in the first HS_RESP it hands alice (she joins later: the initiator).
  let altered = 0;
  mitm.attack = (f, leg) => {
    if (altered > 0 || leg.nick !== 'alice' || f.type !== 'DELIVER' || carried(f) !== 'HS_RESP') return [f];
    const hs = decodeFrame(f.body, 'e2e');
    if (hs.type !== 'HS_RESP') return [f];
    const sig = Uint8Array.from(hs.sig);
    sig[0]! ^= 0x01;
    altered++;
    return [{ ...f, body: encodeFrame(frame('HS_RESP', { ...hs, sig })) }];
  };
  const bob = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'bob', home: join(dir, 'bob') });
  await bob.waitFor(/^\* joined /);
  const alice = new Term(t, dir, [
    process.execPath, CLI, 'client', '--port', String(mitm.port), '--relay-name', mitm.relayName, '--nick', 'alice', '--home', join(dir, 'alice'), '--no-passphrase', '--no-history',
  ]);
  const failed = await alice.waitFor(/session with bob failed \(BAD_SIGNATURE\)/);
  t.equal(altered, 1);
  t.ok(failed.some((l) => /session with bob failed \(BAD_SIGNATURE\): \/retry bob starts a new session$/.test(l)), 'the failure says what to do');
  await alice.waitFor(/alice@lobby>$/);
  alice.type('/who');
  alice.keys('Enter');
  await alice.waitFor(/^\s+bob\s+failed\s/);
  alice.type('/retry alice');
  alice.keys('Enter');
  await alice.waitFor(/error: alice is not in the room/);
  const mark = bob.out.length;
  alice.type('/retry bob');
  alice.keys('Enter');
  await alice.waitFor(/rejoining lobby to start new sessions/);
  await alice.waitFor(/end-to-end session with bob established/);
  await bob.waitFor(/^\* secure session with alice/, mark);
  alice.type('/retry bob');
  alice.keys('Enter');
  await alice.waitFor(/error: .*the session with bob has not failed/);
  alice.type('after the retry');
  alice.keys('Enter');
  t.equal(await bob.waitFor(/^alice: /), 'alice: after the retry', 'the new session carries text');
  await alice.waitFor(/✓ #1 delivered to bob "after the retry"/);
  alice.type('/quit');
  alice.keys('Enter');
  t.equal(await alice.waitExit(), 0);
  bob.end();
  t.equal((await bob.exited).code, 0);
});

t.test('a nickname already in the room: status 3, and what to do said once', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const home = join(dir, 'alice');
  const first = startClient(t, { port, nick: 'alice', home });
  await first.waitFor(/^\* joined lobby as alice/);
  // The same key (the same --home) in a second terminal: the relay authenticates it, the room refuses it.
  const again = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', home, '--no-history']);
  t.equal(await again.waitExit(), 3, 'status 3: room refused');
  const screen = again.screen(true).filter((l) => l !== '');
  const advice = screen.filter((l) => l.includes('NICK_IN_ROOM'));
  t.equal(advice.length, 1, `said once: ${screen.join(' | ')}`);
  t.match(advice[0], /someone named alice is already in the room .*quit that one, or pick another --nick/, 'what happened and what to do');
  first.end();
  t.equal((await first.exited).code, 0, 'the first client was not disturbed');
});

t.test("a full room: status 3, and the room's size and the relay's flag said once", async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db'), args: ['--max-room-size', '2'] });
  const a = startClient(t, { port, nick: 'a', home: join(dir, 'a') });
  const b = startClient(t, { port, nick: 'b', home: join(dir, 'b') });
  await a.waitFor(/^\* secure session with b/);
  const carol = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'carol', '--home', join(dir, 'carol'), '--no-passphrase', '--no-history']);
  t.equal(await carol.waitExit(), 3, 'status 3: room refused');
  const screen = carol.screen(true).filter((l) => l !== '');
  // The advice may wrap on the 100-column pane: joined rows (-J) keep it one line.
  const advice = screen.filter((l) => l.includes('ROOM_FULL'));
  t.equal(advice.length, 1, `said once: ${screen.join(' | ')}`);
  t.match(advice[0], /already has 2 members, the most this relay allows .*--max-room-size N\); try another --room, or later/, 'what happened and what to do');
  t.notOk(a.out.some((l) => l.includes('carol')), 'the members never saw carol');
  a.end();
  b.end();
  t.same((await Promise.all([a.exited, b.exited])).map((e) => e.code), [0, 0]);
});
