/**
 * The wire kit's one identity pool, for the tests, the fuzzer, the benchmarks and the conformance kit:
 * RSA identity keys (spec §8.1: RSA-2048, exponent 65537) made once and handed out again, because key
 * generation (~100 ms, more under load) is the most expensive step any of them takes.
 *
 * Two ways to hand a key out, for two kinds of user:
 * - `KeyPool` leases keys to one user at a time (a conformance case) and takes them back, generating
 *   missing ones in the thread pool, never on the event loop;
 * - `identity(nick)` hands the first KEY_POOL_SIZE keys out in turn to whoever asks (the fuzzer and the
 *   hostile tests), which the relay allows because it binds nicknames, not keys, and every nickname is new.
 */
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { generateIdentity } from '../crypto/rsa.js';

const genKeyPair = promisify(generateKeyPair);

/** An identity key: RSA private key and its public key as SPKI DER (294 bytes for RSA-2048). */
export interface Keys {
  readonly privateKey: KeyObject;
  readonly spki: Uint8Array;
}

/** An identity key with the nickname it is used under. */
export interface Identity extends Keys {
  readonly nick: string;
}

/**
 * Generates an RSA identity of `bits` bits with exponent `e` (2048 and 65537 are the protocol's, §8.1)
 * in the thread pool, off the event loop.
 */
export async function makeIdentity(bits = 2048, e = 65537): Promise<Keys> {
  const { privateKey, publicKey } = await genKeyPair('rsa', { modulusLength: bits, publicExponent: e });
  return { privateKey, spki: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })) };
}

/**
 * A new identity key generated at once, on the event loop: for a test file's keys made before its relay
 * starts, where nothing else waits on the loop.
 */
export function freshKeys(): Keys {
  const { privateKey, spki } = generateIdentity();
  return { privateKey, spki };
}

/**
 * Identity keys leased to one user at a time. A relay caps the authenticated connections of one key
 * (§7.1 "Quotas", MAX_CONNECTIONS_PER_KEY, 4 by default), and conformance cases run concurrently: keys
 * shared across cases would add up past that cap and be refused with TOO_MANY_CONNECTIONS. So a case
 * leases its own keys and returns them when it ends, after its connections are closed; a returned key
 * goes to the back of the queue, so it is leased again as late as possible (the target has long seen
 * those connections close by then). One pool serves every run in a process; it grows, off the event
 * loop, when a user asks for more free keys than it has, and keeps `spare` free keys on hand beyond
 * that, so a case that needs more keys than it reserved (a relay with a large room_size) takes one
 * without generating it on the event loop: a key generated there stalls every running case and the
 * target in the same process (up to 1.6 s at a load average of 18 here), long enough to blow their
 * deadlines.
 */
export class KeyPool {
  private readonly free: Keys[] = [];
  private growing: Promise<void> | undefined;
  /** Keys generated in all. */
  made = 0;
  /** Keys generated on the event loop because none was free (each one stalled the process). */
  madeBlocking = 0;

  /** The process-wide pool. */
  static readonly shared = new KeyPool();

  constructor(
    /** Free keys kept on hand beyond the reservations (topped up in the thread pool). */
    readonly spare = 8,
  ) {}

  /** Keys not leased now. */
  get available(): number {
    return this.free.length;
  }

  private grow(missing: number): Promise<void> {
    this.growing ??= Promise.all(Array.from({ length: missing }, () => makeIdentity())).then(
      (ids) => {
        this.made += ids.length;
        this.free.push(...ids);
        this.growing = undefined;
      },
      (e: unknown) => {
        this.growing = undefined;
        throw e;
      },
    );
    return this.growing;
  }

  /** Starts generating keys in the thread pool when fewer than `spare` are free. */
  private topUp(): void {
    if (this.growing === undefined && this.free.length < this.spare) this.grow(this.spare - this.free.length).catch(() => undefined);
  }

  /** Resolves once `spare` keys are free (a run calls it before its first case). */
  async warm(): Promise<void> {
    while (this.free.length < this.spare) await this.grow(this.spare - this.free.length);
  }

  /** Leases `n` keys, generating the missing ones in the thread pool (never on the event loop). */
  async reserve(n: number): Promise<Keys[]> {
    while (this.free.length < n) await this.grow(n - this.free.length);
    const ids = this.free.splice(0, n);
    this.topUp();
    return ids;
  }

  /**
   * Takes a key no other user holds: a spare one, else (all spares taken at once) one generated at
   * once, blocking: correct, only slower.
   */
  lease(): Keys {
    const id = this.free.shift();
    this.topUp();
    if (id !== undefined) return id;
    this.made++;
    this.madeBlocking++;
    return freshKeys();
  }

  /** Returns keys whose connections are closed. */
  release(ids: readonly Keys[]): void {
    this.free.push(...ids);
  }
}

/**
 * Keys `identity` hands out in turn. The relay allows MAX_CONNECTIONS_PER_KEY (4) authenticated
 * connections of one key: the fuzzer's batch of 8 cases holds at most 19 at once (a connection and a
 * peer per case, the legitimate pair, a flood), so 16 keys handed out in turn give each at most 2.
 */
export const KEY_POOL_SIZE = 16;

const ring: Keys[] = [];
let ringNext = 0;

/**
 * An identity with a fresh nickname: one of the first KEY_POOL_SIZE keys in turn, or a key of its own
 * when `fresh` (a test that needs the key to be only this nickname's).
 */
export function identity(nick: string, fresh = false): Identity {
  if (fresh || ring.length < KEY_POOL_SIZE) {
    const k = freshKeys();
    ring.push(k);
    return { nick, ...k };
  }
  const k = ring[ringNext++ % ring.length]!;
  return { nick, ...k };
}
