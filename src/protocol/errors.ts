/**
 * The closed set of protocol error codes (spec/PROTOCOL.md §9 "Error codes").
 *
 * Every rejection of peer input in this codebase is a `ProtocolError` carrying one of these codes; tests
 * assert the code, never the message text. `scope` says where a code lives: `wire` codes travel in ERROR
 * frames between client and relay; `end-to-end` codes are results that a client reports locally (and
 * that vectors name as expected outcomes) but never sends to, or accepts from, a relay. `close` says whether
 * a relay that sends this code in an ERROR frame closes the connection afterwards.
 */
export const ERROR_CODES = {
  MALFORMED_FRAME: { code: 1, scope: 'wire', close: true },
  FRAME_TOO_LARGE: { code: 2, scope: 'wire', close: true },
  UNKNOWN_FRAME_TYPE: { code: 3, scope: 'wire', close: true },
  INVALID_FIELD: { code: 4, scope: 'wire', close: true },
  UNEXPECTED_FRAME: { code: 5, scope: 'wire', close: true },
  UNSUPPORTED_VERSION: { code: 6, scope: 'wire', close: true },
  BAD_PUBLIC_KEY: { code: 7, scope: 'wire', close: true },
  AUTH_FAILED: { code: 8, scope: 'wire', close: true },
  NICK_BOUND: { code: 9, scope: 'wire', close: true },
  ROOM_FULL: { code: 10, scope: 'wire', close: false },
  NICK_IN_ROOM: { code: 11, scope: 'wire', close: false },
  NO_SUCH_PEER: { code: 12, scope: 'wire', close: false },
  TIMEOUT: { code: 13, scope: 'wire', close: true },
  RATE_LIMITED: { code: 14, scope: 'wire', close: true },
  SLOW_CONSUMER: { code: 15, scope: 'wire', close: true },
  TOO_MANY_CONNECTIONS: { code: 16, scope: 'wire', close: true },
  SERVER_SHUTDOWN: { code: 17, scope: 'wire', close: true },
  INTERNAL_ERROR: { code: 18, scope: 'wire', close: true },
  WRONG_RELAY: { code: 19, scope: 'wire', close: true },
  // End-to-end (client-local) results.
  OAEP_FAILED: { code: 32, scope: 'end-to-end', close: false },
  BAD_SIGNATURE: { code: 33, scope: 'end-to-end', close: false },
  BAD_KEY_CONFIRMATION: { code: 34, scope: 'end-to-end', close: false },
  BAD_EPHEMERAL_KEY: { code: 35, scope: 'end-to-end', close: false },
  DECRYPT_FAILED: { code: 36, scope: 'end-to-end', close: false },
  REPLAY: { code: 37, scope: 'end-to-end', close: false },
  OUT_OF_ORDER: { code: 38, scope: 'end-to-end', close: false },
  BAD_PADDING: { code: 39, scope: 'end-to-end', close: false },
  KEY_CHANGED: { code: 40, scope: 'end-to-end', close: false },
} as const satisfies Record<string, { code: number; scope: ErrorScope; close: boolean }>;

export type ErrorScope = 'wire' | 'end-to-end';
export type ErrorName = keyof typeof ERROR_CODES;
export type ErrorCode = (typeof ERROR_CODES)[ErrorName]['code'];

const BY_CODE: ReadonlyMap<number, ErrorName> = new Map(
  (Object.keys(ERROR_CODES) as ErrorName[]).map((name) => [ERROR_CODES[name].code, name]),
);

/** The error name for a numeric code, or undefined for a code outside the closed set. */
export function errorName(code: number): ErrorName | undefined {
  return BY_CODE.get(code);
}

/**
 * The name of a code that may travel in an ERROR frame (scope `wire`), or undefined for a code outside the
 * closed set or of scope `end-to-end` (§9: a receiver treats both as unknown, hence fatal).
 */
export function wireErrorName(code: number): ErrorName | undefined {
  const name = BY_CODE.get(code);
  return name !== undefined && ERROR_CODES[name].scope === 'wire' ? name : undefined;
}

/** True when `name` may be sent in an ERROR frame (scope `wire`). */
export function isWireError(name: ErrorName): boolean {
  return ERROR_CODES[name].scope === 'wire';
}

/**
 * The one error type for peer misbehaviour. `name` is the stable code name (for example
 * `FRAME_TOO_LARGE`), `code` the wire number; `detail` is for humans and logs, never for tests.
 */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  readonly errorName: ErrorName;
  readonly close: boolean;
  readonly scope: ErrorScope;

  constructor(name: ErrorName, detail: string) {
    super(`${name}: ${detail}`);
    this.name = 'ProtocolError';
    this.errorName = name;
    this.code = ERROR_CODES[name].code;
    this.close = ERROR_CODES[name].close;
    this.scope = ERROR_CODES[name].scope;
  }
}

/** True for a ProtocolError with the given code name. */
export function isProtocolError(e: unknown, name?: ErrorName): e is ProtocolError {
  return e instanceof ProtocolError && (name === undefined || e.errorName === name);
}
