/**
 * The browser client's page (README "The web client"): the identity kept in IndexedDB (src/web/keys.ts),
 * and the same client core as the CLI (src/client/chat-client.ts ChatClient, issue 18 point 2) with the
 * WebCrypto backend, over the relay's WebSocket endpoint (spec §3.1, src/web/ws.ts) from the page's own
 * origin, with the pins in IndexedDB (src/web/pins.ts). This file is the page's presenter: it renders the
 * client's events into the view with the automation contract's data-testid attributes (README).
 * Peer-supplied text only ever reaches the page as textContent, after the CLI's escaping
 * (src/client/text.ts `printable`), never as markup.
 */
import type { RsaPrivateKey } from '../crypto/backend.js';
import { fingerprintOf } from '../crypto/fingerprint.js';
import { webCryptoBackend } from '../crypto/webcrypto.js';
import { ChatClient, ClientFailure, reconnectDelay, type ChatClientEvents, type Undelivered } from '../client/chat-client.js';
import type { PinBook } from '../client/pin-book.js';
import { rosterLine } from '../client/roster.js';
import { formatRecoveryCode, newRecoveryCode, parseRecoveryCode, recoveryCommit } from '../crypto/recovery.js';
import { printable, splitText } from '../client/text.js';
import type { ErrorName } from '../protocol/errors.js';
import { isNick, isRoom, NICK_RULE, ROOM_RULE } from '../protocol/names.js';
import { BackupError } from '../crypto/backup.js';
import { exportBackup, importBackup, storedBackup } from './backup.js';
import { ERROR_TEXTS } from './errors.js';
import { addRecoveryMark, backupCodeUnconfirmed, confirmBackupCode, hasRecoveryMark, loadOrCreateIdentity, openStore, replaceIdentity, type StoredIdentity } from './keys.js';
import { openPins } from './pins.js';
import { webSocketTransport } from './ws.js';

const backend = webCryptoBackend();

/** The WebSocket endpoint's path and subprotocol (spec §3.1; src/server/web.ts serves them). */
export const WS_PATH = '/v1/ws';
export const WS_SUBPROTOCOL = 'e2ee-chat.v1';
/** The integrity manifest as an ES module (src/server/web.ts serves it). */
const MANIFEST_MODULE = '/manifest.js';

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

/** One own message on screen and what became of it with each member it went to. */
interface Outgoing {
  text: string;
  li: HTMLElement;
  tick: HTMLElement;
  to: Map<string, 'queued' | 'sent' | 'delivered' | 'lost'>;
}

interface Page {
  db: IDBDatabase;
  identity: StoredIdentity;
  key: RsaPrivateKey;
  ownFingerprint: string;
  nick: string;
  roomName: string;
  pins: PinBook | undefined;
  client: ChatClient | undefined;
  /** Connection attempts the page itself made after a final failure (reset once in the room). */
  attempts: number;
  retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Own messages not yet numbered by a member's session (`sent` numbers them), per member, in order. */
  awaitingSeq: Map<string, Outgoing[]>;
  /** Own messages by `${member} ${seq}`. */
  bySeq: Map<string, Outgoing>;
  /**
   * A takeover asked for in the join form (spec §7.5): the user's recovery code, sent in RECOVER by the
   * next connection, and the fresh code whose commitment goes with it (shown once WELCOME confirms it).
   */
  recover: { code: Uint8Array; next: Uint8Array } | undefined;
}

// ---- members ----

function memberLi(nick: string): HTMLElement | null {
  return el('members').querySelector<HTMLElement>(`li[data-nick="${CSS.escape(nick)}"]`);
}

function setMemberStatus(nick: string, status: string, text = status): void {
  const li = memberLi(nick);
  if (li === null) return;
  li.dataset['status'] = status;
  li.querySelector('.mstatus')!.textContent = text;
}

/**
 * A safety number that could not be computed (WebCrypto refused its SHA-512, §8.4): the page's error, and
 * in place of the 60 digits the sentence with data-state "failed", never digits to compare.
 */
function safetyFailed(e: HTMLElement, nick: string, err: unknown): void {
  const text = `the safety number with ${nick} could not be computed (${err instanceof Error ? err.message : String(err)}): compare fingerprints instead`;
  e.textContent = text;
  e.dataset['state'] = 'failed';
  e.classList.add('failed');
  showError('LOCAL', text);
}

async function renderMember(page: Page, client: ChatClient, e: ChatClientEvents['peer-joined'][0]): Promise<void> {
  const li = testid(document.createElement('li'), 'member', e.nick);
  li.dataset['fingerprint'] = e.fingerprint;
  li.dataset['status'] = 'handshake';
  li.dataset['verified'] = String(e.verified);
  const name = textEl('div', e.nick, 'nick');
  if (e.verified) name.classList.add('verified');
  li.append(name, textEl('div', e.fingerprint, 'fp'), textEl('div', 'handshake', 'mstatus'));
  const old = memberLi(e.nick);
  if (old !== null) old.replaceWith(li);
  else el('members').append(li);
  note(`${e.nick} is here, key ${e.fingerprint}${e.firstSeen ? ' (seen for the first time)' : e.verified ? ' (verified)' : ''}`);
  let number: string | undefined;
  let failure: { err: unknown } | undefined;
  try {
    number = await client.safetyNumber(e.nick);
  } catch (err) {
    failure = { err };
  }
  if (!li.isConnected || li.dataset['status'] === 'key-changed' || li.dataset['status'] === 'bad-key') return;
  if (failure !== undefined) {
    // Nothing to compare, so nothing to mark as verified.
    const failed = testid(textEl('div', '', 'sn'), 'safety-number', e.nick);
    safetyFailed(failed, e.nick, failure.err);
    li.append(failed);
    return;
  }
  if (number === undefined) return;
  const sn = testid(textEl('div', number, 'sn'), 'safety-number', e.nick);
  const verify = testid(textEl('button', e.verified ? 'verified' : 'mark as verified'), 'verify', e.nick);
  verify.addEventListener('click', () => {
    if (page.client !== client || !client.verify(e.nick)) return;
    name.classList.add('verified');
    li.dataset['verified'] = 'true';
    verify.textContent = 'verified';
    note(`you marked ${e.nick}'s key as verified`);
  });
  li.append(sn, verify);
}

function showKeyChanged(page: Page, client: ChatClient, e: ChatClientEvents['key-changed'][0]): void {
  el('warnings').querySelector(`[data-nick="${CSS.escape(e.nick)}"]`)?.remove();
  setMemberStatus(e.nick, 'key-changed');
  memberLi(e.nick)
    ?.querySelectorAll('[data-testid=safety-number], [data-testid=verify]')
    .forEach((x) => x.remove());
  const w = testid(document.createElement('div'), 'key-changed', e.nick);
  w.className = 'warning';
  w.append(
    textEl('strong', `The identity key of ${e.nick} has changed.`),
    textEl('div', `pinned ${e.pinnedFingerprint}, now ${e.offeredFingerprint}`, 'fp'),
    textEl('div', `Nothing is sent to or accepted from ${e.nick} until you accept the new key. Compare this safety number with ${e.nick} first (in person or by phone), as the CLI's /safety shows it:`),
  );
  // The number with the offered key (the CLI's /safety for a changed key), so that it can be compared
  // before the key is accepted; the member's own safety-number element comes back once it is.
  const number = testid(textEl('div', '…', 'sn'), 'new-safety-number', e.nick);
  w.append(number);
  void client.safetyNumber(e.nick).then(
    (n) => {
      if (n !== undefined) number.textContent = n;
    },
    (err: unknown) => safetyFailed(number, e.nick, err),
  );
  const accept = testid(textEl('button', 'accept the new key'), 'accept-key', e.nick);
  accept.addEventListener('click', () => {
    if (page.client !== client || !client.trust(e.nick)) return;
    w.remove();
    setMemberStatus(e.nick, 'handshake');
    note(`you accepted the new key of ${e.nick}`);
  });
  w.append(accept);
  el('warnings').append(w);
}

/** §8.6: the relay shows this room differently to a member; the warning stays until the page leaves the room. */
function showRosterMismatch(r: ChatClientEvents['roster-mismatch'][0]): void {
  const line = rosterLine(r);
  const w = testid(document.createElement('div'), 'roster-mismatch', r.peer);
  w.className = 'warning';
  w.dataset['epoch'] = String(r.epoch);
  w.dataset['kind'] = r.kind;
  w.append(
    textEl('strong', line),
    textEl('div', `The relay is showing members of this room different rooms. Messages stay end-to-end encrypted, but who else is here is in doubt: compare the member list with ${r.peer} through another channel.`),
  );
  el('warnings').append(w);
  note(`warning: ${line}`);
}

// ---- recovery codes (spec §7.5) ----

/** Shows a recovery code once, with a way to save it; "done" erases it from the page. */
function showRecoveryCode(page: Page, relay: string, code: Uint8Array, takeover: boolean): void {
  const text = formatRecoveryCode(code);
  code.fill(0);
  el('recovery-code').textContent = text;
  el('recovery-for').textContent = `${page.nick} at ${relay}`;
  el('recovery-takeover').hidden = !takeover;
  el('recovery-view').hidden = false;
}

function wireRecoveryView(): void {
  el('recovery-save').addEventListener('click', () => {
    download('e2ee-chat-recovery-code.txt', `recovery code for ${el('recovery-for').textContent ?? ''}: ${el('recovery-code').textContent ?? ''}\n`, 'text/plain');
  });
  el('recovery-done').addEventListener('click', () => {
    el('recovery-code').textContent = '';
    el('recovery-view').hidden = true;
  });
}

/**
 * After WELCOME (spec §7.5), as the CLI does: a takeover's fresh code is shown; otherwise, at the first
 * WELCOME of this nickname on this relay, a code is registered (SET_RECOVERY) and shown. The page keeps
 * only that it registered one (IndexedDB), never the code.
 */
async function recoveryAfterWelcome(page: Page, client: ChatClient): Promise<void> {
  const relay = client.serverName;
  const takeover = page.recover;
  page.recover = undefined;
  let code: Uint8Array;
  if (takeover !== undefined) code = takeover.next;
  else {
    if (await hasRecoveryMark(page.db, relay, client.nick)) return;
    code = newRecoveryCode(backend);
    await client.registerRecovery(await recoveryCommit(backend, client.nick, code));
  }
  await addRecoveryMark(page.db, relay, client.nick);
  showRecoveryCode(page, relay, code, takeover !== undefined);
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
function updateTicks(m: Outgoing): void {
  const states = [...m.to.values()];
  const all = (s: string) => states.every((x) => x === s);
  const state = all('delivered') ? 'delivered' : states.some((x) => x === 'lost') ? 'undelivered' : states.every((x) => x === 'sent' || x === 'delivered') ? 'sent' : 'queued';
  const body = m.li.querySelector<HTMLElement>('[data-testid=message]')!;
  body.dataset['state'] = state;
  body.dataset['deliveredTo'] = [...m.to].filter(([, v]) => v === 'delivered').map(([n]) => n).join(' ');
  m.tick.textContent = { delivered: '✓✓', sent: '✓', queued: '…', undelivered: '!' }[state];
  m.tick.title = [...m.to].map(([n, v]) => `${n}: ${v}`).join(', ');
}

/** The own message a text the client reports as undelivered was, if it is on screen. */
function outgoingOf(page: Page, u: Undelivered): Outgoing | undefined {
  if (u.to === null) return undefined;
  if (u.seq !== null) {
    const m = page.bySeq.get(`${u.to} ${u.seq}`);
    if (m !== undefined) page.bySeq.delete(`${u.to} ${u.seq}`);
    return m;
  }
  const q = page.awaitingSeq.get(u.to);
  const i = q?.findIndex((m) => m.text === u.text) ?? -1;
  return i < 0 ? undefined : q!.splice(i, 1)[0];
}

function listUndelivered(page: Page, u: Undelivered, reason: string): void {
  if (u.to === null) return;
  const m = outgoingOf(page, u);
  if (m !== undefined) {
    m.to.set(u.to, 'lost');
    updateTicks(m);
  }
  const li = testid(document.createElement('li'), 'undelivered', u.to);
  li.append(textEl('span', `not delivered to ${u.to} (${reason}): `), textEl('span', printable(u.text), 'text'));
  const again = testid(textEl('button', 'send again'), 'resend', u.to);
  again.addEventListener('click', () => {
    if (sendText(page, u.text)) li.remove();
  });
  li.append(again);
  el('undelivered').append(li);
  el('undelivered-view').hidden = false;
}

/** Sends `text` to the members present; false (and the reason shown) when it reaches no one. */
function sendText(page: Page, text: string): boolean {
  const client = page.client;
  if (client === undefined || client.state !== 'IN_ROOM') {
    showError('LOCAL', 'Not connected: the message was not sent.');
    return false;
  }
  for (const piece of splitText(text, client.maxTextBytes())) {
    const to = client.send(piece);
    if (to.length === 0) {
      showError('LOCAL', client.members().length === 0 ? 'Nobody else is in the room: the message was not sent.' : 'No member with a trusted key: the message was not sent.');
      return false;
    }
    const shown = renderMessage(page.nick, piece, true);
    const m: Outgoing = { text: piece, ...shown, to: new Map(to.map((n) => [n, 'queued'])) };
    for (const n of to) {
      const q = page.awaitingSeq.get(n) ?? [];
      q.push(m);
      page.awaitingSeq.set(n, q);
    }
    updateTicks(m);
  }
  return true;
}

// ---- the client's events ----

function forgetMember(page: Page, nick: string): void {
  page.awaitingSeq.delete(nick);
  for (const k of [...page.bySeq.keys()]) if (k.startsWith(`${nick} `)) page.bySeq.delete(k);
}

/** The page's presenter: every event of the client, rendered. */
function present(page: Page, client: ChatClient): void {
  const mine = () => page.client === client;
  client.on('joined', (e) => {
    if (!mine()) return;
    page.attempts = 0;
    clearError();
    setStatus(`connected, in ${e.room}`, 'connected');
    el('join-view').hidden = true;
    el('chat-view').hidden = false;
    el('room-name').textContent = e.room;
    el('members').replaceChildren();
    el('warnings').replaceChildren();
    // As the CLI says it: alone, a text would reach no one (it is never kept for a later joiner).
    if (e.members.length === 0) note(`you joined ${e.room} as ${page.nick}; nobody else is here yet: a message goes only to the members present when you send it`);
  });
  client.on('peer-joined', (e) => {
    if (mine()) void renderMember(page, client, e);
  });
  client.on('key-changed', (e) => {
    if (!mine()) return;
    showKeyChanged(page, client, e);
    showError('KEY_CHANGED', ERROR_TEXTS.KEY_CHANGED.text);
  });
  client.on('established', ({ nick }) => {
    if (!mine()) return;
    setMemberStatus(nick, 'established', 'secure session');
    note(`secure session with ${nick}`);
  });
  client.on('peer-left', ({ nick, undelivered }) => {
    if (!mine()) return;
    for (const u of undelivered) listUndelivered(page, u, 'left before acknowledging it');
    forgetMember(page, nick);
    memberLi(nick)?.remove();
    el('warnings').querySelector(`[data-nick="${CSS.escape(nick)}"]`)?.remove();
    note(`${nick} left`);
  });
  client.on('text', ({ from, text }) => {
    if (mine()) renderMessage(from, text, false);
  });
  client.on('sent', ({ to, seq, text }) => {
    const q = page.awaitingSeq.get(to);
    const i = q?.findIndex((m) => m.text === text) ?? -1;
    if (!mine() || i < 0) return;
    const m = q!.splice(i, 1)[0]!;
    page.bySeq.set(`${to} ${seq}`, m);
    m.to.set(to, 'sent');
    updateTicks(m);
  });
  client.on('delivered', ({ to, seq }) => {
    const m = page.bySeq.get(`${to} ${seq}`);
    if (!mine() || m === undefined) return;
    page.bySeq.delete(`${to} ${seq}`);
    m.to.set(to, 'delivered');
    updateTicks(m);
  });
  client.on('rejected', ({ from, error, fatal }) => {
    if (!mine()) return;
    note(`${fatal ? 'session with' : 'a message from'} ${from} failed: ${ERROR_TEXTS[error.errorName].text} (${error.errorName})`);
    if (fatal && memberLi(from)?.dataset['status'] !== 'key-changed') setMemberStatus(from, 'failed');
  });
  client.on('relay-error', ({ error }) => {
    if (mine()) note(`relay: ${ERROR_TEXTS[error.errorName].text} (${error.errorName})`);
  });
  client.on('key-elsewhere', ({ nick, offeredFingerprint, elsewhere }) => {
    if (mine()) note(`warning: ${nick} is verified on ${elsewhere.map((x) => `${x.relay} with key ${x.fingerprint}`).join(', ')}; here the key is ${offeredFingerprint}`);
  });
  client.on('roster-mismatch', (r) => {
    if (mine()) showRosterMismatch(r);
  });
  client.on('peer-churn', ({ nick, joins }) => {
    if (mine()) note(`${nick} joined and left ${joins} times; ignored for a while`);
  });
  client.on('connection-lost', ({ failure, undelivered }) => {
    if (!mine()) return;
    for (const u of undelivered) listUndelivered(page, u, 'the connection was lost');
    page.awaitingSeq.clear();
    page.bySeq.clear();
    el('members').replaceChildren();
    note(`connection to the relay lost (${failure.message})`);
  });
  client.on('reconnecting', ({ attempt, delayMs }) => {
    if (mine()) setStatus(`connection lost, reconnecting in ${Math.ceil(delayMs / 1000)} s (attempt ${attempt})`, 'reconnecting');
  });
  client.on('closed', ({ failure, undelivered }) => {
    if (!mine()) return;
    page.client = undefined;
    for (const u of undelivered) listUndelivered(page, u, 'the connection ended');
    el('members').replaceChildren();
    if (failure === null) return;
    ended(page, failure);
  });
}

/** The client ended for good: say why, and try again where that can help (a relay that broke the protocol). */
function ended(page: Page, failure: ClientFailure): void {
  const code = failure.error?.errorName;
  if (code !== undefined) showError(code, ERROR_TEXTS[code].text);
  else showError('LOCAL', failure.message);
  const retry = failure.kind !== 'room' && failure.kind !== 'auth' && (code === undefined ? page.roomName !== '' && page.attempts > 0 : ERROR_TEXTS[code].retry);
  if (!retry) {
    setStatus(`disconnected${code === undefined ? '' : `: ${code}`}`, 'failed');
    el('join-view').hidden = false;
    el('chat-view').hidden = true;
    return;
  }
  const ms = reconnectDelay(++page.attempts);
  setStatus(`connection lost, reconnecting in ${Math.ceil(ms / 1000)} s (attempt ${page.attempts})`, 'reconnecting');
  page.retryTimer = setTimeout(() => {
    page.retryTimer = undefined;
    void connect(page);
  }, ms);
}

async function connect(page: Page): Promise<void> {
  setStatus('connecting', 'connecting');
  const takeover = page.recover;
  const recover = takeover === undefined ? {} : { recover: { code: takeover.code, commit: await recoveryCommit(backend, page.nick, takeover.next) } };
  const client = new ChatClient({
    host: location.hostname,
    port: Number(location.port || (location.protocol === 'https:' ? 443 : 80)),
    // §7.3: a page served by the relay signs over the name that relay announces (no other to compare);
    // a WebSocket has no TLS exporter, so the binding is empty. The pins are kept under that name too.
    relayName: null,
    nick: page.nick,
    identity: { privateKey: page.key, spki: page.identity.spki },
    crypto: backend,
    transport: webSocketTransport(wsUrl(), WS_SUBPROTOCOL),
    ...(page.pins !== undefined ? { pins: page.pins } : {}),
    // Automatic reconnect with back-off (src/client/chat-client.ts ReconnectPolicy), as the CLI's terminal.
    reconnect: {},
    ...recover,
  });
  page.client = client;
  present(page, client);
  void client
    .connect()
    .then(() => recoveryAfterWelcome(page, client))
    .then(() => {
      setStatus('connected, joining', 'connecting');
      return client.join(page.roomName);
    })
    .catch((e: unknown) => {
      if (page.client !== client) return;
      // A refusal that left the connection open (ROOM_FULL, NICK_IN_ROOM): said here, then closed; a
      // failure that closed it was said by the `closed` listener.
      if (!client.closed) {
        page.client = undefined;
        client.close();
        ended(page, e instanceof ClientFailure ? e : new ClientFailure('protocol', String(e)));
      }
    });
}

// ---- identity and backups ----

async function showIdentity(page: Page, created: boolean): Promise<void> {
  page.ownFingerprint = await fingerprintOf(backend, page.identity.spki);
  const own = el('own-fingerprint');
  own.textContent = page.ownFingerprint;
  own.dataset['created'] = String(created);
}

function download(name: string, text: string, type = 'application/json'): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
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
        if (page.client !== undefined) throw new Error('leave the room first (reload the page)');
        const { identity, text } = await exportBackup(pass);
        await replaceIdentity(page.db, identity);
        forgetBackupCode();
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
        if (page.client !== undefined) throw new Error('leave the room first (reload the page)');
        const text = file !== undefined ? await file.text() : el<HTMLTextAreaElement>('import-text').value;
        const identity = await importBackup(text, pass);
        await replaceIdentity(page.db, identity);
        forgetBackupCode();
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

/**
 * The backup code of a key made on this visit: shown above the join form and the room alike, until the
 * user says it is written down ("done" erases it from the page) or saves it as a file; until then the key
 * carries a mark (src/web/keys.ts), and a later visit warns that the code was never confirmed.
 */
function showBackupCode(code: string): void {
  el('backup-code').textContent = code;
  el('backup-code-view').hidden = false;
}

/** The key was replaced: the code shown (or the warning about it) was the old key's. */
function forgetBackupCode(): void {
  el('backup-code').textContent = '';
  el('backup-code-view').hidden = true;
  el('backup-unconfirmed').hidden = true;
}

function wireBackupCodeViews(db: IDBDatabase): void {
  const confirmed = () => confirmBackupCode(db).catch((e: unknown) => showError('LOCAL', `not saved in this browser: ${e instanceof Error ? e.message : String(e)}`));
  el('backup-code-save').addEventListener('click', () => {
    download('e2ee-chat-backup-code.txt', `backup code of this browser's e2ee-chat key (the passphrase of its backup): ${el('backup-code').textContent ?? ''}\n`, 'text/plain');
    void confirmed();
  });
  el('backup-code-done').addEventListener('click', () => {
    el('backup-code').textContent = '';
    el('backup-code-view').hidden = true;
    void confirmed();
  });
  el('backup-unconfirmed-done').addEventListener('click', () => {
    el('backup-unconfirmed').hidden = true;
    void confirmed();
  });
}

// ---- start ----

async function showManifest(): Promise<void> {
  const list = el('manifest');
  // An ES module the relay makes from its manifest (src/server/web.ts): the CSP lets the page load scripts
  // of its own origin but connect only to the WebSocket endpoint, so it is imported, not fetched. A
  // variable, so that the bundler leaves the import to the browser.
  const url: string = MANIFEST_MODULE;
  const files = ((await import(url)) as { default: { path: string; sha256: string }[] }).default;
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
  if (code !== null) showBackupCode(code);
  else el('backup-unconfirmed').hidden = !(await backupCodeUnconfirmed(db));
  const page: Page = {
    db,
    identity,
    key: backend.privateKeyFromCryptoKeys(identity.oaep, identity.pss),
    ownFingerprint: '',
    nick: '',
    roomName: '',
    pins: undefined,
    client: undefined,
    attempts: 0,
    retryTimer: undefined,
    awaitingSeq: new Map(),
    bySeq: new Map(),
    recover: undefined,
  };
  await showIdentity(page, created);
  page.pins = await openPins(db, backend, (e) => showError('LOCAL', `pins not saved: ${e instanceof Error ? e.message : String(e)}`));
  setStatus('not connected', 'idle');

  el<HTMLFormElement>('join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (page.client !== undefined) return;
    const nick = el<HTMLInputElement>('nick').value;
    const room = el<HTMLInputElement>('room').value || 'lobby';
    if (!isNick(nick)) return showError('LOCAL', `nickname: ${NICK_RULE}`);
    if (!isRoom(room)) return showError('LOCAL', `room: ${ROOM_RULE}`);
    // §7.5: a recovery code given takes the nickname over with this browser's key.
    const codeText = el<HTMLInputElement>('recover-code').value.trim();
    let recover: Page['recover'];
    if (codeText !== '') {
      try {
        recover = { code: parseRecoveryCode(codeText), next: newRecoveryCode(backend) };
      } catch {
        return showError('LOCAL', 'recovery code: not a recovery code (26 symbols in groups of four, as it was shown)');
      }
    }
    clearError();
    el<HTMLInputElement>('recover-code').value = '';
    page.nick = nick;
    page.roomName = room;
    page.attempts = 0;
    page.recover = recover;
    void connect(page);
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
  wireRecoveryView();
  wireBackupCodeViews(db);
}

main().catch((e: unknown) => setStatus(`error: ${e instanceof Error ? e.message : String(e)}`, 'failed'));
