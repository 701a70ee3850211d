/**
 * The public events of ChatClient (src/client/chat-client.ts) and the values they carry, in one place for
 * the facade, the members (src/client/members.ts) and the presenters that render them (src/cli/presenter.ts,
 * the page).
 */
import type { ProtocolError } from '../protocol/errors.js';
import type { ClientFailure } from './relay-connection.js';
import type { RosterReport } from './roster.js';

export interface Undelivered {
  /** The member it was for (null is no longer produced: a text is never queued for a future member, issue 14). */
  to: string | null;
  /** The session sequence number, or null when the text never left (no session yet). */
  seq: number | null;
  text: string;
}

export type PeerStatus = 'handshake' | 'established' | 'failed' | 'key-changed' | 'bad-key' | 'throttled';

export interface PeerInfo {
  nick: string;
  fingerprint: string;
  status: PeerStatus;
  verified: boolean;
}

/**
 * What a failed handshake most likely means, when the client can tell (refusal notices, members.ts):
 * - `room-secret`: the room secrets differ (or only one side has one): our check of the peer's key
 *   confirmation failed after its signature verified (§8.2), or the peer's notice came after our HS_RESP;
 * - `key-not-accepted`: the peer's client has another key pinned for our nickname and will not start a
 *   session until its user accepts ours (§8.5 step 3).
 */
export type FailureCause = 'room-secret' | 'key-not-accepted';

export interface ChatClientEvents {
  /** JOINED: `rejoin` when it re-entered the room after a lost connection (ReconnectPolicy). */
  joined: [{ room: string; members: string[]; rejoin: boolean }];
  'peer-joined': [{ nick: string; fingerprint: string; verified: boolean; firstSeen: boolean }];
  'peer-left': [{ nick: string; undelivered: Undelivered[] }];
  /** The session is established; `safetyNumber` (2 x 5200 SHA-512) is computed when first read. */
  established: [{ nick: string; readonly safetyNumber: Promise<string>; verified: boolean }];
  text: [{ from: string; seq: number; ts: number; text: string; verified: boolean }];
  sent: [{ to: string; seq: number; text: string }];
  delivered: [{ to: string; seq: number; text: string }];
  /** A peer's frame was refused (spec §7.2 refusals); `fatal` when the session failed because of it. */
  rejected: [{ from: string; error: ProtocolError; fatal: boolean; cause?: FailureCause }];
  /** §8.5 step 3: a valid key that differs from the pin; `error` is KEY_CHANGED (§9). */
  'key-changed': [{ nick: string; pinnedFingerprint: string; offeredFingerprint: string; error: ProtocolError }];
  /**
   * The fingerprint index across relays (issue 14 point 6): `nick` is verified on the relays `elsewhere`
   * with other keys than the `offeredFingerprint` here. Each relay has its own nicknames, so it need not be
   * the same person; but the user who verified one should know before trusting this one.
   */
  'key-elsewhere': [{ nick: string; offeredFingerprint: string; elsewhere: { relay: string; fingerprint: string }[] }];
  /**
   * A member joining and leaving over and over (CHURN): `joins` joins in the last `windowMs` ms; until
   * `until` (epoch ms) its joins and leaves raise no peer-joined / peer-left and it gets no session.
   */
  'peer-churn': [{ nick: string; joins: number; windowMs: number; until: number }];
  /**
   * §8.6: the room this client sees and the room a peer sees differ (`mismatch` at `epoch`), a peer is
   * at an epoch the relay never brought us to (`withheld`), or a peer's commitment cannot be checked
   * (`unverifiable`). The relay shows members different rooms; the connection and sessions carry on.
   */
  'roster-mismatch': [RosterReport];
  /** A non-fatal ERROR from the relay (NO_SUCH_PEER, or a refusal outside a request). */
  'relay-error': [{ error: ProtocolError }];
  /** The connection is gone: `failure` null after close()/leave(), else why; `undelivered` what never got acknowledged. */
  closed: [{ failure: ClientFailure | null; undelivered: Undelivered[] }];
  /**
   * With a ReconnectPolicy: the connection was lost and will be re-established. `undelivered` is what was
   * not acknowledged before the drop: kept by the client for resend() (see there), never sent again by itself.
   */
  'connection-lost': [{ failure: ClientFailure; undelivered: Undelivered[] }];
  /** The next reconnect attempt (1, 2, ...) starts in `delayMs`; `failure` is why the last one ended. */
  reconnecting: [{ attempt: number; delayMs: number; failure: ClientFailure }];
  /** Back in the room (after `joined` with rejoin): `attempts` tried, `downMs` since the drop. */
  reconnected: [{ room: string; members: string[]; attempts: number; downMs: number }];
  /**
   * A listener of `event` threw while the client delivered it (STYLE.md rule 13): the application's own
   * error, never the relay's or a peer's; the connection and the sessions carry on. Without a listener
   * for this event the error is thrown again outside the client (an uncaught exception, as Node reports
   * an application's errors).
   */
  'listener-error': [{ event: keyof ChatClientEvents; error: unknown }];
}

/** How the members raise an event: the facade's emit (delivered after the parse loop). */
export type Emit = <K extends keyof ChatClientEvents>(event: K, ...args: ChatClientEvents[K]) => void;
