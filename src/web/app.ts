/**
 * The browser client's page (README "The web client"): the identity kept in IndexedDB (src/web/keys.ts),
 * the connection to the relay's WebSocket endpoint (spec §3.1) from the page's own origin, the view with
 * the automation contract's data-testid attributes. Peer-supplied text only ever reaches the page as
 * textContent, never as markup.
 */
import type { Member } from '../codec/index.js';
import type { RsaPrivateKey } from '../crypto/backend.js';
import { fingerprintOf, safetyNumberOf } from '../crypto/fingerprint.js';
import { webCryptoBackend } from '../crypto/webcrypto.js';
import { getPin, loadOrCreateIdentity, openStore, putPin, type StoredIdentity } from './keys.js';
import { RelayLink, type RelayEvent } from './relay.js';

const backend = webCryptoBackend();

/** The WebSocket endpoint's path and subprotocol (spec §3.1; src/server/web.ts serves them). */
export const WS_PATH = '/v1/ws';
export const WS_SUBPROTOCOL = 'e2ee-chat.v1';

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`page is missing #${id}`);
  return e as T;
}

const fingerprint = (spki: Uint8Array): Promise<string> => fingerprintOf(backend, spki);

function setStatus(text: string, kind: 'idle' | 'connected' | 'failed' = 'idle'): void {
  const s = el('status');
  s.textContent = text;
  s.className = `status ${kind}`;
}

function wsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WS_PATH}`;
}

interface Page {
  db: IDBDatabase;
  identity: StoredIdentity;
  key: RsaPrivateKey;
  nick: string;
  link: RelayLink | undefined;
  /** Members by nickname, in the order they are shown. */
  members: Map<string, HTMLElement>;
}

function textEl(tag: string, text: string, cls?: string): HTMLElement {
  const e = document.createElement(tag);
  e.textContent = text; // peer text only ever as text (never markup)
  if (cls !== undefined) e.className = cls;
  return e;
}

function event(text: string): void {
  el('messages').append(textEl('li', text, 'event'));
}

/** §8.5: the first key seen for a nickname on this relay is pinned; a different one later is a key change. */
async function addMember(page: Page, m: Member): Promise<void> {
  const relay = location.host;
  const spki = Uint8Array.from(m.key);
  const pin = await getPin(page.db, relay, m.nick);
  const fp = await fingerprint(spki);
  const li = document.createElement('li');
  li.dataset['testid'] = 'member';
  li.dataset['nick'] = m.nick;
  li.dataset['fingerprint'] = fp;
  const name = textEl('div', m.nick, 'nick');
  li.append(name, textEl('div', fp, 'fp'));
  page.members.get(m.nick)?.remove();
  page.members.set(m.nick, li);
  el('members').append(li);
  if (pin !== undefined && !sameBytes(pin.spki, spki)) {
    const w = document.createElement('div');
    w.className = 'warning';
    w.dataset['testid'] = 'key-changed';
    w.dataset['nick'] = m.nick;
    w.append(textEl('strong', `The identity key of ${m.nick} has changed.`), textEl('div', `pinned ${await fingerprint(pin.spki)}, now ${fp}`, 'fp'));
    const accept = textEl('button', 'accept the new key');
    accept.addEventListener('click', () => {
      void putPin(page.db, relay, m.nick, spki, false).then(() => w.remove());
    });
    w.append(accept);
    el('warnings').append(w);
    return;
  }
  if (pin === undefined) {
    await putPin(page.db, relay, m.nick, spki, false);
    event(`${m.nick} is here (key ${fp}, seen for the first time: pinned)`);
  } else {
    event(`${m.nick} is here`);
  }
  if (pin?.verified === true) name.classList.add('verified');
  const sn = textEl('div', await safetyNumberOf(backend, page.nick, page.identity.spki, m.nick, spki), 'sn');
  sn.dataset['testid'] = 'safety-number';
  sn.dataset['nick'] = m.nick;
  const verify = textEl('button', 'mark as verified');
  verify.dataset['testid'] = 'verify';
  verify.dataset['nick'] = m.nick;
  verify.addEventListener('click', () => {
    void putPin(page.db, relay, m.nick, spki, true).then(() => name.classList.add('verified'));
  });
  li.append(sn, verify);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function onRelay(page: Page, e: RelayEvent): void {
  switch (e.type) {
    case 'ready':
      setStatus('connected', 'connected');
      return;
    case 'joined':
      setStatus(`connected, in ${e.room}`, 'connected');
      el('join-view').hidden = true;
      el('chat-view').hidden = false;
      for (const m of e.members) void addMember(page, m);
      return;
    case 'peer-joined':
      void addMember(page, e.member);
      return;
    case 'peer-left':
      page.members.get(e.nick)?.remove();
      page.members.delete(e.nick);
      event(`${e.nick} left`);
      return;
    case 'deliver':
      // End-to-end sessions in the page come with the shared client core (README "The web client").
      return;
    case 'refused':
      setStatus(`refused: ${e.code}`, 'failed');
      return;
    case 'closed':
      page.link = undefined;
      setStatus(`disconnected${e.code === undefined ? '' : `: ${e.code}`}`, 'failed');
      return;
  }
}

function connect(page: Page, nick: string, room: string): void {
  setStatus('connecting');
  page.nick = nick;
  page.link = new RelayLink({
    url: wsUrl(),
    subprotocol: WS_SUBPROTOCOL,
    nick,
    room,
    spki: page.identity.spki,
    key: page.key,
    crypto: backend,
    onEvent: (e) => onRelay(page, e),
  });
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
  const page: Page = { db, identity, key: backend.privateKeyFromCryptoKeys(identity.oaep, identity.pss), nick: '', link: undefined, members: new Map() };
  setStatus('ready');

  el<HTMLFormElement>('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (page.link !== undefined) return;
    connect(page, el<HTMLInputElement>('nick').value, el<HTMLInputElement>('room').value || 'lobby');
  });
  el('about-toggle').addEventListener('click', () => {
    const about = el('about-view');
    about.hidden = !about.hidden;
    if (!about.hidden) void showManifest();
  });
}

main().catch((e: unknown) => setStatus(`error: ${e instanceof Error ? e.message : String(e)}`, 'failed'));
