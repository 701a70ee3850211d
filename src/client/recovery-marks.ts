/**
 * Which nicknames this home registered a recovery code for, per relay (spec §7.5): the reference CLI
 * registers one at the first WELCOME of a nickname on a relay and never again. The file
 * (--home/recovery.json, mode 0600, read and written under src/files/private.ts) holds only
 * `relay nick` pairs: never a code (the code is shown once and kept by the user, not by the device).
 * `e2ee-chat key import` also records the fingerprint of the key it imported (`imported`): the marks of
 * the home that key came from are not here, so a code registered from there may exist, and registering
 * a new one at a first WELCOME replaces it (§7.5). The client says so before it registers.
 */
import { join } from 'node:path';
import { PrivateFileError, readPrivateFile, writePrivateFile } from '../files/private.js';

export const RECOVERY_MARKS_FILE = 'recovery.json';
/** Largest marks file read: thousands of relays and nicknames. */
const MAX_BYTES = 256 * 1024;

interface MarksFile {
  registered: Set<string>;
  /** Fingerprint of a key `key import` put in this home, or null. */
  imported: string | null;
}

/** The whole file: the `relay nick` pairs registered from `home` and the imported key (empty when absent). */
export async function readMarksFile(home: string): Promise<MarksFile> {
  const path = join(home, RECOVERY_MARKS_FILE);
  let buf: Buffer;
  try {
    buf = await readPrivateFile(path, MAX_BYTES);
  } catch (e) {
    if (e instanceof PrivateFileError && e.code === 'NOT_FOUND') return { registered: new Set(), imported: null };
    throw e;
  }
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch {
    v = undefined;
  }
  const list = (v as { registered?: unknown } | undefined)?.registered;
  const imported = (v as { imported?: unknown } | undefined)?.imported;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string') || (imported !== undefined && typeof imported !== 'string')) {
    throw new PrivateFileError('IO', path, `${path} is not a recovery marks file`);
  }
  return { registered: new Set(list as string[]), imported: imported ?? null };
}

async function writeMarksFile(home: string, f: MarksFile): Promise<void> {
  const body = { registered: [...f.registered].sort(), ...(f.imported === null ? {} : { imported: f.imported }) };
  await writePrivateFile(join(home, RECOVERY_MARKS_FILE), JSON.stringify(body) + '\n');
}

/**
 * After `key import`: records the imported key's fingerprint and forgets the marks of any earlier key
 * of this home (they were registered for that key's nickname bindings, which the new key does not hold).
 */
export async function markImported(home: string, fingerprint: string): Promise<void> {
  await writeMarksFile(home, { registered: new Set(), imported: fingerprint });
}

/** The key of one registration. */
export function recoveryMark(relay: string, nick: string): string {
  return `${relay} ${nick}`;
}

/** Adds `mark` to the file (atomic replace, mode 0600). */
export async function addRecoveryMark(home: string, mark: string): Promise<void> {
  const f = await readMarksFile(home);
  f.registered.add(mark);
  await writeMarksFile(home, f);
}
