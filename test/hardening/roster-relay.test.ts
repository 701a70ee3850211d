// A malicious relay that shows members different rooms (spec §8.6, SECURITY.md 10.9), through the real
// ChatClient and the reference relay behind test/hardening/malicious-relay.ts: it hides carol from alice
// and adds a member it controls for bob, numbering each client's epochs consecutively, and both alice
// and bob report a roster mismatch at the epoch where their views differ; a PEER_LEFT it withholds from
// alice is reported by alice as withheld; an honest relay under churn causes no report.
import t, { type Test } from 'tap';
import { frame, type RelayFrame } from '../../src/codec/index.js';
import { nodeClient } from '../../src/client/node-client.js';
import type { RosterReport } from '../../src/client/roster.js';
import { identity, type Identity } from '../../src/wirekit/relay-conn.js';
import { behindMalicious, type Attack } from './malicious-relay.js';

const ids = { a: identity('alice', true), b: identity('bob', true), c: identity('carol', true), m: identity('mallory', true), d: identity('dave', true) };

async function until(cond: () => boolean, tries = 2000): Promise<boolean> {
  for (let i = 0; i < tries && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

async function setup(t: Test, roomSize: number, rosterWaitMs = 10_000) {
  const { mitm, clients } = await behindMalicious(t, roomSize);
  const join = async (id: Identity, room: string) => {
    const client = nodeClient({ host: mitm.host, port: mitm.port, relayName: mitm.relayName, nick: id.nick, identity: id, handshakeTimeoutMs: 3000, rosterWaitMs });
    clients.push(client);
    const reports: RosterReport[] = [];
    const established: string[] = [];
    client.on('roster-mismatch', (r) => reports.push(r));
    client.on('established', (e) => established.push(e.nick));
    client.on('closed', () => {});
    client.on('rejected', () => {});
    await client.connect();
    await client.join(room);
    return { client, reports, established };
  };
  return { mitm, join };
}

t.test('a relay that shows alice and bob different rooms at one epoch (carol hidden from alice, mallory added for bob): both report it', async (t) => {
  const { mitm, join } = await setup(t, 4);
  const alice = await join(ids.a, 'split');
  const bob = await join(ids.b, 'split');
  t.ok(await until(() => alice.established.includes('bob') && bob.established.includes('alice')));
  const split: Attack = (f, leg) => {
    if (leg.nick === 'alice') {
      // carol never exists for alice; a member that joins and leaves at once keeps alice's epochs in step.
      if (f.type === 'PEER_JOINED' && f.nick === 'carol') {
        return [frame('PEER_JOINED', { nick: 'dave', key: ids.d.spki, epoch: 0 }) as RelayFrame, frame('PEER_LEFT', { nick: 'dave', epoch: 0 }) as RelayFrame];
      }
      if ((f.type === 'DELIVER' && f.from === 'carol') || (f.type === 'PEER_LEFT' && f.nick === 'carol')) return [];
    }
    if (leg.nick === 'bob' && f.type === 'PEER_JOINED' && f.nick === 'carol') {
      // bob is shown carol and a relay-held member
      return [f, frame('PEER_JOINED', { nick: 'mallory', key: ids.m.spki, epoch: 0 }) as RelayFrame];
    }
    return [f];
  };
  mitm.attack = split;
  const carol = await join(ids.c, 'split');
  t.ok(await until(() => carol.established.includes('bob')), 'carol and bob have a session');
  t.ok(await until(() => alice.reports.some((r) => r.peer === 'bob') && bob.reports.some((r) => r.peer === 'alice')), 'both victims report');
  t.ok(await until(() => alice.reports.some((r) => r.epoch === 4) && bob.reports.some((r) => r.epoch === 4)), 'both reach epoch 4 and compare it');
  // (A ROSTER for epoch 3 is also compared when a client read the two events of epochs 3 and 4 apart.)
  const a = alice.reports.find((r) => r.kind === 'mismatch' && r.peer === 'bob' && r.epoch === 4);
  const b = bob.reports.find((r) => r.kind === 'mismatch' && r.peer === 'alice' && r.epoch === 4);
  t.ok(a && b, `alice: ${JSON.stringify(alice.reports)}; bob: ${JSON.stringify(bob.reports)}`);
  if (a?.kind !== 'mismatch' || b?.kind !== 'mismatch') return;
  t.equal(a.epoch, 4, 'alice names the epoch at which both are (2 + the two events each was shown)');
  t.equal(b.epoch, 4, 'bob names the same epoch');
  t.same(a.members, ['alice', 'bob'], 'alice names the room she sees');
  t.same(b.members, ['alice', 'bob', 'carol', 'mallory'], 'bob names the room he sees');
  t.notOk(alice.client.closed || bob.client.closed, 'the connections carry on: the report is the user\'s to act on');
});

t.test('a withheld PEER_LEFT: alice, kept at the epoch before carol left, reports bob as ahead once ROSTER_WAIT_MS passed', async (t) => {
  const { mitm, join } = await setup(t, 3, 600);
  const alice = await join(ids.a, 'gone');
  const bob = await join(ids.b, 'gone');
  const carol = await join(ids.c, 'gone');
  t.ok(await until(() => alice.established.length === 2 && bob.established.length === 2 && carol.established.length === 2));
  mitm.attack = (f, leg) => (leg.nick === 'alice' && f.type === 'PEER_LEFT' && f.nick === 'carol' ? [] : [f]);
  await carol.client.leave();
  t.ok(await until(() => !bob.client.members().some((m) => m.nick === 'carol')), 'bob is told carol left');
  t.ok(await until(() => alice.reports.length > 0), 'alice reports');
  t.same(alice.reports, [{ kind: 'withheld', epoch: 4, peer: 'bob', ourEpoch: 3 }], 'naming bob and the epoch she was never brought to');
  t.ok(alice.client.members().some((m) => m.nick === 'carol'), 'alice still lists carol: the relay hid her leaving');
  t.same(bob.reports, [], 'bob, who saw the truth, has nothing to report');
});

t.test('an honest relay under join and leave churn: no report at all', async (t) => {
  const { join } = await setup(t, 4, 500);
  const alice = await join(ids.a, 'churn');
  const bob = await join(ids.b, 'churn');
  for (let i = 0; i < 4; i++) {
    const carol = await join(ids.c, 'churn');
    const dave = await join(ids.d, 'churn');
    alice.client.send(`round ${i}`);
    await until(() => carol.established.length === 3 && dave.established.length === 3, 400);
    await carol.client.leave();
    await dave.client.leave();
    for (const x of [carol, dave]) t.same(x.reports, [], `round ${i}: the leavers reported nothing`);
  }
  t.ok(await until(() => alice.client.members().length === 1 && bob.client.members().length === 1));
  await new Promise((r) => setTimeout(r, 800)); // past ROSTER_WAIT_MS: nothing held would surface now
  t.same(alice.reports, [], 'alice: no report');
  t.same(bob.reports, [], 'bob: no report');
});
