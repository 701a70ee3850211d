/**
 * The browser client's page (README "The web client"): the identity kept in IndexedDB (src/web/keys.ts),
 * the connection to the relay's WebSocket endpoint (spec §3.1) from the page's own origin, the view with
 * the automation contract's data-testid attributes. Peer-supplied text only ever reaches the page as
 * textContent, never as markup.
 */
import { loadOrCreateIdentity, openStore, type StoredIdentity } from './keys.js';

/** The WebSocket endpoint's path and subprotocol (spec §3.1; src/server/web.ts serves them). */
export const WS_PATH = '/v1/ws';
export const WS_SUBPROTOCOL = 'e2ee-chat.v1';

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`page is missing #${id}`);
  return e as T;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** The fingerprint of an identity key as the CLI prints it (spec §8.4): SHA-256(SPKI)[0..16], hex, 4-digit groups. */
async function fingerprint(spki: Uint8Array<ArrayBuffer>): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', spki));
  return hex(h.subarray(0, 16)).match(/[0-9a-f]{4}/g)!.join(':');
}

function setStatus(text: string, kind: 'idle' | 'connected' | 'failed' = 'idle'): void {
  const s = el('status');
  s.textContent = text;
  s.className = `status ${kind}`;
}

function wsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WS_PATH}`;
}

interface Page {
  identity: StoredIdentity;
  socket: WebSocket | undefined;
}

function connect(page: Page): void {
  setStatus('connecting');
  const ws = new WebSocket(wsUrl(), WS_SUBPROTOCOL);
  ws.binaryType = 'arraybuffer';
  page.socket = ws;
  ws.onopen = () => setStatus('connected', 'connected');
  ws.onclose = (ev) => {
    if (page.socket === ws) page.socket = undefined;
    setStatus(`disconnected (${ev.code})`, 'failed');
  };
}

async function showManifest(): Promise<void> {
  const list = el('manifest');
  const r = await fetch('/manifest.json', { cache: 'no-store' });
  const files = (await r.json()) as { path: string; sha256: string }[];
  list.replaceChildren(
    ...files.map((f) => {
      const li = document.createElement('li');
      const code = document.createElement('code');
      code.textContent = `${f.sha256} ${f.path}`;
      li.append(code);
      return li;
    }),
  );
}

async function main(): Promise<void> {
  if (!window.isSecureContext || crypto.subtle === undefined) {
    setStatus('this page needs a secure context (https, or http on localhost)', 'failed');
    return;
  }
  setStatus('loading key');
  const db = await openStore();
  const { identity, created } = await loadOrCreateIdentity(db);
  el('own-fingerprint').textContent = await fingerprint(identity.spki);
  el('own-fingerprint').dataset['created'] = String(created);
  const page: Page = { identity, socket: undefined };
  setStatus('ready');

  el<HTMLFormElement>('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    connect(page);
  });
  el('about-toggle').addEventListener('click', () => {
    const about = el('about-view');
    about.hidden = !about.hidden;
    if (!about.hidden) void showManifest();
  });
}

main().catch((e: unknown) => setStatus(`error: ${e instanceof Error ? e.message : String(e)}`, 'failed'));
