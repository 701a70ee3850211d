/**
 * `e2ee-chat client`: the reference chat client (issue 5) on top of the ChatClient library.
 *
 * Two modes, chosen by whether stdin is a terminal:
 * - interactive: node:readline keeps the line being typed intact while messages arrive (each output line
 *   is written above the prompt, then the prompt and the partial input are redrawn), timestamps, slash
 *   commands, colour on a terminal unless NO_COLOR is set;
 * - scriptable: each stdin line is one message; each received message is one stdout line `NICK: TEXT`;
 *   events are stdout lines starting with `* `; errors go to stderr; the exit status says why (EXIT).
 *
 * Everything a peer controls (message text) is passed through `printable` first, so a message can never
 * forge a line of output or drive the terminal (src/client/text.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createInterface, clearScreenDown, cursorTo, moveCursor, type Interface } from 'node:readline';
import { ChatClient, ClientFailure, type FailureCause, type FailureKind, type Undelivered } from '../client/chat-client.js';
import { nodeClient } from '../client/node-client.js';
import { present, type Presenter } from './presenter.js';
import type { ProtocolError } from '../protocol/errors.js';
import { rosterLine } from '../client/roster.js';
import { checkRoomSecret, defaultHome, IDENTITY_FILE, IdentityError, openIdentity, prepareHome, readRoomSecret, suggestPassphrase, type Identity } from '../client/home.js';
import { History, HistoryError, recordHistory, type StoredRecord } from '../client/history.js';
import { PinStore } from '../client/pins.js';
import { addRecoveryMark, readMarksFile, recoveryMark } from '../client/recovery-marks.js';
import { formatRecoveryCode, newRecoveryCode, parseRecoveryCode, recoveryCommit } from '../crypto/recovery.js';
import { nodeBackend } from '../crypto/node.js';
import { readCaFile, tcpTransport, type TlsClientOptions } from '../client/tcp.js';
import { readRemembered, REMEMBERED_FILE, writeRemembered } from '../client/remembered.js';
import { PrivateFileError } from '../files/private.js';
import { askHidden, askNewPassphrase, EXIT_INTERRUPTED, PromptCancelled } from './prompt.js';
import { redrawOnResize, type ResizeRedraw } from './resize.js';
import { reachRelay } from './reach.js';
import { identityIsEncrypted } from '../crypto/keystore.js';
import { displayText, displayWidth, preview, printable, splitText, wrapRows } from '../client/text.js';
import { isNick, isRoom, NICK_RULE, ROOM_RULE } from '../protocol/names.js';
import { parseRelayIdentity, relayIdentity } from '../protocol/relay-id.js';
import { LIMITS } from '../protocol/limits.js';

/** Lines a scripted client with --to keeps for named members who are not present yet. */
const MAX_WAITING_LINES = 1000;

/** Exit statuses of the scriptable contract (issue 5). */
export const EXIT = {
  OK: 0,
  USAGE: 2,
  ROOM_FULL: 3,
  AUTH_REFUSED: 4,
  KEY_CHANGED: 5,
  CONNECTION: 6,
  PROTOCOL: 7,
  /** A file in --home could not be written (or read): a local error, never the relay's (issue 14). */
  LOCAL_FILE: 8,
  /** Scriptable mode: the run ended normally, but a message was not delivered (each is listed). */
  NOT_DELIVERED: 9,
  /** TLS (--tls, --tls-ca): the relay's certificate is not trusted for --host (unknown CA, expired, wrong name). */
  TLS_CERTIFICATE: 10,
} as const;

const EXIT_BY_FAILURE: Record<FailureKind, number> = {
  connect: EXIT.CONNECTION,
  connection: EXIT.CONNECTION,
  auth: EXIT.AUTH_REFUSED,
  room: EXIT.ROOM_FULL,
  protocol: EXIT.PROTOCOL,
  certificate: EXIT.TLS_CERTIFICATE,
};

const DEFAULT_PORT = 55555;
const DEFAULT_WAIT_S = 10;
const DEFAULT_RECONNECT_S = 300;
/** --handshake-timeout bounds (seconds): the default is spec §7.2's E2E_HANDSHAKE_TIMEOUT_MS. */
const DEFAULT_HANDSHAKE_S = LIMITS.E2E_HANDSHAKE_TIMEOUT_MS / 1000;
const MIN_HANDSHAKE_S = 0.1;
const MAX_HANDSHAKE_S = 3600;

const USAGE = `usage: e2ee-chat client [options]

  --host ADDR              relay address (default 127.0.0.1)
  --port N                 relay port (default ${DEFAULT_PORT})
  --tls                    connect over TLS 1.3, the relay's certificate checked for --host
                           against the system's CAs (SSL_CERT_FILE names another bundle)
  --tls-ca FILE            connect over TLS 1.3, trusting only the CA certificate(s) in FILE
                           (PEM; may be the relay's own self-signed certificate)
  --relay-name HOST:PORT   the relay's own name when you reach it under another (a tunnel, a proxy):
                           it must announce this name (spec §7.3); default --host:--port
  --nick NAME              your nickname, [A-Za-z0-9_-]{1,32} (asked for on a terminal when absent)
  --room NAME              room to join, [A-Za-z0-9_.-]{1,64} (default lobby)
                           On a terminal, the nickname, relay and room of the last run are kept in
                           --home/client.json and are the defaults when these options are absent.
  --home DIR               identity key and pinned peer keys (default ${defaultHome()})
  --no-passphrase          store a NEW identity key unencrypted (mode 0600); only when you ask for it
  --room-secret-file FILE  optional room secret shared out of band (or env E2EE_CHAT_ROOM_SECRET);
                           16 to 4096 bytes, used as is; make it 32 random bytes (spec §8.2)
  --no-history             keep no local history (by default every shown message is kept in
                           --home/history.db, encrypted under your identity key)
  --to NICK                scriptable mode (repeatable): send only to NICK, whose key must be pinned from an
                           earlier session; lines wait for NICK to be present with that key
  --reconnect SECONDS      after a lost connection, keep reconnecting (back-off 0.5 s doubling to 30 s,
                           with jitter) for this long before giving up with status 6 (default
                           ${DEFAULT_RECONNECT_S} on a terminal, 0 in scriptable mode; 0 = never reconnect)
  --recover                take your nickname over with a new key (spec §7.5): the recovery code
                           shown when the nickname was first bound is read from E2EE_CHAT_RECOVERY_CODE
                           (never from the command line, which other users can see); a new code is shown
  --wait SECONDS           scriptable mode: at end of input, wait this long for queued messages
                           to be delivered and acknowledged (default ${DEFAULT_WAIT_S})
  --handshake-timeout SECONDS
                           how long an end-to-end handshake with a member may take before that
                           session fails (${MIN_HANDSHAKE_S} to ${MAX_HANDSHAKE_S}, default ${DEFAULT_HANDSHAKE_S}; spec §7.2)
  -h, --help               show this help

The identity passphrase comes from a no-echo prompt on a terminal, or from E2EE_CHAT_PASSPHRASE.

With stdin not a terminal (scriptable): each input line is a message to every member; received
messages print as "NICK: TEXT", events as lines starting with "* ", errors on stderr.
Exit status: 0 ok, 2 usage, 3 room full (or nickname already in the room), 4 authentication refused
(or wrong passphrase), 5 a peer's key changed, 6 cannot connect or connection lost, 7 protocol error,
8 a file in --home could not be read or written (the message names it),
9 (scriptable mode) input ended normally but a message was not delivered (each one is listed),
10 TLS: the relay's certificate is not trusted for --host (unknown CA, expired, wrong name).`;

interface Options {
  host: string;
  /** --relay-name: the relay's name when it differs from host:port (a tunnel); §7.3. */
  relayName?: string;
  port: number;
  nick: string | undefined;
  room: string;
  home: string;
  noPassphrase: boolean;
  roomSecretFile: string | undefined;
  history: boolean;
  waitMs: number;
  /** --handshake-timeout: ms an end-to-end handshake may take (spec §7.2 E2E_HANDSHAKE_TIMEOUT_MS). */
  handshakeTimeoutMs: number;
  /** How long to keep reconnecting after a drop, in ms; 0 = never. */
  reconnectMs: number;
  /** Scripted mode: the only recipients (--to), or null for whoever is present when a line is read. */
  to: string[] | null;
  tls: TlsClientOptions | undefined;
  /** The options given on the command line (the rest are defaults, which remembered values replace). */
  given: { relay: boolean; room: boolean };
  /** --recover: the recovery code (16 bytes) from E2EE_CHAT_RECOVERY_CODE. */
  recover: Uint8Array | undefined;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | 'help' {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        'relay-name': { type: 'string' },
        nick: { type: 'string' },
        room: { type: 'string' },
        home: { type: 'string' },
        'no-passphrase': { type: 'boolean' },
        'no-history': { type: 'boolean' },
        'room-secret-file': { type: 'string' },
        wait: { type: 'string' },
        'handshake-timeout': { type: 'string' },
        reconnect: { type: 'string' },
        to: { type: 'string', multiple: true },
        tls: { type: 'boolean' },
        'tls-ca': { type: 'string' },
        recover: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values['help'] === true) return 'help';
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const port = str('port') === undefined ? DEFAULT_PORT : Number(str('port'));
  if (!Number.isInteger(port) || port < 1 || port > 65535 || !/^\d+$/.test(str('port') ?? '1')) throw new UsageError('--port: expected an integer 1..65535');
  /** Option `k` in seconds, written as digits (no exponent, sign or unit), from `min` to `max`; `dflt` when absent. */
  const seconds = (k: string, min: number, max: number, dflt: number): number => {
    const v = str(k);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v) || !(n >= min && n <= max)) throw new UsageError(`--${k}: expected seconds, ${min}..${max}`);
    return n;
  };
  const wait = seconds('wait', 0, 86400, DEFAULT_WAIT_S);
  const hs = seconds('handshake-timeout', MIN_HANDSHAKE_S, MAX_HANDSHAKE_S, DEFAULT_HANDSHAKE_S);
  // Scripted mode keeps its contract (a lost connection is status 6) unless --reconnect is given.
  const rec = seconds('reconnect', 0, 86400, process.stdin.isTTY === true ? DEFAULT_RECONNECT_S : 0);
  const nick = str('nick');
  if (nick !== undefined) checkNick(nick);
  const room = str('room') ?? 'lobby';
  if (!isRoom(room)) throw new UsageError(`--room: ${ROOM_RULE}`);
  const host = str('host') ?? '127.0.0.1';
  if (host === '') throw new UsageError('--host: empty');
  const relay = str('relay-name');
  // One spelling (src/protocol/relay-id.ts), as the relay announces its own name.
  const relayCanon = relay === undefined ? undefined : parseRelayIdentity(relay);
  if (relayCanon === null) throw new UsageError('--relay-name: HOST:PORT, the name the relay announces');
  return {
    host,
    port,
    ...(relayCanon === undefined ? {} : { relayName: relayCanon }),
    nick,
    room,
    home: str('home') ?? defaultHome(),
    noPassphrase: values['no-passphrase'] === true,
    roomSecretFile: str('room-secret-file'),
    history: values['no-history'] !== true,
    waitMs: Math.round(wait * 1000),
    handshakeTimeoutMs: Math.round(hs * 1000),
    reconnectMs: Math.round(rec * 1000),
    to: toList(values['to'] as string[] | undefined),
    tls: str('tls-ca') !== undefined ? { ca: readTlsCa(str('tls-ca')!) } : values['tls'] === true ? {} : undefined,
    given: { relay: str('host') !== undefined || str('port') !== undefined || relay !== undefined, room: str('room') !== undefined },
    recover: values['recover'] === true ? recoveryCodeFromEnv() : undefined,
  };
}

/** --recover: the code in E2EE_CHAT_RECOVERY_CODE, in the text form of spec §7.5. */
function recoveryCodeFromEnv(): Uint8Array {
  const text = process.env['E2EE_CHAT_RECOVERY_CODE'];
  if (text === undefined || text === '') throw new UsageError('--recover: put the recovery code in E2EE_CHAT_RECOVERY_CODE');
  try {
    return parseRecoveryCode(text);
  } catch (e) {
    throw new UsageError(`--recover: E2EE_CHAT_RECOVERY_CODE is not a recovery code (${(e as Error).message})`);
  }
}

function toList(to: string[] | undefined): string[] | null {
  if (to === undefined) return null;
  for (const n of to) checkNick(n);
  return [...new Set(to)];
}

function readTlsCa(path: string): Buffer {
  try {
    return readCaFile(path);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function checkNick(nick: string): void {
  if (!isNick(nick)) throw new UsageError(`nickname: ${NICK_RULE}`);
}

/** Replaces lone surrogates (which are not UTF-8) so a text always encodes (spec §4 rule 4). */
function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udfff]/gu, '\ufffd');
}

/** What a failed session means and what to do, for people (null when the client cannot tell). */
function causeAdvice(from: string, error: ProtocolError, cause: FailureCause | undefined, retry: boolean): string | null {
  const again = retry ? `; then /retry ${from}` : '';
  if (cause === 'room-secret') return `your room secrets differ (or only one of you uses one): check the secret with ${from} out of band${again}`;
  if (cause === 'key-not-accepted')
    return `${from}'s client has another key pinned for you and refuses yours until ${from} accepts it: tell ${from} (if you set up a new key, ${from} checks it with /safety and types /trust)`;
  if (error.errorName === 'TIMEOUT') return `${from}'s client did not answer the handshake in time${retry ? `; /retry ${from} starts it again` : ''}`;
  return retry ? `/retry ${from} starts a new session` : null;
}

/**
 * A connection failure for people: what happened and what to do (issue 15 point 2). The relay's code
 * stays in the text (in parentheses), so a script or a bug report still sees it.
 */
function failureAdvice(f: ClientFailure, opts: Options, nick: string, roomSize: number | undefined, announced?: string): string {
  const code = f.error?.errorName;
  const where = `${opts.host}:${opts.port}`;
  switch (code) {
    case 'ROOM_FULL':
      return `${f.message}: the room already has ${roomSize ?? 'its'} members, the most this relay allows (its operator sets that with e2ee-chat server --max-room-size N); try another --room, or later`;
    case 'NICK_IN_ROOM':
      return `${f.message}: someone named ${nick} is already in the room (another client of yours?); quit that one, or pick another --nick`;
    case 'NICK_BOUND':
      // §7.5: RECOVER answers NICK_BOUND for a wrong code, a spent one (a takeover made a fresh code) and
      // one replaced by a later registration: the user must learn that the code was what was refused. Only
      // the connection that sent RECOVER (the first, until its WELCOME) did; a reconnect sends AUTH.
      if (pendingCode !== undefined) {
        return `${f.message}: the relay refused the recovery code for ${nick} on ${where} (a wrong code, one already used by a takeover, or one replaced since: only the last code shown for ${nick} works); nothing changed`;
      }
      // Welcomed earlier in this run (a reconnect, or SET_RECOVERY after WELCOME): the binding moved since.
      if (welcomed) {
        return `${f.message}: ${nick} on ${where} was bound to your key when you logged in and is bound to another key now (taken over with its recovery code, released by the relay's operator, or expired: spec §7.5); this key cannot log in as ${nick} there again`;
      }
      return `${f.message}: the nickname ${nick} is bound on ${where} to another key; pick another --nick, or run with the --home that holds the key that first used it`;
    case 'WRONG_RELAY': {
      const named = announced === undefined ? 'another name' : `"${printable(announced)}"`;
      return `${f.message}: the relay at ${where} calls itself ${named}, not ${relayName(opts)}, so nothing was signed for it; if it is the relay you mean (reached through a tunnel or proxy), pass --relay-name with its name; otherwise check --host and --port`;
    }
    case 'AUTH_FAILED':
      return `${f.message}: the relay did not accept your key's proof (${opts.tls !== undefined ? 'over TLS: a proxy that ends TLS in front of the relay breaks the binding of spec §7.3; otherwise ' : ''}a client or relay bug; report it)`;
    case 'BAD_PUBLIC_KEY':
      return `${f.message}: the relay did not accept your key's proof (a client or relay bug; report it)`;
    case 'TOO_MANY_CONNECTIONS':
    case 'RATE_LIMITED':
      return `${f.message}: the relay limits connections and traffic per key and per address; wait a little and start again`;
    case 'SERVER_SHUTDOWN':
      return `${f.message}: the relay was stopped; start again once it is back`;
    default:
      if (f.kind === 'connect') return `${f.message}: is a relay running there? (e2ee-chat server --port ${opts.port}); check --host and --port`;
      return f.message;
  }
}

function describeUndelivered(u: Undelivered): string {
  if (u.to === null) return `not sent (nobody else in the room): ${printable(u.text)}`;
  const what = u.seq === null ? 'never sent' : `#${u.seq} not acknowledged`;
  return `not delivered to ${u.to} (${what}): ${printable(u.text)}`;
}

// ---------------------------------------------------------------------------------------------------
// Terminal helpers (interactive mode only).

interface Paint {
  dim(s: string): string;
  bold(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  nick(s: string): string;
}

function paint(enabled: boolean): Paint {
  const wrap = (open: number, close: number) => (s: string) => (enabled ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  const palette = [36, 35, 34, 33, 32, 96, 95, 94];
  return {
    dim: wrap(2, 22),
    bold: wrap(1, 22),
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    nick: (s) => {
      let h = 0;
      for (const ch of s) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
      return wrap(palette[h % palette.length]!, 39)(s);
    },
  };
}

function clock(d = new Date()): string {
  return Number.isNaN(d.getTime()) ? '--:--:--' : d.toTimeString().slice(0, 8);
}

/**
 * A sender's clock further than this from ours is flagged (issue 14 point 7): the relay can hold a message
 * back unseen, and TEXT.ts (spec §6, the sender's milliseconds) is the only sign of it.
 */
export const MAX_CLOCK_SKEW_MS = 120_000;

/** How a TEXT.ts differs from our clock, for people: null within MAX_CLOCK_SKEW_MS. */
export function skewNote(ts: number, now = Date.now()): string | null {
  const d = now - ts;
  if (Math.abs(d) <= MAX_CLOCK_SKEW_MS) return null;
  const mins = Math.round(Math.abs(d) / 60_000);
  const span = mins >= 120 ? `${Math.round(mins / 60)} h` : `${mins} min`;
  return d > 0 ? `sent ${span} before it arrived` : `sender's clock ${span} ahead`;
}

async function askLine(prompt: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  try {
    return await new Promise<string>((resolve, reject) => {
      rl.question(prompt, resolve);
      rl.once('SIGINT', () => reject(new PromptCancelled()));
      rl.once('close', () => reject(new UsageError('no nickname given')));
    });
  } finally {
    rl.close();
  }
}

// ---------------------------------------------------------------------------------------------------

/** The first exit status wins; `exited` resolves with it (both client modes end through this). */
function exitLatch(): { exit: (code: number) => void; exited: Promise<number>; readonly exiting: boolean } {
  let resolve!: (code: number) => void;
  let done = false;
  const exited = new Promise<number>((r) => (resolve = r));
  return {
    exit(code: number) {
      if (done) return;
      done = true;
      resolve(code);
    },
    exited,
    get exiting() {
      return done;
    },
  };
}

export async function run(argv: string[]): Promise<number> {
  const interactive = process.stdin.isTTY === true;
  let opts: Options;
  try {
    const parsed = parseOptions(argv);
    if (parsed === 'help') {
      process.stdout.write(USAGE + '\n');
      return EXIT.OK;
    }
    opts = parsed;
  } catch (e) {
    process.stderr.write(`e2ee-chat client: ${(e as Error).message}\n${USAGE}\n`);
    return EXIT.USAGE;
  }

  const err = (msg: string) => process.stderr.write(`e2ee-chat client: ${msg}\n`);
  let nick: string;
  let identity: Identity;
  let pins: PinStore;
  const hooks: Hooks = { pinWriteFailed: () => undefined };
  let psk: Uint8Array | undefined;
  let history: History | null = null;
  try {
    if (interactive) {
      // The nickname, relay and room of the last interactive run are the defaults of this one.
      const { values: r, warning } = await readRemembered(opts.home);
      if (warning !== null) err(`warning: ${warning}`);
      opts.nick ??= r.nick;
      if (!opts.given.relay && r.host !== undefined && r.port !== undefined) {
        opts.host = r.host;
        opts.port = r.port;
        // The relay's own name goes with its address (a tunnel's port is not the relay's name, §7.3).
        if (r.relayName !== undefined) opts.relayName = r.relayName;
      }
      if (!opts.given.room && r.room !== undefined) opts.room = r.room;
    }
    // A prompt (nickname, passphrase) comes only once the relay's address answers: a relay that is down,
    // or a wrong --port, is said before anyone types anything for a run that cannot start.
    const envPass = process.env['E2EE_CHAT_PASSPHRASE'];
    if (interactive && (opts.nick === undefined || ((envPass === undefined || envPass === '') && (await needsPrompt(opts))))) {
      const why = await reachRelay(opts.host, opts.port);
      if (why !== null) {
        err(failureAdvice(new ClientFailure('connect', `cannot connect to ${opts.host}:${opts.port}: ${why}`), opts, opts.nick ?? '', undefined));
        return EXIT.CONNECTION;
      }
    }
    if (opts.nick === undefined) {
      if (!interactive) throw new UsageError('--nick is required when stdin is not a terminal');
      nick = '';
      for (let attempt = 1; nick === ''; attempt++) {
        const answer = (await askLine('nickname: ')).trim();
        try {
          checkNick(answer);
          nick = answer;
        } catch (e) {
          if (attempt >= 3) throw e;
          process.stderr.write('a nickname is 1 to 32 letters, digits, "_" or "-"\n');
        }
      }
    } else nick = opts.nick;
    prepareHome(opts.home);
    if (interactive && envPass !== undefined && envPass !== '') {
      process.stderr.write(
        'warning: the passphrase comes from E2EE_CHAT_PASSPHRASE; other programs of yours can read the environment and it may be in your shell history. At a terminal, unset it and type the passphrase at the prompt.\n',
      );
    }
    let triedOnce = false;
    identity = await openIdentity(opts.home, {
      given: envPass !== undefined && envPass !== '' ? envPass : null,
      none: opts.noPassphrase,
      ...(interactive
        ? {
            ask: async (confirm: boolean) => {
              if (!confirm) {
                const first = triedOnce;
                triedOnce = true;
                return askHidden(first ? 'wrong passphrase, try again: ' : 'passphrase for your identity key: ');
              }
              process.stderr.write('Creating your identity key (RSA-2048). It is stored encrypted under a passphrase.\n');
              process.stderr.write(`Use at least 12 characters, for example: ${suggestPassphrase()}\n`);
              return askNewPassphrase();
            },
          }
        : {}),
    });
    pins = await PinStore.open(opts.home, { onWriteError: (e) => hooks.pinWriteFailed(e), register: true });
    if (pins.warning !== null) err(`warning: pinned keys: ${pins.warning}`);
    if (opts.history) history = History.open(opts.home, identity.privateKey);
    const envSecret = process.env['E2EE_CHAT_ROOM_SECRET'];
    if (opts.roomSecretFile !== undefined) psk = readRoomSecret(opts.roomSecretFile);
    else if (envSecret !== undefined && envSecret !== '') psk = checkRoomSecret(new Uint8Array(Buffer.from(envSecret, 'utf8')));
  } catch (e) {
    if (e instanceof IdentityError) {
      err(`identity key in ${opts.home}: ${e.message}`);
      return e.code === 'BAD_PASSPHRASE' ? EXIT.AUTH_REFUSED : EXIT.USAGE;
    }
    if (e instanceof PrivateFileError) return homeFileFailure(e, opts, err);
    if (e instanceof PromptCancelled) return EXIT_INTERRUPTED;
    if (e instanceof HistoryError) {
      err(`history in ${opts.home}: ${e.message} (or run with --no-history)`);
      return EXIT.USAGE;
    }
    err((e as Error).message);
    return EXIT.USAGE;
  }

  // §7.5: a takeover registers the commitment of a fresh code, shown once WELCOME confirms it.
  const next = opts.recover !== undefined ? newRecoveryCode(nodeBackend) : undefined;
  const client = nodeClient({
    host: opts.host,
    port: opts.port,
    ...(opts.recover !== undefined && next !== undefined ? { recover: { code: opts.recover, commit: await recoveryCommit(nodeBackend, nick, next) } } : {}),
    relayName: relayName(opts),
    nick,
    identity,
    pins,
    ...(psk ? { psk } : {}),
    handshakeTimeoutMs: opts.handshakeTimeoutMs,
    ...(opts.tls !== undefined ? { transport: tcpTransport(opts.host, opts.port, opts.tls) } : {}),
    ...(opts.reconnectMs > 0 ? { reconnect: { giveUpMs: opts.reconnectMs } } : {}),
  });
  if (history !== null) {
    const h = history;
    recordHistory(client, h, relayName(opts), opts.room, (e) => err(`history: ${e.message}; messages are no longer recorded`));
  }
  pendingCode = next;
  welcomed = false;
  try {
    return await (interactive ? runInteractive(client, opts, identity, history, hooks) : runScriptable(client, opts, identity, hooks));
  } finally {
    history?.close();
    pins.close();
  }
}

/**
 * A file of --home that cannot be used: an insecure file or folder is refused like the identity key
 * (status 2, the path); an I/O failure (disk full, read-only, a file size limit) is a local error
 * (status 8), never the relay's.
 */
function homeFileFailure(e: PrivateFileError, opts: Options, report: (msg: string) => void): number {
  report(e.code === 'IO' ? `local error: ${e.message}` : `--home ${opts.home}: ${e.message}`);
  return e.code === 'IO' ? EXIT.LOCAL_FILE : EXIT.USAGE;
}

/** True when opening the identity of --home would ask for a passphrase (a sealed key, or a new one to seal). */
async function needsPrompt(opts: Options): Promise<boolean> {
  const path = join(opts.home, IDENTITY_FILE);
  if (!existsSync(path)) return !opts.noPassphrase;
  try {
    return await identityIsEncrypted(path);
  } catch {
    return true; // unreadable or unsafe: openIdentity reports it
  }
}

/** What each mode does with local failures that happen while it runs. */
interface Hooks {
  /** A write to the pin store failed (the store is read only afterwards); never a relay error. */
  pinWriteFailed: (e: PrivateFileError) => void;
}

/**
 * The relay's identity (issue 14 point 6): the name CHALLENGE.relay must equal and AUTH signs (spec §7.3),
 * relayIdentity(--host, --port) or --relay-name. The pins (ChatClient.serverName) and the history's
 * conversations are kept under it, so one relay is one trust store and one history whatever its spelling.
 */
function relayName(opts: Options): string {
  return opts.relayName ?? relayIdentity(opts.host, opts.port);
}

/** Longest wait for the relay to confirm a LEAVE when quitting (a hung relay must not keep us open). */
const QUIT_GRACE_MS = 2000;
/** The commands Tab completes. */
const COMMANDS = ['/help', '/who', '/fingerprint', '/safety', '/verify', '/trust', '/retry', '/msg', '/history', '/resend', '/quit'];
/** xterm's bracketed paste mode: the terminal marks a paste with ESC[200~ ... ESC[201~. */
const BRACKETED_PASTE_ON = '\x1b[?2004h';
const BRACKETED_PASTE_OFF = '\x1b[?2004l';

/** How many stored messages a (re)join shows, and `/history` without a number. */
const HISTORY_SHOWN = 20;

/** The fresh code of a takeover (--recover), shown once the relay has welcomed it. */
let pendingCode: Uint8Array | undefined;
/** A connection of this run was welcomed: a later NICK_BOUND is a binding that moved since (spec §7.5). */
let welcomed = false;

/**
 * Spec §7.5 after WELCOME: shows the fresh code of a takeover, or registers a code at the first WELCOME
 * of this nickname on this relay (SET_RECOVERY) and shows it. The code is shown once (stderr, the user's
 * own screen) and never stored; --home/recovery.json keeps only that one was registered.
 */
async function recoveryAfterWelcome(client: ChatClient, opts: Options): Promise<void> {
  const mark = recoveryMark(relayName(opts), client.nick);
  let code = pendingCode;
  pendingCode = undefined;
  if (code === undefined) {
    // Read again after WELCOME: another client of this home may have registered the code meanwhile.
    const marks = await readMarksFile(opts.home);
    if (marks.registered.has(mark)) return;
    // A key imported from another home (e2ee-chat key import) may have a code registered from there; the
    // relay cannot say, and a new registration voids it (§7.5). Said before it happens, never silently.
    if (marks.imported === client.fingerprint()) {
      process.stderr.write(
        `warning: this key was imported into ${opts.home}, so it may already have a recovery code for ${client.nick} at ${relayName(opts)} from the home it came from; ` +
          'a new code is registered now and that earlier code NO LONGER WORKS: keep the new one below instead\n',
      );
    }
    code = newRecoveryCode(nodeBackend);
    await client.registerRecovery(await recoveryCommit(nodeBackend, client.nick, code));
  }
  // The relay holds the code's commitment now: the code is shown before the mark is written, so a mark
  // that cannot be written (status 8) never costs the user the only copy of a registered code.
  process.stderr.write(
    `recovery code for ${client.nick} at ${relayName(opts)}: ${formatRecoveryCode(code)} (shown only now: write it down, keep it off this computer; ` +
      'with it a new key takes this nickname back: e2ee-chat client --recover, the code in E2EE_CHAT_RECOVERY_CODE; your contacts then see a key change)\n',
  );
  code.fill(0);
  await addRecoveryMark(opts.home, mark);
}

/** Connects and joins; returns an exit status on failure, or null when in the room. */
async function enter(client: ChatClient, opts: Options, report: (msg: string) => void): Promise<number | null> {
  try {
    if (pendingCode === undefined && (await readMarksFile(opts.home)).registered.has(recoveryMark(relayName(opts), client.nick))) {
      // No recovery code to register or show: JOIN goes right behind AUTH (spec §7.4, one round trip less).
      await Promise.all([client.connect().then(() => (welcomed = true)), client.join(opts.room)]);
      return null;
    }
    await client.connect();
    welcomed = true;
    await recoveryAfterWelcome(client, opts);
    await client.join(opts.room);
    return null;
  } catch (e) {
    if (e instanceof ClientFailure) {
      // A failure that closed the connection was already reported by the mode's 'closed' listener;
      // only a refusal that left it open (ROOM_FULL, NICK_IN_ROOM) is reported here: each error once.
      if (!client.closed) {
        report(failureAdvice(e, opts, client.nick, client.welcome?.roomSize));
        client.close();
      }
      return EXIT_BY_FAILURE[e.kind];
    }
    if (e instanceof PrivateFileError) {
      // --home/recovery.json could not be read or written (§7.5 marks): a local failure, reported once.
      client.close();
      return homeFileFailure(e, opts, report);
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------
// Scriptable mode: the contract of issue 5.

async function runScriptable(client: ChatClient, opts: Options, identity: Identity, hooks: Hooks): Promise<number> {
  const out = (line: string) => process.stdout.write(line + '\n');
  const event = (line: string) => out(`* ${line}`);
  const err = (msg: string) => process.stderr.write(`e2ee-chat client: ${msg}\n`);

  const latch = exitLatch();
  const { exit, exited } = latch;
  hooks.pinWriteFailed = (e) => {
    err(`local error: ${e.message}`);
    void client.leave().then(() => exit(EXIT.LOCAL_FILE));
  };
  // Every text listed as not delivered (or never sent) makes a normal end exit NOT_DELIVERED, not 0.
  let lost = 0;
  const listLost = (u: Undelivered) => {
    lost++;
    event(describeUndelivered(u));
  };

  // A reader that went away (`client ... | head -1`): leave quietly instead of dying on EPIPE.
  process.stdout.on('error', () => {
    if (client.closed) exit(EXIT.OK);
    else void client.leave().then(() => exit(EXIT.OK));
  });

  if (identity.created) event(`created identity key in ${opts.home}`);
  const resendHeld = () => {
    if (client.heldTexts().length === 0) return;
    for (const u of client.resend().sent) event(`resending to ${u.to} (not acknowledged before the connection was lost): ${printable(u.text)}`);
  };
  // The scripted renderer (src/cli/presenter.ts): the line contract of issue 5.
  present(client, {
    joined: ({ room, rejoin }) => event(rejoin ? `rejoined ${room} as ${client.nick}` : `joined ${room} as ${client.nick}, fingerprint ${client.fingerprint()}`),
    // Reconnecting (--reconnect): one line when the connection is lost, one when back; the attempts in
    // between are not listed. The rule for what was not acknowledged before the drop: it is sent again to
    // the member it was for, once that member is back in the room with the same (pinned) key, through the
    // new session; lines read while reconnecting wait the same way for the members present at the drop.
    // Whatever never gets through is listed at the end like any undelivered text (status 9).
    'connection-lost': ({ failure, undelivered }) => event(`connection lost (${failure.message}); ${undelivered.length} text(s) not acknowledged; reconnecting`),
    reconnecting: () => {},
    reconnected: ({ room, attempts, downMs }) => {
      event(`reconnected to ${room} after ${(downMs / 1000).toFixed(1)} s (${attempts} attempt${attempts === 1 ? '' : 's'})`);
      resendHeld();
    },
    'peer-joined': ({ nick, fingerprint, verified, firstSeen }) => event(`${nick} joined, fingerprint ${fingerprint}${firstSeen ? ' (first seen)' : verified ? ' (verified)' : ''}`),
    'peer-left': ({ nick, undelivered }) => {
      event(`${nick} left`);
      for (const u of undelivered) listLost(u);
    },
    established: ({ nick, safetyNumber, verified }) => {
      event(`secure session with ${nick}${verified ? ' (verified)' : ''}, safety number ${safetyNumber}`);
      resendHeld();
    },
    text: ({ from, seq, ts, text }) => {
      out(`${from}: ${printable(text)}`);
      const skew = skewNote(ts);
      if (skew !== null) event(`clock: message #${seq} from ${from} carries ${new Date(ts).toISOString()}: ${skew}`);
    },
    sent: ({ to, seq }) => event(`sent to ${to} #${seq}`),
    delivered: ({ to, seq }) => event(`delivered to ${to} #${seq}`),
    rejected: ({ from, error, fatal, cause }) => {
      const advice = fatal ? causeAdvice(from, error, cause, false) : null;
      event(fatal ? `session with ${from} failed: ${error.errorName}${advice === null ? '' : `; ${advice}`}` : `message from ${from} failed to verify: ${error.errorName}`);
    },
    'relay-error': ({ error }) => event(`relay refused: ${error.errorName}`),
    'roster-mismatch': (r) => event(rosterLine(r)),
    'peer-churn': ({ nick, joins, windowMs, until }) => event(`${nick} joined and left ${joins} times in ${Math.round(windowMs / 1000)} s; ignored until ${new Date(until).toISOString()}`),
    'key-elsewhere': ({ nick, offeredFingerprint, elsewhere }) =>
      event(`WARNING: ${nick} is verified on ${elsewhere.map((e) => `${printable(e.relay)} with key ${e.fingerprint}`).join(', ')}; here the key is ${offeredFingerprint}`),
    'key-changed': ({ nick, pinnedFingerprint, offeredFingerprint }) => {
      event(`WARNING: the identity key of ${nick} CHANGED: pinned ${pinnedFingerprint}, now ${offeredFingerprint}; nothing is sent to or accepted from ${nick}`);
      err(`the identity key of ${nick} changed (pinned ${pinnedFingerprint}, offered ${offeredFingerprint}); run interactively and use /trust ${nick} if expected`);
      void client.leave().then(() => exit(EXIT.KEY_CHANGED));
    },
    closed: ({ failure, undelivered }) => {
      if (failure === null) return;
      for (const u of undelivered) listLost(u);
      err(failureAdvice(failure, opts, client.nick, client.welcome?.roomSize, client.announcedRelay));
      exit(EXIT_BY_FAILURE[failure.kind]);
    },
  });

  const entered = await enter(client, opts, err);
  if (entered !== null) return entered;

  // Issue 14 point 1: a line goes to the members present when it is read, never to one who joins later.
  // With --to, it goes only to the named members, each once its key matched the pin of an earlier
  // session, and waits (up to MAX_WAITING_LINES lines) for a named member who is not there yet.
  const named = opts.to;
  const lines: string[] = [];
  const next = new Map<string, number>(); // named member -> index of the next line it gets
  const eligible = new Set<string>(); // named members present whose key matched their pin
  const flushTo = (nick: string) => {
    if (!eligible.has(nick) || !client.members().some((m) => m.nick === nick && m.status === 'established')) return;
    for (let i = next.get(nick) ?? 0; i < lines.length; i++) client.send(lines[i]!, { to: [nick] });
    next.set(nick, lines.length);
  };
  if (named !== null) {
    client.on('peer-joined', ({ nick, firstSeen }) => {
      if (!named.includes(nick)) return;
      if (firstSeen) event(`not sending to ${nick}: its key is not pinned (--to needs a key pinned in an earlier session)`);
      else eligible.add(nick);
    });
    client.on('peer-left', ({ nick }) => eligible.delete(nick));
    client.on('established', ({ nick }) => {
      if (named.includes(nick)) flushTo(nick);
    });
  }
  const rl = createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity });
  rl.on('line', (line) => {
    if (latch.exiting || (client.closed && !client.reconnecting)) return;
    for (const piece of splitText(wellFormed(line.replace(/\r$/, '')), client.maxTextBytes())) {
      if (named !== null) {
        if (lines.length >= MAX_WAITING_LINES) {
          event(`not sent (more than ${MAX_WAITING_LINES} lines for --to): ${printable(piece)}`);
          continue;
        }
        lines.push(piece);
        for (const n of named) flushTo(n);
        continue;
      }
      if (client.send(piece).length > 0) continue;
      lost++;
      event(
        client.members().length === 0
          ? `not sent (nobody else in the room): ${printable(piece)}`
          : `not sent (no member with a trusted key): ${printable(piece)}`,
      );
    }
  });
  const namedDone = () => named === null || named.every((n) => (next.get(n) ?? 0) >= lines.length);
  rl.on('close', () => {
    if (latch.exiting || (client.closed && !client.reconnecting)) return;
    // End of input: wait up to --wait for what was sent to be acknowledged (and, with --to, for the named
    // members to arrive), leave, list what never got through, exit 0.
    void (async () => {
      const deadline = Date.now() + opts.waitMs;
      const down = () => client.closed && !client.reconnecting;
      while (!latch.exiting && !down() && !(namedDone() && client.settled()) && Date.now() < deadline) {
        await client.whenSettled(Math.min(100, Math.max(1, deadline - Date.now())));
        if (!namedDone()) await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, deadline - Date.now()))));
      }
      if (latch.exiting || down()) return;
      const left = await client.leave();
      for (const u of left) listLost(u);
      if (named !== null) {
        for (const n of named) {
          for (let i = next.get(n) ?? 0; i < lines.length; i++) {
            lost++;
            event(`not delivered to ${n} (never sent: not present with its pinned key): ${printable(lines[i]!)}`);
          }
        }
      }
      exit(lost > 0 ? EXIT.NOT_DELIVERED : EXIT.OK);
    })();
  });

  const code = await exited;
  rl.close();
  process.stdin.destroy();
  client.close();
  return code;
}

// ---------------------------------------------------------------------------------------------------
// Interactive mode.

const HELP = [
  'Type a message and press Enter to send it to everyone in the room, end to end encrypted.',
  '  /who            members, their session state and whether you verified them',
  '  /fingerprint    your own key fingerprint',
  '  /safety NICK    the safety number you share with NICK: compare it with NICK in person or by phone',
  '  /verify NICK    mark NICK as verified after the safety numbers matched',
  "  /trust NICK     accept NICK's changed key (only after checking it with NICK!)",
  '  /retry NICK     start a failed session with NICK again (rejoins the room: every session restarts)',
  '  /history [N]    the last N (default 20) messages of this room kept in your encrypted history',
  '  /resend         after a reconnect: send again what was not acknowledged before the drop',
  '  /msg NICK TEXT  send TEXT to NICK only',
  '  a line ending in \\ continues on the next line (one message of several lines)',
  '  /quit           leave the room (also Ctrl-D or Ctrl-C)',
  '  //text          send a message that starts with "/"',
];

/**
 * One stored message as /history shows it: its time (with the date when not today), the sender (and the
 * recipients of one's own), and its fate after the text. The rows are made as live lines are (`message`
 * in runInteractive): wrapped, further rows indented, so a stored text cannot pose as a row of its own.
 */
function historyParts(r: StoredRecord, now = new Date()): { time: string; who: string; fate: string } {
  const d = new Date(r.shownAt);
  const day = d.toDateString() === now.toDateString() ? '' : `${d.toISOString().slice(0, 10)} `;
  const fate = r.dir === 'in' ? '' : r.state === 'delivered' ? '  (delivered)' : r.state === 'not delivered' ? '  (NOT delivered)' : '  (not acknowledged)';
  const to = r.dir === 'out' && r.to.length > 0 ? ` → ${r.to.join(', ')}` : '';
  return { time: `${day}${clock(d)}`, who: `${r.from}${to}`, fate };
}

async function runInteractive(client: ChatClient, opts: Options, identity: Identity, history: History | null, hooks: Hooks): Promise<number> {
  const stdout = process.stdout;
  const color = stdout.isTTY === true && (process.env['NO_COLOR'] ?? '') === '' && process.env['TERM'] !== 'dumb';
  const p = paint(color);
  let rl: Interface | null = null;
  let resize: ResizeRedraw | null = null;

  /** Writes whole lines above the prompt, then redraws the prompt and whatever is typed (never garbled). */
  const print = (...lines: string[]) => {
    if (rl === null) {
      for (const l of lines) stdout.write(l + '\n');
      return;
    }
    resize?.sync();
    const rows = rl.getCursorPos().rows;
    moveCursor(stdout, 0, -rows);
    cursorTo(stdout, 0);
    clearScreenDown(stdout);
    for (const l of lines) stdout.write(l + '\n');
    // readline would move up by the rows of its last drawing, which now hold our output.
    (rl as unknown as { prevRows: number }).prevRows = 0;
    rl.prompt(true);
  };
  const info = (s: string) => print(p.dim(`[${clock()}] * ${s}`));
  const warn = (...lines: string[]) => print(...lines.map((l) => p.red(p.bold(l))));
  const err = (msg: string) => print(p.red(`error: ${msg}`));

  const latch = exitLatch();
  const { exit, exited } = latch;
  hooks.pinWriteFailed = (e) => err(`local error: ${e.message}; the keys pinned from now on are kept for this run only`);

  if (identity.created) info(`created your identity key in ${opts.home}`);
  // The verified mark is the client's, outside any text: a bracketed marker after the nickname, which a
  // nickname ([A-Za-z0-9_-]) cannot contain, on a row that only the client starts (text rows are indented).
  // "verified" is a word in brackets, never the ✓ that marks a delivered message.
  const label = (nick: string, verified: boolean) => p.nick(nick) + (verified ? ' ' + p.green('[verified]') : '');
  const labelWidth = (nick: string, verified: boolean) => nick.length + (verified ? 11 : 0);
  const cols = () => (stdout.columns > 0 ? stdout.columns : 80);
  /** A message as terminal rows: `[time] NICK: text`, continuation rows indented under the text. */
  const message = (time: string, shownNick: string, nickWidth: number, text: string, note = '', dimmed = false): string[] => {
    const head = `${dimmed ? `[${time}]` : p.dim(`[${time}]`)} ${shownNick}: `;
    const headWidth = time.length + 3 + nickWidth + 2;
    // A multi-line text: each of its lines wrapped on its own, every row after the first indented, so
    // no row a peer sends starts at column 0 where only the client starts rows.
    const rows = text.split('\n').flatMap((line, i) => {
      const r = wrapRows(displayText(line), headWidth, cols(), headWidth);
      if (i > 0) r[0] = ' '.repeat(Math.max(1, Math.min(headWidth, Math.floor(cols() / 2)))) + r[0];
      return r;
    });
    rows[0] = head + rows[0];
    rows[rows.length - 1] += note;
    return dimmed ? rows.map((r) => p.dim(r)) : rows;
  };

  /** The last `n` stored messages of this room on this relay, above the prompt. */
  const showHistory = (n: number) => {
    if (history === null) return info('history is off (--no-history)');
    const { records, unreadable } = history.last(relayName(opts), opts.room, n);
    if (records.length === 0) info('no earlier messages in this room');
    else print(p.dim(`── last ${records.length} message${records.length === 1 ? '' : 's'} in ${opts.room} ──`), ...records.flatMap((r) => {
          const { time, who, fate } = historyParts(r);
          return message(time, who, displayWidth(who), r.text, fate, true);
        }), p.dim('──'));
    if (unreadable > 0) warn(`${unreadable} stored message(s) did not open (altered on disk?) and are not shown`);
  };

  // Receipts, one line per message (not one per member): our messages are numbered #1, #2, ... in the
  // order we send them (our own count, not the sessions' sequence numbers, which ACKs share), and the line
  // comes once every member it went to has acknowledged it.
  interface Outgoing {
    n: number;
    text: string;
    to: Set<string>;
    acked: Set<string>;
  }
  let sentCount = 0;
  const awaitingSeq = new Map<string, Outgoing[]>(); // member -> our messages not yet numbered by its session
  const bySeq = new Map<string, Outgoing>(); // `${member} ${seq}` -> our message
  const track = (text: string, to: string[]): Outgoing => {
    const o: Outgoing = { n: ++sentCount, text, to: new Set(to), acked: new Set() };
    for (const m of to) {
      const q = awaitingSeq.get(m) ?? [];
      q.push(o);
      awaitingSeq.set(m, q);
    }
    return o;
  };
  const forget = (nick: string) => {
    awaitingSeq.delete(nick);
    for (const [k, o] of bySeq) if (o.to.has(nick) && k.startsWith(`${nick} `)) bySeq.delete(k);
  };
  /** Members whose session failed and was said so: one line per failed session (a new one starts at a (re)join). */
  const failureShown = new Set<string>();
  /** Set once the prompt exists (below): what a lost connection and a reconnect show there. */
  let reconnectView: Pick<Presenter, 'connection-lost' | 'reconnecting' | 'reconnected'> = { 'connection-lost': () => {}, reconnecting: () => {}, reconnected: () => {} };
  // The interactive renderer (src/cli/presenter.ts).
  present(client, {
    joined: ({ room, members, rejoin }) => {
      failureShown.clear();
      if (rejoin) {
        info(`rejoined ${room}${members.length === 0 ? '; nobody else is here' : ` with ${members.join(', ')}`}`);
        const n = client.heldTexts().length;
        if (n > 0 && !client.reconnecting) info(`${n} message${n === 1 ? '' : 's'} not acknowledged before rejoining: /resend sends ${n === 1 ? 'it' : 'them'} again`);
        return;
      }
      if (history !== null && history.last(relayName(opts), opts.room, 1).records.length > 0) showHistory(HISTORY_SHOWN);
      info(`joined ${room} as ${client.nick}; your fingerprint is ${client.fingerprint()}`);
      // Remembered for the next run (defaults when --nick, --host/--port or --room are not given).
      writeRemembered(opts.home, { nick: client.nick, host: opts.host, port: opts.port, ...(opts.relayName === undefined ? {} : { relayName: opts.relayName }), room }).catch((e: Error) =>
        err(`local error: ${e.message}; the nickname, relay and room are not remembered (${REMEMBERED_FILE})`),
      );
      if (members.length === 0) info('nobody else is here yet; a message goes only to the members present when you send it');
    },
    'peer-joined': ({ nick, fingerprint, verified, firstSeen }) => {
      failureShown.delete(nick);
      info(`${nick} is here (key ${fingerprint}${firstSeen ? ', seen for the first time: pinned once the session is set up' : verified ? ', verified' : ''})`);
    },
    'peer-left': ({ nick, undelivered }) => {
      failureShown.delete(nick);
      forget(nick);
      info(`${nick} left`);
      for (const u of undelivered) print(p.yellow(`  ! ${describeUndelivered(u)}`));
    },
    established: ({ nick, safetyNumber, verified }) => {
      failureShown.delete(nick);
      info(`end-to-end session with ${nick} established${verified ? ' (verified)' : ''}`);
      if (!verified) {
        info(`safety number ${safetyNumber}`);
        info(`compare it with ${nick} (in person or by phone), then /verify ${nick}`);
      }
    },
    text: ({ from, ts, text, verified }) => {
      // The sender's time (TEXT.ts), flagged when it is far from ours.
      const skew = skewNote(ts);
      print(...message(clock(new Date(ts)), label(from, verified), labelWidth(from, verified), text, skew === null ? '' : p.yellow(` (${skew})`)));
    },
    sent: ({ to, seq, text }) => {
      const q = awaitingSeq.get(to);
      const i = q?.findIndex((o) => o.text === text) ?? -1;
      if (q === undefined || i < 0) return;
      bySeq.set(`${to} ${seq}`, q.splice(i, 1)[0]!);
    },
    delivered: ({ to, seq }) => {
      const o = bySeq.get(`${to} ${seq}`);
      if (o === undefined) return;
      bySeq.delete(`${to} ${seq}`);
      o.acked.add(to);
      if (o.acked.size < o.to.size) return;
      const who = o.to.size === 1 ? to : `all ${o.to.size}`;
      print(p.dim(`[${clock()}]   ✓ #${o.n} delivered to ${who} "${preview(o.text)}"`));
    },
    rejected: ({ from, error, fatal, cause }) => {
      if (fatal) {
        // §7.2: a FAILED machine reports each later input as UNEXPECTED_FRAME (a peer's late HS_RESP after
        // our TIMEOUT): that session's failure was said already, so it is said once.
        if (failureShown.has(from)) return;
        failureShown.add(from);
      }
      const advice = fatal ? causeAdvice(from, error, cause, true) : null;
      warn(fatal ? `session with ${from} failed (${error.errorName})${advice === null ? '' : `: ${advice}`}` : `a message from ${from} failed to verify (${error.errorName}) and was dropped`);
    },
    'relay-error': ({ error }) => info(`relay refused: ${error.errorName}`),
    'roster-mismatch': (r) =>
      warn(
        '',
        `!!! WARNING: ${rosterLine(r)}`,
        '    The relay is showing members of this room different rooms (spec §8.6). Messages stay end-to-end',
        `    encrypted, but who else is here is in doubt: compare the member list with ${r.peer} through another channel.`,
        '',
      ),
    'peer-churn': ({ nick, joins, windowMs, until }) =>
      info(`${nick} joined and left ${joins} times in ${Math.round(windowMs / 1000)} s; ignored until ${clock(new Date(until))}`),
    'key-elsewhere': ({ nick, offeredFingerprint, elsewhere }) =>
      warn(
        `WARNING: you verified ${nick} on another relay with another key:`,
        ...elsewhere.map((e) => `    on ${printable(e.relay)}: ${e.fingerprint}`),
        `    here: ${offeredFingerprint}`,
        `    Nicknames belong to each relay, so this may be someone else; compare safety numbers (/safety ${nick}) before trusting them.`,
      ),
    'key-changed': ({ nick, pinnedFingerprint, offeredFingerprint }) =>
      warn(
        '',
        `!!! WARNING: THE IDENTITY KEY OF ${nick} HAS CHANGED !!!`,
        `    pinned key:  ${pinnedFingerprint}`,
        `    offered key: ${offeredFingerprint}`,
        `    Someone may be impersonating ${nick}, or ${nick} set up a new key.`,
        `    Nothing is sent to or accepted from ${nick} until you check with them (/safety ${nick})`,
        `    and accept the new key with /trust ${nick}.`,
        '',
      ),
    closed: ({ failure, undelivered }) => {
      if (failure === null) return;
      for (const u of undelivered) print(p.yellow(`  ! ${describeUndelivered(u)}`));
      err(failureAdvice(failure, opts, client.nick, client.welcome?.roomSize, client.announcedRelay));
      exit(EXIT_BY_FAILURE[failure.kind]);
    },
    'connection-lost': (e) => {
      failureShown.clear();
      awaitingSeq.clear();
      bySeq.clear();
      reconnectView['connection-lost'](e);
    },
    reconnecting: (e) => reconnectView.reconnecting(e),
    reconnected: (e) => reconnectView.reconnected(e),
  });
  info(`connecting to ${opts.host}:${opts.port} as ${client.nick}...`);
  const entered = await enter(client, opts, err);
  if (entered !== null) return entered;

  const promptText = `${p.nick(client.nick)}@${opts.room}> `;
  let promptWidth = `${client.nick}@${opts.room}> `.length;
  /**
   * The connection's status while reconnecting lives in the prompt, one line redrawn in place (never a
   * line per attempt): `(reconnecting: attempt 3 in 4 s) alice@lobby> `; null puts the plain prompt back.
   */
  const setStatus = (status: string | null) => {
    const plain = `${client.nick}@${opts.room}> `;
    rl!.setPrompt(status === null ? promptText : p.yellow(`(${status}) `) + promptText);
    promptWidth = status === null ? plain.length : status.length + 3 + plain.length;
    print();
  };
  /** Tab completes a command at the start of the line, else the nickname being typed. */
  const completer = (line: string): [string[], string] => {
    const word = /(\S*)$/.exec(line)![1]!;
    const pool = line === word && word.startsWith('/') ? COMMANDS : client.members().map((m) => m.nick);
    return [pool.filter((c) => c.startsWith(word)), word];
  };
  const resizeListeners = stdout.listeners('resize');
  rl = createInterface({ input: process.stdin, output: stdout, prompt: promptText, terminal: true, historySize: 100, completer });
  resize = redrawOnResize(rl, stdout, resizeListeners);
  info('type /help for commands');

  const listHeld = (intro: string) => {
    const held = client.heldTexts();
    if (held.length === 0) return;
    info(intro);
    for (const u of held) print(p.yellow(`  ! for ${u.to}: ${printable(preview(u.text))}`));
  };
  reconnectView = {
    'connection-lost': ({ failure }) => {
      warn(`[${clock()}] connection lost: ${failure.message}`);
      listHeld('not acknowledged before the drop (kept; /resend sends them again once you are back):');
    },
    reconnecting: ({ attempt, delayMs }) => setStatus(`reconnecting: attempt ${attempt} in ${Math.max(1, Math.round(delayMs / 1000))} s`),
    reconnected: ({ downMs, attempts }) => {
      setStatus(null);
      info(`reconnected after ${(downMs / 1000).toFixed(1)} s (${attempts} attempt${attempts === 1 ? '' : 's'}); new end-to-end sessions are being set up`);
      const n = client.heldTexts().length;
      if (n > 0) info(`${n} message${n === 1 ? '' : 's'} not acknowledged before the drop: /resend sends ${n === 1 ? 'it' : 'them'} again to the member${n === 1 ? '' : 's'} ${n === 1 ? 'it was' : 'they were'} for (who may then see ${n === 1 ? 'it' : 'them'} twice)`);
    },
  };

  let quitting = false;
  /**
   * Leaves the room and exits with `code`. The LEAVE is waited for at most QUIT_GRACE_MS, so a relay
   * that hangs never keeps the program open; asked again while leaving, it exits at once.
   */
  const quit = async (code: number = EXIT.OK) => {
    if (latch.exiting) return;
    if (quitting) return exit(code);
    quitting = true;
    const left = client.closed ? client.undelivered() : await Promise.race([client.leave(), new Promise<Undelivered[]>((r) => setTimeout(() => r([]), QUIT_GRACE_MS).unref())]);
    for (const u of left) print(p.yellow(`  ! ${describeUndelivered(u)}`));
    exit(code);
  };

  // Ctrl-C: the first keeps a typed line (and says how to quit), the next quits with status 130, as a
  // SIGINT from outside does. Ctrl-D on an empty line quits with 0.
  let interruptArmed = false;
  rl.on('SIGINT', () => {
    if (rl!.line !== '' && !interruptArmed) {
      interruptArmed = true;
      info('Ctrl-C again quits (so does Ctrl-D on an empty line); your line is kept');
      return;
    }
    void quit(EXIT_INTERRUPTED);
  });
  const onSignal = () => void quit(EXIT_INTERRUPTED);
  process.on('SIGINT', onSignal);
  // After Ctrl-Z and fg, readline has put its input on pause: take it up again and redraw the prompt.
  rl.on('SIGCONT', () => rl!.prompt(true));

  // A paste (bracketed paste mode) is held: its lines are never run as commands, and several are sent
  // only after one confirmation.
  let pasting = false;
  let pasted: string[] = [];
  let confirmPaste: string[] | null = null;
  const onKey = (_: unknown, key: { name?: string } | undefined) => {
    if (key?.name === 'paste-start') {
      pasting = true;
      pasted = [];
    } else if (key?.name === 'paste-end') {
      pasting = false;
      if (pasted.length === 0) return;
      // The part after the last newline is still in the line being edited: it belongs to the paste.
      const rest = rl!.line;
      if (rest !== '') {
        pasted.push(rest);
        rl!.write(null, { ctrl: true, name: 'e' });
        rl!.write(null, { ctrl: true, name: 'u' });
      }
      confirmPaste = pasted.filter((l) => l.trim() !== '');
      pasted = [];
      if (confirmPaste.length === 0) confirmPaste = null;
      else info(`you pasted ${confirmPaste.length} line${confirmPaste.length === 1 ? '' : 's'}: type y and Enter to send ${confirmPaste.length === 1 ? 'it as a message' : `them as ${confirmPaste.length} messages`}, anything else to drop ${confirmPaste.length === 1 ? 'it' : 'them'} (commands in a paste never run)`);
    }
  };
  process.stdin.on('keypress', onKey);
  stdout.write(BRACKETED_PASTE_ON);

  const command = (line: string) => {
    const [cmd, arg, ...extra] = line.trim().split(/\s+/);
    const needNick = (): string | null => {
      if (arg === undefined || extra.length > 0) {
        err(`usage: ${cmd} NICK`);
        return null;
      }
      if (!client.members().some((m) => m.nick === arg)) {
        err(`${printable(arg)} is not in the room`);
        return null;
      }
      return arg;
    };
    switch (cmd) {
      case '/help':
        print(...HELP.map((l) => p.dim(l)));
        return;
      case '/who': {
        const rows = [`  ${label(client.nick, false)} (you)  ${client.fingerprint()}`];
        for (const m of client.members()) rows.push(`  ${label(m.nick, m.verified)}  ${m.status}${m.verified ? ', verified' : ''}  ${m.fingerprint}`);
        if (client.members().length === 0) rows.push(p.dim('  (nobody else)'));
        print(...rows);
        return;
      }
      case '/fingerprint':
        print(`your key fingerprint: ${client.fingerprint()}`);
        return;
      case '/safety': {
        const n = needNick();
        if (n === null) return;
        // A changed key is accepted with /trust before it can be verified (/verify refuses it until then).
        const changed = client.members().some((m) => m.nick === n && m.status === 'key-changed');
        const then = changed ? `/trust ${n} accepts this new key, then /verify ${n}` : `/verify ${n}`;
        void client.safetyNumber(n).then((sn) =>
          print(`safety number with ${n}${changed ? ` (with the NEW key ${n} offers)` : ''}:`, `  ${sn}`, p.dim(`compare it with ${n} over another channel; if it matches, ${then}`)),
        );
        return;
      }
      case '/verify': {
        const n = needNick();
        if (n === null) return;
        if (client.verify(n)) info(`${n} marked as verified`);
        else err(`cannot verify ${n}: its key changed; check it and /trust ${n} first`);
        return;
      }
      case '/trust': {
        const n = needNick();
        if (n === null) return;
        if (client.trust(n)) info(`accepted the new key of ${n}; starting a session (rejoining the room if ${n}'s side had given up) (not verified yet: /safety ${n})`);
        else err(`${n}'s key did not change; nothing to trust`);
        return;
      }
      case '/retry': {
        const n = needNick();
        if (n === null) return;
        // v1 restarts a failed session only through PEER_LEFT/PEER_JOINED (§7.2): we rejoin the room.
        if (client.retry(n)) info(`rejoining ${opts.room} to start new sessions (with ${n} and everyone else here)`);
        else err(`the session with ${n} has not failed (/who shows it); nothing to retry`);
        return;
      }
      case '/history': {
        const n = arg === undefined ? HISTORY_SHOWN : Number(arg);
        if (!Number.isInteger(n) || n < 1 || n > 10_000 || extra.length > 0) return err('usage: /history [N], N from 1 to 10000');
        showHistory(n);
        return;
      }
      case '/msg': {
        // /msg NICK TEXT: one member only (sessions are pairwise, so nobody else can read it).
        const m = /^\/msg\s+(\S+)\s+(.+)$/s.exec(line.trim());
        if (m === null) return err('usage: /msg NICK TEXT');
        if (!client.members().some((x) => x.nick === m[1])) return err(`${printable(m[1]!)} is not in the room`);
        if (client.reconnecting) return err('not connected yet (reconnecting)');
        say(m[2]!, m[1]!);
        return;
      }
      case '/resend': {
        if (client.reconnecting) return err('not connected yet; /resend once reconnected');
        if (client.heldTexts().length === 0) return info('nothing to resend');
        const { sent, kept } = client.resend();
        for (const u of sent) info(`sent again to ${u.to}: ${printable(preview(u.text))}`);
        for (const u of kept) info(`still kept for ${u.to} (not here with a trusted key): ${printable(preview(u.text))}`);
        return;
      }
      case '/quit':
        void quit();
        return;
      default:
        err(`unknown command ${printable(cmd ?? '')}; /help lists them`);
    }
  };

  /** Sends one text to every member present, and shows it. */
  /** Sends one text to every member present (or only to `only`), and shows it with its number. */
  const say = (text: string, only?: string) => {
    for (const piece of splitText(text, client.maxTextBytes())) {
      const to = client.send(piece, only === undefined ? {} : { to: [only] });
      const o = to.length > 0 ? track(piece, to) : null;
      const note =
        o !== null
          ? p.dim(` #${o.n}${only === undefined ? '' : ` (only to ${only})`}`)
          : only !== undefined
            ? p.red(` (NOT sent: ${only} has no session with a trusted key, see /who)`)
            : client.members().length === 0
              ? p.red(' (NOT sent: nobody else is here)')
              : p.red(' (NOT sent: no member with a trusted key, see /who)');
      print(...message(clock(), p.bold(client.nick), client.nick.length, piece, note));
    }
  };

  let continued: string[] | null = null;
  rl.on('line', (raw) => {
    if (latch.exiting) return;
    interruptArmed = false;
    // readline echoed "prompt + line"; replace that echo with the timestamped message (or nothing).
    const cols = stdout.columns > 0 ? stdout.columns : 80;
    const rows = Math.max(1, Math.ceil((promptWidth + [...raw].length) / cols));
    moveCursor(stdout, 0, -rows);
    cursorTo(stdout, 0);
    clearScreenDown(stdout);
    const line = wellFormed(raw);
    if (pasting) {
      pasted.push(line);
      rl!.prompt(true);
      return;
    }
    if (confirmPaste !== null) {
      const held = confirmPaste;
      confirmPaste = null;
      if (/^y(es)?$/i.test(line.trim()) && !client.closed) for (const l of held) say(l);
      else info(`dropped the ${held.length} pasted line${held.length === 1 ? '' : 's'}`);
      rl!.prompt();
      return;
    }
    // Multi-line messages: a line ending in a backslash continues on the next one (never a command then).
    if (continued === null && line.startsWith('/') && !line.startsWith('//')) {
      print(p.dim(`${promptWidth > 0 ? '> ' : ''}${printable(line)}`));
      command(line);
      rl!.prompt();
      return;
    }
    const first = continued === null;
    const own = first && line.startsWith('//') ? line.slice(1) : line;
    if (own.endsWith('\\')) {
      (continued ??= []).push(own.slice(0, -1));
      print(p.dim(`  … ${printable(own.slice(0, -1))}`));
      rl!.prompt();
      return;
    }
    const text = continued === null ? own : [...continued, own].join('\n');
    continued = null;
    if (text.trim() === '') {
      rl!.prompt();
      return;
    }
    if (client.reconnecting) {
      // Not sent while the connection is down: the line goes back into the input for once it is back.
      print(p.yellow(`[${clock()}] * NOT sent: reconnecting. Your line is back in the input; press Enter once reconnected.`));
      rl!.prompt();
      rl!.write(text.replace(/\n/g, ' '));
      return;
    }
    if (client.closed) {
      err('not connected');
      return;
    }
    if (client.members().length === 0) {
      // Issue 14 point 1: never kept for whoever joins next. The line goes back into the input, to be
      // sent (Enter) once someone is here.
      print(p.yellow(`[${clock()}] * NOT sent: nobody else is here. Your line is back in the input; press Enter once someone has joined.`));
      rl!.prompt();
      rl!.write(text.replace(/\n/g, ' '));
      return;
    }
    say(text);
    rl!.prompt();
  });
  rl.on('close', () => void quit());
  rl.prompt();

  const code = await exited;
  resize.stop();
  process.off('SIGINT', onSignal);
  process.stdin.off('keypress', onKey);
  stdout.write(BRACKETED_PASTE_OFF);
  // Take the prompt (and anything typed but not submitted) off the screen, so the shell starts clean.
  moveCursor(stdout, 0, -rl.getCursorPos().rows);
  cursorTo(stdout, 0);
  clearScreenDown(stdout);
  rl.close();
  process.stdin.pause();
  client.close();
  return code;
}
