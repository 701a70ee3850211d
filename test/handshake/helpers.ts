// Shared set-up for the end-to-end session tests: fixed identities (test data, src/vectors/crypto-keys.ts)
// and helpers that run a handshake between two PeerSessions with real randomness.
import { PeerSession, type SessionEvent, type SessionParams } from '../../src/handshake/session.js';
import { fixedIdentity, type FixedIdentity, type FixedName } from '../../src/vectors/crypto-keys.js';
import type { ErrorName } from '../../src/protocol/errors.js';

export const alice = fixedIdentity('alice');
export const bob = fixedIdentity('bob');
export const mallory = fixedIdentity('mallory');

export function local(id: FixedIdentity, nick: string = id.nick): SessionParams['self'] {
  return { nick, privateKey: id.privateKey, spki: id.spki };
}

export interface PairOptions {
  room?: string;
  pskI?: Uint8Array;
  pskR?: Uint8Array;
}

/** An initiator `i` and a responder `r` that know each other's real keys. */
export function pair(i: FixedIdentity = alice, r: FixedIdentity = bob, o: PairOptions = {}): { I: PeerSession; R: PeerSession } {
  const room = o.room ?? 'lobby';
  const I = new PeerSession({ room, self: local(i), peerNick: r.nick, peerKey: r.spki, role: 'initiator', ...(o.pskI ? { psk: o.pskI } : {}) });
  const R = new PeerSession({ room, self: local(r), peerNick: i.nick, peerKey: i.spki, role: 'responder', ...(o.pskR ? { psk: o.pskR } : {}) });
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
export function handshake(I: PeerSession, R: PeerSession) {
  const init = sent(I.start());
  const eR1 = R.receive(init);
  const resp = sent(eR1);
  const eI = I.receive(resp);
  const finish = sent(eI);
  const eR2 = R.receive(finish);
  return { init, resp, finish, eI, eR: [...eR1, ...eR2] };
}

/** An established pair. */
export function established(o: PairOptions = {}): { I: PeerSession; R: PeerSession } {
  const p = pair(alice, bob, o);
  handshake(p.I, p.R);
  if (p.I.state !== 'ESTABLISHED' || p.R.state !== 'ESTABLISHED') throw new Error('handshake did not complete');
  return p;
}

/** Flips bit `bit` of byte `i` of a copy of `b`. */
export function flip(b: Uint8Array, i: number, bit = 0): Uint8Array {
  const c = Uint8Array.from(b);
  c[i] = (c[i] as number) ^ (1 << bit);
  return c;
}

/** The ErrorName `fn` throws as a ProtocolError, or 'NO_THROW' / 'NOT_A_PROTOCOL_ERROR'. */
export function thrownCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return e instanceof Error && 'errorName' in e ? String((e as { errorName: unknown }).errorName) : 'NOT_A_PROTOCOL_ERROR';
  }
  return 'NO_THROW';
}
