// Issue 14's client protections that had no test of their own, with real processes on 127.0.0.1: the
// warning when a terminal user's passphrase comes from E2EE_CHAT_PASSPHRASE (point 5); the warning when a
// nickname verified on one relay shows another key on another relay (point 6, `key-elsewhere`); a member
// joining and leaving over and over shown as a bounded number of lines with the collapsed notice (point 7);
// files in --home owned by another user refused at start (point 3). Interactive cases run under tmux.
import t from 'tap';
import { chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { frame, type RelayFrame } from '../../src/codec/index.js';
import { CLI, startClient, startServerProc, tempDir } from './procs.js';
import { Term } from './tmux.js';
import { identities, TestClient } from '../server/helpers.js';

const NOBODY = 65534;

/** The next frame of `type` (others, such as a handshake the CLI client starts, skipped); bounded. */
async function until<T extends RelayFrame['type']>(c: TestClient, type: T): Promise<Extract<RelayFrame, { type: T }>> {
  for (let i = 0; i < 1000; i++) {
    const r = await c.next();
    if (r === 'closed') throw new Error(`closed while waiting for ${type}`);
    if (r.type === type) return r as Extract<RelayFrame, { type: T }>;
  }
  throw new Error(`no ${type} in 1000 frames`);
}

t.test('a passphrase from E2EE_CHAT_PASSPHRASE is warned about on a terminal, not in scripted mode', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const pass = 'correct horse battery staple 42';
  const alice = new Term(t, dir, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', join(dir, 'alice')], {
    env: { E2EE_CHAT_PASSPHRASE: pass },
  });
  const screen = await alice.waitFor(/alice@lobby>$/);
  t.ok(screen.some((l) => /warning: .*E2EE_CHAT_PASSPHRASE/.test(l)), 'the terminal shows the warning naming the variable');
  t.notOk(screen.some((l) => l.includes(pass)), 'the passphrase itself is never shown');
  alice.type('/quit');
  alice.keys('Enter');
  t.equal(await alice.waitExit(), 0);

  // The same variable for a script (stdin a pipe) is its documented way in: no warning there.
  const bob = startClient(t, { port, nick: 'bob', home: join(dir, 'bob'), noPassphrase: false, env: { E2EE_CHAT_PASSPHRASE: pass } });
  await bob.waitFor(/^\* joined /);
  bob.end();
  t.equal((await bob.exited).code, 0);
  t.notOk(bob.err.some((l) => l.includes('E2EE_CHAT_PASSPHRASE')), 'scripted mode does not warn');
});

t.test('bob verified on one relay, then another key as bob on another relay: the terminal warns', async (t) => {
  const dir = tempDir(t);
  const r1 = await startServerProc(t, { registry: join(dir, 'reg1.db') });
  const r2 = await startServerProc(t, { registry: join(dir, 'reg2.db') });
  const home = join(dir, 'alice');
  const term = (port: number, sub: string) => {
    const d = join(dir, sub);
    mkdirSync(d);
    return new Term(t, d, [process.execPath, CLI, 'client', '--port', String(port), '--nick', 'alice', '--home', home, '--no-passphrase'], { cols: 160 });
  };

  const fpOf = (line: string) => /, fingerprint (\S+)$/.exec(line)![1]!;
  const bob1 = startClient(t, { port: r1.port, nick: 'bob', home: join(dir, 'bob1') });
  const fp1 = fpOf(await bob1.waitFor(/^\* joined /));
  const a1 = term(r1.port, 't1');
  await a1.waitFor(/end-to-end session with bob established/);
  a1.type('/verify bob');
  a1.keys('Enter');
  await a1.waitFor(/bob marked as verified/);
  t.notOk(a1.screen(true).some((l) => /verified bob on another relay/.test(l)), 'no warning on the relay where bob was verified');
  a1.type('/quit');
  a1.keys('Enter');
  t.equal(await a1.waitExit(), 0);
  bob1.end();
  await bob1.exited;

  // Another bob (a key of its own, so another fingerprint) on the second relay.
  const bob2 = startClient(t, { port: r2.port, nick: 'bob', home: join(dir, 'bob2') });
  const fp2 = fpOf(await bob2.waitFor(/^\* joined /));
  t.not(fp2, fp1, 'the second bob has another key');
  const a2 = term(r2.port, 't2');
  const screen = await a2.waitFor(/WARNING: .*verified bob on another relay with another key/);
  const on = screen.find((l) => new RegExp(`on localhost:${r1.port}: `).test(l));
  const here = screen.find((l) => /^\s*here: /.test(l));
  t.ok(on !== undefined, 'the warning names the relay where bob was verified');
  t.ok(here !== undefined, 'and the key offered here');
  t.equal(on!.trim().split(' ').at(-1), fp1, 'the key verified there: the first bob\'s');
  t.equal(here!.trim().split(' ').at(-1), fp2, 'the key offered here: the second bob\'s');
  t.notOk(screen.some((l) => /\[verified\]/.test(l) && l.includes('bob')), 'the bob here is not shown as verified');
  a2.type('/quit');
  a2.keys('Enter');
  t.equal(await a2.waitExit(), 0);
  bob2.end();
  await bob2.exited;
});

t.test('a member joining and leaving 40 times is shown in a bounded number of lines with the collapsed notice', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const alice = startClient(t, { port, nick: 'alice', home: join(dir, 'alice'), room: 'churn' });
  await alice.waitFor(/^\* joined /);
  const [bobId, daveId] = identities(2);
  const bob = await TestClient.connect(port);
  t.teardown(() => bob.destroy());
  await bob.auth('bob', bobId!);
  const cycles = 40;
  for (let i = 0; i < cycles; i++) {
    bob.send(frame('JOIN', { room: 'churn' }));
    await until(bob, 'JOINED');
    bob.send(frame('LEAVE', {}));
    await until(bob, 'LEFT');
  }
  // The relay sends alice its frames in order: once she shows dave joining, every bob frame was handled.
  const dave = await TestClient.connect(port);
  t.teardown(() => dave.destroy());
  await dave.auth('dave', daveId!);
  dave.send(frame('JOIN', { room: 'churn' }));
  await alice.waitFor(/^\* dave joined/);
  const bobLines = [...alice.out, ...alice.err].filter((l) => /\bbob\b/.test(l));
  t.ok(bobLines.some((l) => /^\* bob joined and left \d+ times in \d+ s; ignored until /.test(l)), 'the collapsed notice');
  // Unthrottled: 5 joins and leaves (10 lines) plus a session line or two; then one notice per doubling.
  t.ok(bobLines.length <= 24, `${bobLines.length} lines about bob for ${cycles} cycles (${2 * cycles} without collapsing)`);
  alice.end();
  t.equal((await alice.exited).code, 0);
});

t.test('files in --home owned by another user are refused at start with status 2 naming the path', async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'alice');
  // A first run makes the identity key and the pin store (port 1: nothing listens, status 6).
  const first = startClient(t, { port: 1, nick: 'alice', home });
  first.end();
  t.equal((await first.exited).code, 6, 'the first run got as far as connecting');
  for (const target of [join(home, 'identity.key'), join(home, 'pins.db'), home]) {
    chownSync(target, NOBODY, NOBODY);
    const c = startClient(t, { port: 1, nick: 'alice', home });
    c.end();
    t.equal((await c.exited).code, 2, `${target} owned by nobody: status 2 (refused at start)`);
    t.ok(c.err.some((l) => l.includes(target) && l.includes('INSECURE_PERMISSIONS')), 'the error names the path and its code');
    chownSync(target, 0, 0);
  }
  const again = startClient(t, { port: 1, nick: 'alice', home });
  again.end();
  t.equal((await again.exited).code, 6, 'owned by us again, the same home starts (and fails only at connecting)');
});
