// The page across a relay restart and a key change, in real Chromium: the relay goes away and comes back
// on the same ports with an empty registry; the page reconnects by itself (back-off) and rejoins; the CLI
// user bob returns with a new key, and the page shows `key-changed` for him: nothing is sent to him or
// accepted from him until the user accepts the new key (his client is told so at once), and the texts
// flow both ways after that. The warning shows the safety number with the new key, which equals bob's.
import t from 'tap';
import { startServer, type RelayServer } from '../../src/server/index.js';
import { startWeb, type WebListener } from '../../src/server/web.js';
import { safetyOf, startClient, tempDir } from '../client/procs.js';
import { join, launch, message, person, say, WEB_ROOT } from './chromium.js';

const b = await launch(t);

async function relayOn(port: number, webPort: number): Promise<{ relay: RelayServer; web: WebListener }> {
  const relay = await startServer({ port });
  const web = await startWeb(relay, { host: '127.0.0.1', port: webPort, root: WEB_ROOT });
  return { relay, web };
}

t.test('after a relay restart the page reconnects; a changed key blocks that member until accepted', async (t) => {
  let cur = await relayOn(0, 0);
  t.teardown(async () => {
    await cur.relay.close();
    await cur.web.close();
  });
  const { port } = cur.relay;
  const webPort = cur.web.port;
  const alice = await person(t, b, `${cur.web.origin}/`);
  await join(alice.page, 'alice');

  // bob's first key: the page pins it once their session is established.
  const bob1 = startClient(t, { port, nick: 'bob', home: tempDir(t) });
  await bob1.waitFor(/^\* secure session with alice/);
  await alice.page.locator('[data-testid=member][data-nick=bob][data-status=established]').waitFor();
  bob1.kill('SIGKILL');
  await bob1.exited;

  // The relay restarts with an empty registry (so bob's nickname may come with another key).
  await cur.relay.close();
  await cur.web.close();
  await alice.page.locator('[data-testid=status][data-state=reconnecting]').waitFor();
  cur = await relayOn(port, webPort);
  await alice.page.locator('[data-testid=status][data-state=connected]').filter({ hasText: 'in lobby' }).waitFor();

  const bob2 = startClient(t, { port, nick: 'bob', home: tempDir(t) });
  bob2.write('refused with the new key');
  const warning = alice.page.locator('[data-testid=key-changed][data-nick=bob]');
  await warning.waitFor();
  t.equal(await alice.page.locator('[data-testid=member][data-nick=bob]').getAttribute('data-status'), 'key-changed');
  t.equal(await alice.page.locator('[data-testid=error]').getAttribute('data-code'), 'KEY_CHANGED');

  // Nothing goes to bob while his key is not accepted: the text stays in the composer, no message is shown.
  await say(alice.page, 'not for the new key');
  await alice.page.locator('[data-testid=error][data-code=LOCAL]').waitFor();
  t.equal(await alice.page.getByTestId('composer').inputValue(), 'not for the new key', 'the text is kept, not sent');
  t.equal(await alice.page.getByTestId('message').count(), 0, 'no message shown, none accepted from bob');

  // Refused, bob's client is told at once (the refusal notice, as the CLI's: his session with the page
  // fails as key-not-accepted) and lists his text as not delivered once the page rejoins to accept.
  await bob2.waitFor(/^\* session with alice failed: UNEXPECTED_FRAME/);
  t.equal(await alice.page.getByTestId('message').count(), 0, 'nothing from bob shown while his key is refused');
  // The warning shows the safety number with the offered key, to be compared before accepting.
  const offered = await warning.locator('[data-testid=new-safety-number][data-nick=bob]').filter({ hasText: /^(\d{5} ){11}\d{5}$/ }).textContent();
  await alice.page.locator('[data-testid=accept-key][data-nick=bob]').click();
  await warning.waitFor({ state: 'detached' });
  // Accepting gives both sides new machines (v1, §7.2: the page leaves and joins again), now with bob's new key.
  const secure = await bob2.waitFor(/^\* secure session with alice/);
  t.equal(offered, safetyOf(secure), 'the warning showed the safety number of the new key, the one bob sees');
  await alice.page.locator('[data-testid=member][data-nick=bob][data-status=established]').waitFor();
  bob2.write('from the new bob');
  await message(alice.page, 'bob', 'from the new bob').waitFor();
  await say(alice.page, 'after accepting');
  const got = await bob2.waitFor(/^alice: /);
  t.equal(got, 'alice: after accepting', 'the first text bob gets from the page is the one sent after the accept');
  await alice.page.locator('[data-testid=message][data-from=alice][data-state=delivered]').waitFor();

  // bob stops answering (SIGSTOP: no ACK can leave), then is gone: the text he never acknowledged is listed.
  bob2.child.kill('SIGSTOP');
  await say(alice.page, 'never acknowledged');
  bob2.kill('SIGKILL');
  await alice.page.locator('[data-testid=undelivered][data-nick=bob]').filter({ hasText: 'never acknowledged' }).waitFor();
  t.equal(await message(alice.page, 'alice', 'never acknowledged').getAttribute('data-state'), 'undelivered');
  // Chromium logs each refused reconnect attempt (the relay was down); nothing else may appear.
  t.same(alice.errors.filter((e) => !/^WebSocket connection to '\S+' failed/.test(e)), [], 'no CSP violation, no script error');
});
