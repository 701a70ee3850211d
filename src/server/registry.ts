/**
 * The nickname registry (spec/PROTOCOL.md §7.1 "Nickname binding", §7.3, §7.5): a nickname is bound to
 * the first identity key that authenticates with it, until it goes unused for the expiry, an operator
 * releases it, or a new key takes it over with the recovery code. Stored per nickname: its key (DER
 * SPKI), when it was bound and last used, and the recovery commitment (a hash: the code is never stored).
 *
 * The relay sees the registry only through `Registry`, an interface of promises, so a store may live off
 * the event loop or elsewhere: the reference store keeps an embedded SQLite file in a worker thread
 * (`SqliteRegistry`), a cluster of relays may share one in Redis (src/cluster). A disk sync never runs
 * on the event loop that serves connections (issue 12: a binding flood stalled every bystander).
 */
import { timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { LIMITS } from '../protocol/limits.js';

const require = createRequire(import.meta.url);

/** 'bound': the nickname was free (or its binding had expired) and is now bound to the key; 'known': it was already bound to this key; 'mismatch': to another key. */
export type BindResult = 'bound' | 'known' | 'mismatch';

/**
 * The outcome of RECOVER (§7.5): 'bound' the nickname was free (or expired) and is now bound to the key
 * with the new commitment; 'recovered' its commitment matched the presented code's and it now belongs
 * to the key, with the new commitment; 'mismatch' it is bound and the code does not release it.
 */
export type RecoverResult = 'bound' | 'recovered' | 'mismatch';

/** One binding as the operator sees it (`e2ee-chat admin bindings list`): public data only. */
export interface BindingRow {
  nick: string;
  /** The bound key, DER SPKI (shown as its fingerprint, never as bytes). */
  spki: Uint8Array;
  /** Milliseconds since the Unix epoch: when it was bound (or last taken over), and last used. */
  boundAt: number;
  usedAt: number;
  /** Whether a recovery commitment is registered (the commitment itself is never listed). */
  recovery: boolean;
  /** Unused for longer than the expiry: the next key to authenticate with the nickname takes it. */
  expired: boolean;
}

/**
 * What the relay needs of a nickname registry. Every method may be called concurrently; `bind` is atomic
 * per nickname (of concurrent binds of one nickname with different keys exactly one is 'bound', §7.1) and
 * resolves only once the binding is durable: the relay sends WELCOME after it, and a binding a client
 * was welcomed with must survive a crash of the relay. `recover` and `setRecovery` are atomic and durable
 * the same way. A binding unused for longer than the store's expiry counts as free (§7.5).
 */
export interface Registry {
  /** Binds `nick` to `spki` (DER SPKI bytes) if the nickname is free or expired; otherwise compares in constant time and records the use. */
  bind(nick: string, spki: Uint8Array): Promise<BindResult>;
  /**
   * RECOVER (§7.5): `proof` is the commitment of the presented code, computed by the caller. Binds a free
   * nickname, or moves a bound one to `spki` when its commitment equals `proof` (compared in constant
   * time); either way `commit` becomes its commitment.
   */
  recover(nick: string, spki: Uint8Array, proof: Uint8Array, commit: Uint8Array): Promise<RecoverResult>;
  /** SET_RECOVERY (§7.5): registers `commit` for `nick` if it is bound to `spki`; false otherwise (it was taken over or released meanwhile). */
  setRecovery(nick: string, spki: Uint8Array, commit: Uint8Array): Promise<boolean>;
  /** The key bound to `nick` (a fresh copy), or undefined when the nickname is free or its binding expired. */
  lookup(nick: string): Promise<Uint8Array | undefined>;
  /** Every binding, expired ones included, ordered by nickname. */
  list(): Promise<BindingRow[]>;
  /** Removes the binding of `nick` (the operator's release); false when there was none. */
  release(nick: string): Promise<boolean>;
  /** Number of bound nicknames whose binding has not expired. */
  count(): Promise<number>;
  /** Flushes and releases the store; later calls reject. Idempotent. */
  close(): Promise<void>;
}

/** How long an unused binding lives, and how often its last use is written (§7.5, §10). */
export interface ExpiryPolicy {
  /** A binding not used for this long expires (default BINDING_EXPIRY_MS). */
  expiryMs: number;
  /** A use is written only when the recorded one is older than this: min(BINDING_TOUCH_MS, expiryMs / 8). */
  touchMs: number;
}

/** The policy for an expiry in milliseconds (1..MAX_UINT); RangeError outside. */
export function expiryPolicy(expiryMs: number = LIMITS.BINDING_EXPIRY_MS): ExpiryPolicy {
  if (!Number.isSafeInteger(expiryMs) || expiryMs < 1) throw new RangeError(`binding expiry: 1..${LIMITS.MAX_UINT} ms, got ${expiryMs}`);
  return { expiryMs, touchMs: Math.max(1, Math.min(LIMITS.BINDING_TOUCH_MS, Math.floor(expiryMs / 8))) };
}

/** Constant-time comparison of two keys (lengths are public: an SPKI length is not a secret). */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

type WriteOp =
  | { op: 'bind'; nick: string; spki: Uint8Array }
  | { op: 'recover'; nick: string; spki: Uint8Array; proof: Uint8Array; commit: Uint8Array }
  | { op: 'set-recovery'; nick: string; spki: Uint8Array; commit: Uint8Array }
  | { op: 'release'; nick: string };
type Call = WriteOp | { op: 'lookup'; nick: string } | { op: 'count' | 'list' | 'close' };
type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

/**
 * The worker thread's program, plain JavaScript (CommonJS, run with `eval`): it must load without the
 * TypeScript loader the tests run under, and it needs nothing of this project but better-sqlite3.
 *
 * Writes (bind, recover, set-recovery, release) are group-committed: those that arrive while a batch
 * commits wait for the next turn of the worker's loop and are committed together in one IMMEDIATE
 * transaction, one disk sync with `synchronous = FULL`; each read-then-write decision is atomic per
 * nickname, also with several relays (or the operator's admin command) on one file, which WAL allows
 * while the relay runs. A read or close first commits every write sent before it. A use of a binding is
 * written only when the recorded one is older than `touchMs`, so a returning user's login is a read.
 * Nothing is cached here: every decision reads the file, so an operator's release is seen at once.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { mkdirSync } = require('node:fs');
const { dirname } = require('node:path');
const { timingSafeEqual } = require('node:crypto');
const Database = require(workerData.sqlite);
const { file, expiryMs, touchMs } = workerData;
if (file !== ':memory:' && workerData.create) mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
const db = new Database(file, { fileMustExist: !workerData.create });
if (file !== ':memory:') {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
}
db.exec('CREATE TABLE IF NOT EXISTS nick_binding (nick TEXT PRIMARY KEY NOT NULL, spki BLOB NOT NULL, bound_at INTEGER NOT NULL) STRICT');
// Version 2 columns (§7.5), added to a registry written by an earlier relay: last use, recovery commitment.
const cols = db.prepare('PRAGMA table_info(nick_binding)').all().map((c) => c.name);
if (!cols.includes('used_at')) db.exec('ALTER TABLE nick_binding ADD COLUMN used_at INTEGER');
if (!cols.includes('recovery')) db.exec('ALTER TABLE nick_binding ADD COLUMN recovery BLOB');
const USED = 'COALESCE(used_at, bound_at)';
const select = db.prepare('SELECT spki, ' + USED + ' AS used, recovery FROM nick_binding WHERE nick = ?');
const insert = db.prepare('INSERT OR REPLACE INTO nick_binding (nick, spki, bound_at, used_at, recovery) VALUES (?, ?, ?, ?, ?)');
const touch = db.prepare('UPDATE nick_binding SET used_at = ? WHERE nick = ?');
const setRec = db.prepare('UPDATE nick_binding SET recovery = ? WHERE nick = ?');
const del = db.prepare('DELETE FROM nick_binding WHERE nick = ?');
const countLive = db.prepare('SELECT count(*) AS n FROM nick_binding WHERE ' + USED + ' >= ?');
const listAll = db.prepare('SELECT nick, spki, bound_at, ' + USED + ' AS used, recovery IS NOT NULL AS rec FROM nick_binding ORDER BY nick');
const buf = (u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const same = (a, b) => a.length === b.length && timingSafeEqual(a, b);
const live = (row, now) => row !== undefined && row.used >= now - expiryMs;
const write = (m, now) => {
  const row = select.get(m.nick);
  if (m.op === 'release') return del.run(m.nick).changes === 1;
  const key = buf(m.spki);
  if (m.op === 'set-recovery') {
    if (row === undefined || !same(row.spki, key)) return false;
    setRec.run(buf(m.commit), m.nick);
    return true;
  }
  // The same key keeps its binding (and commitment) even past the expiry; another key takes an expired one.
  if (m.op === 'bind' && row !== undefined && same(row.spki, key)) {
    if (row.used < now - touchMs) touch.run(now, m.nick);
    return 'known';
  }
  if (!live(row, now)) {
    insert.run(m.nick, key, now, now, m.op === 'recover' ? buf(m.commit) : null);
    return 'bound';
  }
  if (m.op === 'bind') return 'mismatch';
  if (row.recovery === null || !same(row.recovery, buf(m.proof))) return 'mismatch';
  insert.run(m.nick, key, now, now, buf(m.commit));
  return 'recovered';
};
const writeAll = db.transaction((items, now) => items.map((m) => write(m, now)));
let pending = [];
let scheduled = false;
let closed = false;
const flush = () => {
  scheduled = false;
  const items = pending;
  pending = [];
  if (items.length === 0) return;
  try {
    const results = writeAll.immediate(items, Date.now());
    items.forEach((m, i) => parentPort.postMessage({ id: m.id, ok: true, value: results[i] }));
  } catch (e) {
    for (const m of items) parentPort.postMessage({ id: m.id, ok: false, error: String(e && e.message) });
  }
};
parentPort.on('message', (m) => {
  if (closed) return parentPort.postMessage({ id: m.id, ok: false, error: 'closed' });
  if (m.op === 'bind' || m.op === 'recover' || m.op === 'set-recovery' || m.op === 'release') {
    pending.push(m);
    if (!scheduled) { scheduled = true; setImmediate(flush); }
    return;
  }
  try {
    flush();
    let value;
    const now = Date.now();
    if (m.op === 'lookup') { const row = select.get(m.nick); value = live(row, now) ? new Uint8Array(row.spki) : undefined; }
    else if (m.op === 'count') value = countLive.get(now - expiryMs).n;
    else if (m.op === 'list') value = listAll.all().map((r) => ({ nick: r.nick, spki: new Uint8Array(r.spki), boundAt: r.bound_at, usedAt: r.used, recovery: r.rec === 1, expired: r.used < now - expiryMs }));
    else { closed = true; if (file !== ':memory:') db.pragma('wal_checkpoint(PASSIVE)'); db.close(); }
    parentPort.postMessage({ id: m.id, ok: true, value });
  } catch (e) {
    parentPort.postMessage({ id: m.id, ok: false, error: String(e && e.message) });
  }
});
parentPort.postMessage({ id: 0, ok: true, value: 'open' });
`;

/** Options of SqliteRegistry.open. */
export interface SqliteRegistryOptions {
  /** Milliseconds an unused binding lives (default BINDING_EXPIRY_MS). */
  expiryMs?: number;
  /** Create the file (and its folder) when missing (default true; the admin command opens only an existing registry). */
  create?: boolean;
}

/**
 * The reference registry: a SQLite file served by a worker thread, so a commit's disk sync never blocks
 * the relay's event loop. Opening waits for the worker to have opened the file (an unusable path fails
 * `open`, not the first AUTH).
 */
export class SqliteRegistry implements Registry {
  private readonly worker: Worker;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private dead: Error | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly file: string,
    policy: ExpiryPolicy,
    create: boolean,
  ) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { file, sqlite: require.resolve('better-sqlite3'), expiryMs: policy.expiryMs, touchMs: policy.touchMs, create },
    });
    this.worker.on('message', (r: Reply) => {
      const c = this.calls.get(r.id);
      if (c === undefined) return;
      this.calls.delete(r.id);
      if (r.ok) c.resolve(r.value);
      else c.reject(new Error(`registry: ${r.error}`));
    });
    const fail = (e: Error): void => {
      this.dead ??= e;
      for (const c of this.calls.values()) c.reject(this.dead);
      this.calls.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`registry worker exited (${code})`)));
  }

  /** Starts the worker on `file` (a path or ':memory:') and resolves once the store is open. */
  static async open(file: string, opts: SqliteRegistryOptions = {}): Promise<SqliteRegistry> {
    const r = new SqliteRegistry(file, expiryPolicy(opts.expiryMs), opts.create ?? true);
    try {
      await r.count();
    } catch (e) {
      await r.worker.terminate();
      throw e;
    }
    return r;
  }

  private call(req: Call): Promise<unknown> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id });
    });
  }

  bind(nick: string, spki: Uint8Array): Promise<BindResult> {
    return this.call({ op: 'bind', nick, spki: Uint8Array.from(spki) }) as Promise<BindResult>;
  }

  recover(nick: string, spki: Uint8Array, proof: Uint8Array, commit: Uint8Array): Promise<RecoverResult> {
    return this.call({ op: 'recover', nick, spki: Uint8Array.from(spki), proof: Uint8Array.from(proof), commit: Uint8Array.from(commit) }) as Promise<RecoverResult>;
  }

  setRecovery(nick: string, spki: Uint8Array, commit: Uint8Array): Promise<boolean> {
    return this.call({ op: 'set-recovery', nick, spki: Uint8Array.from(spki), commit: Uint8Array.from(commit) }) as Promise<boolean>;
  }

  lookup(nick: string): Promise<Uint8Array | undefined> {
    return this.call({ op: 'lookup', nick }) as Promise<Uint8Array | undefined>;
  }

  list(): Promise<BindingRow[]> {
    return this.call({ op: 'list' }) as Promise<BindingRow[]>;
  }

  release(nick: string): Promise<boolean> {
    return this.call({ op: 'release', nick }) as Promise<boolean>;
  }

  count(): Promise<number> {
    return this.call({ op: 'count' }) as Promise<number>;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (this.dead === undefined) await this.call({ op: 'close' });
      } finally {
        this.dead ??= new Error('registry closed');
        await this.worker.terminate();
      }
    })();
    return this.closing;
  }
}
