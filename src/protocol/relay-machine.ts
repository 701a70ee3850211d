/**
 * The relay's per-connection state machine (spec/PROTOCOL.md §7.1), as data. The server is driven by
 * this table and test/spec-tables.test.ts holds it equal to the spec's table. A (state, input) pair
 * that is not in the table is a protocol violation: the relay sends ERROR UNEXPECTED_FRAME and closes.
 *
 * `errors` lists the refusals the step may produce instead of its success; each is sent as an ERROR
 * frame, and whether the connection then closes is the code's `close` column (./errors.ts). A refusal
 * that does not close leaves the state unchanged.
 */
import type { ErrorName } from './errors.js';

export const SERVER_STATES = ['AWAIT_HELLO', 'AWAIT_AUTH', 'READY', 'IN_ROOM', 'CLOSED'] as const;
export type ServerState = (typeof SERVER_STATES)[number];

/** Inputs: frames a client may send (by name) and connection events (lower case). */
export const SERVER_INPUTS = [
  'HELLO', 'CHALLENGE', 'AUTH', 'WELCOME', 'JOIN', 'JOINED', 'PEER_JOINED', 'PEER_LEFT', 'SEND', 'DELIVER',
  'LEAVE', 'LEFT', 'PING', 'PONG', 'ERROR', 'RECOVER', 'SET_RECOVERY', 'RECOVERY_SET', 'timeout', 'disconnect',
] as const;
export type ServerInput = (typeof SERVER_INPUTS)[number];

export interface ServerTransition {
  readonly state: ServerState;
  readonly on: ServerInput;
  readonly next: ServerState;
  readonly action: string;
  readonly errors: readonly ErrorName[];
}

const live = ['AWAIT_HELLO', 'AWAIT_AUTH', 'READY', 'IN_ROOM'] as const;

export const SERVER_TRANSITIONS: readonly ServerTransition[] = [
  { state: 'AWAIT_HELLO', on: 'HELLO', next: 'AWAIT_AUTH', action: 'send CHALLENGE', errors: ['UNSUPPORTED_VERSION', 'BAD_PUBLIC_KEY'] },
  { state: 'AWAIT_AUTH', on: 'AUTH', next: 'READY', action: 'verify signature, bind nickname; send WELCOME', errors: ['AUTH_FAILED', 'NICK_BOUND', 'TOO_MANY_CONNECTIONS', 'RATE_LIMITED'] },
  { state: 'AWAIT_AUTH', on: 'RECOVER', next: 'READY', action: 'verify signature, check recovery code, bind nickname; send WELCOME', errors: ['AUTH_FAILED', 'NICK_BOUND', 'TOO_MANY_CONNECTIONS', 'RATE_LIMITED'] },
  { state: 'READY', on: 'SET_RECOVERY', next: 'READY', action: 'register recovery commitment; send RECOVERY_SET', errors: ['NICK_BOUND'] },
  { state: 'READY', on: 'JOIN', next: 'IN_ROOM', action: 'join room; send JOINED; PEER_JOINED to members', errors: ['ROOM_FULL', 'NICK_IN_ROOM'] },
  { state: 'READY', on: 'PING', next: 'READY', action: 'send PONG', errors: [] },
  { state: 'IN_ROOM', on: 'SEND', next: 'IN_ROOM', action: 'DELIVER to the addressee, from stamped by the relay', errors: ['NO_SUCH_PEER'] },
  { state: 'IN_ROOM', on: 'LEAVE', next: 'READY', action: 'send LEFT; PEER_LEFT to members', errors: [] },
  { state: 'IN_ROOM', on: 'PING', next: 'IN_ROOM', action: 'send PONG', errors: [] },
  ...live.map((state) => ({ state, on: 'ERROR' as const, next: 'CLOSED' as const, action: 'close', errors: [] })),
  ...live.map((state) => ({ state, on: 'timeout' as const, next: 'CLOSED' as const, action: 'send ERROR TIMEOUT; close', errors: [] })),
  ...live.map((state) => ({
    state,
    on: 'disconnect' as const,
    next: 'CLOSED' as const,
    action: state === 'IN_ROOM' ? 'leave room; PEER_LEFT to members' : 'forget connection',
    errors: [],
  })),
];

// An index over the table (not a second table): the relay looks up one row per frame received, by state
// and then by input, with no key string built per frame.
const INDEX: ReadonlyMap<ServerState, ReadonlyMap<ServerInput, ServerTransition>> = new Map(
  SERVER_STATES.map((state) => [state, new Map(SERVER_TRANSITIONS.filter((t) => t.state === state).map((t) => [t.on, t]))]),
);

/** The transition for (state, input), or undefined when the pair is a protocol violation. */
export function serverTransition(state: ServerState, on: ServerInput): ServerTransition | undefined {
  return INDEX.get(state)?.get(on);
}
