/**
 * The page's pins (spec §8.5) for the client core's PinBook (src/client/pin-book.ts): every pin is read
 * from IndexedDB once when the page starts, kept in a MemoryPins (bounded), and each change is written back
 * in the background, so the core's checks on the socket's path touch memory only. Pins are kept per relay
 * identity, the name the relay announced and AUTH signed (issue 14 point 6).
 */
import type { CryptoBackend } from '../crypto/backend.js';
import { MemoryPins } from '../client/pin-book.js';
import { deletePin, listPins, putPin } from './keys.js';

/** The stored pins, loaded; writes go to `db` behind the caller. */
export async function openPins(db: IDBDatabase, crypto: CryptoBackend, onWriteError: (e: unknown) => void): Promise<MemoryPins> {
  const rows = (await listPins(db)).map((p) => ({ server: p.relay, nick: p.nick, key: p.spki, verified: p.verified }));
  return new MemoryPins(
    crypto,
    (r, removed) => {
      const done = removed ? deletePin(db, r.server, r.nick) : putPin(db, r.server, r.nick, Uint8Array.from(r.key), r.verified);
      done.catch(onWriteError);
    },
    rows,
  );
}
