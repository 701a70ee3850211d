// Different room secrets on a real terminal (tmux), issue 15 point 2: the new user saw BAD_KEY_CONFIRMATION
// on one side and a TIMEOUT 40 s later on the other, with nothing saying the secrets differ. Both members
// are interactive, with a handshake timeout no wait here reaches (600 s), so what each screen says comes
// from the handshake itself (the initiator's key confirmation check, the responder from its refusal
// notice), never from a timer. Real relay and client processes on 127.0.0.1.
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';

const count = (screen: string[], re: RegExp) => screen.filter((l) => re.test(l)).length;

t.test('room secrets that differ are named as such on both screens within the handshake, once each; /retry meets the same', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const term = (nick: string, secret: string) => {
    mkdirSync(join(dir, `t-${nick}`));
    return new Term(
      t,
      join(dir, `t-${nick}`),
      [process.execPath, CLI, 'client', '--port', String(port), '--nick', nick, '--home', join(dir, nick), '--no-passphrase', '--no-history', '--handshake-timeout', '600'],
      { env: { E2EE_CHAT_ROOM_SECRET: secret } },
    );
  };
  const alice = term('alice', 'the secret alice was given, 32b');
  await alice.waitFor(/alice@lobby>$/);
  // bob joins later: he starts the handshake and checks alice's key confirmation.
  const bob = term('bob', 'a different secret bob was given');
  await bob.waitFor(/session with alice failed \(BAD_KEY_CONFIRMATION\): your room secrets differ \(or only one of you uses one\): check the secret with alice out of band; then \/retry alice$/);
  await alice.waitFor(/session with bob failed \(UNEXPECTED_FRAME\): your room secrets differ \(or only one of you uses one\): check the secret with bob out of band; then \/retry bob$/);
  await alice.waitFor(/alice@lobby>$/);
  for (const [who, screen] of [['alice', alice.screen(true)], ['bob', bob.screen(true)]] as const) {
    t.equal(count(screen, /session with \w+ failed/), 1, `${who}: said once`);
    t.equal(count(screen, /TIMEOUT|established/), 0, `${who}: no timeout, no session`);
  }
  alice.type('/who');
  alice.keys('Enter');
  await alice.waitFor(/^\s+bob\s+failed\s/);

  // /retry: alice rejoins and starts the handshake now (the roles swap); the same cause on both sides.
  alice.type('/retry bob');
  alice.keys('Enter');
  await alice.waitFor(/session with bob failed \(BAD_KEY_CONFIRMATION\): your room secrets differ/);
  await bob.waitFor(/session with alice failed \(UNEXPECTED_FRAME\): your room secrets differ/);
  t.equal(count(alice.screen(true), /session with bob failed/), 2, 'alice: once per failed session');
  t.equal(count(bob.screen(true), /session with alice failed/), 2, 'bob: once per failed session');
  for (const term of [alice, bob]) {
    term.type('/quit');
    term.keys('Enter');
    t.equal(await term.waitExit(), 0);
  }
});
