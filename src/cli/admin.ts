/**
 * `e2ee-chat admin bindings list|release NICK (--registry FILE | --redis URL)`: the operator's view of a
 * relay's nickname registry (spec/PROTOCOL.md §7.5 "Release"), on a running relay. The SQLite registry is
 * opened as the relay opens it (WAL: the relay keeps serving while the command reads and writes; a write
 * waits for the relay's commit in progress), the Redis registry of a cluster through the same keys the
 * relays use; neither relay caches bindings, so a release is seen by the next AUTH without a restart.
 *
 * A list shows per binding the nickname, the key's fingerprint (spec §8.4; never key bytes), when it was
 * bound and last used, whether a recovery code is registered (never the commitment) and whether it has
 * expired. Exit status: 0 done, 1 the registry cannot be opened or read, 2 usage, 3 (release) the
 * nickname has no binding.
 */
import { existsSync } from 'node:fs';
import { RedisRegistry } from '../cluster/registry.js';
import { fingerprintOf } from '../crypto/fingerprint.js';
import { nodeBackend } from '../crypto/node.js';
import { LIMITS } from '../protocol/limits.js';
import { isNick, NICK_RULE } from '../protocol/names.js';
import { SqliteRegistry, type Registry } from '../server/registry.js';
import { printable } from '../client/text.js';
import { parseCommand } from './args.js';

export const ADMIN_EXIT = { OK: 0, REGISTRY: 1, USAGE: 2, NO_BINDING: 3 } as const;

const USAGE = `usage: e2ee-chat admin bindings list (--registry FILE | --redis URL) [--binding-expiry-ms N]
       e2ee-chat admin bindings release NICK (--registry FILE | --redis URL)

  --registry FILE          a relay's SQLite registry (the relay may be running)
  --redis redis://HOST:PORT[/DB]   the registry of a cluster of relays
  --binding-expiry-ms N    the relays' binding expiry, to mark expired bindings (default ${LIMITS.BINDING_EXPIRY_MS})

list: one line per binding: NICK, key fingerprint, bound and last used (UTC), recovery code registered
(yes/no), "expired" when unused past the expiry. release: removes the binding; the nickname is free for
the next key that authenticates with it (its contacts then see a key change).
Exit status: 0 done, 1 the registry cannot be opened or read, 2 usage, 3 no binding for NICK.`;

function fail(msg: string): number {
  process.stderr.write(`e2ee-chat admin: ${msg}\n${USAGE}\n`);
  return ADMIN_EXIT.USAGE;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('admin', argv, { registry: { type: 'string' }, redis: { type: 'string' }, 'binding-expiry-ms': { type: 'string' } }, USAGE);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [what, verb, nick, ...rest] = positionals;
  if (what !== 'bindings' || (verb !== 'list' && verb !== 'release') || rest.length > 0) return fail('expected: bindings list, or bindings release NICK');
  if (verb === 'list' && nick !== undefined) return fail('bindings list takes no nickname');
  if (verb === 'release' && (nick === undefined || !isNick(nick))) return fail(`bindings release NICK: ${NICK_RULE}`);
  if ((values.registry === undefined) === (values.redis === undefined)) return fail('give exactly one of --registry FILE and --redis URL');
  const expiryText = values['binding-expiry-ms'];
  const expiryMs = expiryText === undefined ? LIMITS.BINDING_EXPIRY_MS : Number(expiryText);
  if (!/^\d+$/.test(expiryText ?? '1') || !Number.isSafeInteger(expiryMs) || expiryMs < 1) return fail('--binding-expiry-ms: a positive integer');

  let registry: Registry;
  try {
    if (values.registry !== undefined) {
      // An existing registry only: a typo must not create an empty one and report "no bindings".
      if (!existsSync(values.registry)) throw new Error(`no registry at ${values.registry}`);
      registry = await SqliteRegistry.open(values.registry, { expiryMs, create: false });
    } else registry = await RedisRegistry.connect(values.redis!, expiryMs);
  } catch (e) {
    process.stderr.write(`e2ee-chat admin: cannot open the registry: ${(e as Error).message}\n`);
    return ADMIN_EXIT.REGISTRY;
  }
  try {
    if (verb === 'release') {
      if (!(await registry.release(nick!))) {
        process.stderr.write(`e2ee-chat admin: ${nick} has no binding\n`);
        return ADMIN_EXIT.NO_BINDING;
      }
      process.stdout.write(`released ${nick}\n`);
      return ADMIN_EXIT.OK;
    }
    for (const b of await registry.list()) {
      const when = (ms: number) => new Date(ms).toISOString();
      const line = [printable(b.nick), await fingerprintOf(nodeBackend, b.spki), `bound ${when(b.boundAt)}`, `used ${when(b.usedAt)}`, `recovery ${b.recovery ? 'yes' : 'no'}`];
      if (b.expired) line.push('expired');
      process.stdout.write(line.join('  ') + '\n');
    }
    return ADMIN_EXIT.OK;
  } catch (e) {
    process.stderr.write(`e2ee-chat admin: registry: ${(e as Error).message}\n`);
    return ADMIN_EXIT.REGISTRY;
  } finally {
    await registry.close().catch(() => undefined);
  }
}
