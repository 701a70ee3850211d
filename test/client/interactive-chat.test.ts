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
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db'), args: ['--max-room-size', '3'] });
  const home = join(dir, 'alice');
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob'), room: 'den' });
  await bob.waitFor(/^\* joined /);
  const carol = startClient(t, { port, nick: 'carol', home: join(dir, 'carol'), room: 'den' });
  await carol.waitFor(/^\* joined /);
  const alice = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--room', 'den', '--home', home, '--no-passphrase']);
  await bob.waitFor(/^\* secure session with alice/);
  await carol.waitFor(/^\* secure session with alice/);
  await alice.waitFor(/end-to-end session with carol established/);
  await alice.waitFor(/end-to-end session with bob established/);

  alice.type('/msg bob just for you');
  alice.keys('Enter');
  t.equal(await bob.waitFor(/^alice: /), 'alice: just for you', 'bob gets the /msg');
  await alice.waitFor(/✓ #1 delivered to bob "just for you"/);

  alice.type('first line\\');
  alice.keys('Enter');
  alice.type('second line');
  alice.keys('Enter');
  const two = 'alice: first line\\nsecond line';
  t.equal(await carol.waitFor(/^alice: first/), two, 'one message of two lines (shown escaped in scripted mode)');
  t.equal(await bob.waitFor(/^alice: first/), two);
  t.notOk(carol.out.some((l) => l.includes('just for you')), 'carol never got the /msg');
  const screen = await alice.waitFor(/✓ #2 delivered to all 2 /);
  t.equal(screen.filter((l) => /✓ #2 /.test(l)).length, 1, 'one receipt line for two members');
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
  t.equal(await again.waitExit(), 0);
  bob.end();
  carol.end();
  await Promise.all([bob.exited, carol.exited]);
});
