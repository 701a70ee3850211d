/**
 * Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) driven by playwright-core, for the web client's
 * tests: headless, no sandbox (CI runs as root), nothing fetched from the network, a fresh profile in
 * the test's own folder. The relay under test runs in-process with its web listener serving dist/web.
 */
import type { Test } from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startServer, type RelayServer, type ServerOptions } from '../../src/server/index.js';
import { startWeb, type WebListener } from '../../src/server/web.js';

export const WEB_ROOT = fileURLToPath(new URL('../../dist/web/', import.meta.url));
const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * One headless Chromium for a whole test file (started once, closed when the file's tests end); each
 * person is a context of it (src/web keeps its key and pins in that context's IndexedDB).
 */
export async function launch(t: Test): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  const b = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  t.teardown(() => b.close());
  return b;
}

/** A person: a fresh context (own IndexedDB) of the shared browser, with a page open at `url`. */
export async function person(t: Test, b: Browser, url: string): Promise<{ ctx: BrowserContext; page: Page; errors: string[] }> {
  const ctx = await b.newContext({ viewport: { width: 1000, height: 640 } });
  t.teardown(() => ctx.close());
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  await page.goto(url);
  await page.getByTestId('own-fingerprint').filter({ hasText: FINGERPRINT }).waitFor();
  return { ctx, page, errors };
}

/** The CLI's fingerprint format (§8.4). */
export const FINGERPRINT = /^[0-9a-f]{4}(:[0-9a-f]{4}){7}$/;

/** Types a nickname and a room and joins; resolves once the page says it is in the room. */
export async function join(page: Page, nick: string, room = 'lobby'): Promise<void> {
  await page.getByTestId('nick').fill(nick);
  await page.getByTestId('room').fill(room);
  await page.getByTestId('join').click();
  await page.getByTestId('status').filter({ hasText: `in ${room}` }).waitFor();
}

/** Sends one text from the composer. */
export async function say(page: Page, text: string): Promise<void> {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('send').click();
}

/** The element of the message `text` from `from` (data-from and exact text, the automation contract). */
export function message(page: Page, from: string, text: string) {
  return page.locator(`[data-testid=message][data-from="${from}"]`).filter({ hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) });
}

/** A browser profile of its own (one person); closed at the end of the test. */
export async function browser(t: Test, name: string): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  const dir = t.testdir({ [name]: {} });
  const ctx = await chromium.launchPersistentContext(`${dir}/${name}`, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1000, height: 640 } });
  t.teardown(() => ctx.close());
  return ctx;
}

export interface Relay {
  relay: RelayServer;
  web: WebListener;
  url: string;
}

/** A relay with its web listener on 127.0.0.1, serving the built client (npm run build:web). */
export async function relayWithWeb(t: Test, opts: ServerOptions = {}): Promise<Relay> {
  if (!existsSync(`${WEB_ROOT}/app.js`)) throw new Error(`${WEB_ROOT}app.js is missing: run npm run build`);
  const relay = await startServer(opts);
  const web = await startWeb(relay, { host: '127.0.0.1', port: 0, root: WEB_ROOT });
  t.teardown(async () => {
    await relay.close();
    await web.close();
  });
  return { relay, web, url: `${web.origin}/` };
}

/** Collects what the page reports as errors, CSP violations included, for the test to assert on. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

/**
 * Page code (a string: the tests are type-checked without the DOM library) that opens the page's
 * IndexedDB and binds `v` to its stored identity; to be followed by code that reads `v`, inside an
 * async function.
 */
export const READ_STORED_IDENTITY = `
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open('e2ee-chat');
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const v = await new Promise((resolve, reject) => {
    const r = db.transaction('identity').objectStore('identity').get('self');
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });`;
