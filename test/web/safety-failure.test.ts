// A safety number the page cannot compute (WebCrypto's SHA-512 digest fails, injected before the page
// loads: SHA-512 digests are used for nothing else, §8.4) is an error state on the page, in the member's
// card and in a key-change warning alike: never an unhandled rejection lost in the console, never digits.
import t, { type Test } from 'tap';
import type { Browser } from 'playwright-core';
import { startServer, type RelayServer } from '../../src/server/index.js';
import { startWeb, type WebListener } from '../../src/server/web.js';
import { startClient, tempDir } from '../client/procs.js';
import { FINGERPRINT, join, launch, watchErrors, WEB_ROOT } from './chromium.js';

const b = await launch(t);

/** SubtleCrypto.digest refuses SHA-512 in this context, as a broken or restricted WebCrypto would. */
const FAIL_SHA512 = `{
  const digest = SubtleCrypto.prototype.digest;
  SubtleCrypto.prototype.digest = function (alg, data) {
    const name = typeof alg === 'string' ? alg : alg && alg.name;
    if (String(name).toUpperCase() === 'SHA-512') return Promise.reject(new DOMException('injected failure', 'OperationError'));
    return digest.call(this, alg, data);
  };
}`;

async function personWithoutSha512(t: Test, browser: Browser, url: string) {
  const ctx = await browser.newContext();
  t.teardown(() => ctx.close());
  await ctx.addInitScript(FAIL_SHA512);
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  await page.goto(url);
  await page.getByTestId('own-fingerprint').filter({ hasText: FINGERPRINT }).waitFor();
  return { page, errors };
}

async function relayOn(port: number, webPort: number): Promise<{ relay: RelayServer; web: WebListener }> {
  const relay = await startServer({ port });
  const web = await startWeb(relay, { host: '127.0.0.1', port: webPort, root: WEB_ROOT });
  return { relay, web };
}

t.test('a safety number that cannot be computed is shown as failed, for a member and for a changed key', async (t) => {
  let cur = await relayOn(0, 0);
  t.teardown(async () => {
    await cur.relay.close();
    await cur.web.close();
  });
  const { port } = cur.relay;
  const webPort = cur.web.port;
  const alice = await personWithoutSha512(t, b, `${cur.web.origin}/`);
  await join(alice.page, 'alice');

  const bob1 = startClient(t, { port, nick: 'bob', home: tempDir(t) });
  await bob1.waitFor(/^\* secure session with alice/);
  await alice.page.locator('[data-testid=member][data-nick=bob][data-status=established]').waitFor();
  const sn = alice.page.locator('[data-testid=safety-number][data-nick=bob]');
  await sn.and(alice.page.locator('[data-state=failed]')).waitFor();
  t.notMatch(await sn.textContent(), /\d{5}/, 'no digits shown for a number that was not computed');
  t.equal(await alice.page.locator('[data-testid=verify][data-nick=bob]').count(), 0, 'nothing to verify without the number');
  t.equal(await alice.page.getByTestId('error').getAttribute('data-code'), 'LOCAL');
  bob1.kill('SIGKILL');
  await bob1.exited;

  // A new bob key after a relay restart (empty registry): the key-change warning's number fails the same way.
  await cur.relay.close();
  await cur.web.close();
  await alice.page.locator('[data-testid=status][data-state=reconnecting]').waitFor();
  cur = await relayOn(port, webPort);
  await alice.page.locator('[data-testid=status][data-state=connected]').filter({ hasText: 'in lobby' }).waitFor();
  startClient(t, { port, nick: 'bob', home: tempDir(t) });
  const warning = alice.page.locator('[data-testid=key-changed][data-nick=bob]');
  await warning.waitFor();
  const offered = warning.locator('[data-testid=new-safety-number][data-nick=bob]');
  await offered.and(alice.page.locator('[data-state=failed]')).waitFor();
  t.notMatch(await offered.textContent(), /\d{5}/, 'no digits shown for the new key either');
  await alice.page.locator('[data-testid=error][data-code=LOCAL]').waitFor();

  // Chromium logs each refused reconnect attempt (the relay was down); no unhandled rejection, no script error.
  t.same(alice.errors.filter((e) => !/^WebSocket connection to '\S+' failed/.test(e)), [], 'no script error');
});
