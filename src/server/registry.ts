/**
 * The nickname registry (spec/PROTOCOL.md §7.1 "Nickname binding", §7.3): a nickname is bound to the
 * first identity key that authenticates with it, permanently, in an embedded SQLite file that survives
 * restarts. Only public data is stored: the nickname, its key (DER SPKI) and when it was bound.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import Database from 'better-sqlite3';

export type BindResult = 'bound' | 'known' | 'mismatch';

export class NickRegistry {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<[string, Buffer, number]>;
  private readonly select: Database.Statement<[string], { key: Buffer }>;
  private closed = false;

  /** @param file a path (its folder is created, mode 0700) or ':memory:'. */
  constructor(readonly file: string) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    if (file !== ':memory:') {
      // WAL keeps readers and the single writer apart; FULL makes every binding durable once AUTH
      // succeeds, so a crash right after WELCOME cannot forget a binding the client already relies on.
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
    }
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS nick_binding (nick TEXT PRIMARY KEY NOT NULL, spki BLOB NOT NULL, bound_at INTEGER NOT NULL) STRICT',
    );
    this.insert = this.db.prepare('INSERT OR IGNORE INTO nick_binding (nick, spki, bound_at) VALUES (?, ?, ?)');
    this.select = this.db.prepare<[string], { key: Buffer }>('SELECT spki AS key FROM nick_binding WHERE nick = ?');
  }

  /**
   * Binds `nick` to `spki` if the nickname is new ('bound'); otherwise compares the stored key with
   * `spki` in constant time: 'known' when equal, 'mismatch' when another key holds the nickname.
   * Insert-or-ignore then select is one atomic decision even with several relays on one file.
   */
  bind(nick: string, spki: Uint8Array): BindResult {
    const key = Buffer.from(spki.buffer, spki.byteOffset, spki.length);
    const inserted = this.insert.run(nick, key, Date.now()).changes === 1;
    if (inserted) return 'bound';
    const row = this.select.get(nick);
    if (row === undefined) return 'mismatch'; // unreachable unless the row was deleted in between
    return row.key.length === key.length && timingSafeEqual(row.key, key) ? 'known' : 'mismatch';
  }

  /** Number of bound nicknames. */
  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM nick_binding').get() as { n: number }).n;
  }

  /** Checkpoints the WAL into the main file and closes the database. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.file !== ':memory:') this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}
