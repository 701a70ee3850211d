/**
 * `e2ee-chat pins list|forget`: the trust store of `--home` (src/client/pins.ts), without a relay and
 * without the identity's passphrase (pins are public keys).
 * - `list [--relay ID]` prints one line per pin: relay identity, nickname, fingerprint, verified or
 *   unverified, separated by tabs.
 * - `forget NICK [--relay ID]` removes the pins of NICK (on every relay, or on ID only), as
 *   `ssh-keygen -R` does for a host: the next key seen for NICK is first seen again.
 * ID is a relay as `list` prints it or as dialled (`HOST:PORT`), read through relayIdentity, so
 * `--relay 127.0.0.1:7000` names the pins of `localhost:7000`.
 * Exit status: 0 done, 1 `forget` found no pin, 2 usage (or an unsafe --home or store), 3 a client uses
 * this --home (forget only), 8 the store could not be written.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { defaultHome } from '../client/home.js';
import { PinStore, PINS_DB } from '../client/pins.js';
import { parseRelayIdentity } from '../protocol/relay-id.js';
import { printable } from '../client/text.js';
import { checkPrivateDir, PrivateFileError } from '../files/private.js';
import { isNick, NICK_RULE } from '../protocol/names.js';
import { failer, parseCommand, STD, type Output } from './args.js';

const USAGE = `usage: e2ee-chat pins list [--relay ID] [--home DIR]
       e2ee-chat pins forget NICK [--relay ID] [--home DIR]

list     every pinned key: relay, nickname, fingerprint, verified or unverified (tab-separated)
forget   remove the pins of NICK (on every relay, or on --relay ID only); the next key seen for NICK
         is first seen again. Refused (status 3) while a client uses this --home.
ID       a relay as 'list' prints it or as you dial it: HOST:PORT or [IPV6]:PORT
Exit status: 0 done, 1 no pin to forget, 2 usage or an unsafe --home, 3 a client uses this --home,\n8 the store could not be written, 141 the output pipe closed early.`;

export async function run(argv: string[], io: Output = STD): Promise<number> {
  const fail = failer('pins', io);
  const parsed = parseCommand('pins', argv, { home: { type: 'string' }, relay: { type: 'string' } }, USAGE, io);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [verb, ...rest] = positionals;
  if (!((verb === 'list' && rest.length === 0) || (verb === 'forget' && rest.length === 1))) return fail(USAGE);
  const nick = rest[0];
  if (nick !== undefined && !isNick(nick)) return fail(`nickname: ${NICK_RULE}`);
  let relay: string | undefined;
  if (values.relay !== undefined) {
    const id = parseRelayIdentity(values.relay);
    if (id === null) return fail(`--relay ${printable(values.relay)}: expected HOST:PORT or [IPV6]:PORT`);
    relay = id;
  }
  const home = values.home ?? defaultHome();
  if (!existsSync(join(home, PINS_DB))) {
    if (verb === 'list') return 0;
    return fail(`no pin for ${nick} in ${home}`, 1);
  }

  let store: PinStore;
  try {
    checkPrivateDir(home);
    store = await PinStore.open(home);
  } catch (e) {
    if (e instanceof PrivateFileError) return fail(`--home ${home}: ${e.message}`, e.code === 'IO' ? 8 : 2);
    throw e;
  }
  try {
    if (store.warning !== null) io.err(`warning: ${store.warning}\n`);
    if (verb === 'list') {
      for (const p of store.list(relay)) io.out(`${printable(p.relay)}\t${p.nick}\t${p.fingerprint}\t${p.verified ? 'verified' : 'unverified'}\n`);
      return 0;
    }
    if (store.mode !== 'read-write') return fail(`${store.path}: not writable now, nothing forgotten`, 8);
    // A running client keeps the keys it checked in memory and would go on showing a forgotten key as
    // verified (and write it back): forgetting waits until no client uses this --home.
    const users = store.users();
    if (users.length > 0) {
      const who = users.map((u) => (u.host === hostname() ? `pid ${u.pid}` : `pid ${u.pid} on ${printable(u.host)}`)).join(', ');
      return fail(`a client uses ${home} (${who}); quit it first, nothing forgotten`, 3);
    }
    let n: number;
    try {
      n = store.forget(nick!, relay);
    } catch (e) {
      if (e instanceof PrivateFileError) return fail(e.message, 8);
      throw e;
    }
    if (n === 0) return fail(`no pin for ${nick}${relay === undefined ? '' : ` on ${relay}`} in ${store.path}`, 1);
    io.err(`forgot ${n} pin${n === 1 ? '' : 's'} of ${nick}${relay === undefined ? '' : ` on ${relay}`}\n`);
    return 0;
  } finally {
    store.close();
  }
}
