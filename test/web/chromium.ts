/**
 * Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) driven by playwright-core, for the web client's
 * tests: headless, no sandbox (CI runs as root), nothing fetched from the network, a fresh profile in
 * the test's own folder. The relay under test runs in-process with its web listener serving dist/web.
 */
import type { Test } from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startServer, type RelayServer, type ServerOptions } from '../../src/server/index.js';
import { startWeb, type WebListener } from '../../src/server/web.js';

export const WEB_ROOT = fileURLToPath(new URL('../../dist/web/', import.meta.url));
const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

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
