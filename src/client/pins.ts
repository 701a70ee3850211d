/**
 * Trust on first use: the identity key first seen for a nickname on a server is pinned, and a different
 * key for that nickname later is a key change that the user must accept explicitly (issue 5, spec §11:
 * "a key-change warning for a pinned nickname").
 *
 * Issue 14 point 2, a store that scales and cannot be flooded:
 * - pins live in SQLite (`<home>/pins.db`, WAL), keyed by the relay's identity (src/protocol/relay-id.ts,
 *   one spelling per relay; rows of earlier versions, kept under the address as typed, are moved to it
 *   once) and the nickname; each change is one small row write, never a rewrite of the whole store;
 * - a fingerprint index across relays (issue 14 point 6): `verifiedElsewhere` names the relays where the
 *   same nickname is verified with another key;
 * - a member is pinned only once a session with it is established (ChatClient calls `pin` then), so a relay
 *   announcing members costs the store nothing;
 * - unverified pins are bounded (MAX_UNVERIFIED_PINS); past the bound the least recently used one is
 *   evicted. Verified pins are never evicted;
 * - writes leave the caller's synchronous path: `pin`/`verify` update memory at once and the rows are
 *   written in one small transaction on the next turn of the event loop (synchronous = NORMAL under WAL:
 *   no fsync per commit). A crash can lose the pins of the last turn, never corrupt the store;
 * - a corrupt or oversized store is a warning, not a refusal to start: the store is used read only (or not
 *   at all when unreadable) and nothing is written to it. A failed write turns the store read only for the
 *   rest of the run and is reported through `onWriteError` with the path;
 * - the files are under the rules of src/files/private.ts: created 0600 with O_EXCL|O_NOFOLLOW, and a
 *   symbolic link, another owner or a mode open to group or others is refused (PrivateFileError).
 * The pins.json of earlier versions is imported once (its rows and a marker in one transaction), then
 * renamed to pins.json.migrated.
 */
import { timingSafeEqual } from 'node:crypto';
import { renameSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { fingerprint } from '../crypto/safety.js';
import { LIMITS } from '../protocol/limits.js';
import { parseRelayIdentity } from '../protocol/relay-id.js';
import { createPrivateFileSync, PrivateFileError, readPrivateFile, statPrivateFile } from '../files/private.js';

export const PINS_DB = 'pins.db';
/** The JSON store of earlier versions, imported once. */
export const LEGACY_PINS_FILE = 'pins.json';
/** Most unverified pins kept; the least recently used is evicted beyond it. */
export const MAX_UNVERIFIED_PINS = 1000;
/** Largest pin store opened for writing; a larger one is used read only (and SQLite stops growing it here). */
export const MAX_PIN_STORE_BYTES = 16 * 1024 * 1024;
/** Largest legacy pins.json imported (the old client wrote files past its own 16 MiB read bound). */
const MAX_LEGACY_BYTES = 64 * 1024 * 1024;
const FORMAT = 'e2ee-chat pins v2';
/** A store locked by another process is retried this often, BUSY_RETRY_MS doubling (0.1 + 0.2 + ... = 3.1 s). */
const BUSY_RETRIES = 5;
const BUSY_RETRY_MS = 100;
const LEGACY_FORMAT = 'e2ee-chat pins v1';
const HEX = /^(?:[0-9a-f]{2})+$/;

/** A legacy pins.json that does not parse exactly (it is then left in place and not imported). */
export class PinStoreError extends Error {
  constructor(
    readonly code: 'CORRUPT',
    detail: string,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'PinStoreError';
  }
}

export interface Pin {
  /** The pinned identity key, DER SubjectPublicKeyInfo (294 bytes for RSA-2048); empty when the stored row is unreadable. */
  readonly key: Uint8Array;
  /** True once the user compared the safety number and ran /verify. */
  readonly verified: boolean;
}

/** The result of checking a key against the pins: first sight, the pinned key, or a different key. */
export type PinCheck =
  | { readonly status: 'new' }
  | { readonly status: 'match'; readonly verified: boolean }
  | { readonly status: 'changed'; readonly pinned: Uint8Array; readonly pinnedFingerprint: string; readonly offeredFingerprint: string };

export type PinStoreMode = 'memory' | 'read-write' | 'read-only';

/** One pin as `list` reports it. */
export interface PinEntry {
  readonly relay: string;
  readonly nick: string;
  readonly key: Uint8Array;
  readonly fingerprint: string;
  readonly verified: boolean;
}

/** Most relays `verifiedElsewhere` names (a nickname verified on more is still reported, with these). */
const MAX_ELSEWHERE = 8;

export interface PinStoreOptions {
  /** Bound on unverified pins (default MAX_UNVERIFIED_PINS). */
  maxUnverified?: number;
  /** Bound on the store file in bytes (default MAX_PIN_STORE_BYTES). */
  maxBytes?: number;
  /** Called once when a write fails; the store is read only afterwards. */
  onWriteError?: (e: PrivateFileError) => void;
  /**
   * Records this process in the store as one that uses it (a row `client PID` of the meta table, removed
   * at close), so `users()` of another process can tell: `pins forget` must not change what a running
   * client holds in memory (it would go on showing a forgotten key as verified). Only a store open for
   * writing records itself; a crashed process leaves a row that `users()` finds dead and drops.
   */
  register?: boolean;
}

const USER_ROW = 'client ';

interface Row {
  server: string;
  nick: string;
  key: Uint8Array;
  verified: boolean;
  used: number;
}

interface DbRow {
  key: unknown;
  verified: unknown;
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}

const rowId = (server: string, nick: string) => `${server}\u0000${nick}`;

/**
 * The pin store of one home folder. Not safe for two processes writing one home at the same time beyond
 * what SQLite itself guarantees (each row write is atomic; the last writer of a row wins).
 */
export class PinStore {
  /** Set when the store could not be used as asked (corrupt, oversized, unwritable); for the user. */
  warning: string | null = null;
  private db: Database.Database | null = null;
  private stmts: {
    get: Database.Statement<[string, string], DbRow>;
    put: Database.Statement<[string, string, Buffer, number, number]>;
    evict: Database.Statement<[number]>;
  } | null = null;
  /** Rows changed this run and not yet written (all of them, when nothing is written). */
  private readonly overlay = new Map<string, Row>();
  private readonly dirty = new Set<string>();
  private flushing: NodeJS.Immediate | null = null;
  private retry: NodeJS.Timeout | null = null;
  private busyRetries = 0;
  /** Unverified rows in the database file (the overlay's own are counted when written). */
  private unverifiedInDb = 0;
  private clock = 0;
  private closing = false;
  private readonly maxUnverified: number;
  private readonly maxBytes: number;
  private readonly onWriteError: ((e: PrivateFileError) => void) | undefined;

  private constructor(
    private modeValue: PinStoreMode,
    readonly path: string | null,
    opts: PinStoreOptions,
  ) {
    this.maxUnverified = opts.maxUnverified ?? MAX_UNVERIFIED_PINS;
    this.maxBytes = opts.maxBytes ?? MAX_PIN_STORE_BYTES;
    this.onWriteError = opts.onWriteError;
    if (!Number.isInteger(this.maxUnverified) || this.maxUnverified < 1) throw new RangeError('maxUnverified: an integer >= 1');
  }

  get mode(): PinStoreMode {
    return this.modeValue;
  }

  /** An in-memory store that is never written (for library users that do their own trust). */
  static memory(opts: PinStoreOptions = {}): PinStore {
    return new PinStore('memory', null, opts);
  }

  /**
   * Opens `<home>/pins.db`, creating it (0600) when absent and importing a legacy pins.json once.
   * Throws PrivateFileError when a store file is a symbolic link, another user's, or open to group or
   * others (the user must fix that, as for the identity key). Anything else wrong with the store gives a
   * usable PinStore with `warning` set and `mode` 'read-only' or 'memory'.
   */
  static async open(home: string, opts: PinStoreOptions = {}): Promise<PinStore> {
    const path = join(home, PINS_DB);
    const store = new PinStore('read-write', path, opts);
    const st = statPrivateFile(path);
    for (const side of ['-wal', '-shm']) statPrivateFile(path + side);
    let readonly = false;
    if (st === null) createPrivateFileSync(path);
    else if (st.size > store.maxBytes) {
      readonly = true;
      store.warning = `${path} is larger than ${store.maxBytes} bytes: pins are read from it but nothing new is saved`;
    }
    try {
      // timeout 0: a lock held by another process must never block this event loop (better-sqlite3 waits
      // synchronously); a busy store is retried from a timer instead (flush).
      store.attach(new Database(path, { readonly, fileMustExist: true, timeout: 0 }), readonly);
    } catch (e) {
      store.detach();
      store.modeValue = 'memory';
      store.warning = `${path} is unreadable (${(e as Error).message}): every key counts as first seen in this run and nothing is saved; move the file away to start a new store`;
      return store;
    }
    if (store.modeValue === 'read-write') {
      await store.importLegacy(home);
      store.canonicalRelays();
      if (opts.register === true) store.registerUser();
    }
    return store;
  }

  private attach(db: Database.Database, readonly: boolean): void {
    this.db = db;
    if (!readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      db.pragma(`max_page_count = ${Math.max(8, Math.floor(this.maxBytes / pageSize))}`);
    }
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`integrity check: ${String(check)}`);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[];
    if (tables.length === 0 && !readonly) {
      db.exec(`
        CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;
        CREATE TABLE pins (server TEXT NOT NULL, nick TEXT NOT NULL, key BLOB NOT NULL,
          verified INTEGER NOT NULL CHECK (verified IN (0, 1)), used INTEGER NOT NULL, PRIMARY KEY (server, nick)) STRICT;
        CREATE INDEX pins_lru ON pins (verified, used);
      `);
      db.prepare("INSERT INTO meta (name, value) VALUES ('format', ?)").run(FORMAT);
    } else {
      const format = tables.includes('meta') ? db.prepare("SELECT value FROM meta WHERE name = 'format'").pluck().get() : undefined;
      if (format !== FORMAT || !tables.includes('pins')) throw new Error('not an e2ee-chat pin store');
    }
    // The fingerprint index across relays looks pins up by nickname (stores of earlier versions lack it).
    if (!readonly) db.exec('CREATE INDEX IF NOT EXISTS pins_nick ON pins (nick)');
    this.stmts = {
      get: db.prepare<[string, string], DbRow>('SELECT key, verified FROM pins WHERE server = ? AND nick = ?'),
      put: db.prepare(
        'INSERT INTO pins (server, nick, key, verified, used) VALUES (?, ?, ?, ?, ?) ON CONFLICT (server, nick) DO UPDATE SET key = excluded.key, verified = excluded.verified, used = excluded.used',
      ),
      evict: db.prepare('DELETE FROM pins WHERE rowid IN (SELECT rowid FROM pins WHERE verified = 0 ORDER BY used LIMIT ?)'),
    };
    this.clock = (db.prepare('SELECT coalesce(max(used), 0) FROM pins').pluck().get() as number) + 1;
    this.unverifiedInDb = db.prepare('SELECT count(*) FROM pins WHERE verified = 0').pluck().get() as number;
    if (readonly) {
      this.modeValue = 'read-only';
    }
  }

  private registered = false;

  private registerUser(): void {
    try {
      this.db!.prepare('INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)').run(USER_ROW + process.pid, hostname());
      this.registered = true;
    } catch {
      // A busy store: the run goes on unrecorded (users() of another process will not see it).
    }
  }

  /**
   * The other live processes that opened this store with `register` (their pids). A row of a process
   * that no longer exists on this host is dropped (when the store is writable); one recorded on another
   * host (a --home on a network file system) is taken as live, since it cannot be checked from here.
   */
  users(): { pid: number; host: string }[] {
    if (this.db === null) return [];
    const rows = this.db.prepare("SELECT name, value FROM meta WHERE name LIKE 'client %'").all() as { name: string; value: string }[];
    const live: { pid: number; host: string }[] = [];
    for (const r of rows) {
      const pid = Number(r.name.slice(USER_ROW.length));
      if (!Number.isSafeInteger(pid) || pid <= 0) continue;
      if (pid === process.pid && r.value === hostname()) continue;
      if (r.value === hostname() && !alive(pid)) {
        if (this.modeValue === 'read-write') {
          try {
            this.db.prepare('DELETE FROM meta WHERE name = ?').run(r.name);
          } catch {
            // left for the next look
          }
        }
        continue;
      }
      live.push({ pid, host: r.value });
    }
    return live;
  }

  private detach(): void {
    try {
      this.db?.close();
    } catch {
      // already unusable
    }
    this.db = null;
    this.stmts = null;
  }

  /** Imports `<home>/pins.json` of earlier versions once (rows and marker in one transaction). */
  private async importLegacy(home: string): Promise<void> {
    const db = this.db!;
    if (db.prepare("SELECT 1 FROM meta WHERE name = 'legacy_imported'").get() !== undefined) return;
    const legacy = join(home, LEGACY_PINS_FILE);
    let raw: Buffer;
    try {
      raw = await readPrivateFile(legacy, MAX_LEGACY_BYTES);
    } catch (e) {
      if (e instanceof PrivateFileError && e.code === 'NOT_FOUND') return;
      if (e instanceof PrivateFileError && e.code === 'INSECURE_PERMISSIONS') throw e;
      this.warning = `${legacy} was not imported: ${(e as Error).message}`;
      return;
    }
    let rows: { server: string; nick: string; key: Uint8Array; verified: boolean }[];
    try {
      rows = parseLegacy(raw);
    } catch (e) {
      this.warning = `${legacy} was not imported: ${(e as Error).message}`;
      return;
    }
    db.transaction(() => {
      for (const r of rows) this.stmts!.put.run(r.server, r.nick, Buffer.from(r.key), r.verified ? 1 : 0, this.clock++);
      this.unverifiedInDb = db.prepare('SELECT count(*) FROM pins WHERE verified = 0').pluck().get() as number;
      this.evictExcess();
      db.prepare("INSERT INTO meta (name, value) VALUES ('legacy_imported', ?)").run(String(rows.length));
    })();
    try {
      renameSync(legacy, `${legacy}.migrated`);
    } catch {
      // The marker already keeps it from being imported twice.
    }
  }

  /**
   * Moves the rows of earlier versions, kept under the relay's address as the user typed it
   * (`LOCALHOST:7000`, `127.0.0.1:7000`), to the relay's identity (`localhost:7000`), once. Where both
   * spellings pinned the nickname, the verified pin wins, then the one used last.
   */
  private canonicalRelays(): void {
    const db = this.db!;
    if (db.prepare("SELECT 1 FROM meta WHERE name = 'relay_ids'").get() !== undefined) return;
    const servers = db.prepare('SELECT DISTINCT server FROM pins').pluck().all() as string[];
    db.transaction(() => {
      for (const server of servers) {
        const id = parseRelayIdentity(server);
        if (id === null || id === server) continue;
        const rows = db.prepare('SELECT nick, key, verified, used FROM pins WHERE server = ?').all(server) as { nick: string; key: Buffer; verified: number; used: number }[];
        for (const r of rows) {
          const there = db.prepare('SELECT verified, used FROM pins WHERE server = ? AND nick = ?').get(id, r.nick) as { verified: number; used: number } | undefined;
          if (there === undefined || r.verified > there.verified || (r.verified === there.verified && r.used > there.used)) {
            this.stmts!.put.run(id, r.nick, r.key, r.verified, r.used);
          }
        }
        db.prepare('DELETE FROM pins WHERE server = ?').run(server);
      }
      db.prepare("INSERT INTO meta (name, value) VALUES ('relay_ids', '1')").run();
    })();
    this.unverifiedInDb = db.prepare('SELECT count(*) FROM pins WHERE verified = 0').pluck().get() as number;
  }

  /**
   * The fingerprint index across relays: the relays other than `server` where `nick` is verified with a
   * key other than `key` (at most MAX_ELSEWHERE of them). Nicknames belong to each relay, so this is a
   * warning for the user, not a key change.
   */
  verifiedElsewhere(server: string, nick: string, key: Uint8Array): { relay: string; fingerprint: string }[] {
    const found = new Map<string, Uint8Array>();
    for (const r of this.overlay.values()) if (r.nick === nick && r.server !== server && r.verified) found.set(r.server, r.key);
    if (this.db !== null) {
      const rows = this.db.prepare('SELECT server, key FROM pins WHERE nick = ? AND verified = 1 AND server <> ? LIMIT ?').all(nick, server, MAX_ELSEWHERE * 2) as { server: string; key: unknown }[];
      for (const r of rows) {
        if (found.has(r.server) || !Buffer.isBuffer(r.key)) continue;
        // A row changed in this run (re-pinned, unverified) counts as it is now.
        if (this.overlay.has(rowId(r.server, nick))) continue;
        found.set(r.server, new Uint8Array(r.key));
      }
    }
    const out: { relay: string; fingerprint: string }[] = [];
    for (const [relay, k] of [...found].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (out.length < MAX_ELSEWHERE && !sameKey(k, key)) out.push({ relay, fingerprint: fingerprint(k) });
    }
    return out;
  }

  /** Every pin (of `relay`, when given), ordered by relay and nickname. */
  list(relay?: string): PinEntry[] {
    const rows = new Map<string, { server: string; nick: string; key: Uint8Array; verified: boolean }>();
    if (this.db !== null) {
      const all = (
        relay === undefined
          ? this.db.prepare('SELECT server, nick, key, verified FROM pins').all()
          : this.db.prepare('SELECT server, nick, key, verified FROM pins WHERE server = ?').all(relay)
      ) as { server: string; nick: string; key: unknown; verified: unknown }[];
      for (const r of all) {
        const key = Buffer.isBuffer(r.key) ? new Uint8Array(r.key) : new Uint8Array(0);
        rows.set(rowId(r.server, r.nick), { server: r.server, nick: r.nick, key, verified: r.verified === 1 });
      }
    }
    for (const [id, r] of this.overlay) if (relay === undefined || r.server === relay) rows.set(id, r);
    return [...rows.values()]
      .sort((a, b) => (a.server === b.server ? (a.nick < b.nick ? -1 : 1) : a.server < b.server ? -1 : 1))
      .map((r) => ({ relay: r.server, nick: r.nick, key: r.key, fingerprint: r.key.length > 0 ? fingerprint(r.key) : '(unreadable)', verified: r.verified }));
  }

  /**
   * Forgets the pins of `nick` (on `relay` only, when given), verified or not: the next key seen for it is
   * first seen again. Returns how many were removed. Only a store open for writing can forget
   * (PrivateFileError IO otherwise, naming the store).
   */
  forget(nick: string, relay?: string): number {
    if (this.modeValue === 'read-only') throw new PrivateFileError('IO', this.path!, `${this.path} is open read only: nothing can be forgotten`);
    const gone = new Set<string>();
    for (const [id, r] of this.overlay) {
      if (r.nick === nick && (relay === undefined || r.server === relay)) {
        this.overlay.delete(id);
        this.dirty.delete(id);
        gone.add(id);
      }
    }
    if (this.db !== null) {
      const rows = (
        relay === undefined
          ? this.db.prepare('SELECT server FROM pins WHERE nick = ?').pluck().all(nick)
          : this.db.prepare('SELECT server FROM pins WHERE nick = ? AND server = ?').pluck().all(nick, relay)
      ) as string[];
      for (const server of rows) gone.add(rowId(server, nick));
      try {
        if (relay === undefined) this.db.prepare('DELETE FROM pins WHERE nick = ?').run(nick);
        else this.db.prepare('DELETE FROM pins WHERE nick = ? AND server = ?').run(nick, relay);
      } catch (e) {
        throw new PrivateFileError('IO', this.path!, `cannot write ${this.path}: ${(e as { code?: string }).code ?? (e as Error).message}`);
      }
      this.unverifiedInDb = this.db.prepare('SELECT count(*) FROM pins WHERE verified = 0').pluck().get() as number;
    }
    return gone.size;
  }

  /** The pin for a nickname on a server, if any. */
  get(server: string, nick: string): Pin | undefined {
    const own = this.overlay.get(rowId(server, nick));
    if (own !== undefined) return { key: own.key, verified: own.verified };
    const r = this.stmts?.get.get(server, nick);
    if (r === undefined) return undefined;
    // A row that is not what this code writes counts as a pin of no key: every offered key is a change.
    const ok = Buffer.isBuffer(r.key) && r.key.length <= LIMITS.KEY_MAX_BYTES && (r.verified === 0 || r.verified === 1);
    return ok ? { key: new Uint8Array(r.key as Buffer), verified: r.verified === 1 } : { key: new Uint8Array(0), verified: false };
  }

  /** Compares `key` with the pin for (server, nick). Does not change the store. */
  check(server: string, nick: string, key: Uint8Array): PinCheck {
    const pin = this.get(server, nick);
    if (pin === undefined) return { status: 'new' };
    if (sameKey(pin.key, key)) return { status: 'match', verified: pin.verified };
    return { status: 'changed', pinned: pin.key, pinnedFingerprint: fingerprint(pin.key), offeredFingerprint: fingerprint(key) };
  }

  /**
   * Pins `key` for (server, nick), replacing any earlier pin (a replaced key loses its verified mark), and
   * marks it as just used. Call it when a session with that member is established.
   */
  pin(server: string, nick: string, key: Uint8Array): void {
    const old = this.get(server, nick);
    const verified = old !== undefined && sameKey(old.key, key) ? old.verified : false;
    this.set(server, nick, Uint8Array.from(key), verified);
  }

  /** Marks the pinned key of (server, nick) as verified. Returns false when nothing is pinned. */
  verify(server: string, nick: string): boolean {
    const old = this.get(server, nick);
    if (old === undefined || old.key.length === 0) return false;
    this.set(server, nick, old.key, true);
    return true;
  }

  /** Number of pins held (written and not yet written), unverified and verified. */
  count(): { unverified: number; verified: number } {
    let unverified = 0;
    let verified = 0;
    if (this.db !== null) {
      const rows = this.db.prepare('SELECT verified, count(*) AS n FROM pins GROUP BY verified').all() as { verified: number; n: number }[];
      for (const r of rows) if (r.verified === 1) verified = r.n;
      else unverified = r.n;
    }
    for (const r of this.overlay.values()) {
      const inDb = this.stmts?.get.get(r.server, r.nick);
      if (inDb !== undefined) {
        if (inDb.verified === 1) verified--;
        else unverified--;
      }
      if (r.verified) verified++;
      else unverified++;
    }
    return { unverified, verified };
  }

  /** Writes what is pending now (normally done on the next turn of the event loop). */
  flush(): void {
    if (this.flushing !== null) clearImmediate(this.flushing);
    if (this.retry !== null) clearTimeout(this.retry);
    this.flushing = null;
    this.retry = null;
    if (this.modeValue !== 'read-write' || this.dirty.size === 0) return;
    const db = this.db!;
    const s = this.stmts!;
    try {
      db.transaction(() => {
        for (const id of this.dirty) {
          const r = this.overlay.get(id)!;
          const before = s.get.get(r.server, r.nick);
          if (!r.verified && before?.verified !== 0) this.unverifiedInDb++;
          if (r.verified && before?.verified === 0) this.unverifiedInDb--;
          s.put.run(r.server, r.nick, Buffer.from(r.key), r.verified ? 1 : 0, r.used);
        }
        this.evictExcess();
      })();
    } catch (e) {
      // Rolled back: the count read inside the transaction is stale.
      this.unverifiedInDb = db.prepare('SELECT count(*) FROM pins WHERE verified = 0').pluck().get() as number;
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_BUSY' && this.busyRetries < BUSY_RETRIES && !this.closing) {
        // Another process writes the same store: try again later, off this turn of the event loop.
        this.retry = setTimeout(() => this.flush(), BUSY_RETRY_MS * 2 ** this.busyRetries++);
        this.retry.unref();
        return;
      }
      this.modeValue = 'read-only';
      const err = new PrivateFileError('IO', this.path!, `cannot write ${this.path}: ${(e as { code?: string }).code ?? (e as Error).message}`);
      this.warning = `${err.message}; pins of this run are kept in memory only`;
      this.onWriteError?.(err);
      return;
    }
    for (const id of this.dirty) this.overlay.delete(id);
    this.dirty.clear();
    this.busyRetries = 0;
  }

  /** Writes what is pending and closes the store. Idempotent. */
  close(): void {
    this.closing = true;
    this.flush();
    if (this.registered && this.db !== null) {
      try {
        this.db.prepare('DELETE FROM meta WHERE name = ?').run(USER_ROW + process.pid);
      } catch {
        // a stale row is dropped by the next users()
      }
      this.registered = false;
    }
    if (this.db !== null && this.modeValue === 'read-write') {
      try {
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        // closing anyway
      }
    }
    this.detach();
    if (this.modeValue === 'read-write') this.modeValue = 'read-only';
  }

  /**
   * Past the bound, evicts the least recently used unverified pins down to the bound less a twentieth
   * (at most 50): one larger delete every fifty members instead of a delete with every member, so a
   * member costs the same once the store is full as before.
   */
  private evictExcess(): void {
    if (this.unverifiedInDb <= this.maxUnverified) return;
    const slack = Math.min(50, Math.floor(this.maxUnverified / 20));
    const excess = this.unverifiedInDb - this.maxUnverified + slack;
    this.stmts!.evict.run(excess);
    this.unverifiedInDb -= excess;
  }

  private set(server: string, nick: string, key: Uint8Array, verified: boolean): void {
    const id = rowId(server, nick);
    this.overlay.delete(id); // re-inserted last: the Map's order is least recently used first
    this.overlay.set(id, { server, nick, key, verified, used: this.clock++ });
    if (this.modeValue === 'read-write') {
      this.dirty.add(id);
      if (this.retry === null) this.flushing ??= setImmediate(() => this.flush());
      return;
    }
    // Nothing is written: the overlay is the store for this run, bounded the same way.
    let unverified = 0;
    for (const r of this.overlay.values()) if (!r.verified) unverified++;
    for (const [oid, r] of this.overlay) {
      if (unverified <= this.maxUnverified) break;
      if (!r.verified) {
        this.overlay.delete(oid);
        unverified--;
      }
    }
  }
}

/** True when a process with this pid exists (EPERM: it exists, another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Parses the v1 JSON store exactly; throws PinStoreError CORRUPT on anything else. */
export function parseLegacy(raw: Uint8Array): { server: string; nick: string; key: Uint8Array; verified: boolean }[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch {
    throw new PinStoreError('CORRUPT', `${LEGACY_PINS_FILE} is not JSON`);
  }
  const bad = (what: string): never => {
    throw new PinStoreError('CORRUPT', `${LEGACY_PINS_FILE}: ${what}`);
  };
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isRecord(parsed) || parsed['format'] !== LEGACY_FORMAT || !isRecord(parsed['servers'])) bad('unknown format');
  const p = parsed as Record<string, unknown>;
  if (Object.keys(p).length !== 2) bad('unknown top-level fields');
  const out: { server: string; nick: string; key: Uint8Array; verified: boolean }[] = [];
  for (const [server, nicks] of Object.entries(p['servers'] as Record<string, unknown>)) {
    if (!isRecord(nicks)) bad(`server ${server}: expected an object`);
    for (const [nick, pin] of Object.entries(nicks as Record<string, unknown>)) {
      if (!isRecord(pin) || typeof pin['key'] !== 'string' || !HEX.test(pin['key']) || typeof pin['verified'] !== 'boolean') {
        bad(`pin ${server}/${nick}: expected {key: hex, verified: boolean}`);
      }
      const rec = pin as { key: string; verified: boolean };
      if (rec.key.length > 2 * LIMITS.KEY_MAX_BYTES) bad(`pin ${server}/${nick}: key longer than ${LIMITS.KEY_MAX_BYTES} bytes`);
      out.push({ server, nick, key: new Uint8Array(Buffer.from(rec.key, 'hex')), verified: rec.verified });
    }
  }
  return out;
}
