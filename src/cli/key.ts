/**
 * `e2ee-chat key show|export|import`: the identity key of `--home`, without a relay.
 * - `show` prints the fingerprint (the format peers see) and whether the key file is encrypted, from
 *   --home/identity.pub without the passphrase (a home without that file is unlocked once, which writes it).
 * - `export --out FILE` writes an encrypted backup: the keystore's sealed format (scrypt + AES-256-GCM,
 *   src/crypto/keystore.ts) under a backup passphrase of its own (E2EE_CHAT_BACKUP_PASSPHRASE, else two
 *   prompts), into a new file of mode 0600 (never over an existing one).
 * - `import FILE` reads such a backup (its passphrase as above) and stores the key as `--home`'s identity,
 *   sealed under the home passphrase (E2EE_CHAT_PASSPHRASE, else two prompts; or --no-passphrase). A home
 *   that already has an identity is refused unless `--force`, because peers pinned the old key.
 * - `passwd` changes the passphrase of `--home`'s key (the current one from E2EE_CHAT_PASSPHRASE or a
 *   prompt, the new one from E2EE_CHAT_NEW_PASSPHRASE or two prompts, held to the floor of
 *   checkNewPassphrase): the key file is rewritten atomically under the keystore's rules (a random
 *   O_EXCL|O_NOFOLLOW temporary file, mode 0600, fsync, rename), so a crash leaves the old file or the new.
 * Exit status: 0 done, 2 usage (no identity, unsafe file, weak backup passphrase, existing file),
 * 4 wrong passphrase, 130 cancelled at a prompt.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkNewPassphrase, defaultHome, IDENTITY_FILE, IdentityError, prepareHome, readPublicKey, writePublicKey } from '../client/home.js';
import { PrivateFileError } from '../files/private.js';
import { MIN_BACKUP_PASSPHRASE } from '../crypto/backup.js';
import { identityIsEncrypted, KeystoreError, loadIdentity, saveIdentity } from '../crypto/keystore.js';
import { fingerprint } from '../crypto/safety.js';
import { markImported } from '../client/recovery-marks.js';
import { failer, parseCommand } from './args.js';
import { askHidden, askNewPassphrase, EXIT_INTERRUPTED, PromptCancelled, unlockIdentity } from './prompt.js';

/** Shortest backup passphrase: a backup leaves the machine, so it must stand an offline guess alone. */
export { MIN_BACKUP_PASSPHRASE };

const USAGE = `usage: e2ee-chat key show [--home DIR]
       e2ee-chat key export --out FILE [--kdf scrypt|pbkdf2] [--home DIR]
       e2ee-chat key import FILE [--home DIR] [--no-passphrase] [--force]
       e2ee-chat key passwd [--home DIR]

show     your key's fingerprint (what peers see and pin) and whether it is stored encrypted
         (no passphrase needed once the key has been used by this version)
export   an encrypted backup of your identity key, under a backup passphrase of its own
         (E2EE_CHAT_BACKUP_PASSPHRASE or a prompt; at least ${MIN_BACKUP_PASSPHRASE} characters);
         --kdf pbkdf2 makes one the web client can import (WebCrypto has no scrypt)
import   make a backup the identity of --home (refused if it has one, unless --force)
passwd   change the passphrase of your identity key (E2EE_CHAT_NEW_PASSPHRASE or two prompts;
         at least 12 characters)
Passphrases: E2EE_CHAT_PASSPHRASE (the home's key), E2EE_CHAT_BACKUP_PASSPHRASE (the backup), or prompts.
Exit status: 0 done, 2 usage (or a weak new passphrase), 4 wrong passphrase, 8 the key file could not
be written, 130 cancelled.`;

class Usage extends Error {}

/** A new passphrase: from the environment, or typed twice on a terminal. */
async function newPassphrase(envName: string, what: string): Promise<string> {
  const given = process.env[envName];
  if (given !== undefined && given !== '') return given;
  if (process.stdin.isTTY !== true) throw new Usage(`${what}: set ${envName} (stdin is not a terminal)`);
  const a = await askHidden(`${what}: `);
  const b = await askHidden(`repeat ${what}: `);
  if (a !== b) throw new Usage('the two passphrases differ');
  return a;
}

async function existingPassphrase(envName: string, what: string): Promise<string> {
  const given = process.env[envName];
  if (given !== undefined && given !== '') return given;
  if (process.stdin.isTTY !== true) throw new Usage(`${what}: set ${envName} (stdin is not a terminal)`);
  return askHidden(`${what}: `);
}

const OPTIONS = {
  home: { type: 'string' },
  out: { type: 'string' },
  kdf: { type: 'string' },
  'no-passphrase': { type: 'boolean' },
  force: { type: 'boolean' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const fail = failer('key');
  const parsed = parseCommand('key', argv, OPTIONS, USAGE);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  try {
    const [verb, ...rest] = positionals;
    const home = values.home ?? defaultHome();
    const path = join(home, IDENTITY_FILE);
    if (verb === 'show' && rest.length === 0 && values.out === undefined) {
      // The public key is kept in the clear next to the key file: no passphrase is needed to show it.
      // A home from before identity.pub existed is unlocked once (which writes it).
      const spki = existsSync(path) ? await readPublicKey(home) : null;
      const fp = spki !== null ? fingerprint(spki) : fingerprint((await unlockIdentity(home)).spki);
      process.stdout.write(`fingerprint ${fp}\n`);
      process.stdout.write(`key file    ${path} (${(await identityIsEncrypted(path)) ? 'encrypted under your passphrase' : 'NOT encrypted (--no-passphrase)'})\n`);
      return 0;
    }
    if (values.kdf !== undefined && (verb !== 'export' || (values.kdf !== 'scrypt' && values.kdf !== 'pbkdf2'))) throw new Usage(`--kdf is scrypt or pbkdf2, for export only\n${USAGE}`);
    if (verb === 'export' && rest.length === 0 && values.out !== undefined) {
      const out = values.out;
      if (existsSync(out)) throw new Usage(`${out} exists; choose a new file name`);
      const id = await unlockIdentity(home);
      const pass = await newPassphrase('E2EE_CHAT_BACKUP_PASSPHRASE', 'backup passphrase');
      if ([...pass].length < MIN_BACKUP_PASSPHRASE) throw new Usage(`a backup passphrase needs at least ${MIN_BACKUP_PASSPHRASE} characters`);
      await saveIdentity(out, id.privateKey, pass, values.kdf === 'pbkdf2' ? 'pbkdf2' : 'scrypt');
      process.stderr.write(`wrote an encrypted backup of ${fingerprint(id.spki)} to ${out}\n`);
      return 0;
    }
    if (verb === 'passwd' && rest.length === 0 && values.out === undefined && values.force !== true && values['no-passphrase'] !== true) {
      const id = await unlockIdentity(home);
      const given = process.env['E2EE_CHAT_NEW_PASSPHRASE'];
      let pass: string;
      if (given !== undefined && given !== '') pass = given;
      else if (process.stdin.isTTY === true) pass = await askNewPassphrase();
      else throw new Usage('the new passphrase: set E2EE_CHAT_NEW_PASSPHRASE (stdin is not a terminal)');
      checkNewPassphrase(pass);
      await saveIdentity(path, id.privateKey, pass);
      process.stderr.write(`the passphrase of ${fingerprint(id.spki)} in ${path} is changed\n`);
      return 0;
    }
    if (verb === 'import' && rest.length === 1 && values.out === undefined) {
      const file = rest[0]!;
      if (existsSync(path) && values.force !== true) {
        throw new Usage(`${home} already has an identity; peers pinned it. Use --force to replace it (they will see a key change)`);
      }
      const backup = await loadIdentity(file, await existingPassphrase('E2EE_CHAT_BACKUP_PASSPHRASE', 'backup passphrase'));
      const pass = values['no-passphrase'] === true ? null : await newPassphrase('E2EE_CHAT_PASSPHRASE', 'passphrase for this home');
      if (pass !== null) checkNewPassphrase(pass);
      prepareHome(home);
      // A refused import leaves the home as it was: what refuses (an identity.pub open to others or not a
      // plain file, PrivateFileError) is checked before the key is replaced; a damaged one is replaced, as
      // writePublicKey does. Only an IO error on a write after the key (disk full) can still leave
      // identity.pub behind (exit 8; the next unlock rewrites it) or recovery.json.
      await readPublicKey(home).catch((e: unknown) => {
        if (!(e instanceof KeystoreError)) throw e;
      });
      await saveIdentity(path, backup.privateKey, pass);
      await writePublicKey(home, backup.spki);
      // The marks of the key's own home (which relays it registered a recovery code on) stay there: the
      // client warns before registering a code that would void one made from that home.
      await markImported(home, fingerprint(backup.spki));
      process.stderr.write(`imported ${fingerprint(backup.spki)} into ${path}\n`);
      return 0;
    }
    throw new Usage(USAGE);
  } catch (e) {
    if (e instanceof PromptCancelled) return EXIT_INTERRUPTED;
    if (e instanceof PrivateFileError) return fail(e.message, e.code === 'IO' ? 8 : 2);
    if (e instanceof Usage) return fail(e.message);
    if (e instanceof IdentityError || e instanceof KeystoreError) return fail(e.message, e.code === 'BAD_PASSPHRASE' ? 4 : 2);
    throw e;
  }
}
