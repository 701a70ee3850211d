/**
 * What the interactive client remembers in its --home between runs (issue 15 point 3): the nickname, and
 * the relay and room of the last session, so that `e2ee-chat client --home DIR` alone goes back to where
 * the user was. One small JSON file, `client.json`, read and written under the private-file rules of
 * src/files/private.ts (ours, mode 0600, no symbolic link, atomic replace). Nothing secret is in it.
 *
 * The file is parsed strictly: an object with only the known keys, each of the right type and within the
 * same rules as the command-line options; anything else is ignored as a whole (the caller says so).
 */
import { join } from 'node:path';
import { PrivateFileError, readPrivateFile, writePrivateFile } from '../files/private.js';
import { isNick, isRoom } from '../protocol/names.js';
import { parseRelayIdentity } from '../protocol/relay-id.js';

export const REMEMBERED_FILE = 'client.json';
/** Far above what four short fields need; a larger file is refused before it is parsed. */
const MAX_BYTES = 4096;

export interface Remembered {
  nick?: string;
  host?: string;
  port?: number;
  /** --relay-name of that run (spec §7.3), when the relay was reached under another name; canonical. */
  relayName?: string;
  room?: string;
}

/** The remembered values of `home`, and why they were ignored when they were (null when fine or absent). */
export async function readRemembered(home: string): Promise<{ values: Remembered; warning: string | null }> {
  let raw: Buffer;
  try {
    raw = await readPrivateFile(join(home, REMEMBERED_FILE), MAX_BYTES);
  } catch (e) {
    if (e instanceof PrivateFileError && e.code === 'NOT_FOUND') return { values: {}, warning: null };
    return { values: {}, warning: `${REMEMBERED_FILE} ignored: ${(e as Error).message}` };
  }
  const values = parseRemembered(raw.toString('utf8'));
  return values === null ? { values: {}, warning: `${REMEMBERED_FILE} ignored: not a valid settings file` } : { values, warning: null };
}

/** The settings in `text`, or null when it is not exactly an object of known, valid fields. */
export function parseRemembered(text: string): Remembered | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const out: Remembered = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (k === 'nick' && typeof x === 'string' && isNick(x)) out.nick = x;
    else if (k === 'room' && typeof x === 'string' && isRoom(x)) out.room = x;
    else if (k === 'host' && typeof x === 'string' && x.length > 0 && x.length <= 255 && !/[\s\u0000-\u001f]/u.test(x)) out.host = x;
    else if (k === 'port' && typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= 65535) out.port = x;
    else if (k === 'relayName' && typeof x === 'string' && parseRelayIdentity(x) === x) out.relayName = x;
    else return null;
  }
  return out;
}

/** Replaces the remembered settings of `home` (atomically, mode 0600). Throws PrivateFileError IO. */
export async function writeRemembered(home: string, values: Remembered): Promise<void> {
  await writePrivateFile(join(home, REMEMBERED_FILE), JSON.stringify(values) + '\n');
}
