// Makes docs/screenshot.png (README "The web client"): a relay with its web listener (dist/, npm run
// build first), two Chromium profiles (alice and bob) that join one room, compare safety numbers, mark
// each other verified and exchange three messages (after writing down the codes the page shows once); the picture shows both pages side by side. Needs /usr/bin/chromium
// (or $CHROMIUM). Not a test: the tests in test/web/ check the same things with assertions.
import { chromium } from 'playwright-core';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { startServer } = await import(join(root, 'dist/src/server/index.js'));
const { startWeb } = await import(join(root, 'dist/src/server/web.js'));
const relay = await startServer({});
const web = await startWeb(relay, { host: '127.0.0.1', port: 0, root: join(root, 'dist/web') });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
try {
  const pages = {};
  for (const nick of ['alice', 'bob']) {
    const ctx = await browser.newContext({ viewport: { width: 820, height: 400 }, deviceScaleFactor: 1 });
    const page = await ctx.newPage();
    await page.goto(`${web.origin}/`);
    await page.getByTestId('own-fingerprint').filter({ hasText: /:/ }).waitFor();
    await page.getByTestId('nick').fill(nick);
    await page.getByTestId('join').click();
    await page.getByTestId('status').filter({ hasText: 'in lobby' }).waitFor();
    // The backup code of the new key and the nickname's recovery code, written down as the page asks.
    for (const done of ['backup-code-done', 'recovery-done']) {
      await page.getByTestId(done).click();
      await page.getByTestId(done).waitFor({ state: 'hidden' });
    }
    pages[nick] = page;
  }
  const other = { alice: 'bob', bob: 'alice' };
  for (const nick of ['alice', 'bob']) {
    await pages[nick].locator(`[data-testid=member][data-nick=${other[nick]}][data-status=established]`).waitFor();
    await pages[nick].locator(`[data-testid=verify][data-nick=${other[nick]}]`).click();
    await pages[nick].locator(`[data-testid=member][data-nick=${other[nick]}][data-verified=true]`).waitFor();
  }
  const script = [
    ['alice', 'Hi Bob! Our safety numbers match, I marked you verified.'],
    ['bob', 'Same here. The relay only ever sees ciphertext.'],
    ['alice', 'Great, talk later.'],
  ];
  for (const [nick, text] of script) {
    await pages[nick].getByTestId('composer').fill(text);
    await pages[nick].getByTestId('send').click();
    await pages[other[nick]].locator(`[data-testid=message][data-from=${nick}]`).filter({ hasText: text }).waitFor();
    await pages[nick].locator(`[data-testid=message][data-from=${nick}][data-state=delivered]`).last().waitFor();
  }
  // The two pages side by side, each under its person's name, in one picture.
  const shots = {};
  for (const nick of ['alice', 'bob']) shots[nick] = (await pages[nick].screenshot()).toString('base64');
  const sheet = await (await browser.newContext({ viewport: { width: 1660, height: 440 } })).newPage();
  await sheet.setContent(`<body style="margin:0;display:flex;gap:20px;font:14px system-ui;background:#ddd">${['alice', 'bob']
    .map((n) => `<figure style="margin:0"><figcaption style="padding:4px 8px">${n}'s browser</figcaption><img src="data:image/png;base64,${shots[n]}" style="display:block;border:1px solid #999"></figure>`)
    .join('')}</body>`);
  await sheet.screenshot({ path: join(root, 'docs', 'screenshot.png') });
  console.log('wrote docs/screenshot.png');
} finally {
  await browser.close();
  await relay.close();
  await web.close();
}
