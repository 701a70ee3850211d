/**
 * Nickname recovery through the real CLI (spec §7.5), real relay and client processes: the first run
 * of a nickname shows a recovery code once (stderr) and stores no code in --home; another home (a lost
 * key) gets NICK_BOUND (status 4) without the code, and takes the nickname over with it (--recover,
 * E2EE_CHAT_RECOVERY_CODE), getting a fresh code; the spent code then fails; a peer that pinned the
 * old key sees the normal key-change flow (warning, status 5, no session). A first login whose JOIN is
 * refused has bound the nickname (status 4 for another key) and shown the code that takes it back. A --home/recovery.json that
 * cannot be written is a local error (status 8) after the code is shown; one that is not a file, status 2.
 */
import t from 'tap';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fingerprintOf, Proc, startClient, startServerProc, tempDir } from './procs.js';

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

t.test('a first login whose JOIN is refused (ROOM_FULL) has bound the nickname, and its code was shown: a new key takes it back with it', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db'), args: ['--max-room-size', '2'] });
  const a = startClient(t, { port, nick: 'a', home: join(dir, 'a') });
  const b = startClient(t, { port, nick: 'b', home: join(dir, 'b') });
  await a.waitFor(/^\* secure session with b/);
  // carol's very first login: AUTH binds 'carol' (§7.1), then the JOIN is refused.
  const carol = startClient(t, { port, nick: 'carol', home: join(dir, 'carol') });
  const shown = CODE.exec(await carol.waitFor(CODE, 0, 'err'))!;
  carol.end();
  t.equal((await carol.exited).code, 3, 'the room refused: status 3');
  t.equal(shown[1], 'carol');
  // The binding is real: another key is NICK_BOUND (status 4), elsewhere too...
  const other = startClient(t, { port, nick: 'carol', home: join(dir, 'carol-new'), room: 'elsewhere' });
  other.end();
  t.equal((await other.exited).code, 4, 'bound by the refused login');
  // ...and the code shown by the refused login takes it over.
  const back = startClient(t, { port, nick: 'carol', home: join(dir, 'carol-new'), room: 'elsewhere', args: ['--recover'], env: { E2EE_CHAT_RECOVERY_CODE: shown[3]! } });
  t.not(CODE.exec(await back.waitFor(CODE, 0, 'err'))![3], shown[3], 'a fresh code after the takeover');
  await back.waitFor(/^\* joined /);
  back.end();
  t.equal((await back.exited).code, 0);
  a.end();
  b.end();
  t.same((await Promise.all([a.exited, b.exited])).map((e) => e.code), [0, 0]);
});

/**
 * Moves `home` to a path so long that `HOME/recovery.json` is a valid path but the temporary file it is
 * written through (`HOME/.recovery.json.<16 hex>.tmp`, src/files/private.ts) is not (PATH_MAX, 4096
 * bytes with its NUL on Linux): reading the marks works, writing them fails with ENAMETOOLONG, a local
 * I/O failure as a full or read-only disk gives one. Returns the new path.
 */
function moveToLongPath(dir: string, home: string): string {
  const room = 4095 - '/recovery.json'.length;
  let p = join(dir, 'long');
  while (p.length < room - 250) p = join(p, 'd'.repeat(200));
  p = join(p, 'h'.repeat(room - p.length - 1));
  mkdirSync(dirname(p), { recursive: true });
  renameSync(home, p);
  return p;
}

t.test('a recovery.json that cannot be written: the code is shown, then a local error naming the file, status 8', async (t) => {
  const dir = tempDir(t);
  const first = await startServerProc(t, { registry: join(dir, 'reg1.db') });
  const made = startClient(t, { port: first.port, nick: 'alice', home: join(dir, 'alice'), args: ['--no-history'] });
  await made.waitFor(/^\* joined /);
  made.end();
  t.equal((await made.exited).code, 0, 'identity and marks of a first relay written');
  const home = moveToLongPath(dir, join(dir, 'alice'));
  // Another relay: the first WELCOME of alice there registers a code and writes its mark, which fails.
  const { port } = await startServerProc(t, { registry: join(dir, 'reg2.db') });
  const c = startClient(t, { port, nick: 'alice', home, args: ['--no-history', '--wait', '1'] });
  c.end();
  t.equal((await c.exited).code, 8, 'status 8: a local file error');
  t.equal(c.err.filter((l) => CODE.test(l)).length, 1, 'the code the relay now holds was shown');
  const local = c.err.filter((l) => l.includes(join(home, 'recovery.json')));
  t.equal(local.length, 1, `one error names the file: ${c.err.map((l) => l.slice(0, 120)).join(' | ')}`);
  t.match(local[0], /local error: .*ENAMETOOLONG/, 'as the local I/O error it is');
  t.notOk(c.out.some((l) => l.startsWith('* joined')), 'did not join');
});

t.test('a recovery.json that is not a regular file: status 2 naming it, nothing registered', async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'alice');
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const made = startClient(t, { port, nick: 'bob', home, args: ['--no-history'] });
  await made.waitFor(/^\* joined /);
  made.end();
  t.equal((await made.exited).code, 0);
  mkdirSync(join(home, 'recovery.json.d'));
  rmSync(join(home, 'recovery.json'));
  renameSync(join(home, 'recovery.json.d'), join(home, 'recovery.json'));
  const c = startClient(t, { port, nick: 'carol', home, args: ['--no-history'] });
  c.end();
  t.equal((await c.exited).code, 2, 'status 2: an unsafe --home file');
  t.equal(c.err.filter((l) => l.includes(join(home, 'recovery.json'))).length, 1, 'named once');
  t.notOk(c.err.some((l) => CODE.test(l)), 'no code registered or shown');
  t.notOk(c.out.some((l) => l.startsWith('* joined')), 'did not join');
});

t.test('a key imported into another home: a warning comes before the new code that voids the old one; a refused code is said to be refused', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const first = startClient(t, { port, nick: 'alice', home: join(dir, 'a'), args: ['--no-history'] });
  const written = CODE.exec(await first.waitFor(CODE, 0, 'err'))![3]!;
  await first.waitFor(/^\* joined /);
  first.end();
  t.equal((await first.exited).code, 0);
  t.notOk(first.err.some((l) => /^warning: .*imported/.test(l)), 'a key made in its home: no warning');

  const backup = join(dir, 'backup.key');
  const env = { E2EE_CHAT_BACKUP_PASSPHRASE: 'a separate backup passphrase' };
  const exported = new Proc(['key', 'export', '--home', join(dir, 'a'), '--out', backup], env);
  t.equal((await exported.exited).code, 0, 'exported');
  const imported = new Proc(['key', 'import', backup, '--home', join(dir, 'b'), '--no-passphrase'], env);
  t.equal((await imported.exited).code, 0, 'imported');

  // Home b has none of home a's marks: its first WELCOME registers a new code, which voids the written one.
  const second = startClient(t, { port, nick: 'alice', home: join(dir, 'b'), args: ['--no-history'] });
  const fresh = CODE.exec(await second.waitFor(CODE, 0, 'err'))![3]!;
  await second.waitFor(/^\* joined /);
  second.end();
  t.equal((await second.exited).code, 0);
  const warned = second.err.findIndex((l) => /^warning: .*imported/.test(l));
  t.ok(warned >= 0, `warned: ${second.err.join(' | ')}`);
  t.ok(warned < second.err.findIndex((l) => CODE.test(l)), 'before the code is registered and shown');
  t.not(fresh, written);

  // The code written down from home a is refused now, and the advice says it was the code.
  const plain = startClient(t, { port, nick: 'alice', home: join(dir, 'c'), args: ['--no-history'] });
  plain.end();
  t.equal((await plain.exited).code, 4);
  t.notOk(plain.err.some((l) => /NICK_BOUND.*recovery code/.test(l)), 'without --recover the advice is about the binding');
  const old = startClient(t, { port, nick: 'alice', home: join(dir, 'c'), args: ['--no-history', '--recover'], env: { E2EE_CHAT_RECOVERY_CODE: written } });
  old.end();
  t.equal((await old.exited).code, 4, 'the voided code: status 4');
  t.ok(old.err.some((l) => /NICK_BOUND.*recovery code/.test(l)), `the advice says the code was refused: ${old.err.join(' | ')}`);
  const good = startClient(t, { port, nick: 'alice', home: join(dir, 'c'), args: ['--no-history', '--recover'], env: { E2EE_CHAT_RECOVERY_CODE: fresh } });
  await good.waitFor(/^\* joined /);
  good.end();
  t.equal((await good.exited).code, 0, 'the code shown after the warning works');
});

t.test('a reconnect refused with NICK_BOUND after a recovered login is not told its code was refused', async (t) => {
  const dir = tempDir(t);
  const registry = join(dir, 'reg.db');
  let relay = await startServerProc(t, { registry });
  const { port } = relay;
  const first = startClient(t, { port, nick: 'alice', home: join(dir, 'a'), args: ['--no-history'] });
  const code = CODE.exec(await first.waitFor(CODE, 0, 'err'))![3]!;
  await first.waitFor(/^\* joined /);
  first.end();
  t.equal((await first.exited).code, 0);

  // b takes alice over (RECOVER) and stays, ready to reconnect.
  const b = startClient(t, { port, nick: 'alice', home: join(dir, 'b'), args: ['--no-history', '--recover', '--reconnect', '60'], env: { E2EE_CHAT_RECOVERY_CODE: code } });
  const fresh = CODE.exec(await b.waitFor(CODE, 0, 'err'))![3]!;
  await b.waitFor(/^\* joined /);
  // d takes it over from b with b's fresh code; b's connection stays (§7.5) until the relay restarts.
  const d = startClient(t, { port, nick: 'alice', home: join(dir, 'd'), room: 'elsewhere', args: ['--no-history', '--recover'], env: { E2EE_CHAT_RECOVERY_CODE: fresh } });
  await d.waitFor(/^\* joined /);
  d.end();
  t.equal((await d.exited).code, 0);
  relay.proc.kill();
  await relay.proc.exited;
  relay = await startServerProc(t, { port, registry });
  t.equal((await b.exited).code, 4, 'the reconnect (AUTH with the key b took over with) is refused: status 4');

  // The advice of each refusal, for the same nickname and relay: a refused code, a plain login, b's reconnect.
  const advice = (p: Proc) => p.err.filter((l) => l.includes('(NICK_BOUND)'));
  const wrong = startClient(t, { port, nick: 'alice', home: join(dir, 'e'), args: ['--no-history', '--recover'], env: { E2EE_CHAT_RECOVERY_CODE: '0'.repeat(26) } });
  wrong.end();
  const plain = startClient(t, { port, nick: 'alice', home: join(dir, 'e'), args: ['--no-history'] });
  plain.end();
  t.same([(await wrong.exited).code, (await plain.exited).code], [4, 4]);
  const [refusedCode, refusedLogin, refusedReconnect] = [advice(wrong), advice(plain), advice(b)];
  t.same([refusedCode.length, refusedLogin.length, refusedReconnect.length], [1, 1, 1], `each said once: ${b.err.join(' | ')}`);
  t.not(refusedReconnect[0], refusedCode[0], 'the reconnect sent no code: not the advice of a refused code');
  t.not(refusedReconnect[0], refusedLogin[0], 'nor that of a key that never held the nickname');
  t.not(refusedCode[0], refusedLogin[0]);
});
