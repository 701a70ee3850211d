/**
 * The client keeps an encrypted history (issue 15 point 4): after a real chat between two scripted
 * clients, `e2ee-chat history export` shows both directions with their delivery state, no text is
 * readable in any file of --home, --no-history keeps nothing, and the interactive client shows the
 * room's earlier messages when it joins again and on /history.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, startClient, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';

const exportOf = (home: string) => {
  const r = spawnSync(process.execPath, [CLI, 'history', 'export', '--home', home], { encoding: 'utf8', env: { ...process.env, E2EE_CHAT_PASSPHRASE: '' } });
  return { status: r.status, records: r.stdout.trimEnd().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) };
};

t.test('a scripted chat is kept, encrypted, with delivery states; --no-history keeps nothing', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const alice = startClient(t, { port, nick: 'alice', home: join(dir, 'alice') });
  await alice.waitFor(/^\* joined lobby as alice/);
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob'), args: ['--no-history'] });
  await alice.waitFor(/^\* secure session with bob/);
  await bob.waitFor(/^\* secure session with alice/);
  alice.write('the door code is 4711');
  t.equal(await bob.waitFor(/^alice: /), 'alice: the door code is 4711');
  await alice.waitFor(/^\* delivered to bob #/);
  bob.write('noted, zanzibar');
  t.equal(await alice.waitFor(/^bob: /), 'bob: noted, zanzibar');
  alice.end();
  bob.end();
  t.same((await Promise.all([alice.exited, bob.exited])).map((e) => e.code), [0, 0]);

  const { status, records } = exportOf(join(dir, 'alice'));
  t.equal(status, 0);
  t.same(
    records.map((r) => [r['dir'], r['from'], r['to'], r['text'], r['state'], r['room'], r['relay']]),
    [
      ['out', 'alice', ['bob'], 'the door code is 4711', 'delivered', 'lobby', `localhost:${port}`],
      ['in', 'bob', ['alice'], 'noted, zanzibar', 'received', 'lobby', `localhost:${port}`],
    ],
    'kept under the relay identity (the name the relay announces and AUTH signs), not 127.0.0.1 as dialled',
  );
  t.type(records[1]!['sentAt'], 'number', "the sender's time is kept for a received message");
  for (const f of readdirSync(join(dir, 'alice'))) {
    const bytes = readFileSync(join(dir, 'alice', f));
    for (const needle of ['4711', 'door code', 'zanzibar']) t.notOk(bytes.includes(Buffer.from(needle)), `${f} holds no "${needle}"`);
  }
  t.notOk(existsSync(join(dir, 'bob', 'history.db')), '--no-history: no history file at all');
});

t.test('the interactive client shows the room’s earlier messages on rejoin and on /history', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob') });
  await bob.waitFor(/^\* joined lobby as bob/);
  const client = [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', join(dir, 'alice'), '--no-passphrase'];
  const first = new Term(t, join(dir), client);
  await first.waitFor(/end-to-end session with bob established/);
  first.type('remember the milk');
  first.keys('Enter');
  await bob.waitFor(/^alice: remember the milk$/);
  bob.write('and the eggs');
  await first.waitFor(/bob: and the eggs$/);
  first.type('/quit');
  first.keys('Enter');
  t.equal(await first.waitExit(), 0);

  // Issue 14 point 6: the same relay dialled as `localhost` is the same conversation (one relay identity).
  const tdir = tempDir(t);
  const second = new Term(t, tdir, [...client, '--host', 'localhost']);
  const screen = await second.waitFor(/── last 2 messages in lobby ──/);
  t.ok(screen.some((l) => /alice → bob: remember the milk {2}\((delivered|not acknowledged)\)$/.test(l)), 'own message with its fate');
  t.ok(screen.some((l) => /\] bob: and the eggs$/.test(l)), "bob's message");
  await second.waitFor(/alice@lobby>$/);
  second.type('/history 1');
  second.keys('Enter');
  const after = await second.waitFor(/── last 1 message in lobby ──/);
  t.ok(after.some((l) => /\] bob: and the eggs$/.test(l)), '/history 1 shows the newest');
  second.type('/quit');
  second.keys('Enter');
  t.equal(await second.waitExit(), 0);
  bob.end();
  await bob.exited;
});
