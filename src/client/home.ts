/**
 * The client's home folder: the identity key (encrypted by src/crypto/keystore.ts unless the user asked
 * for `--no-passphrase`) and the trust-on-first-use pins (src/client/pins.ts). The folder is created with
 * mode 0700 and must stay ours and closed to group and others (issue 14 point 3): every file in it is
 * read and written under the rules of src/files/private.ts.
 */
import { mkdirSync, existsSync, readFileSync, statSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { checkPrivateDir, PrivateFileError, readPrivateFile, writePrivateFile } from '../files/private.js';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { generateIdentity } from '../crypto/rsa.js';
import { KeystoreError, loadIdentity, saveIdentity } from '../crypto/keystore.js';

export const IDENTITY_FILE = 'identity.key';
/**
 * The identity's public key (SPKI PEM) next to it, so `e2ee-chat key show` prints the fingerprint without
 * the passphrase. Written whenever the identity is opened and the file is missing or holds another key;
 * read under the same rules as every file in --home (a file someone else could write is refused).
 */
export const PUBLIC_KEY_FILE = 'identity.pub';
/** Largest identity.pub read (an RSA-2048 SPKI PEM is 451 bytes). */
const MAX_PUBLIC_KEY_FILE_BYTES = 8192;
/** Passphrase prompts for an existing key before giving up (interactive only). */
export const PASSPHRASE_ATTEMPTS = 3;
/** Largest room secret file read (the secret is hashed into the key schedule, §8.2; it need not be big). */
export const MAX_ROOM_SECRET_BYTES = 4096;

/** `$E2EE_CHAT_HOME`, else `$XDG_CONFIG_HOME/e2ee-chat`, else `~/.config/e2ee-chat`. */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  const own = env['E2EE_CHAT_HOME'];
  if (own !== undefined && own !== '') return own;
  const xdg = env['XDG_CONFIG_HOME'];
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.config'), 'e2ee-chat');
}

/**
 * Creates the home folder (mode 0700) if needed, with each missing parent, one level at a time.
 * Node's `mkdirSync(p, { recursive: true })` never returns for a path under /proc (mkdir answers ENOENT
 * while the parent exists, and it retries forever), so an unusable --home would spin at 100 % CPU;
 * here every failure is thrown as it is, with its code and path. Then the folder is checked: one we own
 * that group and others cannot write (PrivateFileError INSECURE_PERMISSIONS otherwise), since they could
 * replace any file in it.
 */
export function prepareHome(home: string): void {
  const missing: string[] = [];
  for (let p = resolve(home); !existsSync(p); p = dirname(p)) {
    if (dirname(p) === p) break;
    missing.unshift(p);
  }
  for (const p of missing) {
    try {
      mkdirSync(p, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  checkPrivateDir(home);
}

export interface Identity {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** DER SubjectPublicKeyInfo, 294 bytes. */
  spki: Uint8Array;
  /** True when this run generated the key. */
  created: boolean;
}

export interface PassphraseSource {
  /** A passphrase given up front (E2EE_CHAT_PASSPHRASE), or null. */
  given: string | null;
  /** True when the user asked for an unencrypted key file (--no-passphrase). */
  none: boolean;
  /** Asks the user (TTY only); undefined when there is no one to ask. `confirm` asks twice for a new key. */
  ask?: (confirm: boolean) => Promise<string>;
}

/** Errors of opening the identity, with the keystore's code or our own. */
export class IdentityError extends Error {
  constructor(
    readonly code: KeystoreError['code'] | 'PASSPHRASE_MISMATCH' | 'WEAK_PASSPHRASE',
    detail: string,
  ) {
    super(detail);
    this.name = 'IdentityError';
  }
}

/**
 * Loads `<home>/identity.key`, or generates an RSA-2048 identity and stores it there on first use.
 * Throws IdentityError (PASSPHRASE_REQUIRED when no passphrase can be had, BAD_PASSPHRASE, CORRUPT,
 * INSECURE_PERMISSIONS, PASSPHRASE_MISMATCH when the two entries of a new passphrase differ,
 * WEAK_PASSPHRASE when a new key's passphrase is below the floor of `checkNewPassphrase`). A failed write
 * of a new key (or of its identity.pub) is PrivateFileError IO, with the path.
 */
export async function openIdentity(home: string, pass: PassphraseSource): Promise<Identity> {
  const id = await openIdentityKey(home, pass);
  await writePublicKey(home, id.spki);
  return id;
}

async function openIdentityKey(home: string, pass: PassphraseSource): Promise<Identity> {
  const path = join(home, IDENTITY_FILE);
  try {
    if (existsSync(path)) {
      if (pass.given !== null) return { ...(await loadIdentity(path, pass.given)), created: false };
      try {
        return { ...(await loadIdentity(path, null)), created: false };
      } catch (e) {
        if (!(e instanceof KeystoreError) || e.code !== 'PASSPHRASE_REQUIRED' || pass.ask === undefined) throw e;
      }
      // A person at a terminal gets three tries, as sudo and ssh give; a typo should not end the program.
      for (let attempt = 1; ; attempt++) {
        try {
          return { ...(await loadIdentity(path, await pass.ask(false))), created: false };
        } catch (e) {
          if (!(e instanceof KeystoreError) || e.code !== 'BAD_PASSPHRASE' || attempt >= PASSPHRASE_ATTEMPTS) throw e;
        }
      }
    }
    let passphrase: string | null;
    if (pass.none) passphrase = null;
    else if (pass.given !== null) passphrase = pass.given;
    else if (pass.ask !== undefined) passphrase = await pass.ask(true);
    else throw new IdentityError('PASSPHRASE_REQUIRED', 'a new identity needs a passphrase: set E2EE_CHAT_PASSPHRASE, or pass --no-passphrase');
    if (passphrase !== null) checkNewPassphrase(passphrase);
    const id = generateIdentity();
    await saveIdentity(path, id.privateKey, passphrase);
    return { ...id, created: true };
  } catch (e) {
    if (e instanceof KeystoreError) throw new IdentityError(e.code, e.message);
    throw e;
  }
}

/** The SPKI DER kept in `<home>/identity.pub`, or null when there is none. Throws PrivateFileError, or KeystoreError CORRUPT. */
export async function readPublicKey(home: string): Promise<Uint8Array | null> {
  const path = join(home, PUBLIC_KEY_FILE);
  let pem: Buffer;
  try {
    pem = await readPrivateFile(path, MAX_PUBLIC_KEY_FILE_BYTES);
  } catch (e) {
    if (e instanceof PrivateFileError && e.code === 'NOT_FOUND') return null;
    throw e;
  }
  try {
    return new Uint8Array(createPublicKey({ key: pem.toString('utf8'), format: 'pem' }).export({ format: 'der', type: 'spki' }));
  } catch {
    throw new KeystoreError('CORRUPT', `${path} is not a public key`);
  }
}

/** Writes `<home>/identity.pub` for `spki` unless it holds that key already. Throws PrivateFileError. */
export async function writePublicKey(home: string, spki: Uint8Array): Promise<void> {
  let have: Uint8Array | null = null;
  try {
    have = await readPublicKey(home);
  } catch (e) {
    if (!(e instanceof KeystoreError)) throw e; // a damaged file is replaced; an unsafe one is refused
  }
  if (have !== null && Buffer.from(have).equals(spki)) return;
  const pem = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' });
  await writePrivateFile(join(home, PUBLIC_KEY_FILE), pem);
}

/**
 * Reads a room secret file (spec §8.2 `psk`): its bytes, without one trailing newline. Throws on an empty
 * or oversized file. The secret is read from a file or the environment, never from the command line,
 * where other users of the machine could read it in the process list.
 */
export function readRoomSecret(path: string): Uint8Array {
  const st = statSync(path);
  if (st.size > MAX_ROOM_SECRET_BYTES) throw new RangeError(`room secret file is larger than ${MAX_ROOM_SECRET_BYTES} bytes`);
  let b = readFileSync(path);
  if (b.length > 0 && b[b.length - 1] === 0x0a) b = b.subarray(0, b.length - (b.length > 1 && b[b.length - 2] === 0x0d ? 2 : 1));
  if (b.length === 0) throw new RangeError('room secret file is empty');
  return checkRoomSecret(new Uint8Array(b));
}

/**
 * The shortest room secret accepted, in bytes. Spec §8.2 requires a high-entropy psk because a member
 * can test guesses offline against a key-confirmation MAC (§11); a length floor cannot measure entropy,
 * it only refuses the obviously guessable short words.
 */
export const MIN_ROOM_SECRET_BYTES = 16;

/** Returns `b` (the psk bytes) if it is MIN_ROOM_SECRET_BYTES..MAX_ROOM_SECRET_BYTES long; RangeError otherwise. */
export function checkRoomSecret(b: Uint8Array): Uint8Array {
  if (b.length < MIN_ROOM_SECRET_BYTES) throw new RangeError(`a room secret must be at least ${MIN_ROOM_SECRET_BYTES} bytes (use 32 random bytes, for example 64 hex digits)`);
  if (b.length > MAX_ROOM_SECRET_BYTES) throw new RangeError(`a room secret must be at most ${MAX_ROOM_SECRET_BYTES} bytes`);
  return b;
}

/** The shortest passphrase accepted for a new key or by `key passwd`, in code points (issue 14 point 5). */
export const MIN_PASSPHRASE_CHARS = 12;

/**
 * The floor for a new passphrase: at least MIN_PASSPHRASE_CHARS code points (after NFC, as the keystore
 * hashes it) and more than two distinct characters. A length floor is no strength estimate; it refuses the
 * passphrases an attacker with the key file tries first (each guess costs scrypt at N = 2^17, so a
 * 12-character passphrase or 5 diceware words is out of reach, `pw` is not). Throws IdentityError
 * WEAK_PASSPHRASE with a generated suggestion in the message.
 */
export function checkNewPassphrase(passphrase: string): void {
  const chars = [...passphrase.normalize('NFC')];
  if (chars.length >= MIN_PASSPHRASE_CHARS && new Set(chars).size > 2) return;
  throw new IdentityError(
    'WEAK_PASSPHRASE',
    `a passphrase needs at least ${MIN_PASSPHRASE_CHARS} characters and not just one or two repeated; for example: ${suggestPassphrase()}`,
  );
}

/** Words for generated passphrases: 274 short, common, distinct English words (about 8.1 bits each). */
const WORDS = (
  'able acid aged also area army away baby back bake ball band bank barn base bath bead beam bean bear beef bell belt ' +
  'bend best bike bird blue boat body bold bone book boot bowl brick brow bulb bush cake calm camp card care cart cave ' +
  'chef chin city clay clip coal coat code coin cold cone cook cool cord corn crab crew crop crow cube cup dark dawn ' +
  'deer desk dial dice dish dock door dove draw drum duck dune dust east echo edge eggs elk envy fact fair farm fern ' +
  'film fire fish flag flat fog foil folk food foot fork fox frog fuel gate gear gift girl glad glow glue goat gold ' +
  'golf good gown gray grin gulf hail half hall hand harp hat hawk heat herb hero hill hint hive hood hook horn hose ' +
  'iron isle jade jail jar jaw jazz jeep jet joke judo jump kelp kept kick kind king kite knee knot lace lake lamb ' +
  'lamp lane lava lawn leaf lens lily lime line lion list loaf lock loft loop lute mail malt map mask mast maze meal ' +
  'melt menu mild milk mint mist mole moon moss moth mule nail navy neck nest news nose note oak oar oath oboe ocean ' +
  'okra olive omen onion opal oval oven owl page palm park path peak pear pine pipe plum poem pond pony pool port ' +
  'quay quiz raft rail rain ramp reef rice ring road robe rock roof rope rose ruby rug sail salt sand seal seed ship ' +
  'silk sink snow soap sock sofa soup star swan tail tank tent tide tile toad tree tulip vase vest wolf yarn zinc'
).split(' ');

/** Words in a suggestion: 6 words of 274 give about 48.6 bits, some 2^47 scrypt guesses on average. */
export const SUGGESTION_WORDS = 6;

/** A diceware-style passphrase of SUGGESTION_WORDS words chosen with node:crypto randomness. */
export function suggestPassphrase(): string {
  return Array.from({ length: SUGGESTION_WORDS }, () => WORDS[randomInt(WORDS.length)]!).join('-');
}

/** The word list size (for tests: a suggestion carries log2(WORD_COUNT) bits per word). */
export const WORD_COUNT = WORDS.length;
