/**
 * What the client core needs of a trust-on-first-use store (spec §8.5), as one small interface with one
 * implementation per platform (STYLE.md rule 12): SQLite files in Node (src/client/pins.ts PinStore, the
 * CLI's `--home`), IndexedDB in the page (src/web/pins.ts), and the in-memory book below (the default, and
 * the cache both of them keep). Every call the core makes on the socket's path is synchronous and touches
 * memory only; a store writes behind it.
 */
import type { CryptoBackend } from '../crypto/backend.js';
import { equalSecret } from '../crypto/bytes.js';
import { fingerprintOf } from '../crypto/fingerprint.js';

/** A key checked against the pins: first sight, the pinned key, or a different key (`pinned`: the pinned bytes). */
export type PinState =
  | { readonly status: 'new' }
  | { readonly status: 'match'; readonly verified: boolean }
  | { readonly status: 'changed'; readonly pinned: Uint8Array };

/** A relay where a nickname is verified with another key (the fingerprint index across relays, issue 14 point 6). */
export interface ElsewherePin {
  readonly relay: string;
  readonly fingerprint: string;
}

export interface PinBook {
  /** Compares `key` with the pin for (server, nick); changes nothing. */
  check(server: string, nick: string, key: Uint8Array): PinState;
  /** Pins `key` (a replaced key loses its verified mark) and marks it as just used. */
  pin(server: string, nick: string, key: Uint8Array): void;
  /** Marks the pinned key as verified; false when nothing is pinned. */
  verify(server: string, nick: string): boolean;
  /** The relays other than `server` where `nick` is verified with a key other than `key`. */
  verifiedElsewhere(server: string, nick: string, key: Uint8Array): readonly ElsewherePin[] | Promise<readonly ElsewherePin[]>;
}

export interface PinRecord {
  readonly server: string;
  readonly nick: string;
  readonly key: Uint8Array;
  readonly verified: boolean;
}

/** Most relays `verifiedElsewhere` names. */
const MAX_ELSEWHERE = 8;
/** Most pins a memory book keeps; the least recently used unverified one goes first beyond it. */
export const MAX_MEMORY_PINS = 1000;

const idOf = (server: string, nick: string) => `${server}\u0000${nick}`;

/**
 * Pins in memory, bounded (MAX_MEMORY_PINS, verified pins kept first). `onChange` is told of every pin
 * written or removed, for a store that persists them (src/web/pins.ts).
 */
export class MemoryPins implements PinBook {
  readonly #rows = new Map<string, PinRecord>();

  constructor(
    private readonly crypto: CryptoBackend,
    private readonly onChange?: (record: PinRecord, removed: boolean) => void,
    rows: Iterable<PinRecord> = [],
  ) {
    for (const r of rows) this.#rows.set(idOf(r.server, r.nick), { ...r, key: Uint8Array.from(r.key) });
  }

  get(server: string, nick: string): PinRecord | undefined {
    return this.#rows.get(idOf(server, nick));
  }

  check(server: string, nick: string, key: Uint8Array): PinState {
    const pin = this.get(server, nick);
    if (pin === undefined) return { status: 'new' };
    if (pin.key.length === key.length && equalSecret(pin.key, key)) return { status: 'match', verified: pin.verified };
    return { status: 'changed', pinned: pin.key };
  }

  pin(server: string, nick: string, key: Uint8Array): void {
    const old = this.get(server, nick);
    const verified = old !== undefined && old.key.length === key.length && equalSecret(old.key, key) ? old.verified : false;
    this.#set({ server, nick, key: Uint8Array.from(key), verified });
  }

  verify(server: string, nick: string): boolean {
    const old = this.get(server, nick);
    if (old === undefined || old.key.length === 0) return false;
    this.#set({ ...old, verified: true });
    return true;
  }

  async verifiedElsewhere(server: string, nick: string, key: Uint8Array): Promise<readonly ElsewherePin[]> {
    const out: ElsewherePin[] = [];
    const rows = [...this.#rows.values()].filter((r) => r.nick === nick && r.server !== server && r.verified).sort((a, b) => (a.server < b.server ? -1 : 1));
    for (const r of rows) {
      if (out.length >= MAX_ELSEWHERE) break;
      if (r.key.length === key.length && equalSecret(r.key, key)) continue;
      out.push({ relay: r.server, fingerprint: await fingerprintOf(this.crypto, r.key) });
    }
    return out;
  }

  #set(r: PinRecord): void {
    const id = idOf(r.server, r.nick);
    // Most recently used last (Map order).
    this.#rows.delete(id);
    this.#rows.set(id, r);
    this.onChange?.(r, false);
    if (this.#rows.size > MAX_MEMORY_PINS) {
      const victim = [...this.#rows.values()].find((x) => !x.verified) ?? this.#rows.values().next().value!;
      this.#rows.delete(idOf(victim.server, victim.nick));
      this.onChange?.(victim, true);
    }
  }
}
