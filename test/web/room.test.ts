// The web client and a TCP client in one room of one relay, in real Chromium: each sees the other with
// the key the other holds (the page's member fingerprint is the TCP client's, the TCP client receives
// the page's key), the page's safety number equals the one node:crypto computes, verification is kept,
// and a member over the room size is refused with ROOM_FULL.
import t from 'tap';
import { frame } from '../../src/codec/index.js';
import { fingerprint, safetyNumber } from '../../src/crypto/safety.js';
import { identities, TestClient, type Identity } from '../server/helpers.js';
import { launch, person, relayWithWeb } from './chromium.js';

const [bob, carol] = identities(2) as [Identity, Identity];
const b = await launch(t);

t.test('a page and a TCP client meet in one room with matching fingerprints and safety numbers', async (t) => {
  const { relay, url } = await relayWithWeb(t, { maxRoomSize: 2 });
  const tcp = await TestClient.connect(relay.port);
  await tcp.auth('bob', bob);
  tcp.send(frame('JOIN', { room: 'lobby' }));
  await tcp.expect('JOINED');

  const { page, errors } = await person(t, b, url);
  const own = page.getByTestId('own-fingerprint');
  await page.getByTestId('nick').fill('alice');
  await page.getByTestId('join').click();

  const pj = await tcp.expect('PEER_JOINED');
  t.equal(pj.nick, 'alice');
  t.equal(fingerprint(pj.key), await own.textContent(), "the relay carried the page's own key");

  const member = page.locator('[data-testid=member][data-nick=bob]');
  await member.waitFor();
  t.equal(await member.getAttribute('data-fingerprint'), fingerprint(bob.spki));
  const sn = page.locator('[data-testid=safety-number][data-nick=bob]');
  await sn.waitFor();
  t.equal(await sn.textContent(), safetyNumber('alice', pj.key, 'bob', bob.spki), 'the page computes the safety number the CLI prints');
  t.match(await page.getByTestId('status').textContent(), /^connected/);

  await page.locator('[data-testid=verify][data-nick=bob]').click();
  await page.locator('[data-testid=member][data-nick=bob] .verified').waitFor();

  // The room holds 2: a third member is refused, and the page is not disturbed.
  const third = await TestClient.connect(relay.port);
  await third.auth('carol', carol);
  third.send(frame('JOIN', { room: 'lobby' }));
  t.equal(await third.expectError(), 'ROOM_FULL');
  third.destroy();
  // A page as the third member: refused with ROOM_FULL, said in words, and back at the join form.
  const dave = await person(t, b, url);
  await dave.page.getByTestId('nick').fill('dave');
  await dave.page.getByTestId('join').click();
  await dave.page.locator('[data-testid=error][data-code=ROOM_FULL]').waitFor();
  t.equal(await dave.page.locator('[data-testid=status]').getAttribute('data-state'), 'failed');
  t.ok(await dave.page.getByTestId('join').isVisible(), 'the join form is shown again');

  tcp.destroy();
  await page.locator('[data-testid=member][data-nick=bob]').waitFor({ state: 'detached' });
  t.same(errors, [], 'no CSP violation, no script error');
});
