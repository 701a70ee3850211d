/**
 * `e2ee-chat history export|clear`: the user's own encrypted history (src/client/history.ts), opened
 * with the identity of `--home` (its passphrase from E2EE_CHAT_PASSPHRASE or a prompt).
 * - `export` writes every readable record as one JSON line (relay, room, dir, from, to, text, sentAt,
 *   shownAt, state), to stdout or to `--out FILE` (created 0600, never over an existing file or link).
 * - `clear` deletes every record and compacts the file.
 * Exit status: 0 done, 2 usage (or no identity, or an unsafe history file), 4 wrong passphrase,
 * 130 cancelled at the prompt, 141 stdout closed by its reader before the export was written.
 */
import { closeSync, constants as fsc, existsSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { defaultHome, IdentityError } from '../client/home.js';
import { History, HistoryError, HISTORY_FILE } from '../client/history.js';
import { failer, parseCommand } from './args.js';
import { EXIT_INTERRUPTED, PromptCancelled, unlockIdentity } from './prompt.js';

const USAGE = `usage: e2ee-chat history export [--home DIR] [--out FILE]
       e2ee-chat history clear [--home DIR]

export   every stored message as one JSON line each (to stdout, or to FILE, created with mode 0600)
clear    delete every stored message
The history is encrypted under your identity key; the passphrase comes from E2EE_CHAT_PASSPHRASE or
a prompt. Exit status: 0 done, 2 usage or no identity, 4 wrong passphrase, 130 cancelled, 141 the\noutput pipe closed early.`;

export async function run(argv: string[]): Promise<number> {
  const fail = failer('history');
  const parsed = parseCommand('history', argv, { home: { type: 'string' }, out: { type: 'string' } }, USAGE);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [verb, ...extra] = positionals;
  if ((verb !== 'export' && verb !== 'clear') || extra.length > 0 || (verb === 'clear' && values.out !== undefined)) return fail(USAGE);
  const home = values.home ?? defaultHome();
  if (!existsSync(join(home, HISTORY_FILE))) return fail(`no history in ${home}`);

  let history: History;
  try {
    const id = await unlockIdentity(home);
    history = History.open(home, id.privateKey);
  } catch (e) {
    if (e instanceof PromptCancelled) return EXIT_INTERRUPTED;
    if (e instanceof IdentityError) return fail(`identity key in ${home}: ${e.message}`, e.code === 'BAD_PASSPHRASE' ? 4 : 2);
    if (e instanceof HistoryError) return fail(e.message);
    throw e;
  }
  try {
    if (verb === 'clear') {
      const n = history.count();
      history.clear();
      process.stderr.write(`deleted ${n} message${n === 1 ? '' : 's'} from ${history.path}\n`);
      return 0;
    }
    const { records, unreadable } = history.all();
    let fd = 1;
    if (values.out !== undefined) {
      try {
        fd = openSync(values.out, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | (fsc.O_NOFOLLOW ?? 0), 0o600);
      } catch (e) {
        return fail(`cannot create ${values.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
    // stdout through process.stdout, never writeSync(1): Node makes a stdout pipe non-blocking, so a
    // synchronous write to a full pipe (a slow reader) fails with EAGAIN. A reader that went away
    // (`| head -3`) ends the command with status 141 (src/cli/closed-pipe.ts, installed by main.ts).
    const write = fd === 1 ? (line: string) => void process.stdout.write(line) : (line: string) => void writeSync(fd, line);
    try {
      for (const { relay, room, dir, from, to, text, sentAt, shownAt, state } of records) {
        write(JSON.stringify({ relay, room, dir, from, to, text, sentAt, shownAt, state }) + '\n');
      }
    } finally {
      if (fd !== 1) closeSync(fd);
    }
    if (unreadable > 0) process.stderr.write(`${unreadable} stored record(s) did not open (altered, or written by another identity) and were skipped\n`);
    return 0;
  } finally {
    history.close();
  }
}
