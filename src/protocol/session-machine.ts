/**
 * A client's per-peer end-to-end session machine (spec/PROTOCOL.md §7.2), as data. One machine runs for
 * each other member of the room. The member that joined later is the initiator towards every member
 * already present; the members already present are responders. test/spec-tables.test.ts holds this
 * table equal to the spec's.
 *
 * A (state, input) pair not in the table is UNEXPECTED_FRAME and fails the session. Errors listed for a
 * step fail the session too, except in ESTABLISHED, where a rejected MSG is reported and dropped and the
 * session stays as it was.
 */
import type { ErrorName } from './errors.js';

export const SESSION_STATES = ['IDLE', 'AWAIT_RESP', 'AWAIT_FINISH', 'ESTABLISHED', 'FAILED', 'CLOSED'] as const;
export type SessionState = (typeof SESSION_STATES)[number];

export const SESSION_INPUTS = ['start', 'HS_INIT', 'HS_RESP', 'HS_FINISH', 'MSG', 'peer_left', 'timeout'] as const;
export type SessionInput = (typeof SESSION_INPUTS)[number];

export interface SessionTransition {
  readonly state: SessionState;
  readonly on: SessionInput;
  readonly next: SessionState;
  readonly action: string;
  readonly errors: readonly ErrorName[];
}

const open = ['IDLE', 'AWAIT_RESP', 'AWAIT_FINISH', 'ESTABLISHED', 'FAILED'] as const;

export const SESSION_TRANSITIONS: readonly SessionTransition[] = [
  { state: 'IDLE', on: 'start', next: 'AWAIT_RESP', action: 'initiator: send HS_INIT', errors: [] },
  {
    state: 'IDLE',
    on: 'HS_INIT',
    next: 'AWAIT_FINISH',
    action: 'responder: send HS_RESP',
    errors: ['UNSUPPORTED_VERSION', 'BAD_EPHEMERAL_KEY', 'OAEP_FAILED'],
  },
  {
    state: 'AWAIT_RESP',
    on: 'HS_RESP',
    next: 'ESTABLISHED',
    action: 'send HS_FINISH; session established',
    errors: ['BAD_EPHEMERAL_KEY', 'OAEP_FAILED', 'BAD_SIGNATURE', 'BAD_KEY_CONFIRMATION'],
  },
  { state: 'AWAIT_FINISH', on: 'HS_FINISH', next: 'ESTABLISHED', action: 'session established', errors: ['BAD_SIGNATURE', 'BAD_KEY_CONFIRMATION'] },
  {
    state: 'ESTABLISHED',
    on: 'MSG',
    next: 'ESTABLISHED',
    action: 'open; TEXT: show, ACK due at the end of the batch; ACK: mark delivered up to upto; ROSTER: compare (§8.6)',
    errors: ['REPLAY', 'OUT_OF_ORDER', 'DECRYPT_FAILED', 'BAD_PADDING', 'MALFORMED_FRAME', 'UNKNOWN_FRAME_TYPE', 'INVALID_FIELD'],
  },
  { state: 'AWAIT_RESP', on: 'timeout', next: 'FAILED', action: 'report TIMEOUT', errors: [] },
  { state: 'AWAIT_FINISH', on: 'timeout', next: 'FAILED', action: 'report TIMEOUT', errors: [] },
  ...open.map((state) => ({ state, on: 'peer_left' as const, next: 'CLOSED' as const, action: 'erase keys; list unacknowledged messages', errors: [] })),
];

/** The transition for (state, input), or undefined when the pair is a protocol violation. */
export function sessionTransition(state: SessionState, on: SessionInput): SessionTransition | undefined {
  return SESSION_TRANSITIONS.find((t) => t.state === state && t.on === on);
}
