/**
 * The closed set of protocol error codes (spec/PROTOCOL.md §9 "Error codes").
 *
 * Every rejection of peer input in this codebase is a `ProtocolError` carrying one of these codes; tests
 * assert the code, never the message text. `close` says whether a relay that sends this code in an ERROR
 * frame closes the connection afterwards. Codes 1-31 travel on the wire between client and relay; codes
 * 32 and up are end-to-end results that a client reports locally (and that vectors name as expected
 * outcomes) but never sends to the relay.
 */
export const ERROR_CODES = {
  MALFORMED_FRAME: { code: 1, close: true },
  FRAME_TOO_LARGE: { code: 2, close: true },
  UNKNOWN_FRAME_TYPE: { code: 3, close: true },
  INVALID_FIELD: { code: 4, close: true },
  UNEXPECTED_FRAME: { code: 5, close: true },
  UNSUPPORTED_VERSION: { code: 6, close: true },
  BAD_PUBLIC_KEY: { code: 7, close: true },
  AUTH_FAILED: { code: 8, close: true },
  NICK_BOUND: { code: 9, close: true },
  ROOM_FULL: { code: 10, close: false },
  NICK_IN_ROOM: { code: 11, close: false },
  NO_SUCH_PEER: { code: 12, close: false },
  TIMEOUT: { code: 13, close: true },
  RATE_LIMITED: { code: 14, close: true },
  SLOW_CONSUMER: { code: 15, close: true },
  TOO_MANY_CONNECTIONS: { code: 16, close: true },
  SERVER_SHUTDOWN: { code: 17, close: true },
  INTERNAL_ERROR: { code: 18, close: true },
  // End-to-end (client-local) results.
  OAEP_FAILED: { code: 32, close: false },
  BAD_SIGNATURE: { code: 33, close: false },
  BAD_KEY_CONFIRMATION: { code: 34, close: false },
  BAD_EPHEMERAL_KEY: { code: 35, close: false },
  DECRYPT_FAILED: { code: 36, close: false },
  REPLAY: { code: 37, close: false },
  OUT_OF_ORDER: { code: 38, close: false },
  BAD_PADDING: { code: 39, close: false },
  KEY_CHANGED: { code: 40, close: false },
} as const;

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
 * The one error type for peer misbehaviour. `name` is the stable code name (for example
 * `FRAME_TOO_LARGE`), `code` the wire number; `detail` is for humans and logs, never for tests.
 */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  readonly errorName: ErrorName;
  readonly close: boolean;

  constructor(name: ErrorName, detail: string) {
    super(`${name}: ${detail}`);
    this.name = 'ProtocolError';
    this.errorName = name;
    this.code = ERROR_CODES[name].code;
    this.close = ERROR_CODES[name].close;
  }
}

/** True for a ProtocolError with the given code name. */
export function isProtocolError(e: unknown, name?: ErrorName): e is ProtocolError {
  return e instanceof ProtocolError && (name === undefined || e.errorName === name);
}
