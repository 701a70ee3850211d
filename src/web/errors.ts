/**
 * What the page says for each §9 error code: one sentence for people, and whether reconnecting can help.
 * A Record over ErrorName, so a code added to src/protocol/errors.ts does not compile until it has one.
 */
import type { ErrorName } from '../protocol/errors.js';

export interface ErrorText {
  text: string;
  /** True when the page reconnects by itself after this code ended the connection. */
  retry: boolean;
}

export const ERROR_TEXTS: Record<ErrorName, ErrorText> = {
  MALFORMED_FRAME: { text: 'The relay and this page disagree about the protocol (a malformed frame).', retry: true },
  FRAME_TOO_LARGE: { text: 'A frame over the size the relay allows was refused.', retry: true },
  UNKNOWN_FRAME_TYPE: { text: 'The relay and this page disagree about the protocol (an unknown frame type).', retry: true },
  INVALID_FIELD: { text: 'A frame carried an invalid field; the connection was ended.', retry: true },
  UNEXPECTED_FRAME: { text: 'A frame arrived that does not fit this point of the protocol; the connection was ended.', retry: true },
  UNSUPPORTED_VERSION: { text: 'The relay speaks another protocol version than this page.', retry: false },
  BAD_PUBLIC_KEY: { text: 'The relay refused this browser’s key as not a valid RSA-2048 identity.', retry: false },
  AUTH_FAILED: { text: 'The relay could not verify this browser’s signature.', retry: false },
  NICK_BOUND: { text: 'This nickname belongs to another key on this relay: choose another nickname.', retry: false },
  ROOM_FULL: { text: 'The room is full: try again later or choose another room.', retry: false },
  NICK_IN_ROOM: { text: 'This nickname is already in that room (another tab or device?).', retry: false },
  NO_SUCH_PEER: { text: 'A member left before a message reached it.', retry: false },
  TIMEOUT: { text: 'The connection timed out.', retry: true },
  RATE_LIMITED: { text: 'Too many frames or bytes too fast: the relay slowed this page down.', retry: true },
  SLOW_CONSUMER: { text: 'The page did not read fast enough and the relay ended the connection.', retry: true },
  TOO_MANY_CONNECTIONS: { text: 'The relay holds too many connections for this key, nickname or address.', retry: true },
  SERVER_SHUTDOWN: { text: 'The relay is shutting down.', retry: true },
  WRONG_RELAY: { text: 'The relay named itself as another relay than the one this page connected to.', retry: false },
  INTERNAL_ERROR: { text: 'An internal error ended the connection.', retry: true },
  OAEP_FAILED: { text: 'A handshake with this member failed: its secret could not be decrypted.', retry: false },
  BAD_SIGNATURE: { text: 'A handshake with this member failed: its signature does not verify.', retry: false },
  BAD_KEY_CONFIRMATION: { text: 'A handshake with this member failed: the key confirmation does not match.', retry: false },
  BAD_EPHEMERAL_KEY: { text: 'A handshake with this member failed: an invalid ephemeral key.', retry: false },
  DECRYPT_FAILED: { text: 'A message from this member failed to decrypt (altered or forged) and was dropped.', retry: false },
  REPLAY: { text: 'A message from this member arrived twice; the copy was dropped.', retry: false },
  OUT_OF_ORDER: { text: 'A message from this member arrived out of order and was dropped.', retry: false },
  BAD_PADDING: { text: 'A message from this member had invalid padding and was dropped.', retry: false },
  KEY_CHANGED: { text: 'This member’s identity key changed: nothing is sent to or accepted from it until you accept the new key.', retry: false },
};
