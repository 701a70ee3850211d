// `e2ee-chat history export|clear` as a real child process: it opens the identity of --home (with its
// passphrase), exports the stored records as JSON lines (stdout or a new 0600 file), clears them, and
// says why with its exit status when it cannot (2 no identity or history, 4 wrong passphrase).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IDENTITY_FILE } from '../../src/client/home.js';
import { History } from '../../src/client/history.js';
import { saveIdentity } from '../../src/crypto/keystore.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'e2ee-chat.js');
const PASS = 'correct horse battery staple';

const run = (args: string[], passphrase = PASS) =>
  spawnSync(process.execPath, [BIN, 'history', ...args], { encoding: 'utf8', env: { ...process.env, E2EE_CHAT_PASSPHRASE: passphrase } });

t.test('export prints every record as a JSON line, to stdout or a new 0600 file; clear empties it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-history-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const home = join(dir, 'home');
  mkdirSync(home, { mode: 0o700 });
  t.equal(run(['export', '--home', home]).status, 2, 'no identity and no history: status 2');

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  await saveIdentity(join(home, IDENTITY_FILE), privateKey, PASS);
  const h = History.open(home, privateKey);
  h.add('127.0.0.1:55555', 'lobby', { dir: 'out', from: 'alice', to: ['bob'], text: 'hi bob', sentAt: null, shownAt: 1, state: 'delivered' });
  h.add('127.0.0.1:55555', 'lobby', { dir: 'in', from: 'bob', to: ['alice'], text: 'hi alice 🙂', sentAt: 2, shownAt: 3, state: 'received' });
  h.close();

  const out = run(['export', '--home', home]);
  t.equal(out.status, 0);
  const lines = out.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(lines, [
    { relay: '127.0.0.1:55555', room: 'lobby', dir: 'out', from: 'alice', to: ['bob'], text: 'hi bob', sentAt: null, shownAt: 1, state: 'delivered' },
    { relay: '127.0.0.1:55555', room: 'lobby', dir: 'in', from: 'bob', to: ['alice'], text: 'hi alice 🙂', sentAt: 2, shownAt: 3, state: 'received' },
  ]);

  t.equal(run(['export', '--home', home], 'not the passphrase').status, 4, 'wrong passphrase: status 4');

  const file = join(dir, 'export.jsonl');
  t.equal(run(['export', '--home', home, '--out', file]).status, 0);
  t.equal(readFileSync(file, 'utf8'), out.stdout, 'the file holds the same lines');
  t.equal(statSync(file).mode & 0o777, 0o600, 'created with mode 0600');
  t.equal(run(['export', '--home', home, '--out', file]).status, 2, 'an existing file is never overwritten');

  t.equal(run(['clear', '--home', home]).status, 0);
  t.equal(run(['export', '--home', home]).stdout, '', 'nothing left after clear');
  t.equal(run(['frobnicate', '--home', home]).status, 2, 'unknown verb: usage');
  t.equal(run(['clear', '--home', home, '--out', file]).status, 2, 'clear takes no --out');

});

t.test('export into a pipe closed by its reader (| head -3) stops quietly with status 141', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'e2ee-history-pipe-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const home = join(dir, 'home');
  mkdirSync(home, { mode: 0o700 });
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  await saveIdentity(join(home, IDENTITY_FILE), privateKey, PASS);
  const h = History.open(home, privateKey);
  // About 400 KB of JSON lines: more than a pipe holds, so the export is still writing when head exits.
  for (let i = 0; i < 3000; i++) h.add('127.0.0.1:55555', 'lobby', { dir: 'in', from: 'bob', to: ['alice'], text: `line ${i}`, sentAt: i, shownAt: i, state: 'received' });
  h.close();
  // A real shell pipe, as typed: the status is the exporter's, not head's.
  const r = spawnSync('bash', ['-c', '"$0" "$1" history export --home "$2" | head -3; exit "${PIPESTATUS[0]}"', process.execPath, BIN, home], {
    encoding: 'utf8',
    env: { ...process.env, E2EE_CHAT_PASSPHRASE: PASS },
  });
  t.equal(r.status, 141, 'the status a shell gives a process ended by SIGPIPE');
  t.equal(r.stdout.split('\n').filter((l) => l !== '').length, 3, 'head printed its three lines');
  t.equal(r.stderr, '', 'nothing on stderr (no EPIPE error, no stack trace)');
  // A reader slower than the export (the pipe fills up): every line arrives, status 0 (not EAGAIN).
  const slow = spawnSync('bash', ['-c', '"$0" "$1" history export --home "$2" | (sleep 1; wc -l); exit "${PIPESTATUS[0]}"', process.execPath, BIN, home], {
    encoding: 'utf8',
    env: { ...process.env, E2EE_CHAT_PASSPHRASE: PASS },
  });
  t.equal(slow.status, 0, slow.stderr);
  t.equal(Number(slow.stdout.trim()), 3000, 'all 3000 lines read');
});
