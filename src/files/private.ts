/**
 * Files that belong to one user (the identity key, the pin store, anything else in a client's --home),
 * read and written under one set of rules (issue 3 "Keys at rest", issue 14 point 3):
 * - reading opens with O_NOFOLLOW (a symbolic link is refused) and checks the open descriptor with fstat:
 *   a regular file, owned by us, with no permission for group or others, no larger than the caller's bound;
 * - writing goes to a random temporary name in the same folder, opened O_CREAT|O_EXCL|O_NOFOLLOW with mode
 *   0600 (a planted file or link at that name makes the open fail instead of being written through),
 *   synced, then renamed over the target, so a crash never leaves half a file;
 * - a folder holding such files must be ours and not writable by group or others, since whoever can write
 *   the folder can replace any file in it.
 * Failures are PrivateFileError with a stable code and the path; an I/O failure (read-only file system,
 * disk full) is IO with the errno, so the caller can report it as the local error it is.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, fchmodSync, lstatSync, openSync, statSync, type Stats } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export type PrivateFileErrorCode = 'NOT_FOUND' | 'INSECURE_PERMISSIONS' | 'NOT_A_FILE' | 'TOO_LARGE' | 'IO';

export class PrivateFileError extends Error {
  constructor(
    readonly code: PrivateFileErrorCode,
    readonly path: string,
    detail: string,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'PrivateFileError';
  }
}

const NOFOLLOW = fsc.O_NOFOLLOW ?? 0;

function ioError(path: string, what: string, e: unknown): PrivateFileError {
  const code = (e as NodeJS.ErrnoException).code ?? String(e);
  return new PrivateFileError('IO', path, `cannot ${what} ${path}: ${code}`);
}

/** The owner/mode rule on a stat result: regular file, ours, nothing for group or others. */
export function checkPrivateStats(path: string, st: Stats): void {
  if (st.isSymbolicLink()) throw new PrivateFileError('INSECURE_PERMISSIONS', path, `${path} is a symbolic link`);
  if (!st.isFile()) throw new PrivateFileError('NOT_A_FILE', path, `${path} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new PrivateFileError('INSECURE_PERMISSIONS', path, `${path} has mode ${(st.mode & 0o777).toString(8)}; run: chmod 600 ${path}`);
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new PrivateFileError('INSECURE_PERMISSIONS', path, `${path} belongs to another user`);
}

/**
 * Checks an existing private file without opening it (for files another library opens, such as SQLite):
 * lstat, so a symbolic link is refused, then the owner/mode rule. Returns the stats, or null when absent.
 */
export function statPrivateFile(path: string): Stats | null {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(path, 'inspect', e);
  }
  checkPrivateStats(path, st);
  return st;
}

/**
 * Checks a folder that holds private files: it must be a folder we own that group and others cannot write
 * (they could replace any file in it). A folder reached through a symbolic link is judged by its target.
 */
export function checkPrivateDir(path: string): void {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw ioError(path, 'inspect', e);
  }
  if (!st.isDirectory()) throw new PrivateFileError('NOT_A_FILE', path, `${path} is not a folder`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new PrivateFileError('INSECURE_PERMISSIONS', path, `${path} belongs to another user`);
  if ((st.mode & 0o022) !== 0) {
    throw new PrivateFileError(
      'INSECURE_PERMISSIONS',
      path,
      `${path} is writable by ${st.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o777).toString(8)}), so others could replace the files in it; run: chmod 700 ${path}`,
    );
  }
}

/** Reads a private file of at most `maxBytes` bytes. Throws PrivateFileError (NOT_FOUND when absent). */
export async function readPrivateFile(path: string, maxBytes: number): Promise<Buffer> {
  let fh: FileHandle;
  try {
    fh = await open(path, fsc.O_RDONLY | NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new PrivateFileError('NOT_FOUND', path, `no file at ${path}`);
    if (code === 'ELOOP') throw new PrivateFileError('INSECURE_PERMISSIONS', path, `${path} is a symbolic link`);
    throw ioError(path, 'open', e);
  }
  try {
    // fstat on the open descriptor: the file checked is the file read.
    checkPrivateStats(path, await fh.stat());
    const buf = Buffer.alloc(maxBytes + 1);
    let got = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (got > maxBytes) throw new PrivateFileError('TOO_LARGE', path, `${path} is larger than ${maxBytes} bytes`);
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` with `data` atomically, mode 0600: random temporary name in the same folder opened
 * O_CREAT|O_EXCL|O_NOFOLLOW, write, fsync, rename. Throws PrivateFileError IO (with the path and errno).
 */
export async function writePrivateFile(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | NOFOLLOW, 0o600);
    await fh.chmod(0o600); // the umask can only remove bits; this makes the mode exact
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw ioError(path, 'write', e);
  }
}

/**
 * Creates an empty private file (mode 0600, O_EXCL|O_NOFOLLOW) for a library that opens it itself, so its
 * mode never depends on the umask. An existing file is left alone (false); true when created. Synchronous:
 * used once at start-up, before any connection exists.
 */
export function createPrivateFileSync(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | NOFOLLOW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw ioError(path, 'create', e);
  }
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
  return true;
}
