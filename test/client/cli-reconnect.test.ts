/**
 * Issue 15 point 1 with real processes: `e2ee-chat server` as a child process, killed and restarted on the
 * same port (and its registry file) under ten connected scripted clients, and frozen with SIGSTOP then
 * resumed with SIGCONT under three. Every client must come back to its room by itself, with a new
 * session to every other member, and a text must reach everyone afterwards. Every wait is for a line.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { freePort, Proc, startClient, startServerProc, tempDir } from './procs.js';

interface Member {
  nick: string;
  proc: Proc;
}

/** Resolves once `m` has printed a session line for each of `others` at or after line `from`. */
async function sessionsWith(m: Member, others: string[], from: number): Promise<void> {
  for (const o of others) await m.proc.waitFor(new RegExp(`^\\* secure session with ${o}[ ,]`), from);
}

async function room(t: Test, port: number, dir: string, nicks: string[], roomName: string): Promise<Member[]> {
  const members: Member[] = [];
  for (const nick of nicks) {
    const proc = startClient(t, { port, nick, home: join(dir, nick), room: roomName, args: ['--reconnect', '120', '--no-history'] });
    await proc.waitFor(new RegExp(`^\\* joined ${roomName} as ${nick}`));
    members.push({ nick, proc });
  }
  await Promise.all(members.map((m) => sessionsWith(m, nicks.filter((n) => n !== m.nick), 0)));
  return members;
}

/** One text from the first member reaches every other; then every client ends normally (status 0). */
async function chatAndEnd(t: Test, members: Member[], text: string): Promise<void> {
  const [first, ...rest] = members;
  const marks = rest.map((m) => m.proc.out.length);
  const own = first!.proc.out.length;
  first!.proc.write(text);
  await Promise.all(rest.map((m, i) => m.proc.waitFor(new RegExp(`^${first!.nick}: ${text}$`), marks[i]!)));
  await Promise.all(rest.map((m) => first!.proc.waitFor(new RegExp(`^\\* delivered to ${m.nick} #`), own)));
  for (const m of members) m.proc.end();
  const codes = await Promise.all(members.map((m) => m.proc.exited));
  t.same(
    codes.map((c) => c.code),
    members.map(() => 0),
    'every client ends normally',
  );
  for (const [i, c] of codes.entries()) if (c.code !== 0) t.comment(`${members[i]!.nick}:\n${members[i]!.proc.out.slice(-30).join('\n')}\n${members[i]!.proc.err.join('\n')}`);
}

t.test('a relay restart under ten connected clients: all ten come back to their room with new sessions', async (t) => {
  const dir = tempDir(t);
  const registry = join(dir, 'registry.db');
  const port = await freePort();
  const args = ['--max-room-size', '10'];
  let relay = await startServerProc(t, { port, registry, args });
  const nicks = Array.from({ length: 10 }, (_, i) => `m${i}`);
  const t0 = Date.now();
  const members = await room(t, port, dir, nicks, 'ten');
  const t1 = Date.now();

  const marks = members.map((m) => m.proc.out.length);
  relay.proc.kill('SIGKILL');
  await relay.proc.exited;
  await Promise.all(members.map((m, i) => m.proc.waitFor(/^\* connection lost \(/, marks[i])));
  relay = await startServerProc(t, { port, registry, args });
  await Promise.all(members.map((m, i) => m.proc.waitFor(/^\* reconnected to ten after /, marks[i])));
  await Promise.all(members.map((m, i) => sessionsWith(m, nicks.filter((n) => n !== m.nick), marks[i]!)));
  const t2 = Date.now();
  t.pass('all ten reconnected and have a new session with each of the nine others');
  t.comment(`ten clients in the room with 45 sessions: ${t1 - t0} ms; from the kill to 45 new sessions: ${t2 - t1} ms`);
  for (const [i, m] of members.entries()) {
    const lost = m.proc.out.slice(marks[i]).filter((l) => l.startsWith('* connection lost'));
    t.equal(lost.length, 1, `${m.nick}: one line for the drop, none per attempt`);
  }
  await chatAndEnd(t, members, 'after the restart');
});

t.test('a frozen relay (SIGSTOP) is noticed by its silence, and every client recovers after SIGCONT', async (t) => {
  const dir = tempDir(t);
  const registry = join(dir, 'registry.db');
  const port = await freePort();
  // PINGs every 5 s (idle / 3): a relay silent after one is dead within min(10 s, 5 s). (Not shorter: on a
  // loaded machine a live relay must not look frozen.)
  const relay = await startServerProc(t, { port, registry, args: ['--max-room-size', '3', '--idle-timeout-ms', '15000'] });
  const nicks = ['ann', 'ben', 'cy'];
  const members = await room(t, port, dir, nicks, 'ice');
  const marks = members.map((m) => m.proc.out.length);
  const pid = relay.proc.child.pid!;
  process.kill(pid, 'SIGSTOP');
  let resumed = false;
  t.teardown(() => {
    if (!resumed) process.kill(pid, 'SIGCONT');
  });
  // Issue 15: "a message sent then stayed unacknowledged with no warning". The scripted rule (README,
  // --reconnect): what was not acknowledged before the drop is sent again, through the new session, to the
  // member it was for once that member is back with the same key.
  const [ann, ben, cy] = members as [Member, Member, Member];
  ann.proc.write('said into the freeze');
  const lost = await Promise.all(members.map((m, i) => m.proc.waitFor(/^\* connection lost \(/, marks[i])));
  for (const l of lost) t.match(l, /did not answer a PING/, 'noticed by the PONG deadline');
  t.match(lost[0], /; 2 text\(s\) not acknowledged; reconnecting$/, "ann's line to ben and cy is counted as not acknowledged");
  process.kill(pid, 'SIGCONT');
  resumed = true;
  await Promise.all(members.map((m, i) => m.proc.waitFor(/^\* reconnected to ice after /, marks[i])));
  await Promise.all(members.map((m, i) => sessionsWith(m, nicks.filter((n) => n !== m.nick), marks[i]!)));
  t.pass('all three back with new sessions');
  for (const [i, m] of [ben, cy].entries()) {
    await ann.proc.waitFor(new RegExp(`^\\* resending to ${m.nick} \\(not acknowledged before the connection was lost\\): said into the freeze$`), marks[0]);
    t.equal(await m.proc.waitFor(/^ann: said/, marks[i + 1]), 'ann: said into the freeze', `${m.nick} gets the held line after the reconnect`);
  }
  await chatAndEnd(t, members, 'thawed');
  for (const m of [ben, cy]) t.equal(m.proc.out.filter((l) => l === 'ann: said into the freeze').length, 1, `${m.nick} got it once`);
  t.notOk(ann.proc.out.some((l) => /^\* not delivered to /.test(l)), 'nothing is listed as not delivered at the end');
});
