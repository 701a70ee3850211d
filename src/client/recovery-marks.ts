/**
 * Which nicknames this home registered a recovery code for, per relay (spec §7.5): the reference CLI
 * registers one at the first WELCOME of a nickname on a relay and never again. The file
 * (--home/recovery.json, mode 0600, read and written under src/files/private.ts) holds only
 * `relay nick` pairs: never a code (the code is shown once and kept by the user, not by the device).
 */
import { join } from 'node:path';
import { PrivateFileError, readPrivateFile, writePrivateFile } from '../files/private.js';

export const RECOVERY_MARKS_FILE = 'recovery.json';
/** Largest marks file read: thousands of relays and nicknames. */
const MAX_BYTES = 256 * 1024;

/** The `relay nick` pairs registered from `home` (empty when the file does not exist). */
export async function readRecoveryMarks(home: string): Promise<Set<string>> {
  let buf: Buffer;
  try {
    buf = await readPrivateFile(join(home, RECOVERY_MARKS_FILE), MAX_BYTES);
  } catch (e) {
    if (e instanceof PrivateFileError && e.code === 'NOT_FOUND') return new Set();
    throw e;
  }
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch {
    v = undefined;
  }
  const list = (v as { registered?: unknown } | undefined)?.registered;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
    throw new PrivateFileError('IO', join(home, RECOVERY_MARKS_FILE), `${join(home, RECOVERY_MARKS_FILE)} is not a recovery marks file`);
  }
  return new Set(list as string[]);
}

/** The key of one registration. */
export function recoveryMark(relay: string, nick: string): string {
  return `${relay} ${nick}`;
}

/** Adds `mark` to the file (atomic replace, mode 0600). */
export async function addRecoveryMark(home: string, mark: string): Promise<void> {
  const marks = await readRecoveryMarks(home);
  marks.add(mark);
  await writePrivateFile(join(home, RECOVERY_MARKS_FILE), JSON.stringify({ registered: [...marks].sort() }) + '\n');
}
