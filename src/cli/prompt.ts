/**
 * Terminal prompts shared by the commands that unlock an identity (`client`, `key`, `history`): a
 * no-echo passphrase prompt and the unlock of an existing key with three tries, as sudo and ssh give.
 * Ctrl-C or Ctrl-D at a prompt rejects with PromptCancelled, which the commands end with status 130
 * (the shell's status after SIGINT), never with a usage error.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkNewPassphrase, IDENTITY_FILE, IdentityError, openIdentity, type Identity } from '../client/home.js';

/** The user pressed Ctrl-C or Ctrl-D at a prompt. */
export class PromptCancelled extends Error {
  constructor() {
    super('cancelled at the prompt');
    this.name = 'PromptCancelled';
  }
}

/** Exit status after Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

/** Reads a line from the terminal without echoing it (raw mode). Ctrl-C and Ctrl-D reject. */
export function askHidden(prompt: string, stdin: NodeJS.ReadStream = process.stdin, out: NodeJS.WritableStream = process.stderr): Promise<string> {
  out.write(prompt);
  return new Promise<string>((resolve, reject) => {
    let buf = '';
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    const done = (err: Error | null) => {
      stdin.off('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      out.write('\n');
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003' || ch === '\u0004') return done(new PromptCancelled());
        if (ch === '\u007f' || ch === '\b') buf = [...buf].slice(0, -1).join('');
        else if (ch >= ' ') buf += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/**
 * Opens the existing identity of `home` (never creates one: NOT_FOUND when there is none), with the
 * passphrase from E2EE_CHAT_PASSPHRASE, else from up to three prompts on a terminal.
 */
export async function unlockIdentity(home: string, env: NodeJS.ProcessEnv = process.env): Promise<Identity> {
  const path = join(home, IDENTITY_FILE);
  if (!existsSync(path)) throw new IdentityError('NOT_FOUND', `no identity key at ${path}`);
  const envPass = env['E2EE_CHAT_PASSPHRASE'];
  let tried = false;
  const interactive = process.stdin.isTTY === true;
  const id = await openIdentity(home, {
    given: envPass !== undefined && envPass !== '' ? envPass : null,
    none: false,
    ...(interactive
      ? {
          ask: async () => {
            const again = tried;
            tried = true;
            return askHidden(again ? 'wrong passphrase, try again: ' : 'passphrase for your identity key: ');
          },
        }
      : {}),
  });
  return id;
}

/**
 * Asks for a new passphrase twice (three tries), holding it to the floor of checkNewPassphrase (issue 14
 * point 5). Throws IdentityError (WEAK_PASSPHRASE, PASSPHRASE_MISMATCH, PASSPHRASE_REQUIRED) after three.
 */
export async function askNewPassphrase(what = 'new passphrase'): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const a = await askHidden(`${what}: `);
    let why: string | null = null;
    let code: IdentityError['code'] = 'PASSPHRASE_REQUIRED';
    if (a === '') why = 'an empty passphrase is not allowed (--no-passphrase stores the key unencrypted)';
    else {
      try {
        checkNewPassphrase(a);
      } catch (e) {
        if (!(e instanceof IdentityError)) throw e;
        why = e.message;
        code = e.code;
      }
    }
    if (why === null) {
      if ((await askHidden(`repeat ${what}: `)) === a) return a;
      why = 'the two passphrases differ';
      code = 'PASSPHRASE_MISMATCH';
    }
    if (attempt >= 3) throw new IdentityError(code, why);
    process.stderr.write(`${why}; try again\n`);
  }
}
