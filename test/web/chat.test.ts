// The web client chats, in real Chromium: two pages end to end both ways with delivery ticks and equal
// safety numbers; a page and the CLI's scripted client (a real child process over TCP) both ways in one
// room, each showing the safety number the other shows. One browser for the file, one context per person.
import t from 'tap';
import { fingerprintOf, safetyOf, startClient, tempDir } from '../client/procs.js';
import { join, launch, message, person, relayWithWeb, say } from './chromium.js';

const b = await launch(t);

t.test('two pages chat both ways, with delivery ticks and equal safety numbers', async (t) => {
  const { url } = await relayWithWeb(t);
  const alice = await person(t, b, url);
  const bob = await person(t, b, url);
  await join(alice.page, 'alice');
  await join(bob.page, 'bob');

  await say(alice.page, 'hello bob');
  await message(bob.page, 'alice', 'hello bob').waitFor();
  const mine = message(alice.page, 'alice', 'hello bob');
  await alice.page.locator('[data-testid=message][data-from=alice][data-state=delivered]').waitFor();
  t.equal(await mine.getAttribute('data-delivered-to'), 'bob', 'the tick names who acknowledged it');

  await say(bob.page, 'hi alice <b>not bold</b>');
  const got = message(alice.page, 'bob', 'hi alice <b>not bold</b>');
  await got.waitFor();
  t.equal(await got.locator('b').count(), 0, 'peer text is text, never markup');
  await bob.page.locator('[data-testid=message][data-from=bob][data-state=delivered]').waitFor();
  // The CLI's escaping (src/client/text.ts printable): a bidirectional override is shown, never applied.
  await say(bob.page, 'abc\u202edef');
  await message(alice.page, 'bob', 'abc\\u{202e}def').waitFor();

  const snA = alice.page.locator('[data-testid=safety-number][data-nick=bob]');
  const snB = bob.page.locator('[data-testid=safety-number][data-nick=alice]');
  await snA.waitFor();
  await snB.waitFor();
  t.match(await snA.textContent(), /^(\d{5} ){11}\d{5}$/);
  t.equal(await snA.textContent(), await snB.textContent(), 'both pages show one safety number');
  t.same([...alice.errors, ...bob.errors], [], 'no CSP violation, no script error');
});

t.test('a page and the CLI client chat both ways in one room with equal safety numbers', async (t) => {
  const { relay, url } = await relayWithWeb(t);
  const alice = await person(t, b, url);
  await join(alice.page, 'alice');

  const cli = startClient(t, { port: relay.port, nick: 'bob', home: tempDir(t) });
  const joined = await cli.waitFor(/^\* joined lobby as bob, fingerprint /);
  const seen = await cli.waitFor(/^\* alice joined, fingerprint /);
  t.equal(fingerprintOf(seen), await alice.page.getByTestId('own-fingerprint').textContent(), "the CLI shows the page's key");
  const member = alice.page.locator('[data-testid=member][data-nick=bob]');
  await member.waitFor();
  t.equal(await member.getAttribute('data-fingerprint'), fingerprintOf(joined), "the page shows the CLI's key");
  const secure = await cli.waitFor(/^\* secure session with alice/);
  cli.write('hello from the terminal');
  await message(alice.page, 'bob', 'hello from the terminal').waitFor();
  await cli.waitFor(/^\* delivered to alice #/);

  await say(alice.page, 'hello from the page');
  await cli.waitFor(/^alice: hello from the page$/);
  await alice.page.locator('[data-testid=message][data-from=alice][data-state=delivered]').waitFor();

  const sn = alice.page.locator('[data-testid=safety-number][data-nick=bob]');
  await sn.waitFor();
  t.equal(await sn.textContent(), safetyOf(secure), 'the page and the CLI show the same safety number');
  cli.end();
  t.equal((await cli.exited).code, 0, 'the CLI left with everything delivered');
  await alice.page.locator('[data-testid=member][data-nick=bob]').waitFor({ state: 'detached' });
  t.same(alice.errors, []);
});
