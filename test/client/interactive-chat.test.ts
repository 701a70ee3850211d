// The interactive client's chat commands on a real terminal (tmux), issue 15 point 3: /msg to one member,
// a message of several lines (a line ending in "\" continues), one receipt line per message once every
// member acknowledged it (numbered per direction: our own #1, #2, ...), and the nickname, relay and room
// remembered in --home for the next run. Real relay and members on 127.0.0.1.
import t from 'tap';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parseRemembered } from '../../src/client/remembered.js';
import { CLI, startClient, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';

t.test('remembered settings are parsed strictly', async (t) => {
  t.same(parseRemembered('{"nick":"alice","host":"127.0.0.1","port":55555,"room":"den"}'), { nick: 'alice', host: '127.0.0.1', port: 55555, room: 'den' });
  t.same(parseRemembered('{}'), {});
  t.same(parseRemembered('{"host":"127.0.0.1","port":9000,"relayName":"chat.example:55555"}'), { host: '127.0.0.1', port: 9000, relayName: 'chat.example:55555' }, 'the relay name of a tunnel');
  for (const bad of ['', '[]', 'null', '{"nick":"a b"}', '{"port":0}', '{"port":"1"}', '{"room":""}', '{"host":"a\\nb"}', '{"extra":1}', '{"nick":"alice"} x', '{"relayName":"Chat.Example:1"}', '{"relayName":"no-port"}']) {
    t.equal(parseRemembered(bad), null, `refused: ${bad}`);
  }
});

t.test('/msg, a two-line message, one receipt per message, and the settings remembered for the next run', async (t) => {
  const dir = tempDir(t);
  // Five people, as the new user had: every message added 4 receipt lines then.
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db'), args: ['--max-room-size', '5'] });
  const home = join(dir, 'alice');
  const others = ['bob', 'carol', 'dave', 'erin'].map((nick) => startClient(t, { port, nick, home: join(dir, nick), room: 'den' }));
  for (const o of others) await o.waitFor(/^\* joined /);
  const bob = others[0]!;
  const alice = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--room', 'den', '--home', home, '--no-passphrase']);
  for (const o of others) await o.waitFor(/^\* secure session with alice/);
  for (const nick of ['bob', 'carol', 'dave', 'erin']) await alice.waitFor(new RegExp(`end-to-end session with ${nick} established`));

  // Numbers count per direction (they were shared: #0, #2, #4 one way, #1, #3 the other): bob's message
  // and alice's ACK of it leave alice's first message #1.
  bob.write('hello from bob');
  await alice.waitFor(/\] bob: hello from bob$/);
  alice.type('/msg bob just for you');
  alice.keys('Enter');
  t.equal(await bob.waitFor(/^alice: /), 'alice: just for you', 'bob gets the /msg');
  await alice.waitFor(/✓ #1 delivered to bob "just for you"/);

  alice.type('first line\\');
  alice.keys('Enter');
  alice.type('second line');
  alice.keys('Enter');
  const two = 'alice: first line\\nsecond line';
  for (const o of others) t.equal(await o.waitFor(/^alice: first/), two, 'one message of two lines (shown escaped in scripted mode)');
  for (const o of others.slice(1)) t.notOk(o.out.some((l) => l.includes('just for you')), 'only bob got the /msg');
  const screen = await alice.waitFor(/✓ #2 delivered to all 4 /);
  t.equal(screen.filter((l) => /✓ #2 /.test(l)).length, 1, 'one receipt line for four members');
  t.equal(screen.filter((l) => /✓ /.test(l)).length, 2, 'two messages, two receipt lines in all');
  t.ok(screen.some((l) => /^\s+second line/.test(l)), 'the second line is shown indented under the first');

  alice.type('/quit');
  alice.keys('Enter');
  t.equal(await alice.waitExit(), 0);
  t.equal(statSync(join(home, 'client.json')).mode & 0o777, 0o600, 'client.json is private');

  // The next run with --home alone goes back to the same relay and room under the same nickname.
  const mark = bob.out.length;
  const again = new Term(t, tempDir(t), [process.execPath, CLI, 'client', '--home', home]);
  await again.waitFor(/alice@den>$/);
  await bob.waitFor(/^\* alice joined/, mark);
  again.type('/quit');
  again.keys('Enter');
  const code = await again.waitExit();
  t.equal(code, 0, 'the second run quits with 0');
  if (code !== 0) t.comment(again.screen(true).join('\n'));
  for (const o of others) o.end();
  await Promise.all(others.map((o) => o.exited));
});
