// Shared set-up for the end-to-end session tests: fixed identities (test data, src/vectors/crypto-keys.ts),
// both crypto backends, and helpers that run a handshake between two PeerSessions with real randomness.
import { PeerSession, type SessionEvent, type SessionParams } from '../../src/handshake/session.js';
import type { CryptoBackend, RsaPrivateKey, RsaPublicKey } from '../../src/crypto/backend.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { webCryptoBackend } from '../../src/crypto/webcrypto.js';
import { fixedIdentity, type FixedIdentity, type FixedName } from '../../src/vectors/crypto-keys.js';
import type { ErrorName } from '../../src/protocol/errors.js';

export const alice = fixedIdentity('alice');
export const bob = fixedIdentity('bob');
export const mallory = fixedIdentity('mallory');

/** Both backends: every session test runs on each (node:crypto, WebCrypto). */
export const BACKENDS: readonly CryptoBackend[] = [nodeBackend, webCryptoBackend()];

// The fixed keys imported once per backend for the whole test file (as a client imports a member's key
// once when it joins): tests build many sessions from the same three identities.
const imported = new WeakMap<CryptoBackend, Map<string, Promise<RsaPrivateKey | RsaPublicKey>>>();

function once<K>(c: CryptoBackend, key: string, make: () => Promise<K>): Promise<K> {
  let m = imported.get(c);
  if (m === undefined) imported.set(c, (m = new Map()));
  let p = m.get(key);
  if (p === undefined) m.set(key, (p = make() as Promise<RsaPrivateKey | RsaPublicKey>));
  return p as Promise<K>;
}

/** `id`'s private key as a handle of `c`. */
export function privateKeyOf(c: CryptoBackend, id: FixedIdentity): Promise<RsaPrivateKey> {
  return once(c, `private/${id.nick}`, () => c.importPrivateKey(id.pkcs8));
}

/** `id`'s public key as a handle of `c`. */
export function publicKeyOf(c: CryptoBackend, id: FixedIdentity): Promise<RsaPublicKey> {
  return once(c, `public/${id.nick}`, () => c.importPublicKey(id.spki));
}

export async function local(c: CryptoBackend, id: FixedIdentity, nick: string = id.nick): Promise<SessionParams['self']> {
  return { nick, key: await privateKeyOf(c, id), spki: id.spki };
}

export interface SessionOptions {
  /** Our nickname when it is not our identity's (a relay that lies about who is who). */
  nick?: string;
  peerNick?: FixedName;
  room?: string;
  psk?: Uint8Array;
  rsa?: SessionParams['rsa'];
}

/** A session of `self` with the peer whose key the relay listed as `peerKey`. */
export async function session(c: CryptoBackend, self: FixedIdentity, peerKey: FixedIdentity, role: 'initiator' | 'responder', o: SessionOptions = {}): Promise<PeerSession> {
  return new PeerSession({
    crypto: c,
    room: o.room ?? 'lobby',
    self: await local(c, self, o.nick),
    peerNick: o.peerNick ?? peerKey.nick,
    peerKey: await publicKeyOf(c, peerKey),
    role,
    ...(o.psk ? { psk: o.psk } : {}),
    ...(o.rsa ? { rsa: o.rsa } : {}),
  });
}

export interface PairOptions {
  room?: string;
  pskI?: Uint8Array;
  pskR?: Uint8Array;
}

/** An initiator `i` and a responder `r` that know each other's real keys. */
export async function pair(c: CryptoBackend, i: FixedIdentity = alice, r: FixedIdentity = bob, o: PairOptions = {}): Promise<{ I: PeerSession; R: PeerSession }> {
  const room = o.room ?? 'lobby';
  const I = await session(c, i, r, 'initiator', { room, ...(o.pskI ? { psk: o.pskI } : {}) });
  const R = await session(c, r, i, 'responder', { room, ...(o.pskR ? { psk: o.pskR } : {}) });
  return { I, R };
}

/** The body of the single `send` event among `events` (throws when there is none). */
export function sent(events: SessionEvent[]): Uint8Array {
  const s = events.filter((e) => e.kind === 'send');
  if (s.length !== 1 || s[0]?.kind !== 'send') throw new Error(`expected one send event, got ${events.map((e) => e.kind).join(',')}`);
  return s[0].body;
}

/** The error code names of the `rejected` events. */
export function rejections(events: SessionEvent[]): ErrorName[] {
  return events.flatMap((e) => (e.kind === 'rejected' ? [e.error.errorName] : []));
}

/** Runs the three-message handshake; returns the frames and every event. */
export async function handshake(I: PeerSession, R: PeerSession) {
  const init = sent(await I.start());
  const eR1 = await R.receive(init);
  const resp = sent(eR1);
  const eI = await I.receive(resp);
  const finish = sent(eI);
  const eR2 = await R.receive(finish);
  return { init, resp, finish, eI, eR: [...eR1, ...eR2] };
}

/** An established pair. */
export async function established(c: CryptoBackend, o: PairOptions = {}): Promise<{ I: PeerSession; R: PeerSession }> {
  const p = await pair(c, alice, bob, o);
  await handshake(p.I, p.R);
  if (p.I.state !== 'ESTABLISHED' || p.R.state !== 'ESTABLISHED') throw new Error('handshake did not complete');
  return p;
}

/** Flips bit `bit` of byte `i` of a copy of `b`. */
export function flip(b: Uint8Array, i: number, bit = 0): Uint8Array {
  const c = Uint8Array.from(b);
  c[i] = (c[i] as number) ^ (1 << bit);
  return c;
}

/** The ErrorName `fn` throws or rejects with as a ProtocolError, or 'NO_THROW' / 'NOT_A_PROTOCOL_ERROR'. */
export async function thrownCode(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    return e instanceof Error && 'errorName' in e ? String((e as { errorName: unknown }).errorName) : 'NOT_A_PROTOCOL_ERROR';
  }
  return 'NO_THROW';
}
