/**
 * The nickname registry of a cluster (spec/CLUSTER.md §1, PROTOCOL.md §7.1, §7.5) in Redis: a hash per
 * nickname (`e2ee:nick:<nick>`: spki, bound, used, rec) and a sorted set of nicknames by last use
 * (`e2ee:nick-used`). Every decision of a relay is one script of ./scripts.ts; the operator's list and
 * release (`e2ee-chat admin bindings ... --redis URL`) read and delete through the same keys, so every
 * relay of the cluster sees a release at once (nothing is cached).
 */
import { Redis } from 'ioredis';
import { sameKey, expiryPolicy, type BindingRow, type BindResult, type ExpiryPolicy, type RecoverResult, type Registry } from '../server/registry.js';
import { scriptSource, SCRIPTS } from './scripts.js';
import type { ClusterScript } from './tables.js';
import { parseRedisUrl } from './redis.js';

type Call = (...args: (string | Buffer | number)[]) => Promise<unknown>;

export const NICK_PREFIX = 'e2ee:nick:';
export const NICK_USED = 'e2ee:nick-used';

/** The registry scripts, defined on a connection under their names with '_' for '-'. */
const REGISTRY_SCRIPTS = ['bind-nickname-if-free-or-same-key', 'move-nickname-with-recovery-code', 'set-recovery-if-same-key'] as const satisfies readonly ClusterScript[];

/** Defines every cluster script on `redis` (idempotent per connection). */
export function defineScripts(redis: Redis): void {
  for (const name of Object.keys(SCRIPTS) as ClusterScript[]) {
    if ((redis as unknown as Record<string, unknown>)[name.replaceAll('-', '_')] !== undefined) continue;
    redis.defineCommand(name.replaceAll('-', '_'), { numberOfKeys: SCRIPTS[name].keys, lua: scriptSource(name) });
  }
}

/** Registry over a Redis connection whose scripts are defined (defineScripts). */
export class RedisRegistry implements Registry {
  private readonly policy: ExpiryPolicy;

  constructor(
    private readonly cmd: Redis,
    expiryMs?: number,
    /** Refuses work while the store is known to be down (the cluster's availability), else always true. */
    private readonly available: () => boolean = () => true,
    private readonly owned = false,
  ) {
    this.policy = expiryPolicy(expiryMs);
  }

  /** A registry on its own connection to `url` (the operator's command): no presence, no subscription. */
  static async connect(url: string, expiryMs?: number): Promise<RedisRegistry> {
    const a = parseRedisUrl(url);
    const cmd = new Redis({ host: a.host, port: a.port, db: a.db, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    cmd.on('error', () => {
      // reported by the command that fails
    });
    await cmd.connect();
    defineScripts(cmd);
    return new RedisRegistry(cmd, expiryMs, () => true, true);
  }

  private script(name: (typeof REGISTRY_SCRIPTS)[number]): Call {
    const fn = (this.cmd as unknown as Record<string, Call>)[name.replaceAll('-', '_') + 'Buffer'];
    if (fn === undefined) throw new Error(`script ${name} not defined`);
    return fn.bind(this.cmd);
  }

  private check(): void {
    if (!this.available()) throw new Error('cluster store unavailable');
  }

  async bind(nick: string, spki: Uint8Array): Promise<BindResult> {
    this.check();
    const { expiryMs, touchMs } = this.policy;
    const r = (await this.script('bind-nickname-if-free-or-same-key')(NICK_PREFIX + nick, NICK_USED, Buffer.from(spki), Date.now(), expiryMs, touchMs)) as [number, Buffer?];
    if (r[0] === 1) return 'bound';
    return r[1] !== undefined && sameKey(r[1], spki) ? 'known' : 'mismatch';
  }

  async recover(nick: string, spki: Uint8Array, proof: Uint8Array, commit: Uint8Array): Promise<RecoverResult> {
    this.check();
    const r = Number(
      await this.script('move-nickname-with-recovery-code')(NICK_PREFIX + nick, NICK_USED, Buffer.from(proof), Buffer.from(spki), Buffer.from(commit), Date.now(), this.policy.expiryMs),
    );
    return r === 1 ? 'bound' : r === 2 ? 'recovered' : 'mismatch';
  }

  async setRecovery(nick: string, spki: Uint8Array, commit: Uint8Array): Promise<boolean> {
    this.check();
    return Number(await this.script('set-recovery-if-same-key')(NICK_PREFIX + nick, Buffer.from(spki), Buffer.from(commit))) === 1;
  }

  async lookup(nick: string): Promise<Uint8Array | undefined> {
    const [spki, used] = await this.cmd.hmgetBuffer(NICK_PREFIX + nick, 'spki', 'used');
    if (spki === null || spki === undefined || used === null || used === undefined || Number(used.toString()) < Date.now() - this.policy.expiryMs) return undefined;
    return new Uint8Array(spki);
  }

  async list(): Promise<BindingRow[]> {
    const nicks = (await this.cmd.zrange(NICK_USED, 0, -1)).sort();
    const p = this.cmd.pipeline();
    for (const n of nicks) p.hmgetBuffer(NICK_PREFIX + n, 'spki', 'bound', 'used', 'rec');
    const res = (await p.exec()) ?? [];
    const now = Date.now();
    const rows: BindingRow[] = [];
    nicks.forEach((nick, i) => {
      const v = res[i]?.[1] as (Buffer | null)[] | undefined;
      if (v === undefined || v[0] === null || v[0] === undefined) return;
      const usedAt = Number(v[2]?.toString() ?? 0);
      rows.push({ nick, spki: new Uint8Array(v[0]), boundAt: Number(v[1]?.toString() ?? 0), usedAt, recovery: v[3] !== null && v[3] !== undefined, expired: usedAt < now - this.policy.expiryMs });
    });
    return rows;
  }

  async release(nick: string): Promise<boolean> {
    const r = await this.cmd.multi().del(NICK_PREFIX + nick).zrem(NICK_USED, nick).exec();
    return Number(r?.[0]?.[1] ?? 0) === 1;
  }

  async count(): Promise<number> {
    return this.cmd.zcount(NICK_USED, Date.now() - this.policy.expiryMs, '+inf');
  }

  /** Disconnects a connection this registry opened itself (connect); the cluster's own is closed by the cluster. */
  async close(): Promise<void> {
    if (this.owned) this.cmd.disconnect();
  }
}
