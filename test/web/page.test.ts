// The web client in real Chromium: the page loads under its strict CSP with no violation, keeps its
// identity (non-extractable CryptoKeys in IndexedDB) across a reload, and reaches the relay's WebSocket
// endpoint from its own origin; its "about" view shows the integrity manifest the relay printed.
import t from 'tap';
import { securityHeaders, WS_PATH } from '../../src/server/web.js';
import { browser, READ_STORED_IDENTITY, relayWithWeb, watchErrors } from './chromium.js';

t.test('the page loads under its CSP, keeps its identity across a reload, and connects', async (t) => {
  const { web, url } = await relayWithWeb(t);
  const ctx = await browser(t, 'alice');
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  const res = await page.goto(url);
  t.equal(res?.status(), 200);
  const want = securityHeaders(`ws://127.0.0.1:${web.port}${WS_PATH}`);
  const got = res?.headers() ?? {};
  for (const [h, v] of Object.entries(want)) t.equal(got[h.toLowerCase()], v, h);

  const fp = page.getByTestId('own-fingerprint');
  const FP = /^[0-9a-f]{4}(:[0-9a-f]{4}){7}$/;
  await t.resolves(fp.filter({ hasText: FP }).waitFor());
  const first = await fp.textContent();
  t.equal(await fp.getAttribute('data-created'), 'true', 'first visit: a new identity');
  // Evaluated in the page (a string: this file is type-checked without the DOM library).
  const stored = await page.evaluate(`(async () => {${READ_STORED_IDENTITY}
    let exported = 'refused';
    try {
      await crypto.subtle.exportKey('pkcs8', v.pss);
      exported = 'exported';
    } catch {}
    return { oaep: [v.oaep.extractable, v.oaep.algorithm.name, ...v.oaep.usages], pss: [v.pss.extractable, v.pss.algorithm.name, ...v.pss.usages], spki: v.spki.length, exported };
  })()`);
  t.same(stored, { oaep: [false, 'RSA-OAEP', 'decrypt'], pss: [false, 'RSA-PSS', 'sign'], spki: 294, exported: 'refused' });

  await page.reload();
  await fp.filter({ hasText: FP }).waitFor();
  t.equal(await fp.textContent(), first, 'a reload keeps the fingerprint');
  t.equal(await fp.getAttribute('data-created'), 'false');

  // The "about" view lists the integrity manifest the relay printed, under the same CSP.
  await page.locator('#about-toggle').click();
  const listed = page.locator('#manifest li');
  await listed.first().waitFor();
  t.same(await listed.allTextContents(), web.manifest.map((f) => `${f.sha256} ${f.path}`), 'the about view shows the printed manifest');

  await page.getByTestId('nick').fill('alice');
  await page.getByTestId('join').click();
  await page.getByTestId('status').filter({ hasText: /^connected/ }).waitFor();
  t.same(errors, [], 'no CSP violation, no script error');
});
