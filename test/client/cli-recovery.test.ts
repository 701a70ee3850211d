/**
 * Nickname recovery through the real CLI (spec §7.5), real relay and client processes: the first run
 * of a nickname shows a recovery code once (stderr) and stores no code in --home; another home (a lost
 * key) gets NICK_BOUND (status 4) without the code, and takes the nickname over with it (--recover,
 * E2EE_CHAT_RECOVERY_CODE), getting a fresh code; the spent code then fails; a peer that pinned the
 * old key sees the normal key-change flow (warning, status 5, no session).
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fingerprintOf, startClient, startServerProc, tempDir } from './procs.js';

const CODE = /^recovery code for (\S+) at (\S+): ([0-9A-Z]{4}(?:-[0-9A-Z]{4}){5}-[0-9A-Z]{2}) \(shown only now/;

t.test('lost key: NICK_BOUND without the code, takeover with it; peers see a key change', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });

  const alice = startClient(t, { port, nick: 'alice', home: join(dir, 'alice') });
  const shown = CODE.exec(await alice.waitFor(CODE, 0, 'err'))!;
  t.equal(shown[1], 'alice');
  const code = shown[3]!;
  const pinned = fingerprintOf(await alice.waitFor(/^\* joined /));
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  await alice.waitFor(/^\* bob joined/);
  await alice.waitFor(/^\* secure session with bob/);
  await bob.waitFor(/^\* secure session with alice/);
  alice.end();
  bob.end();
  await Promise.all([alice.exited, bob.exited]);
  // The home keeps that a code was registered, never the code (in any spelling).
  const raw = code.replaceAll('-', '');
  for (const f of readdirSync(join(dir, 'alice'))) {
    const bytes = readFileSync(join(dir, 'alice', f)).toString('latin1');
    t.notOk(bytes.includes(raw) || bytes.includes(code), `${f} holds no recovery code`);
  }

  // A second run of the same home shows no new code.
  const again = startClient(t, { port, nick: 'alice', home: join(dir, 'alice') });
  await again.waitFor(/^\* joined /);
  again.end();
  t.equal((await again.exited).code, 0);
  t.notOk(again.err.some((l) => CODE.test(l)), 'the code is shown once, at first binding');

  // The key is lost: a new home. Without the code: NICK_BOUND, status 4.
  const lost = startClient(t, { port, nick: 'alice', home: join(dir, 'alice-new') });
  lost.end();
  t.equal((await lost.exited).code, 4, 'a new key without the code: status 4');

  // A wrong code: status 4 as well; a malformed one: usage, status 2.
  const wrong = startClient(t, { port, nick: 'alice', home: join(dir, 'alice-new'), args: ['--recover'], env: { E2EE_CHAT_RECOVERY_CODE: '0'.repeat(26) } });
  wrong.end();
  t.equal((await wrong.exited).code, 4, 'another code: status 4');
  const typo = startClient(t, { port, nick: 'alice', home: join(dir, 'alice-new'), args: ['--recover'], env: { E2EE_CHAT_RECOVERY_CODE: code.slice(1) } });
  typo.end();
  t.equal((await typo.exited).code, 2, 'a code with a symbol missing: usage error');

  // With the code (lower case, spaces: as typed): WELCOME, a fresh code, in the room.
  const typed = code.toLowerCase().replaceAll('-', ' ');
  const back = startClient(t, { port, nick: 'alice', home: join(dir, 'alice-new'), args: ['--recover'], env: { E2EE_CHAT_RECOVERY_CODE: typed } });
  const fresh = CODE.exec(await back.waitFor(CODE, 0, 'err'))![3]!;
  t.not(fresh, code, 'a new code replaces the spent one');
  await back.waitFor(/^\* joined /);
  back.write('it is me, new key');

  // Bob pinned the old key: the normal key-change flow, no session, status 5.
  const bob2 = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  const warning = await bob2.waitFor(/^\* WARNING: the identity key of alice CHANGED/);
  t.ok(warning.includes(pinned), 'the warning names the pinned fingerprint');
  t.equal((await bob2.exited).code, 5);
  t.notOk(bob2.out.some((l) => l.startsWith('alice: ') || l.startsWith('* secure session')), 'nothing from the new key before /trust');
  back.end();
  await back.exited;

  // The spent code takes nothing any more.
  const spent = startClient(t, { port, nick: 'alice', home: join(dir, 'alice-third'), args: ['--recover'], env: { E2EE_CHAT_RECOVERY_CODE: code } });
  spent.end();
  t.equal((await spent.exited).code, 4, 'the spent code: status 4');
});
