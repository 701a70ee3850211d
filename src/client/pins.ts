/**
 * Trust on first use: the identity key first seen for a nickname on a server is pinned, and a different
 * key for that nickname later is a key change that the user must accept explicitly (issue 5, spec §11:
 * "a key-change warning for a pinned nickname").
 *
 * Pins live in one JSON file in the client's home folder, keyed by the server as the user named it
 * (`host:port`) and then by nickname. The file holds public keys only; it is written with mode 0600 by
 * rename, so a crash never leaves half a file. A file that does not parse exactly is refused (PinStoreError
 * CORRUPT) rather than treated as empty: an empty store would silently re-trust every key.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fingerprint } from '../crypto/safety.js';

export const PINS_FILE = 'pins.json';
const FORMAT = 'e2ee-chat pins v1';
const HEX = /^(?:[0-9a-f]{2})+$/;
const MAX_PIN_FILE_BYTES = 16 * 1024 * 1024;

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
  /** The pinned identity key, DER SubjectPublicKeyInfo (294 bytes for RSA-2048). */
  readonly key: Uint8Array;
  /** True once the user compared the safety number and ran /verify. */
  readonly verified: boolean;
}

/** The result of checking a key against the pins: first sight, the pinned key, or a different key. */
export type PinCheck =
  | { readonly status: 'new' }
  | { readonly status: 'match'; readonly verified: boolean }
  | { readonly status: 'changed'; readonly pinned: Uint8Array; readonly pinnedFingerprint: string; readonly offeredFingerprint: string };

interface PinFile {
  format: typeof FORMAT;
  servers: Record<string, Record<string, { key: string; verified: boolean }>>;
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The pin store of one home folder. `load` reads it once; every change is written through at once.
 * Not safe for two processes sharing one home at the same time (the last writer wins).
 */
export class PinStore {
  private readonly servers = new Map<string, Map<string, Pin>>();

  private constructor(private readonly path: string | null) {}

  /** An in-memory store that is never written (for library users that do their own trust). */
  static memory(): PinStore {
    return new PinStore(null);
  }

  /** Loads `<home>/pins.json` (absent: empty). Throws PinStoreError CORRUPT on anything but the exact format. */
  static load(home: string): PinStore {
    const store = new PinStore(join(home, PINS_FILE));
    if (!existsSync(store.path!)) return store;
    const raw = readFileSync(store.path!);
    if (raw.length > MAX_PIN_FILE_BYTES) throw new PinStoreError('CORRUPT', `${PINS_FILE} is larger than ${MAX_PIN_FILE_BYTES} bytes`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new PinStoreError('CORRUPT', `${PINS_FILE} is not JSON`);
    }
    const bad = (what: string): never => {
      throw new PinStoreError('CORRUPT', `${PINS_FILE}: ${what}`);
    };
    const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (!isRecord(parsed) || parsed['format'] !== FORMAT || !isRecord(parsed['servers'])) bad('unknown format');
    const p = parsed as Record<string, unknown>;
    if (Object.keys(p).length !== 2) bad('unknown top-level fields');
    for (const [server, nicks] of Object.entries(p['servers'] as Record<string, unknown>)) {
      if (!isRecord(nicks)) bad(`server ${server}: expected an object`);
      const m = new Map<string, Pin>();
      for (const [nick, pin] of Object.entries(nicks as Record<string, unknown>)) {
        if (!isRecord(pin) || typeof pin['key'] !== 'string' || !HEX.test(pin['key']) || typeof pin['verified'] !== 'boolean') {
          bad(`pin ${server}/${nick}: expected {key: hex, verified: boolean}`);
        }
        const rec = pin as { key: string; verified: boolean };
        m.set(nick, { key: new Uint8Array(Buffer.from(rec.key, 'hex')), verified: rec.verified });
      }
      store.servers.set(server, m);
    }
    return store;
  }

  /** The pin for a nickname on a server, if any. */
  get(server: string, nick: string): Pin | undefined {
    return this.servers.get(server)?.get(nick);
  }

  /** Compares `key` with the pin for (server, nick). Does not change the store. */
  check(server: string, nick: string, key: Uint8Array): PinCheck {
    const pin = this.get(server, nick);
    if (pin === undefined) return { status: 'new' };
    if (sameKey(pin.key, key)) return { status: 'match', verified: pin.verified };
    return { status: 'changed', pinned: pin.key, pinnedFingerprint: fingerprint(pin.key), offeredFingerprint: fingerprint(key) };
  }

  /** Pins `key` for (server, nick), replacing any earlier pin; a replaced key loses its verified mark. */
  pin(server: string, nick: string, key: Uint8Array): void {
    const old = this.get(server, nick);
    const verified = old !== undefined && sameKey(old.key, key) ? old.verified : false;
    this.set(server, nick, { key: Uint8Array.from(key), verified });
  }

  /** Marks the pinned key of (server, nick) as verified. Returns false when nothing is pinned. */
  verify(server: string, nick: string): boolean {
    const old = this.get(server, nick);
    if (old === undefined) return false;
    this.set(server, nick, { key: old.key, verified: true });
    return true;
  }

  private set(server: string, nick: string, pin: Pin): void {
    let m = this.servers.get(server);
    if (m === undefined) this.servers.set(server, (m = new Map()));
    m.set(nick, pin);
    this.save();
  }

  private save(): void {
    if (this.path === null) return;
    const out: PinFile = { format: FORMAT, servers: {} };
    for (const [server, nicks] of this.servers) {
      const rec: Record<string, { key: string; verified: boolean }> = {};
      for (const [nick, pin] of nicks) rec[nick] = { key: Buffer.from(pin.key).toString('hex'), verified: pin.verified };
      out.servers[server] = rec;
    }
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(out, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, this.path);
  }
}
