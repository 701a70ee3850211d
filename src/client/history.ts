/**
 * Encrypted local history (issue 15, SECURITY.md "Local history"): every message the client showed,
 * sent or received, kept in `<home>/history.db` so that `/history` and a rejoin can show it again.
 *
 * Nothing readable is stored. Each record is one row `(id, tag, nonce, ct)`:
 * - `ct` = AES-256-GCM(k_enc, nonce, JSON of the record, ad = FORMAT || tag), a fresh 12-byte random
 *   nonce for every write (an update of a delivery state writes a new nonce and ciphertext);
 * - `tag` = the first 16 bytes of HMAC-SHA-256(k_index, relay || 0x00 || room): rows of one conversation
 *   can be found without the room or relay name on disk, and a row moved to another conversation fails
 *   to open because the tag is in its associated data.
 * The keys come from the identity: k = HKDF-SHA-256(ikm = the private key's PKCS#8 DER, salt = FORMAT,
 * info = "enc" | "index"). The private key is only in memory after the passphrase opened the key file,
 * so the history is exactly as protected at rest as the identity key: under the passphrase, or, with
 * `--no-passphrase`, under the file mode alone. A passphrase change (`key passwd`) keeps the history
 * readable; a new identity cannot read the old one.
 *
 * Files follow the keystore's rules: created 0600 through O_EXCL|O_NOFOLLOW, refused when they are a
 * symbolic link, not a regular file, owned by another user or open to group or others. Writes use
 * SQLite's WAL with synchronous=NORMAL: no disk sync per message on the event loop (a crash may lose the
 * last messages of history, never corrupt it). The store is bounded: at most `maxRecords` rows (the
 * oldest go first) and texts of at most MAX_TEXT_BYTES.
 */
import Database from 'better-sqlite3';
import { createCipheriv, createDecipheriv, hkdfSync, createHmac, randomBytes, type KeyObject } from 'node:crypto';
import { closeSync, constants as fsc, openSync, rmSync } from 'node:fs';
import { PrivateFileError, statPrivateFile } from '../files/private.js';
import { join } from 'node:path';
import { parseRelayIdentity } from '../protocol/relay-id.js';

export const HISTORY_FILE = 'history.db';
const FORMAT = 'e2ee-chat history v1';
const TAG_BYTES = 16;
const NONCE_BYTES = 12;
const GCM_TAG_BYTES = 16;
/** Default bound on stored messages; the oldest are deleted beyond it. */
export const DEFAULT_MAX_RECORDS = 100_000;
/** Longest text stored (UTF-8 bytes); a message is at most 16,384 bytes on the wire (spec §10). */
export const MAX_TEXT_BYTES = 65_536;

/** What happened to a message, as the client showed it. */
export type DeliveryState = 'received' | 'queued' | 'sent' | 'delivered' | 'not delivered';

/** One shown message. Times are milliseconds since the epoch. */
export interface HistoryRecord {
  /** 'out' for the user's own message, 'in' for a peer's. */
  dir: 'in' | 'out';
  /** The sender's nickname (the user's own for 'out'). */
  from: string;
  /** The recipients' nicknames ('out'), or the user's own nickname ('in'). */
  to: string[];
  text: string;
  /** The sender's own clock, when the protocol carries it; null otherwise. */
  sentAt: number | null;
  /** When this client showed it. */
  shownAt: number;
  state: DeliveryState;
}

/** A stored record with its row id (for `update`) and its conversation (kept inside the ciphertext). */
export interface StoredRecord extends HistoryRecord {
  id: number;
  relay: string;
  room: string;
}
type Sealed = Omit<StoredRecord, 'id'>;

export type HistoryErrorCode = 'INSECURE_PERMISSIONS' | 'CORRUPT';

/** The history file could not be used safely; `code` is stable, the message names the path. */
export class HistoryError extends Error {
  constructor(
    readonly code: HistoryErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'HistoryError';
  }
}

const STATES: readonly DeliveryState[] = ['received', 'queued', 'sent', 'delivered', 'not delivered'];

function isSealed(v: unknown): v is Sealed {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  const keys = Object.keys(r).sort().join(',');
  return (
    keys === 'dir,from,relay,room,sentAt,shownAt,state,text,to' &&
    typeof r['relay'] === 'string' &&
    typeof r['room'] === 'string' &&
    (r['dir'] === 'in' || r['dir'] === 'out') &&
    typeof r['from'] === 'string' &&
    Array.isArray(r['to']) &&
    r['to'].every((n) => typeof n === 'string') &&
    typeof r['text'] === 'string' &&
    (r['sentAt'] === null || Number.isSafeInteger(r['sentAt'])) &&
    Number.isSafeInteger(r['shownAt']) &&
    STATES.includes(r['state'] as DeliveryState)
  );
}

/** Checks an existing file under the private-file rules (src/files/private.ts); false when absent. */
function checkFile(path: string): boolean {
  try {
    return statPrivateFile(path) !== null;
  } catch (e) {
    if (e instanceof PrivateFileError && e.code !== 'IO') throw new HistoryError(e.code === 'INSECURE_PERMISSIONS' ? 'INSECURE_PERMISSIONS' : 'CORRUPT', e.message);
    throw e;
  }
}

/** Creates an empty file with mode 0600, failing if anything (a planted symlink included) is there. */
function createExclusive(path: string): void {
  closeSync(openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | (fsc.O_NOFOLLOW ?? 0), 0o600));
}

export class History {
  private readonly db: Database.Database;
  private readonly encKey: Buffer;
  private readonly indexKey: Buffer;
  private readonly insert: Database.Statement<[Buffer, Buffer, Buffer]>;
  private readonly replace: Database.Statement<[Buffer, Buffer, number, Buffer]>;
  private readonly trim: Database.Statement<[number]>;

  private constructor(
    readonly path: string,
    db: Database.Database,
    privateKey: KeyObject,
    private readonly maxRecords: number,
  ) {
    this.db = db;
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    try {
      this.encKey = Buffer.from(hkdfSync('sha256', der, FORMAT, 'enc', 32));
      this.indexKey = Buffer.from(hkdfSync('sha256', der, FORMAT, 'index', 32));
    } finally {
      der.fill(0);
    }
    this.insert = db.prepare('INSERT INTO records (tag, nonce, ct) VALUES (?, ?, ?)');
    this.replace = db.prepare('UPDATE records SET nonce = ?, ct = ? WHERE id = ? AND tag = ?');
    this.trim = db.prepare('DELETE FROM records WHERE id <= (SELECT MAX(id) FROM records) - ?');
  }

  /**
   * Opens (or creates) `<home>/history.db` for the identity `privateKey`. Throws HistoryError
   * (INSECURE_PERMISSIONS, CORRUPT) for a file that is not safe or not a history.
   */
  static open(home: string, privateKey: KeyObject, opts: { maxRecords?: number } = {}): History {
    const path = join(home, HISTORY_FILE);
    for (const side of ['-wal', '-shm']) checkFile(path + side);
    if (!checkFile(path)) createExclusive(path);
    let db: Database.Database;
    try {
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY AUTOINCREMENT, tag BLOB NOT NULL, nonce BLOB NOT NULL, ct BLOB NOT NULL);
        CREATE INDEX IF NOT EXISTS records_tag ON records (tag, id);`);
      const fmt = db.prepare<[], { v: string }>("SELECT v FROM meta WHERE k = 'format'").get();
      if (fmt === undefined) {
        db.prepare("INSERT INTO meta (k, v) VALUES ('format', ?)").run(FORMAT);
        db.prepare("INSERT INTO meta (k, v) VALUES ('relay_ids', '1')").run();
      } else if (fmt.v !== FORMAT) throw new HistoryError('CORRUPT', `${path} is not a ${FORMAT} file`);
    } catch (e) {
      if (e instanceof HistoryError) throw e;
      throw new HistoryError('CORRUPT', `${path}: ${(e as Error).message}`);
    }
    const h = new History(path, db, privateKey, opts.maxRecords ?? DEFAULT_MAX_RECORDS);
    h.canonicalRelays();
    return h;
  }

  /**
   * Moves the records of earlier versions, kept under the relay's address as the user typed it
   * (`127.0.0.1:55555`), to the relay's identity (`localhost:55555`, src/protocol/relay-id.ts), the name
   * the relay announces and AUTH signs (spec §7.3), once: each such row is opened and sealed again under
   * the new conversation tag (a fresh nonce), in one transaction with the marker. At most `maxRecords`
   * rows exist, so this is bounded; a row that does not open is left as it is (it reads nothing anyway).
   */
  private canonicalRelays(): void {
    if (this.db.prepare("SELECT 1 FROM meta WHERE k = 'relay_ids'").get() !== undefined) return;
    const rows = this.db.prepare<[], { id: number; tag: Buffer; nonce: Buffer; ct: Buffer }>('SELECT id, tag, nonce, ct FROM records ORDER BY id').all();
    const move = this.db.prepare<[Buffer, Buffer, Buffer, number]>('UPDATE records SET tag = ?, nonce = ?, ct = ? WHERE id = ?');
    this.db.transaction(() => {
      for (const r of rows) {
        const rec = this.open(r.tag, r.nonce, r.ct);
        const id = rec === null ? null : parseRelayIdentity(rec.relay);
        if (rec === null || id === null || id === rec.relay) continue;
        const tag = this.tag(id, rec.room);
        const { nonce, ct } = this.seal(tag, { ...rec, relay: id });
        move.run(tag, nonce, ct, r.id);
      }
      this.db.prepare("INSERT INTO meta (k, v) VALUES ('relay_ids', '1')").run();
    })();
  }

  /** The 16-byte lookup tag of one conversation (the relay's identity as AUTH names it, §7.3; room name). */
  private tag(relay: string, room: string): Buffer {
    return createHmac('sha256', this.indexKey).update(relay, 'utf8').update(Buffer.of(0)).update(room, 'utf8').digest().subarray(0, TAG_BYTES);
  }

  private seal(tag: Buffer, rec: Sealed): { nonce: Buffer; ct: Buffer } {
    if (Buffer.byteLength(rec.text, 'utf8') > MAX_TEXT_BYTES) throw new RangeError(`history text of more than ${MAX_TEXT_BYTES} bytes`);
    const nonce = randomBytes(NONCE_BYTES);
    const c = createCipheriv('aes-256-gcm', this.encKey, nonce);
    c.setAAD(Buffer.concat([Buffer.from(FORMAT, 'utf8'), tag]));
    const { dir, from, to, text, sentAt, shownAt, state, relay, room } = rec;
    const body = Buffer.from(JSON.stringify({ dir, from, to, text, sentAt, shownAt, state, relay, room }), 'utf8');
    const ct = Buffer.concat([c.update(body), c.final(), c.getAuthTag()]);
    body.fill(0);
    return { nonce, ct };
  }

  private open(tag: Buffer, nonce: Buffer, ct: Buffer): Sealed | null {
    if (nonce.length !== NONCE_BYTES || ct.length < GCM_TAG_BYTES) return null;
    try {
      const d = createDecipheriv('aes-256-gcm', this.encKey, nonce);
      d.setAAD(Buffer.concat([Buffer.from(FORMAT, 'utf8'), tag]));
      d.setAuthTag(ct.subarray(ct.length - GCM_TAG_BYTES));
      const body = Buffer.concat([d.update(ct.subarray(0, ct.length - GCM_TAG_BYTES)), d.final()]);
      const rec: unknown = JSON.parse(body.toString('utf8'));
      body.fill(0);
      // The conversation inside must be the one the tag names: a row cannot be moved between them.
      return isSealed(rec) && this.tag(rec.relay, rec.room).equals(tag) ? rec : null;
    } catch {
      return null;
    }
  }

  /** Stores one shown message of the conversation (relay, room); returns its id for `update`. */
  add(relay: string, room: string, rec: HistoryRecord): number {
    const tag = this.tag(relay, room);
    const { nonce, ct } = this.seal(tag, { ...rec, relay, room });
    const id = Number(this.insert.run(tag, nonce, ct).lastInsertRowid);
    this.trim.run(this.maxRecords);
    return id;
  }

  /** Rewrites record `id` of the conversation with `patch` applied (a new nonce); false if it is gone. */
  update(relay: string, room: string, id: number, patch: Partial<Pick<HistoryRecord, 'state' | 'to'>>): boolean {
    const tag = this.tag(relay, room);
    const row = this.db.prepare<[number, Buffer], { nonce: Buffer; ct: Buffer }>('SELECT nonce, ct FROM records WHERE id = ? AND tag = ?').get(id, tag);
    const rec = row === undefined ? null : this.open(tag, row.nonce, row.ct);
    if (rec === null) return false;
    const { nonce, ct } = this.seal(tag, { ...rec, ...patch });
    return this.replace.run(nonce, ct, id, tag).changes === 1;
  }

  /**
   * The last `n` records of the conversation, oldest first. A row that does not open (altered on disk,
   * or written under another identity) is counted in `unreadable` and never shown.
   */
  last(relay: string, room: string, n: number): { records: StoredRecord[]; unreadable: number } {
    const tag = this.tag(relay, room);
    const rows = this.db
      .prepare<[Buffer, number], { id: number; nonce: Buffer; ct: Buffer }>('SELECT id, nonce, ct FROM records WHERE tag = ? ORDER BY id DESC LIMIT ?')
      .all(tag, Math.max(0, Math.floor(n)));
    const records: StoredRecord[] = [];
    let unreadable = 0;
    for (const r of rows.reverse()) {
      const rec = this.open(tag, r.nonce, r.ct);
      if (rec === null) unreadable++;
      else records.push({ id: r.id, ...rec });
    }
    return { records, unreadable };
  }

  /** Every readable record of every conversation, oldest first (for `history export`). */
  all(): { records: StoredRecord[]; unreadable: number } {
    const records: StoredRecord[] = [];
    let unreadable = 0;
    for (const r of this.db.prepare<[], { id: number; tag: Buffer; nonce: Buffer; ct: Buffer }>('SELECT id, tag, nonce, ct FROM records ORDER BY id').iterate()) {
      const rec = this.open(r.tag, r.nonce, r.ct);
      if (rec === null) unreadable++;
      else records.push({ id: r.id, ...rec });
    }
    return { records, unreadable };
  }

  /** How many records are stored (all conversations). */
  count(): number {
    return this.db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM records').get()!.n;
  }

  /** Deletes every record and compacts the file, so no ciphertext of them stays in its pages. */
  clear(): void {
    this.db.exec('DELETE FROM records');
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.exec('VACUUM');
  }

  close(): void {
    this.encKey.fill(0);
    this.indexKey.fill(0);
    if (this.db.open) this.db.close();
  }

  /** Removes the history files of `home` (for `history clear --all`, or a user who turns it off). */
  static remove(home: string): void {
    const path = join(home, HISTORY_FILE);
    for (const p of [path, path + '-wal', path + '-shm']) rmSync(p, { force: true });
  }
}

/** The events of a chat client that the history follows (ChatClient's, by name and shape). */
export interface HistorySource {
  readonly nick: string;
  on(event: 'text', listener: (e: { from: string; ts: number; text: string }) => void): unknown;
  on(event: 'sent', listener: (e: { to: string; seq: number; text: string }) => void): unknown;
  on(event: 'delivered', listener: (e: { to: string; seq: number }) => void): unknown;
  on(event: 'peer-left', listener: (e: { undelivered: { to: string | null; seq: number | null; text: string }[] }) => void): unknown;
  on(event: 'closed', listener: (e: { undelivered: { to: string | null; seq: number | null; text: string }[] }) => void): unknown;
  on(event: 'connection-lost', listener: (e: { undelivered: { to: string | null; seq: number | null; text: string }[] }) => void): unknown;
}

/**
 * Keeps the history of one conversation (relay as the user addressed it, room) from a client's events:
 * each received text ('received', with the sender's time), each text sent to a member ('sent', one
 * record per member, as sessions are pairwise), its acknowledgement ('delivered') and the texts listed
 * as not delivered when a member leaves or the connection ends. Returns a function that stops it.
 * A failed write (disk full, read-only home) is reported once through `onError` and ends the recording;
 * it never ends the chat.
 */
export function recordHistory(client: HistorySource, history: History, relay: string, room: string, onError: (e: Error) => void, now: () => number = Date.now): () => void {
  /** Records of sent texts awaiting their fate, by member and seq (bounded by the client's unacked texts). */
  const open = new Map<string, number>();
  let stopped = false;
  const guard =
    <A extends unknown[]>(f: (...a: A) => void) =>
    (...a: A) => {
      if (stopped) return;
      try {
        f(...a);
      } catch (e) {
        stopped = true;
        onError(e as Error);
      }
    };
  const key = (to: string, seq: number) => `${to}\u0000${seq}`;
  const settle = guard((undelivered: { to: string | null; seq: number | null; text: string }[]) => {
    for (const u of undelivered) {
      const k = u.to !== null && u.seq !== null ? key(u.to, u.seq) : null;
      const id = k === null ? undefined : open.get(k);
      if (id !== undefined) {
        history.update(relay, room, id, { state: 'not delivered' });
        open.delete(k!);
      } else {
        history.add(relay, room, { dir: 'out', from: client.nick, to: u.to === null ? [] : [u.to], text: u.text, sentAt: null, shownAt: now(), state: 'not delivered' });
      }
    }
  });
  client.on(
    'text',
    guard(({ from, ts, text }) => {
      history.add(relay, room, { dir: 'in', from, to: [client.nick], text, sentAt: Number.isSafeInteger(ts) ? ts : null, shownAt: now(), state: 'received' });
    }),
  );
  client.on(
    'sent',
    guard(({ to, seq, text }) => {
      const t = now();
      open.set(key(to, seq), history.add(relay, room, { dir: 'out', from: client.nick, to: [to], text, sentAt: t, shownAt: t, state: 'sent' }));
    }),
  );
  client.on(
    'delivered',
    guard(({ to, seq }) => {
      const id = open.get(key(to, seq));
      if (id === undefined) return;
      open.delete(key(to, seq));
      history.update(relay, room, id, { state: 'delivered' });
    }),
  );
  client.on('peer-left', ({ undelivered }) => settle(undelivered));
  client.on('closed', ({ undelivered }) => settle(undelivered));
  // A drop (the client reconnects): what was in flight is not delivered; a resend is a new record.
  client.on('connection-lost', ({ undelivered }) => settle(undelivered));
  return () => {
    stopped = true;
  };
}
