/**
 * A client's machine for one relay connection (spec/PROTOCOL.md §7.4), as data. The reference client
 * (src/client/) looks up one row per frame received and per local event (`join`, `leave`, `timeout`,
 * `disconnect`) and runs the row's `step`; test/spec-tables.test.ts holds the rows equal to the spec's
 * table, cell by cell. A (state, input) pair not in the table is UNEXPECTED_FRAME for a frame, and a
 * caller's mistake for a local event.
 *
 * A row may name several states and several inputs, as the spec's rows do; `next: 'same'` keeps the
 * state. `step` is the code's own column (not in the spec): which handler the row runs.
 *
 * ERROR frames are three inputs, by the code they carry (§7.4 "Non-closing ERROR", §9): a join refusal
 * (ROOM_FULL, NICK_IN_ROOM) where a JOIN is outstanding, any other non-closing wire code, and everything
 * else (a closing code, an unknown code, an end-to-end code) as closing. `errorInput` makes that choice.
 */
import { ERROR_CODES, wireErrorName, type ErrorName } from './errors.js';
import { FRAMES, type FrameName } from './frames.js';

export const CLIENT_STATES = ['AWAIT_CHALLENGE', 'AWAIT_WELCOME', 'AWAIT_WELCOME_JOINED', 'READY', 'AWAIT_RECOVERY_SET', 'AWAIT_JOINED', 'IN_ROOM', 'AWAIT_LEFT', 'CLOSED'] as const;
export type ClientState = (typeof CLIENT_STATES)[number];

/** The codes that answer a JOIN (§7.4: ROOM_FULL or NICK_IN_ROOM in AWAIT_JOINED). */
export const JOIN_REFUSALS = ['ROOM_FULL', 'NICK_IN_ROOM'] as const satisfies readonly ErrorName[];

/** ERROR as three inputs, with the spec's words for each. */
export const ERROR_INPUTS = {
  'ERROR:join-refused': `ERROR ${JOIN_REFUSALS.join(' or ')}`,
  'ERROR:closing': 'ERROR, closing or unknown code',
  'ERROR:non-closing': 'ERROR, other non-closing code',
} as const;
type ErrorInput = keyof typeof ERROR_INPUTS;

type RelayFrameName = { [N in FrameName]: (typeof FRAMES)[N]['layer'] extends 'relay' ? N : never }[FrameName];

/** Inputs: every relay frame by name (ERROR split in three, above) and the local events (lower case). */
export const CLIENT_INPUTS = [
  ...((Object.keys(FRAMES) as FrameName[]).filter((n) => FRAMES[n].layer === 'relay' && n !== 'ERROR') as Exclude<RelayFrameName, 'ERROR'>[]),
  ...(Object.keys(ERROR_INPUTS) as ErrorInput[]),
  'join',
  'leave',
  'set_recovery',
  'timeout',
  'disconnect',
] as const;
export type ClientInput = Exclude<RelayFrameName, 'ERROR'> | ErrorInput | 'join' | 'leave' | 'set_recovery' | 'timeout' | 'disconnect';

/** The handler a row runs (src/client/ has one per step). */
export type ClientStep =
  | 'auth'
  | 'welcome'
  | 'join'
  | 'joined'
  | 'join-refused'
  | 'peer-joined'
  | 'peer-left'
  | 'deliver'
  | 'leave'
  | 'ignore'
  | 'left'
  | 'set-recovery'
  | 'recovery-set'
  | 'relay-error'
  | 'relay-closed'
  | 'timeout'
  | 'disconnect';

/** States written as the spec writes them: a list, or every state but CLOSED. */
export const ANY_BUT_CLOSED = 'any but CLOSED';

export interface ClientRow {
  readonly states: readonly ClientState[] | typeof ANY_BUT_CLOSED;
  readonly on: readonly ClientInput[];
  readonly next: ClientState | 'same';
  readonly action: string;
  readonly errors: readonly ErrorName[];
  readonly step: ClientStep;
}

export const CLIENT_TRANSITIONS: readonly ClientRow[] = [
  { states: ['AWAIT_CHALLENGE'], on: ['CHALLENGE'], next: 'AWAIT_WELCOME', action: 'send AUTH (§7.3), or RECOVER (§7.5)', errors: ['UNSUPPORTED_VERSION', 'WRONG_RELAY'], step: 'auth' },
  { states: ['AWAIT_WELCOME'], on: ['WELCOME'], next: 'READY', action: 'adopt the announced limits; start keepalive', errors: ['INVALID_FIELD'], step: 'welcome' },
  { states: ['AWAIT_WELCOME'], on: ['join'], next: 'AWAIT_WELCOME_JOINED', action: 'send JOIN behind AUTH (§7.1: handled after WELCOME)', errors: [], step: 'join' },
  { states: ['AWAIT_WELCOME_JOINED'], on: ['WELCOME'], next: 'AWAIT_JOINED', action: 'adopt the announced limits; start keepalive', errors: ['INVALID_FIELD'], step: 'welcome' },
  { states: ['READY'], on: ['join'], next: 'AWAIT_JOINED', action: 'send JOIN', errors: [], step: 'join' },
  { states: ['READY'], on: ['set_recovery'], next: 'AWAIT_RECOVERY_SET', action: 'send SET_RECOVERY (§7.5)', errors: [], step: 'set-recovery' },
  { states: ['AWAIT_RECOVERY_SET'], on: ['RECOVERY_SET'], next: 'READY', action: 'the code is registered: show it once', errors: [], step: 'recovery-set' },
  {
    states: ['AWAIT_JOINED'],
    on: ['JOINED'],
    next: 'IN_ROOM',
    action: 'one §7.2 machine per member, as initiator (after §8.5)',
    errors: ['INVALID_FIELD'],
    step: 'joined',
  },
  { states: ['AWAIT_JOINED'], on: ['ERROR:join-refused'], next: 'READY', action: 'report the refused join', errors: [], step: 'join-refused' },
  { states: ['IN_ROOM'], on: ['PEER_JOINED'], next: 'IN_ROOM', action: 'one §7.2 machine, as responder (after §8.5)', errors: ['UNEXPECTED_FRAME'], step: 'peer-joined' },
  { states: ['IN_ROOM'], on: ['PEER_LEFT'], next: 'IN_ROOM', action: "`peer_left` to that member's machine; remove it", errors: ['UNEXPECTED_FRAME'], step: 'peer-left' },
  { states: ['IN_ROOM'], on: ['DELIVER'], next: 'IN_ROOM', action: "body to the sender's machine (§7.2, §8.5)", errors: ['UNEXPECTED_FRAME'], step: 'deliver' },
  { states: ['IN_ROOM'], on: ['leave'], next: 'AWAIT_LEFT', action: 'send LEAVE', errors: [], step: 'leave' },
  { states: ['AWAIT_LEFT'], on: ['PEER_JOINED', 'PEER_LEFT', 'DELIVER'], next: 'AWAIT_LEFT', action: 'ignore (room traffic in flight)', errors: [], step: 'ignore' },
  { states: ['AWAIT_LEFT'], on: ['LEFT'], next: 'READY', action: '`peer_left` to every machine', errors: [], step: 'left' },
  { states: ['READY', 'AWAIT_RECOVERY_SET', 'AWAIT_JOINED', 'IN_ROOM', 'AWAIT_LEFT'], on: ['PONG'], next: 'same', action: 'nothing', errors: [], step: 'ignore' },
  { states: ANY_BUT_CLOSED, on: ['ERROR:closing'], next: 'CLOSED', action: 'report the code; close; send nothing', errors: [], step: 'relay-closed' },
  { states: ANY_BUT_CLOSED, on: ['ERROR:non-closing'], next: 'same', action: 'report the code', errors: [], step: 'relay-error' },
  { states: ANY_BUT_CLOSED, on: ['timeout'], next: 'CLOSED', action: 'report; close', errors: [], step: 'timeout' },
  { states: ANY_BUT_CLOSED, on: ['disconnect'], next: 'CLOSED', action: 'report; `peer_left` to every machine', errors: [], step: 'disconnect' },
];

/** One (state, input) pair of the table, with `same` and the state lists resolved. */
export interface ClientTransition {
  readonly state: ClientState;
  readonly on: ClientInput;
  readonly next: ClientState;
  readonly row: ClientRow;
}

/** The states a row names. */
export function rowStates(row: ClientRow): readonly ClientState[] {
  return row.states === ANY_BUT_CLOSED ? CLIENT_STATES.filter((s) => s !== 'CLOSED') : row.states;
}

// An index over the table (not a second table): one entry per (state, input) pair a row names.
const INDEX: ReadonlyMap<string, ClientTransition> = new Map(
  CLIENT_TRANSITIONS.flatMap((row) =>
    rowStates(row).flatMap((state) => row.on.map((on) => [`${state} ${on}`, { state, on, next: row.next === 'same' ? state : row.next, row }] as const)),
  ),
);

/** The transition for (state, input), or undefined when the pair is not in the table. */
export function clientTransition(state: ClientState, on: ClientInput): ClientTransition | undefined {
  return INDEX.get(`${state} ${on}`);
}

/**
 * Which ERROR input a received code is in `state` (§7.4 "Non-closing ERROR", §9): a code the client does
 * not know, a closing code and an end-to-end code (never sent on a relay connection) are closing; a join
 * refusal answers the JOIN only where the table has a row for it; any other non-closing code is reported.
 */
export function errorInput(state: ClientState, code: number): ErrorInput {
  const name = wireErrorName(code);
  if (name === undefined || ERROR_CODES[name].close) return 'ERROR:closing';
  if ((JOIN_REFUSALS as readonly ErrorName[]).includes(name) && clientTransition(state, 'ERROR:join-refused') !== undefined) return 'ERROR:join-refused';
  return 'ERROR:non-closing';
}

/** The spec's words for an input (the frame or event name, or the ERROR class). */
export function inputCell(on: ClientInput): string {
  return on in ERROR_INPUTS ? ERROR_INPUTS[on as ErrorInput] : on;
}
