/**
 * Roster agreement (spec §8.6) with the real CLI in scripted mode, through the malicious relay of
 * test/hardening in front of a real relay process: the relay hides carol from alice and adds a member it
 * holds (mallory) for bob; both alice's and bob's CLI print the contract's event line
 * `* roster mismatch at epoch E: NICK …` (spec/CONFORMANCE.md §2.1) naming the other and the epoch, and
 * carry on (exit 0 at end of input).
 */
import t from 'tap';
import { join } from 'node:path';
import { frame, type RelayFrame } from '../../src/codec/index.js';
import { identity } from '../../src/wirekit/relay-conn.js';
import { startClient, startServerProc, tempDir } from './procs.js';
import { MaliciousRelay } from '../hardening/malicious-relay.js';

t.test('scripted: both victims of a split roster print a roster mismatch line naming the epoch and the other', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db'), args: ['--max-room-size', '4'] });
  const mitm = await MaliciousRelay.start('127.0.0.1', port);
  t.teardown(() => mitm.close());
  const dave = identity('dave', true);
  const mallory = identity('mallory', true);
  mitm.attack = (f, leg) => {
    if (leg.nick === 'alice') {
      if (f.type === 'PEER_JOINED' && f.nick === 'carol') {
        return [frame('PEER_JOINED', { nick: 'dave', key: dave.spki, epoch: 0 }) as RelayFrame, frame('PEER_LEFT', { nick: 'dave', epoch: 0 }) as RelayFrame];
      }
      if ((f.type === 'DELIVER' && f.from === 'carol') || (f.type === 'PEER_LEFT' && f.nick === 'carol')) return [];
    }
    if (leg.nick === 'bob' && f.type === 'PEER_JOINED' && f.nick === 'carol') return [f, frame('PEER_JOINED', { nick: 'mallory', key: mallory.spki, epoch: 0 }) as RelayFrame];
    return [f];
  };
  const alice = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'alice', home: join(dir, 'alice'), room: 'r', args: ['--wait', '1'] });
  await alice.waitFor(/^\* joined r as alice/);
  const bob = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'bob', home: join(dir, 'bob'), room: 'r', args: ['--wait', '1'] });
  await alice.waitFor(/^\* secure session with bob/);
  await bob.waitFor(/^\* secure session with alice/);
  const carol = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'carol', home: join(dir, 'carol'), room: 'r', args: ['--wait', '1'] });
  await carol.waitFor(/^\* secure session with bob/);
  const a = await alice.waitFor(/^\* roster mismatch at epoch 4: bob /);
  const b = await bob.waitFor(/^\* roster mismatch at epoch 4: alice /);
  t.match(a, /we see alice, bob\)$/, 'alice names the room she sees');
  t.match(b, /we see alice, bob, carol, mallory\)$/, 'bob names the room he sees');
  alice.write('still talking');
  t.equal(await bob.waitFor(/^alice: /), 'alice: still talking', 'the sessions carry on');
  for (const p of [alice, bob, carol]) p.end();
  t.equal((await alice.exited).code, 0);
  t.equal((await bob.exited).code, 0);
  await carol.exited;
});
