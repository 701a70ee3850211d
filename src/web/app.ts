/**
 * The browser client's page (README "The web client"): the identity kept in IndexedDB (src/web/keys.ts),
 * the connection to the relay's WebSocket endpoint (spec §3.1, src/web/relay.ts) from the page's own
 * origin, the room's end-to-end sessions (src/web/room.ts), and the view with the automation contract's
 * data-testid attributes (README). Peer-supplied text only ever reaches the page as textContent, after
 * the CLI's escaping (src/client/text.ts `printable`), never as markup.
 */
import type { RsaPrivateKey } from '../crypto/backend.js';
import { fingerprintOf, safetyNumberOf } from '../crypto/fingerprint.js';
import { webCryptoBackend } from '../crypto/webcrypto.js';
import { printable, splitText } from '../client/text.js';
import type { ErrorName } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { isNick, isRoom, NICK_RULE, ROOM_RULE } from '../protocol/names.js';
import { BackupError } from '../crypto/backup.js';
import { exportBackup, importBackup, storedBackup } from './backup.js';
import { ERROR_TEXTS } from './errors.js';
import { getPin, loadOrCreateIdentity, openStore, putPin, replaceIdentity, type StoredIdentity } from './keys.js';
import { RelayLink, type RelayEvent } from './relay.js';
import { WebRoom, type Outgoing, type RoomEvent } from './room.js';

const backend = webCryptoBackend();

/** The WebSocket endpoint's path and subprotocol (spec §3.1; src/server/web.ts serves them). */
export const WS_PATH = '/v1/ws';
export const WS_SUBPROTOCOL = 'e2ee-chat.v1';
/** Reconnect back-off: the first retry after BASE ms, doubling to at most MAX ms, each with jitter. */
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_MAX_MS = 30_000;

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`page is missing #${id}`);
  return e as T;
}

type ConnState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'failed';

function setStatus(text: string, state: ConnState): void {
  const s = el('status');
  s.textContent = text;
  s.dataset['state'] = state;
  s.className = `status ${state}`;
}

/** Shows the sentence for a §9 code (data-code carries the code for scripts). */
function showError(code: ErrorName | 'LOCAL', text: string): void {
  const e = el('error');
  e.hidden = false;
  e.dataset['code'] = code;
  e.textContent = code === 'LOCAL' ? text : `${text} (${code})`;
}

function clearError(): void {
  const e = el('error');
  e.hidden = true;
  delete e.dataset['code'];
  e.textContent = '';
}

function wsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WS_PATH}`;
}

function textEl(tag: string, text: string, cls?: string): HTMLElement {
  const e = document.createElement(tag);
  e.textContent = text; // only ever as text (never markup)
  if (cls !== undefined) e.className = cls;
  return e;
}

function testid<T extends HTMLElement>(e: T, id: string, nick?: string): T {
  e.dataset['testid'] = id;
  if (nick !== undefined) e.dataset['nick'] = nick;
  return e;
}

function note(text: string): void {
  const li = textEl('li', text, 'event');
  el('messages').append(li);
  li.scrollIntoView({ block: 'nearest' });
}

interface Page {
  db: IDBDatabase;
  identity: StoredIdentity;
  key: RsaPrivateKey;
  ownFingerprint: string;
  nick: string;
  roomName: string;
  link: RelayLink | undefined;
  room: WebRoom | undefined;
  /** Consecutive failed connection attempts (reset once a JOIN succeeds). */
  attempts: number;
  retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Own messages on screen, by id, with their tick element. */
  shown: Map<number, { li: HTMLElement; tick: HTMLElement }>;
}

// ---- members ----

/** The member keys the relay listed, kept for the safety number (the room checks them, §8.5). */
const memberKeys = new Map<string, Uint8Array>();

function memberLi(nick: string): HTMLElement | null {
  return el('members').querySelector<HTMLElement>(`li[data-nick="${CSS.escape(nick)}"]`);
}

async function renderMember(page: Page, e: Extract<RoomEvent, { type: 'member' }>): Promise<void> {
  const li = testid(document.createElement('li'), 'member', e.nick);
  li.dataset['fingerprint'] = e.fingerprint;
  li.dataset['status'] = e.status;
  li.dataset['verified'] = String(e.verified);
  const name = textEl('div', e.nick, 'nick');
  if (e.verified) name.classList.add('verified');
  li.append(name, textEl('div', e.fingerprint, 'fp'), textEl('div', e.status, 'mstatus'));
  const old = memberLi(e.nick);
  if (old !== null) old.replaceWith(li);
  else el('members').append(li);
  if (e.status === 'key-changed' || e.status === 'bad-key') return;
  if (e.status === 'handshake') note(`${e.nick} is here, key ${e.fingerprint}${e.firstSeen ? ' (seen for the first time)' : e.verified ? ' (verified)' : ''}`);
  const spki = memberKeys.get(e.nick);
  if (spki === undefined || !li.isConnected) return;
  const sn = testid(textEl('div', await safetyNumberOf(backend, page.nick, page.identity.spki, e.nick, spki), 'sn'), 'safety-number', e.nick);
  const verify = testid(textEl('button', e.verified ? 'verified' : 'mark as verified'), 'verify', e.nick);
  verify.addEventListener('click', () => {
    void page.room?.verify(e.nick).then((ok) => {
      if (!ok) return;
      name.classList.add('verified');
      li.dataset['verified'] = 'true';
      verify.textContent = 'verified';
      note(`you marked ${e.nick}'s key as verified`);
    });
  });
  if (li.isConnected) li.append(sn, verify);
}


function showKeyChanged(page: Page, e: Extract<RoomEvent, { type: 'key-changed' }>): void {
  el('warnings').querySelector(`[data-nick="${CSS.escape(e.nick)}"]`)?.remove();
  const w = testid(document.createElement('div'), 'key-changed', e.nick);
  w.className = 'warning';
  w.append(
    textEl('strong', `The identity key of ${e.nick} has changed.`),
    textEl('div', `pinned ${e.pinnedFingerprint}, now ${e.offeredFingerprint}`, 'fp'),
    textEl('div', `Nothing is sent to or accepted from ${e.nick} until you accept the new key. Compare safety numbers first.`),
  );
  const accept = testid(textEl('button', 'accept the new key'), 'accept-key', e.nick);
  accept.addEventListener('click', () => {
    void page.room?.accept(e.nick).then((ok) => {
      if (ok) {
        w.remove();
        note(`you accepted the new key of ${e.nick}`);
      }
    });
  });
  w.append(accept);
  el('warnings').append(w);
}

// ---- messages ----

function renderMessage(from: string, text: string, own: boolean): { li: HTMLElement; tick: HTMLElement } {
  const li = document.createElement('li');
  li.className = own ? 'msg own' : 'msg';
  const body = testid(textEl('span', printable(text), 'text'), 'message');
  body.dataset['from'] = from;
  const tick = textEl('span', '', 'tick');
  li.append(textEl('span', from, 'from'), body, tick);
  el('messages').append(li);
  li.scrollIntoView({ block: 'nearest' });
  return { li, tick };
}

/** An own message's tick: ✓ sent to all, ✓✓ delivered to all; data-state for scripts. */
function updateTicks(page: Page, m: Outgoing): void {
  const shown = page.shown.get(m.id);
  if (shown === undefined) return;
  const states = [...m.to.values()].map((v) => v.state);
  const all = (s: string) => states.every((x) => x === s);
  const state = all('delivered') ? 'delivered' : states.some((x) => x === 'lost') ? 'undelivered' : states.every((x) => x === 'sent' || x === 'delivered') ? 'sent' : 'queued';
  const body = shown.li.querySelector<HTMLElement>('[data-testid=message]')!;
  body.dataset['state'] = state;
  body.dataset['deliveredTo'] = [...m.to].filter(([, v]) => v.state === 'delivered').map(([n]) => n).join(' ');
  shown.tick.textContent = { delivered: '✓✓', sent: '✓', queued: '…', undelivered: '!' }[state];
  shown.tick.title = [...m.to].map(([n, v]) => `${n}: ${v.state}`).join(', ');
}

function listUndelivered(page: Page, m: Outgoing, to: string, reason: string): void {
  const li = testid(document.createElement('li'), 'undelivered', to);
  li.append(textEl('span', `not delivered to ${to} (${reason}): `), textEl('span', printable(m.text), 'text'));
  const again = testid(textEl('button', 'send again'), 'resend', to);
  again.addEventListener('click', () => {
    if (sendText(page, m.text)) li.remove();
  });
  li.append(again);
  el('undelivered').append(li);
  el('undelivered-view').hidden = false;
}

/** Sends `text` to the members present; false (and the reason shown) when it reaches no one. */
function sendText(page: Page, text: string): boolean {
  const room = page.room;
  if (room === undefined || page.link?.state !== 'IN_ROOM') {
    showError('LOCAL', 'Not connected: the message was not sent.');
    return false;
  }
  const pieces = splitText(text, LIMITS.MAX_TEXT_BYTES);
  for (const piece of pieces) {
    const m = room.send(piece);
    if (m === null) {
      showError('LOCAL', room.list().length === 0 ? 'Nobody else is in the room: the message was not sent.' : 'No member with a trusted key: the message was not sent.');
      return false;
    }
    page.shown.set(m.id, renderMessage(page.nick, piece, true));
    updateTicks(page, m);
  }
  return true;
}

function onRoom(page: Page, e: RoomEvent): void {
  switch (e.type) {
    case 'member':
      void renderMember(page, e);
      return;
    case 'key-changed':
      showKeyChanged(page, e);
      showError('KEY_CHANGED', ERROR_TEXTS.KEY_CHANGED.text);
      return;
    case 'established': {
      const li = memberLi(e.nick);
      if (li !== null) {
        li.dataset['status'] = 'established';
        li.querySelector('.mstatus')!.textContent = 'secure session';
      }
      note(`secure session with ${e.nick}`);
      return;
    }
    case 'member-left':
      memberLi(e.nick)?.remove();
      memberKeys.delete(e.nick);
      el('warnings').querySelector(`[data-nick="${CSS.escape(e.nick)}"]`)?.remove();
      note(`${e.nick} left`);
      return;
    case 'text':
      renderMessage(e.from, e.text, false);
      return;
    case 'outgoing':
      updateTicks(page, e.message);
      return;
    case 'undelivered':
      updateTicks(page, e.message);
      listUndelivered(page, e.message, e.to, e.reason);
      return;
    case 'rejected':
      note(`${e.fatal ? 'session with' : 'a message from'} ${e.nick} failed: ${ERROR_TEXTS[e.code].text} (${e.code})`);
      if (e.fatal) {
        const li = memberLi(e.nick);
        if (li !== null) li.dataset['status'] = 'failed';
      }
      return;
  }
}

// ---- the connection ----

function onRelay(page: Page, link: RelayLink, e: RelayEvent): void {
  if (page.link !== link) return;
  switch (e.type) {
    case 'ready':
      setStatus('connected, joining', 'connecting');
      link.join(page.roomName);
      return;
    case 'joined': {
      page.attempts = 0;
      clearError();
      setStatus(`connected, in ${e.room}`, 'connected');
      el('join-view').hidden = true;
      el('chat-view').hidden = false;
      el('room-name').textContent = e.room;
      el('members').replaceChildren();
      el('warnings').replaceChildren();
      memberKeys.clear();
      const room = newRoom(page, link);
      for (const m of e.members) {
        memberKeys.set(m.nick, Uint8Array.from(m.key));
        room.add(m.nick, m.key, 'initiator');
      }
      return;
    }
    case 'join-refused':
      showError(e.code, ERROR_TEXTS[e.code].text);
      page.link = undefined;
      link.close();
      setStatus('not connected', 'failed');
      el('join-view').hidden = false;
      el('chat-view').hidden = true;
      return;
    case 'peer-joined':
      memberKeys.set(e.member.nick, Uint8Array.from(e.member.key));
      page.room?.add(e.member.nick, e.member.key, 'responder');
      return;
    case 'peer-left':
      page.room?.remove(e.nick);
      return;
    case 'deliver':
      page.room?.deliver(e.from, e.body);
      return;
    case 'relay-error':
      note(`relay: ${ERROR_TEXTS[e.code].text} (${e.code})`);
      return;
    case 'closed': {
      page.link = undefined;
      page.room?.close();
      page.room = undefined;
      el('members').replaceChildren();
      if (e.byUs) return;
      const retry = e.code === undefined || ERROR_TEXTS[e.code].retry;
      if (e.code !== undefined) showError(e.code, ERROR_TEXTS[e.code].text);
      if (!retry) {
        setStatus(`disconnected: ${e.code}`, 'failed');
        el('join-view').hidden = false;
        return;
      }
      scheduleReconnect(page);
      return;
    }
  }
}

function newRoom(page: Page, link: RelayLink): WebRoom {
  page.room?.close();
  const relay = location.host;
  const room = new WebRoom({
    crypto: backend,
    room: page.roomName,
    self: { nick: page.nick, key: page.key, spki: page.identity.spki },
    pins: {
      get: (nick) => getPin(page.db, relay, nick),
      put: (nick, pin) => putPin(page.db, relay, nick, Uint8Array.from(pin.spki), pin.verified),
    },
    send: (to, body) => link.sendTo(to, body),
    onEvent: (e) => {
      if (page.room === room) onRoom(page, e);
    },
  });
  page.room = room;
  return room;
}

/** Exponential back-off with jitter: BASE * 2^attempts, at most MAX, times a random factor in [0.5, 1). */
export function backoffMs(attempts: number, random: number): number {
  return Math.round(Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.min(attempts, 16)) * (0.5 + random / 2));
}

function scheduleReconnect(page: Page): void {
  if (page.retryTimer !== undefined) return;
  const ms = backoffMs(page.attempts, Math.random());
  page.attempts++;
  setStatus(`connection lost, reconnecting in ${Math.ceil(ms / 1000)} s (attempt ${page.attempts})`, 'reconnecting');
  note('connection to the relay lost');
  page.retryTimer = setTimeout(() => {
    page.retryTimer = undefined;
    connect(page);
  }, ms);
}

function connect(page: Page): void {
  setStatus('connecting', 'connecting');
  const link: RelayLink = new RelayLink({
    url: wsUrl(),
    subprotocol: WS_SUBPROTOCOL,
    nick: page.nick,
    spki: page.identity.spki,
    key: page.key,
    crypto: backend,
    onEvent: (e) => onRelay(page, link, e),
  });
  page.link = link;
}

// ---- identity and backups ----

async function showIdentity(page: Page, created: boolean): Promise<void> {
  page.ownFingerprint = await fingerprintOf(backend, page.identity.spki);
  const own = el('own-fingerprint');
  own.textContent = page.ownFingerprint;
  own.dataset['created'] = String(created);
}

function download(name: string, text: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function wireBackups(page: Page): void {
  const status = el('backup-status');
  const say = (text: string, state: 'ok' | 'failed', code?: string) => {
    status.textContent = text;
    status.dataset['state'] = state;
    if (code !== undefined) status.dataset['code'] = code;
    else delete status.dataset['code'];
  };
  const failed = (e: unknown) => say(e instanceof Error ? e.message : String(e), 'failed', e instanceof BackupError ? e.code : 'LOCAL');
  el('backup-export').addEventListener('click', () => {
    // The backup sealed when this key was made or imported (src/web/keys.ts): the key itself is never read.
    const text = storedBackup(page.identity);
    if (text === null) return say('this key was made before backups were kept with each key and has none: make a new key with a backup below', 'failed', 'NO_BACKUP');
    download('e2ee-chat-identity.backup', text);
    el<HTMLTextAreaElement>('backup-text').value = text;
    say(`the backup of ${page.ownFingerprint} is downloaded (and shown below)`, 'ok');
  });
  el<HTMLFormElement>('backup-new-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const pass = el<HTMLInputElement>('backup-pass').value;
    void (async () => {
      try {
        if (page.link !== undefined) throw new Error('leave the room first (reload the page)');
        const { identity, text } = await exportBackup(pass);
        await replaceIdentity(page.db, identity);
        page.identity = identity;
        page.key = backend.privateKeyFromCryptoKeys(identity.oaep, identity.pss);
        await showIdentity(page, true);
        download('e2ee-chat-identity.backup', text);
        const out = el<HTMLTextAreaElement>('backup-text');
        out.value = text;
        say(`new key ${page.ownFingerprint} made; its backup is downloaded (and shown below)`, 'ok');
      } catch (e) {
        failed(e);
      }
    })();
  });
  el<HTMLFormElement>('backup-import-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const pass = el<HTMLInputElement>('import-pass').value;
    const file = el<HTMLInputElement>('import-file').files?.[0];
    void (async () => {
      try {
        if (page.link !== undefined) throw new Error('leave the room first (reload the page)');
        const text = file !== undefined ? await file.text() : el<HTMLTextAreaElement>('import-text').value;
        const identity = await importBackup(text, pass);
        await replaceIdentity(page.db, identity);
        page.identity = identity;
        page.key = backend.privateKeyFromCryptoKeys(identity.oaep, identity.pss);
        await showIdentity(page, false);
        say(`imported ${page.ownFingerprint}`, 'ok');
      } catch (e) {
        failed(e);
      }
    })();
  });
}

// ---- start ----

async function showManifest(): Promise<void> {
  const list = el('manifest');
  const r = await fetch('/manifest.json', { cache: 'no-store' });
  const files = (await r.json()) as { path: string; sha256: string }[];
  list.replaceChildren(
    ...files.map((f) => {
      const li = document.createElement('li');
      li.append(textEl('code', `${f.sha256} ${f.path}`));
      return li;
    }),
  );
}

async function main(): Promise<void> {
  if (!window.isSecureContext || typeof crypto.subtle === 'undefined') {
    setStatus('this page needs a secure context (https, or http on localhost)', 'failed');
    return;
  }
  setStatus('loading key', 'idle');
  const db = await openStore();
  const { identity, created, code } = await loadOrCreateIdentity(db);
  if (code !== null) {
    el('backup-code').textContent = code;
    el('backup-code-view').hidden = false;
  }
  const page: Page = {
    db,
    identity,
    key: backend.privateKeyFromCryptoKeys(identity.oaep, identity.pss),
    ownFingerprint: '',
    nick: '',
    roomName: '',
    link: undefined,
    room: undefined,
    attempts: 0,
    retryTimer: undefined,
    shown: new Map(),
  };
  await showIdentity(page, created);
  setStatus('not connected', 'idle');

  el<HTMLFormElement>('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (page.link !== undefined) return;
    const nick = el<HTMLInputElement>('nick').value;
    const room = el<HTMLInputElement>('room').value || 'lobby';
    if (!isNick(nick)) return showError('LOCAL', `nickname: ${NICK_RULE}`);
    if (!isRoom(room)) return showError('LOCAL', `room: ${ROOM_RULE}`);
    clearError();
    page.nick = nick;
    page.roomName = room;
    page.attempts = 0;
    connect(page);
  });
  el<HTMLFormElement>('send-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const composer = el<HTMLInputElement>('composer');
    const text = composer.value;
    if (text.length === 0) return;
    clearError();
    if (sendText(page, text)) composer.value = '';
  });
  el('about-toggle').addEventListener('click', () => {
    const about = el('about-view');
    about.hidden = !about.hidden;
    if (!about.hidden) void showManifest();
  });
  wireBackups(page);
}

main().catch((e: unknown) => setStatus(`error: ${e instanceof Error ? e.message : String(e)}`, 'failed'));
