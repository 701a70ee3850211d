/** The sender's clock against ours (src/cli/client.ts skewNote, issue 14 point 7): flagged beyond 2 minutes. */
import t from 'tap';
import { join } from 'node:path';
import { MAX_CLOCK_SKEW_MS, skewNote } from '../../src/cli/client.js';
import { ChatClient } from '../../src/client/chat-client.js';
import { nodeClient } from '../../src/client/node-client.js';
import { identity } from '../../src/wirekit/relay-conn.js';
import { startClient, startServerProc, tempDir } from './procs.js';

t.test('a TEXT.ts within 2 minutes is not flagged; a delayed or early one is, saying which', async (t) => {
  const now = 1_800_000_000_000;
  t.equal(skewNote(now, now), null);
  t.equal(skewNote(now - MAX_CLOCK_SKEW_MS, now), null, 'at the bound');
  t.match(skewNote(now - MAX_CLOCK_SKEW_MS - 1, now), /before it arrived/, 'held back by the relay (or a slow clock)');
  t.match(skewNote(now - 5 * 60_000, now), /5 min/);
  t.match(skewNote(now + 3 * 3600_000, now), /ahead/, "the sender's clock ahead");
  t.match(skewNote(now + 3 * 3600_000, now), /3 h/);
  t.match(skewNote(0, now), /before it arrived/, 'a zero timestamp');
});

t.test('the scripted client shows the sender\'s timestamp of a held-back message and flags it', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob'), room: 'r' });
  await bob.waitFor(/^\* joined r as bob/);
  const alice = nodeClient({ host: '127.0.0.1', port, nick: 'alice', identity: identity('alice', true) });
  t.teardown(() => alice.close());
  const established = new Promise<void>((r) => alice.once('established', () => r()));
  await alice.connect();
  await alice.join('r');
  await established;
  await bob.waitFor(/^\* secure session with alice/);
  // What a relay holding the message back for 10 minutes looks like to bob: TEXT.ts (inside the sealed
  // MSG, which the relay cannot change) 10 minutes before it arrives. Here alice's clock says so.
  const stamped = Date.now() - 10 * 60_000;
  const realNow = Date.now;
  Date.now = () => stamped;
  const sent = new Promise<void>((r) => alice.once('sent', () => r()));
  t.equal(alice.send('sent ten minutes ago').length, 1);
  await sent;
  Date.now = realNow;
  t.equal(await bob.waitFor(/^alice: /), 'alice: sent ten minutes ago');
  const flag = await bob.waitFor(/^\* clock: message #\d+ from alice/);
  t.ok(flag.includes(new Date(stamped).toISOString()), 'the sender\'s timestamp is shown');
  await alice.leave();
  bob.end();
  t.equal((await bob.exited).code, 0);
  t.notOk(bob.out.some((l) => l.startsWith('* clock:') && !l.includes(new Date(stamped).toISOString())), 'only that message is flagged');
});
