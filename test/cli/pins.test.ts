/**
 * `e2ee-chat pins list|forget` as a real child process (issue 15 point 3, issue 14 point 6): the pins of a
 * --home listed per relay identity, forgotten per nickname on one relay or all (like `ssh-keygen -R`),
 * any spelling of a relay naming the same pins; and the scripted client warning when a nickname verified
 * on another relay shows another key.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PinStore, PINS_DB } from '../../src/client/pins.js';
import { run } from '../../src/cli/pins.js';
import { generateIdentity } from '../../src/crypto/rsa.js';
import { fingerprint } from '../../src/crypto/safety.js';
import { CLI, startClient, startServerProc, tempDir } from '../client/procs.js';

const k1 = generateIdentity().spki;
const k2 = generateIdentity().spki;

const pins = (args: string[]) => spawnSync(process.execPath, [CLI, 'pins', ...args], { encoding: 'utf8', env: { ...process.env, E2EE_CHAT_HOME: '' } });
const lines = (s: string) => s.split('\n').filter((l) => l !== '');

/** The command in this process (src/cli/pins.ts run), its output collected. */
async function inProcess(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await run(args, { out: (s) => (stdout += s), err: (s) => (stderr += s) });
  return { status, stdout, stderr };
}

t.test('list and forget per relay identity, whatever the spelling', async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'h');
  mkdirSync(home, { mode: 0o700 });
  t.same([(await inProcess(['list', '--home', home])).status, (await inProcess(['list', '--home', home])).stdout], [0, ''], 'no store: nothing listed');
  t.equal((await inProcess(['forget', 'bob', '--home', home])).status, 1, 'no store: nothing to forget');
  const s = await PinStore.open(home);
  s.pin('localhost:7000', 'bob', k1);
  s.verify('localhost:7000', 'bob');
  s.pin('relay.example.com:443', 'bob', k2);
  s.pin('localhost:7000', 'carol', k2);
  s.close();

  const all = pins(['list', '--home', home]);
  t.equal(all.status, 0, 'the real CLI lists');
  t.same(lines(all.stdout), [
    `localhost:7000\tbob\t${fingerprint(k1)}\tverified`,
    `localhost:7000\tcarol\t${fingerprint(k2)}\tunverified`,
    `relay.example.com:443\tbob\t${fingerprint(k2)}\tunverified`,
  ]);
  t.same(lines((await inProcess(['list', '--relay', '127.0.0.1:7000', '--home', home])).stdout).map((l) => l.split('\t')[1]), ['bob', 'carol'], '--relay as dialled names the same pins');

  const one = pins(['forget', 'bob', '--relay', '[::1]:7000', '--home', home]);
  t.equal(one.status, 0, 'the real CLI forgets on one relay');
  t.same(lines(pins(['list', '--home', home]).stdout).map((l) => l.split('\t').slice(0, 2).join(' ')), ['localhost:7000 carol', 'relay.example.com:443 bob'], 'bob is forgotten there only');
  t.equal((await inProcess(['forget', 'bob', '--relay', 'localhost:7000', '--home', home])).status, 1, 'nothing left there: status 1');
  t.equal((await inProcess(['forget', 'bob', '--home', home])).status, 0, 'forget on every relay');
  t.same(lines((await inProcess(['list', '--home', home])).stdout).map((l) => l.split('\t')[1]), ['carol']);

  t.equal((await inProcess(['forget', 'not a nick', '--home', home])).status, 2, 'a nickname outside the alphabet: usage');
  t.equal((await inProcess(['list', '--relay', 'localhost', '--home', home])).status, 2, 'a relay without a port: usage');
  t.equal((await inProcess(['forget', '--home', home])).status, 2, 'forget without a nickname: usage');
  t.equal((await inProcess(['list', 'extra', '--home', home])).status, 2);
  t.equal((await inProcess(['list', '--bogus'])).status, 2, 'an unknown option: usage');
  t.equal((await inProcess(['--help'])).status, 0);
  chmodSync(home, 0o770);
  const open = pins(['list', '--home', home]);
  t.equal(open.status, 2, 'a group-writable --home is refused');
  t.match(open.stderr, home);
  chmodSync(home, 0o700);
  chmodSync(join(home, PINS_DB), 0o644);
  t.equal((await inProcess(['list', '--home', home])).status, 2, 'a store others can read is refused');
});

t.test('the scripted client warns when a nickname verified on another relay shows another key here', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const home = join(dir, 'alice');
  mkdirSync(home, { mode: 0o700 });
  const s = await PinStore.open(home);
  s.pin('relay.example.com:443', 'bob', k1); // bob, verified there, with a key that is not this bob's
  s.verify('relay.example.com:443', 'bob');
  s.close();
  const alice = startClient(t, { port, nick: 'alice', home, room: 'r' });
  await alice.waitFor(/^\* joined r as alice/);
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob'), room: 'r' });
  const warning = await alice.waitFor(/^\* WARNING: bob is verified on /);
  t.ok(warning.includes(`relay.example.com:443 with key ${fingerprint(k1)}`), 'names the relay and the key verified there');
  await alice.waitFor(/^\* secure session with bob/);
  alice.end();
  bob.end();
  t.equal((await alice.exited).code, 0);
  await bob.exited;
  const listed = lines(pins(['list', '--home', home]).stdout).map((l) => l.split('\t'));
  t.same(listed.map((l) => [l[0], l[1], l[3]]), [
    [`localhost:${port}`, 'bob', 'unverified'],
    ['relay.example.com:443', 'bob', 'verified'],
  ], 'this relay\'s bob is pinned under its identity; the verified pin elsewhere is untouched');
});

t.test('list into a pipe closed by its reader (| head -3) stops quietly with status 141', async (t) => {
  const home = join(tempDir(t), 'h');
  mkdirSync(home, { mode: 0o700 });
  const s = await PinStore.open(home);
  // About 200 KB of lines: more than a pipe holds, so the list is still being written when head exits.
  for (let i = 0; i < 3000; i++) s.pin(`relay-${i}.example.com:443`, 'bob', k1);
  s.close();
  // A real shell pipe, as typed: the status is the lister's, not head's.
  const r = spawnSync('bash', ['-c', '"$0" "$1" pins list --home "$2" | head -3; exit "${PIPESTATUS[0]}"', process.execPath, CLI, home], { encoding: 'utf8' });
  t.equal(r.status, 141, 'the status a shell gives a process ended by SIGPIPE');
  t.equal(lines(r.stdout).length, 3, 'head printed its three lines');
  t.equal(r.stderr, '', 'nothing on stderr (no EPIPE error, no stack trace)');
});

t.test('forget is refused (status 3) while a client uses the --home, and works once it quit; a crashed client does not hold it', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const home = join(dir, 'alice');
  mkdirSync(home, { mode: 0o700 });
  const s = await PinStore.open(home);
  s.pin('relay.example.com:443', 'bob', k1);
  s.verify('relay.example.com:443', 'bob');
  s.close();
  const alice = startClient(t, { port, nick: 'alice', home, room: 'r' });
  await alice.waitFor(/^\* joined r as alice/);
  const busy = pins(['forget', 'bob', '--home', home]);
  t.equal(busy.status, 3, `refused while alice runs: ${busy.stderr}`);
  t.ok(busy.stderr.includes(`pid ${alice.child.pid}`), 'names the client that uses the home');
  t.same(lines(pins(['list', '--home', home]).stdout).map((l) => l.split('\t')[3]), ['verified'], 'the verified pin is still there');
  t.equal(pins(['list', '--home', home]).status, 0, 'listing is fine while a client runs');
  alice.end();
  t.equal((await alice.exited).code, 0);
  t.equal(pins(['forget', 'bob', '--relay', 'relay.example.com:443', '--home', home]).status, 0, 'forgotten once alice quit');

  // A client killed without closing its store leaves its row; a pid that is gone holds nothing.
  const again = await PinStore.open(home);
  again.pin('relay.example.com:443', 'carol', k2);
  again.close();
  const killed = startClient(t, { port, nick: 'alice', home, room: 'r' });
  await killed.waitFor(/^\* joined r as alice/);
  killed.kill('SIGKILL');
  await killed.exited;
  t.equal(pins(['forget', 'carol', '--home', home]).status, 0, 'the row of a dead process is dropped');
});
