/**
 * Nicknames and room names (spec/PROTOCOL.md §6, §10): the one definition of what a valid name is. The
 * codec (field bounds), the relay (DELIVER.from), the client (its own nick and the room it joins) and
 * the CLI (its options) all ask here.
 */
import { LIMITS } from './limits.js';

/** Alphabets of names, as regular expressions over the whole string (spec §10). */
export const NICK_PATTERN = /^[A-Za-z0-9_-]+$/;
export const ROOM_PATTERN = /^[A-Za-z0-9_.-]+$/;

/** What a valid name is, in words, for usage and RangeError messages. */
export const NICK_RULE = `${LIMITS.NICK_MIN_BYTES}..${LIMITS.NICK_MAX_BYTES} characters of [A-Za-z0-9_-]`;
export const ROOM_RULE = `${LIMITS.ROOM_MIN_BYTES}..${LIMITS.ROOM_MAX_BYTES} characters of [A-Za-z0-9_.-]`;

// The alphabets are ASCII, so once a pattern matches, string length equals UTF-8 byte length.
const within = (s: string, min: number, max: number) => s.length >= min && s.length <= max;

/** True when `s` is a nickname: NICK_MIN_BYTES..NICK_MAX_BYTES bytes of the nick alphabet. */
export function isNick(s: string): boolean {
  return within(s, LIMITS.NICK_MIN_BYTES, LIMITS.NICK_MAX_BYTES) && NICK_PATTERN.test(s);
}

/** True when `s` is a room name: ROOM_MIN_BYTES..ROOM_MAX_BYTES bytes of the room alphabet. */
export function isRoom(s: string): boolean {
  return within(s, LIMITS.ROOM_MIN_BYTES, LIMITS.ROOM_MAX_BYTES) && ROOM_PATTERN.test(s);
}
