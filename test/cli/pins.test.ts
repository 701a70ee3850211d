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
import { PinStore } from '../../src/client/pins.js';
import { generateIdentity } from '../../src/crypto/rsa.js';
import { fingerprint } from '../../src/crypto/safety.js';
import { CLI, startClient, startServerProc, tempDir } from '../client/procs.js';

const k1 = generateIdentity().spki;
const k2 = generateIdentity().spki;

const pins = (args: string[]) => spawnSync(process.execPath, [CLI, 'pins', ...args], { encoding: 'utf8', env: { ...process.env, E2EE_CHAT_HOME: '' } });
const lines = (s: string) => s.split('\n').filter((l) => l !== '');

t.test('list and forget per relay identity, whatever the spelling', async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'h');
  mkdirSync(home, { mode: 0o700 });
  t.same([pins(['list', '--home', home]).status, pins(['list', '--home', home]).stdout], [0, ''], 'no store: nothing listed');
  t.equal(pins(['forget', 'bob', '--home', home]).status, 1, 'no store: nothing to forget');
  const s = await PinStore.open(home);
  s.pin('localhost:7000', 'bob', k1);
  s.verify('localhost:7000', 'bob');
  s.pin('relay.example.com:443', 'bob', k2);
  s.pin('localhost:7000', 'carol', k2);
  s.close();

  const all = pins(['list', '--home', home]);
  t.equal(all.status, 0);
  t.same(lines(all.stdout), [
    `localhost:7000\tbob\t${fingerprint(k1)}\tverified`,
    `localhost:7000\tcarol\t${fingerprint(k2)}\tunverified`,
    `relay.example.com:443\tbob\t${fingerprint(k2)}\tunverified`,
  ]);
  t.same(lines(pins(['list', '--relay', '127.0.0.1:7000', '--home', home]).stdout).map((l) => l.split('\t')[1]), ['bob', 'carol'], '--relay as dialled names the same pins');

  const one = pins(['forget', 'bob', '--relay', '[::1]:7000', '--home', home]);
  t.equal(one.status, 0, 'forget on one relay');
  t.same(lines(pins(['list', '--home', home]).stdout).map((l) => l.split('\t').slice(0, 2).join(' ')), ['localhost:7000 carol', 'relay.example.com:443 bob'], 'bob is forgotten there only');
  t.equal(pins(['forget', 'bob', '--relay', 'localhost:7000', '--home', home]).status, 1, 'nothing left there: status 1');
  t.equal(pins(['forget', 'bob', '--home', home]).status, 0, 'forget on every relay');
  t.same(lines(pins(['list', '--home', home]).stdout).map((l) => l.split('\t')[1]), ['carol']);

  t.equal(pins(['forget', 'not a nick', '--home', home]).status, 2, 'a nickname outside the alphabet: usage');
  t.equal(pins(['list', '--relay', 'localhost', '--home', home]).status, 2, 'a relay without a port: usage');
  t.equal(pins(['forget', '--home', home]).status, 2, 'forget without a nickname: usage');
  t.equal(pins(['list', 'extra', '--home', home]).status, 2);
  chmodSync(home, 0o770);
  const open = pins(['list', '--home', home]);
  t.equal(open.status, 2, 'a group-writable --home is refused');
  t.match(open.stderr, home);
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
