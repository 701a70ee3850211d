// The page's roster agreement (spec §8.6) and recovery codes (§7.5), in real Chromium, against the CLI:
// - the page seals ROSTER to its peers and checks theirs: with an honest relay the CLI finds nothing to
//   report; when a relay shows the CLI user a member the page does not see (mallory instead of carol,
//   at one epoch), the page shows `roster-mismatch` for bob and bob's CLI prints the contract's
//   `* roster mismatch at epoch E: alice` line for the same epoch: one from each side's ROSTER;
// - at the first binding of a nickname the page registers a recovery code and shows it once (not on a
//   reload); the CLI takes the nickname over with that code, and a page with another key takes it back
//   with the CLI's fresh code (a wrong code is NICK_BOUND).
import t from 'tap';
import { frame, type RelayFrame } from '../../src/codec/index.js';
import { nodeClient } from '../../src/client/node-client.js';
import { identity } from '../../src/wirekit/relay-conn.js';
import { MaliciousRelay } from '../hardening/malicious-relay.js';
import { startClient, tempDir } from '../client/procs.js';
import { join, launch, message, person, relayWithWeb, say } from './chromium.js';

const b = await launch(t);

t.test('the page sends and checks ROSTER: agreement with an honest relay, a split room reported on both sides', async (t) => {
  const { relay, url } = await relayWithWeb(t, { maxRoomSize: 4 });
  const mitm = await MaliciousRelay.start(relay.host, relay.port);
  t.teardown(() => mitm.close());
  const mallory = identity('mallory', true);
  const alice = await person(t, b, url);
  await join(alice.page, 'alice', 'r');
  // bob's CLI reaches the relay through the malicious one, honest for now.
  const bob = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'bob', home: tempDir(t), room: 'r' });
  await bob.waitFor(/^\* secure session with alice/);
  await alice.page.locator('[data-testid=member][data-nick=bob][data-status=established]').waitFor();
  // The page's ROSTER went out when its session was established, before this TEXT: bob has checked it
  // (and would have printed a mismatch) by the time he shows the text.
  await say(alice.page, 'agreed so far');
  await bob.waitFor(/^alice: agreed so far$/);
  t.same(bob.out.filter((l) => l.startsWith('* roster mismatch')), [], "bob's CLI agrees with the page's commitment");

  // carol joins; bob is shown mallory (a member the relay holds) in her place, at the same epoch.
  mitm.attack = (f, leg) => {
    if (leg.nick !== 'bob') return [f];
    if (f.type === 'PEER_JOINED' && f.nick === 'carol') return [frame('PEER_JOINED', { nick: 'mallory', key: mallory.spki, epoch: 0 }) as RelayFrame];
    if (f.type === 'DELIVER' && f.from === 'carol') return [];
    return [f];
  };
  const carolId = identity('carol', true);
  const carol = nodeClient({ host: relay.host, port: relay.port, nick: 'carol', identity: carolId });
  carol.on('rejected', () => {});
  t.teardown(() => carol.close());
  await carol.connect();
  await carol.join('r');

  const line = await bob.waitFor(/^\* roster mismatch at epoch \d+: alice /);
  const warning = alice.page.locator('[data-testid=roster-mismatch][data-nick=bob]');
  await warning.waitFor();
  const epoch = Number(/at epoch (\d+)/.exec(line)![1]);
  t.equal(Number(await warning.getAttribute('data-epoch')), epoch, 'both name the same epoch');
  t.equal(await warning.getAttribute('data-kind'), 'mismatch');
  t.match(line, /we see alice, bob, mallory\)$/, 'bob names the room he is shown');
  t.match(await warning.textContent(), /we see alice, bob, carol\)/, 'the page names the room it sees');
  // The report is the user's to act on: the session carries on.
  await say(alice.page, 'still talking');
  await bob.waitFor(/^alice: still talking$/);
  t.same(alice.errors, []);
});

const CODE = /^[0-9A-Z]{4}(?:-[0-9A-Z]{4}){5}-[0-9A-Z]{2}$/;
const CLI_CODE = /^recovery code for alice at \S+: ([0-9A-Z]{4}(?:-[0-9A-Z]{4}){5}-[0-9A-Z]{2}) \(shown only now/;

t.test('recovery codes: shown once at first binding; the CLI takes the nickname over with it, a page takes it back', async (t) => {
  const { relay, url } = await relayWithWeb(t);
  const first = await person(t, b, url);
  await join(first.page, 'alice');
  const view = first.page.getByTestId('recovery-view');
  await view.waitFor();
  const code = (await first.page.getByTestId('recovery-code').textContent()) ?? '';
  t.match(code, CODE, 'the code in its text form (§7.5)');
  await first.page.getByTestId('recovery-done').click();
  t.equal(await first.page.getByTestId('recovery-code').textContent(), '', '"done" erases it from the page');
  // A reload: the same key joins again, and no new code is registered or shown.
  await first.page.reload();
  await join(first.page, 'alice');
  t.ok(await view.isHidden(), 'shown once, at first binding only');
  await first.ctx.close();
  // The relay has seen the page go (else the CLI's JOIN would meet alice still in the room).
  for (let i = 0; i < 500 && relay.stats().connections > 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(relay.stats().connections, 0, 'the page has left');

  // The CLI with another key: NICK_BOUND without the code, the nickname with it (and a fresh code).
  const home = tempDir(t);
  const cli = startClient(t, { port: relay.port, nick: 'alice', home, args: ['--recover'], env: { E2EE_CHAT_RECOVERY_CODE: code } });
  const fresh = CLI_CODE.exec(await cli.waitFor(CLI_CODE, 0, 'err'))![1]!;
  await cli.waitFor(/^\* joined lobby as alice/);
  t.not(fresh, code);
  cli.end();
  t.equal((await cli.exited).code, 0);

  // A page with a third key: a wrong code is NICK_BOUND; the CLI's fresh code takes the nickname back.
  const third = await person(t, b, url);
  await third.page.getByTestId('recover-toggle').click();
  await third.page.getByTestId('recover-code').fill('0'.repeat(26));
  await third.page.getByTestId('nick').fill('alice');
  await third.page.getByTestId('join').click();
  await third.page.locator('[data-testid=error][data-code=NICK_BOUND]').waitFor();
  await third.page.getByTestId('recover-code').fill(fresh.toLowerCase());
  await join(third.page, 'alice');
  await third.page.getByTestId('recovery-view').waitFor();
  const next = (await third.page.getByTestId('recovery-code').textContent()) ?? '';
  t.match(next, CODE);
  t.not(next, fresh, 'the takeover registered a fresh code');

  // The new key is alice's now: a CLI user meets it in the room.
  const bob = startClient(t, { port: relay.port, nick: 'bob', home: tempDir(t) });
  await bob.waitFor(/^\* secure session with alice/);
  await say(third.page, 'alice with a third key');
  await bob.waitFor(/^alice: alice with a third key$/);
  await message(third.page, 'alice', 'alice with a third key').waitFor();
  t.same(third.errors, []);
});
