/**
 * The nickname registry (spec/PROTOCOL.md §7.1 "Nickname binding", §7.3): a nickname is bound to the
 * first identity key that authenticates with it, permanently. Only public data is stored: the nickname,
 * its key (DER SPKI) and when it was bound.
 *
 * The relay sees the registry only through `Registry`, an interface of promises, so a store may live off
 * the event loop or elsewhere: the reference store keeps an embedded SQLite file in a worker thread
 * (`SqliteRegistry`), a cluster of relays may share one in Redis (src/cluster). A disk sync never runs
 * on the event loop that serves connections (issue 12: a binding flood stalled every bystander).
 */
import { timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const require = createRequire(import.meta.url);

/** 'bound': the nickname was new and is now bound to the key; 'known': it was already bound to this key; 'mismatch': to another key. */
export type BindResult = 'bound' | 'known' | 'mismatch';

/**
 * What the relay needs of a nickname registry. Every method may be called concurrently; `bind` is atomic
 * per nickname (of concurrent binds of one nickname with different keys exactly one is 'bound', §7.1) and
 * resolves only once the binding is durable: the relay sends WELCOME after it, and a binding a client
 * was welcomed with must survive a crash of the relay.
 */
export interface Registry {
  /** Binds `nick` to `spki` (DER SPKI bytes) if the nickname is new; otherwise compares in constant time. */
  bind(nick: string, spki: Uint8Array): Promise<BindResult>;
  /** The key bound to `nick` (a fresh copy), or undefined when the nickname is free. */
  lookup(nick: string): Promise<Uint8Array | undefined>;
  /** Number of bound nicknames. */
  count(): Promise<number>;
  /** Flushes and releases the store; later calls reject. Idempotent. */
  close(): Promise<void>;
}

/** Constant-time comparison of two keys (lengths are public: an SPKI length is not a secret). */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

type Request =
  | { id: number; op: 'bind'; nick: string; spki: Uint8Array }
  | { id: number; op: 'lookup'; nick: string }
  | { id: number; op: 'count' }
  | { id: number; op: 'close' };
type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

/**
 * The worker thread's program, plain JavaScript (CommonJS, run with `eval`): it must load without the
 * TypeScript loader the tests run under, and it needs nothing of this project but better-sqlite3.
 *
 * Binds are group-committed: those that arrive while a batch commits wait for the next turn of the
 * worker's loop and are committed together in one transaction, one disk sync with `synchronous = FULL`.
 * Insert-or-ignore then select is one atomic decision per nickname, also with several relays on one file.
 * A read or close first commits every bind sent before it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { mkdirSync } = require('node:fs');
const { dirname } = require('node:path');
const { timingSafeEqual } = require('node:crypto');
const Database = require(workerData.sqlite);
const file = workerData.file;
if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
const db = new Database(file);
if (file !== ':memory:') {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
}
db.exec('CREATE TABLE IF NOT EXISTS nick_binding (nick TEXT PRIMARY KEY NOT NULL, spki BLOB NOT NULL, bound_at INTEGER NOT NULL) STRICT');
const insert = db.prepare('INSERT OR IGNORE INTO nick_binding (nick, spki, bound_at) VALUES (?, ?, ?)');
const select = db.prepare('SELECT spki AS key FROM nick_binding WHERE nick = ?');
const countAll = db.prepare('SELECT count(*) AS n FROM nick_binding');
const bindOne = (nick, spki) => {
  const key = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength);
  if (insert.run(nick, key, Date.now()).changes === 1) return 'bound';
  const row = select.get(nick);
  if (row === undefined) return 'mismatch';
  return row.key.length === key.length && timingSafeEqual(row.key, key) ? 'known' : 'mismatch';
};
const bindAll = db.transaction((items) => items.map((m) => bindOne(m.nick, m.spki)));
let pending = [];
let scheduled = false;
let closed = false;
const flush = () => {
  scheduled = false;
  const items = pending;
  pending = [];
  if (items.length === 0) return;
  try {
    const results = bindAll(items);
    items.forEach((m, i) => parentPort.postMessage({ id: m.id, ok: true, value: results[i] }));
  } catch (e) {
    for (const m of items) parentPort.postMessage({ id: m.id, ok: false, error: String(e && e.message) });
  }
};
parentPort.on('message', (m) => {
  if (closed) return parentPort.postMessage({ id: m.id, ok: false, error: 'closed' });
  if (m.op === 'bind') {
    pending.push(m);
    if (!scheduled) { scheduled = true; setImmediate(flush); }
    return;
  }
  try {
    flush();
    let value;
    if (m.op === 'lookup') { const row = select.get(m.nick); value = row === undefined ? undefined : new Uint8Array(row.key); }
    else if (m.op === 'count') value = countAll.get().n;
    else { closed = true; if (file !== ':memory:') db.pragma('wal_checkpoint(TRUNCATE)'); db.close(); }
    parentPort.postMessage({ id: m.id, ok: true, value });
  } catch (e) {
    parentPort.postMessage({ id: m.id, ok: false, error: String(e && e.message) });
  }
});
parentPort.postMessage({ id: 0, ok: true, value: 'open' });
`;

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

  private constructor(readonly file: string) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, sqlite: require.resolve('better-sqlite3') } });
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
  static async open(file: string): Promise<SqliteRegistry> {
    const r = new SqliteRegistry(file);
    try {
      await r.count();
    } catch (e) {
      await r.worker.terminate();
      throw e;
    }
    return r;
  }

  private call(req: Omit<Request, 'id'> & { op: Request['op'] }): Promise<unknown> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id });
    });
  }

  bind(nick: string, spki: Uint8Array): Promise<BindResult> {
    return this.call({ op: 'bind', nick, spki: Uint8Array.from(spki) } as Request) as Promise<BindResult>;
  }

  lookup(nick: string): Promise<Uint8Array | undefined> {
    return this.call({ op: 'lookup', nick } as Request) as Promise<Uint8Array | undefined>;
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
