/**
 * The page's pins (spec §8.5) for the client core's PinBook (src/client/pin-book.ts): every pin of this
 * relay is read from IndexedDB once when the page starts, kept in a MemoryPins, and each change is
 * written back in the background, so the core's checks on the socket's path touch memory only.
 */
import type { CryptoBackend } from '../crypto/backend.js';
import { MemoryPins } from '../client/pin-book.js';
import { deletePin, listPins, putPin } from './keys.js';

/** The pins of `relay` (the page's origin host), loaded; writes go to `db` behind the caller. */
export async function openPins(db: IDBDatabase, relay: string, crypto: CryptoBackend, onWriteError: (e: unknown) => void): Promise<MemoryPins> {
  const rows = (await listPins(db, relay)).map((p) => ({ server: relay, nick: p.nick, key: p.spki, verified: p.verified }));
  return new MemoryPins(
    crypto,
    (r, removed) => {
      if (r.server !== relay) return;
      const done = removed ? deletePin(db, relay, r.nick) : putPin(db, relay, r.nick, Uint8Array.from(r.key), r.verified);
      done.catch(onWriteError);
    },
    rows,
  );
}
