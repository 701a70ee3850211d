/**
 * `e2ee-chat client` identities end to end: kept across restarts under a passphrase, a wrong passphrase,
 * nickname binding at the relay. Real relay and client processes.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fingerprintOf, startClient, startServerProc, tempDir } from './procs.js';


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
  const bound = impostor.err.filter((l) => l.includes('NICK_BOUND'));
  t.equal(bound.length, 1, 'NICK_BOUND is printed once (issue 15: it was printed twice)');
  t.match(bound[0], /--nick.*--home/, 'and says what to do: another --nick, or the --home that holds the bound key');
});

t.test('a new identity with a short passphrase is refused with status 2 and a suggestion; nothing is written', async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'dave');
  const weak = startClient(t, { port: 1, nick: 'dave', home, env: { E2EE_CHAT_PASSPHRASE: 'pw' }, noPassphrase: false });
  weak.end();
  t.equal((await weak.exited).code, 2);
  t.ok(weak.err.some((l) => l.includes('WEAK_PASSPHRASE') || /at least 12/.test(l)), 'says why');
  t.ok(weak.err.some((l) => /for example: [a-z]+(-[a-z]+){5}/.test(l)), 'suggests a generated passphrase');
  t.notOk(existsSync(join(home, 'identity.key')), 'no key file');
});
