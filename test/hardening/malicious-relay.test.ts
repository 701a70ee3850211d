// Malicious relay (spec §11, SECURITY.md): the reference client library (src/client ChatClient) talks
// through test/hardening/malicious-relay.ts, a man in the middle in front of the real relay that
// substitutes identity keys, drops, duplicates, reorders, replays, truncates and forges the sender of what
// it forwards. In every case the clients detect it (a rejection with its §9 code, a key change, a failed
// handshake, an unacknowledged message) and display nothing false: every text shown was sent by the named
// sender, once, in order, and a substituted key never yields a working session.
import t, { type Test } from 'tap';
import { frame, type RelayFrame } from '../../src/codec/index.js';
import { ChatClient } from '../../src/client/chat-client.js';
import { nodeClient } from '../../src/client/node-client.js';
import { PinStore } from '../../src/client/pins.js';
import { fingerprint } from '../../src/crypto/safety.js';
import { PeerSession } from '../../src/handshake/session.js';
import { nodeBackend, nodePrivateKey, nodePublicKey } from '../../src/crypto/node.js';
import { startServer } from '../../src/server/index.js';
import { identity, type Identity } from '../../src/wirekit/relay-conn.js';
import { behindMalicious, carried, MaliciousRelay, type Attack } from './malicious-relay.js';

const MALLORY = identity('mallory', true);
const ids = { a: identity('alice', true), b: identity('bob', true), c: identity('carol', true) };

interface Watched {
  client: ChatClient;
  shown: { from: string; text: string }[];
  rejected: { from: string; code: string; fatal: boolean }[];
  established: string[];
  keyChanged: string[];
}

function watch(client: ChatClient): Watched {
  const w: Watched = { client, shown: [], rejected: [], established: [], keyChanged: [] };
  client.on('text', (e) => w.shown.push({ from: e.from, text: e.text }));
  client.on('rejected', (e) => w.rejected.push({ from: e.from, code: e.error.errorName, fatal: e.fatal }));
  client.on('established', (e) => w.established.push(e.nick));
  client.on('key-changed', (e) => w.keyChanged.push(e.nick));
  client.on('closed', () => {});
  return w;
}

/** Polls `cond` at most `tries` times 10 ms apart (a liveness bound, not a speed assertion). */
async function until(cond: () => boolean, tries = 2000): Promise<boolean> {
  for (let i = 0; i < tries && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

async function setup(t: Test, roomSize = 2) {
  const { relay, mitm, clients } = await behindMalicious(t, roomSize);
  /** Joins through the malicious relay, or straight to `at` (a relay as the user dialled it). */
  const join = async (id: Identity, room: string, pins?: PinStore, at?: { host: string; port: number; relayName?: string }): Promise<Watched> => {
    const { host, port, relayName } = at ?? mitm;
    const named = relayName === undefined ? {} : { relayName };
    const client = nodeClient({ host, port, nick: id.nick, identity: id, handshakeTimeoutMs: 4000, ...named, ...(pins ? { pins } : {}) });
    clients.push(client);
    const w = watch(client);
    await client.connect();
    await client.join(room);
    return w;
  };
  return { relay, mitm, join };
}

/** Every text shown is one `sent` by that sender, each at most once, in the order sent. */
function nothingFalse(t: Test, w: Watched, from: string, sent: string[]): void {
  const mine = w.shown.filter((s) => s.from === from).map((s) => s.text);
  let at = -1;
  for (const x of mine) {
    const i = sent.indexOf(x);
    t.ok(i > at, `${w.client.nick} shows "${x}" from ${from}: sent, once, in order`);
    at = Math.max(at, i);
  }
  t.equal(new Set(mine).size, mine.length, 'no text shown twice');
}

/** Alice and Bob through the relay; Bob's texts to Alice pass through `attack` once established. */
async function pairUnder(t: Test, attack: Attack, texts: string[]) {
  const { mitm, join } = await setup(t);
  const alice = await join(ids.a, 'r1');
  const bob = await join(ids.b, 'r1');
  t.ok(await until(() => alice.established.length > 0 && bob.established.length > 0), 'sessions established before the attack');
  mitm.attack = attack;
  for (const x of texts) bob.client.send(x);
  return { mitm, alice, bob };
}

const isTextTo = (f: RelayFrame, nick: string | undefined, to: string): boolean => nick === to && carried(f) === 'MSG';

t.test('dropped message: the next is OUT_OF_ORDER, nothing false shown, the sender sees them unacknowledged', async (t) => {
  let n = 0;
  const { alice, bob } = await pairUnder(t, (f, leg) => (isTextTo(f, leg.nick, ids.a.nick) && n++ === 1 ? [] : [f]), ['one', 'two', 'three']);
  t.ok(await until(() => alice.shown.length + alice.rejected.length >= 2), 'alice processed what reached her');
  t.same(alice.shown.map((s) => s.text), ['one'], 'only the message before the gap is shown');
  t.ok(alice.rejected.some((r) => r.code === 'OUT_OF_ORDER' && r.from === ids.b.nick), 'the gap is reported as OUT_OF_ORDER');
  nothingFalse(t, alice, ids.b.nick, ['one', 'two', 'three']);
  t.ok(await until(() => bob.client.undelivered().length === 2), 'bob lists two texts as not acknowledged');
  t.same(bob.client.undelivered().map((u) => u.text).sort(), ['three', 'two']);
});

t.test('duplicated message: the copy is REPLAY and shown once', async (t) => {
  let n = 0;
  const { alice } = await pairUnder(t, (f, leg) => (isTextTo(f, leg.nick, ids.a.nick) && n++ === 0 ? [f, f] : [f]), ['one', 'two']);
  t.ok(await until(() => alice.shown.length >= 2 && alice.rejected.length >= 1));
  t.same(alice.shown.map((s) => s.text), ['one', 'two']);
  t.ok(alice.rejected.some((r) => r.code === 'REPLAY'), 'the duplicate is reported as REPLAY');
  nothingFalse(t, alice, ids.b.nick, ['one', 'two']);
});

t.test('reordered messages: never shown out of order', async (t) => {
  let held: RelayFrame | undefined;
  let n = 0;
  const { alice } = await pairUnder(
    t,
    (f, leg) => {
      if (!isTextTo(f, leg.nick, ids.a.nick)) return [f];
      n++;
      if (n === 1) {
        held = f;
        return [];
      }
      if (n === 2) return [f, held!];
      return [f];
    },
    ['one', 'two', 'three'],
  );
  t.ok(await until(() => alice.shown.length + alice.rejected.length >= 3));
  t.ok(alice.rejected.some((r) => r.code === 'OUT_OF_ORDER'), 'the early one is reported as OUT_OF_ORDER');
  t.notOk(alice.shown.some((s) => s.text === 'two'), '"two", delivered before "one", is never shown');
  nothingFalse(t, alice, ids.b.nick, ['one', 'two', 'three']);
});

t.test('replayed message later in the conversation: REPLAY, not shown again', async (t) => {
  let first: RelayFrame | undefined;
  let n = 0;
  const { alice } = await pairUnder(
    t,
    (f, leg) => {
      if (!isTextTo(f, leg.nick, ids.a.nick)) return [f];
      n++;
      if (n === 1) first = f;
      return n === 3 ? [f, first!] : [f];
    },
    ['one', 'two', 'three'],
  );
  t.ok(await until(() => alice.shown.length >= 3 && alice.rejected.length >= 1));
  t.same(alice.shown.map((s) => s.text), ['one', 'two', 'three']);
  t.ok(alice.rejected.some((r) => r.code === 'REPLAY'));
  nothingFalse(t, alice, ids.b.nick, ['one', 'two', 'three']);
});

t.test('truncated message: rejected with a decoding code, the rest not shown out of order', async (t) => {
  let n = 0;
  const { alice } = await pairUnder(
    t,
    (f, leg) => (isTextTo(f, leg.nick, ids.a.nick) && f.type === 'DELIVER' && n++ === 1 ? [frame('DELIVER', { from: f.from, body: f.body.subarray(0, f.body.length - 7) })] : [f]),
    ['one', 'two', 'three'],
  );
  t.ok(await until(() => alice.shown.length + alice.rejected.length >= 3));
  t.same(alice.shown.map((s) => s.text), ['one']);
  t.ok(alice.rejected.some((r) => ['MALFORMED_FRAME', 'INVALID_FIELD'].includes(r.code)), `truncation reported (${alice.rejected.map((r) => r.code).join(', ')})`);
  nothingFalse(t, alice, ids.b.nick, ['one', 'two', 'three']);
});

t.test('forged sender: a message relabelled as from another member is never shown as theirs', async (t) => {
  const { mitm, join } = await setup(t, 3);
  const alice = await join(ids.a, 'r3');
  const bob = await join(ids.b, 'r3');
  const carol = await join(ids.c, 'r3');
  t.ok(await until(() => carol.established.length >= 2 && alice.established.length >= 2 && bob.established.length >= 2), 'all three pairs established');
  // Everything bob sends to carol is stamped as from alice.
  mitm.attack = (f, leg) => (leg.nick === ids.c.nick && f.type === 'DELIVER' && f.from === ids.b.nick && carried(f) === 'MSG' ? [{ ...f, from: ids.a.nick }] : [f]);
  bob.client.send('from bob');
  t.ok(await until(() => carol.rejected.length >= 1), 'carol rejects the forged frame');
  t.ok(carol.rejected.some((r) => r.from === ids.a.nick && ['DECRYPT_FAILED', 'OUT_OF_ORDER', 'REPLAY'].includes(r.code)), `rejected as ${carol.rejected.map((r) => r.code).join(', ')}`);
  t.same(carol.shown.filter((s) => s.from === ids.a.nick), [], 'nothing is shown as from alice, who sent nothing');
  t.ok(await until(() => alice.shown.length >= 1), 'alice, not attacked, gets bob\'s text');
  t.same(alice.shown, [{ from: ids.b.nick, text: 'from bob' }]);
});

const substitute: Attack = (f) => {
  if (f.type === 'PEER_JOINED') return [{ ...f, key: MALLORY.spki }];
  if (f.type === 'JOINED') return [{ ...f, members: f.members.map((m) => ({ ...m, key: MALLORY.spki })) }];
  return [f];
};

t.test('substituted identity keys (first contact): the handshake fails, no text crosses', async (t) => {
  const { mitm, join } = await setup(t);
  mitm.attack = substitute;
  const alice = await join(ids.a, 'rk');
  const bob = await join(ids.b, 'rk');
  bob.client.send('secret for alice');
  t.ok(await until(() => alice.rejected.length + bob.rejected.length >= 1), 'a side reports the failed handshake');
  const codes = [...alice.rejected, ...bob.rejected].map((r) => r.code);
  t.ok(codes.some((c) => ['OAEP_FAILED', 'BAD_SIGNATURE', 'BAD_KEY_CONFIRMATION', 'TIMEOUT'].includes(c)), `reported as ${codes.join(', ')}`);
  t.same(alice.established, [], 'alice never establishes a session');
  t.same(alice.shown, [], 'alice shows nothing');
  t.same(bob.shown, [], 'bob shows nothing');
});

t.test('substituted key for one side only: both handshakes fail (the transcript binds both keys)', async (t) => {
  const { mitm, join } = await setup(t);
  // Only alice (the responder, who learns of bob through PEER_JOINED) is lied to; bob has the real keys.
  mitm.attack = (f, leg) => (leg.nick === ids.a.nick && f.type === 'PEER_JOINED' ? [{ ...f, key: MALLORY.spki }] : [f]);
  const alice = await join(ids.a, 'rh');
  const bob = await join(ids.b, 'rh');
  bob.client.send('does it arrive?');
  t.ok(await until(() => bob.rejected.length >= 1 && alice.rejected.length >= 1), 'both sides report a failed handshake');
  // Alice encrypts s_R to the substituted key and signs a transcript (TH0 covers both keys, §8.2) that
  // bob does not share: bob fails at the first check that sees it, OAEP before the signature.
  t.ok(bob.rejected.some((r) => ['OAEP_FAILED', 'BAD_SIGNATURE'].includes(r.code) && r.fatal), `bob: ${bob.rejected.map((r) => r.code).join(', ')}`);
  t.ok(alice.rejected.some((r) => r.fatal), `alice: ${alice.rejected.map((r) => r.code).join(', ')}`);
  t.same([alice.established, bob.established], [[], []], 'neither side ever shows a working session');
  t.same([alice.shown, bob.shown], [[], []], 'nothing shown');
  t.equal(bob.client.undelivered().length, 1, 'bob\'s text is listed as not delivered');
  const sa = await alice.client.safetyNumber(ids.b.nick);
  const sb = await bob.client.safetyNumber(ids.a.nick);
  t.ok(sa !== undefined && sb !== undefined && sa !== sb, 'and the safety numbers the two would compare differ');
});

t.test('substituted key for a pinned peer: a key change is shown, no session, no text', async (t) => {
  const { mitm, join } = await setup(t);
  const pinsA = PinStore.memory();
  const pinsB = PinStore.memory();
  const a1 = await join(ids.a, 'rp', pinsA);
  const b1 = await join(ids.b, 'rp', pinsB);
  t.ok(await until(() => a1.established.length > 0 && b1.established.length > 0), 'first, an honest session pins both keys');
  a1.client.close();
  b1.client.close();
  mitm.attack = substitute;
  const a2 = await join(ids.a, 'rp2', pinsA);
  const b2 = await join(ids.b, 'rp2', pinsB);
  t.ok(await until(() => a2.keyChanged.length + b2.keyChanged.length >= 2), 'both show a key change');
  t.same([a2.keyChanged, b2.keyChanged], [[ids.b.nick], [ids.a.nick]]);
  b2.client.send('blocked?');
  t.same([a2.established, b2.established], [[], []], 'no session with the substituted key');
  t.same([a2.shown, b2.shown], [[], []], 'nothing shown');
});

// ---- Issue 14 point 6: one trust store per relay, not per spelling; the fingerprint index across relays ----

t.test('the same relay dialled as 127.0.0.1 and as localhost is one relay to the pins', async (t) => {
  const { relay, join } = await setup(t);
  const pinsA = PinStore.memory();
  const a1 = await join(ids.a, 's1', pinsA, { host: '127.0.0.1', port: relay.port });
  const b1 = await join(ids.b, 's1', undefined, { host: '127.0.0.1', port: relay.port });
  t.ok(await until(() => a1.established.includes(ids.b.nick) && b1.established.length > 0));
  t.ok(a1.client.verify(ids.b.nick), 'alice verifies bob');
  a1.client.close();
  b1.client.close();
  const firstSeen: boolean[] = [];
  const verified: boolean[] = [];
  const a2 = await join(ids.a, 's2', pinsA, { host: 'localhost', port: relay.port });
  a2.client.on('peer-joined', (e) => (firstSeen.push(e.firstSeen), verified.push(e.verified)));
  await join(ids.b, 's2', undefined, { host: 'LOCALHOST', port: relay.port });
  t.ok(await until(() => a2.established.includes(ids.b.nick)));
  t.same([firstSeen, verified], [[false], [true]], 'bob is known and verified, not first seen again');
  t.equal(a2.client.serverName, 'localhost:' + relay.port);
});

t.test('a relay showing a nickname verified on another relay with another key: a warning naming that relay', async (t) => {
  const { relay, mitm, join } = await setup(t);
  const pinsA = PinStore.memory();
  const direct = { host: '127.0.0.1', port: relay.port };
  const a1 = await join(ids.a, 'x1', pinsA, direct);
  await join(ids.b, 'x1', undefined, direct);
  t.ok(await until(() => a1.established.includes(ids.b.nick)));
  t.ok(a1.client.verify(ids.b.nick));
  a1.client.close();
  // Another relay (its own name, §7.3) presents its own key as bob's.
  const relay2 = await startServer({ port: 0 });
  const other = await MaliciousRelay.start(relay2.host, relay2.port);
  t.teardown(async () => {
    await other.close();
    await relay2.close();
  });
  t.not(other.relayName, mitm.relayName, 'another relay identity');
  other.attack = (f, leg) => (leg.nick === ids.a.nick && f.type === 'PEER_JOINED' ? [{ ...f, key: MALLORY.spki }] : [f]);
  const warned: { nick: string; offeredFingerprint: string; elsewhere: { relay: string; fingerprint: string }[] }[] = [];
  const a2 = await join(ids.a, 'x2', pinsA, other);
  a2.client.on('key-elsewhere', (e) => warned.push(e));
  const joined: boolean[] = [];
  a2.client.on('peer-joined', (e) => joined.push(e.firstSeen));
  await join(ids.b, 'x2', undefined, other);
  t.ok(await until(() => joined.length > 0));
  t.same(joined, [true], 'bob is new on this relay (nicknames are per relay)');
  t.same(warned, [{ nick: ids.b.nick, offeredFingerprint: fingerprint(MALLORY.spki), elsewhere: [{ relay: `localhost:${relay.port}`, fingerprint: fingerprint(ids.b.spki) }] }]);
  t.same(a2.established, [], 'and the substituted key never yields a session');
});

// ---- Issue 14: what the client takes on the relay's word ----

t.test('a text entered while alone is sent to no one: a member (or a relay-made eve) who joins later never receives it', async (t) => {
  const { join } = await setup(t, 3);
  const alice = await join(ids.a, 'late');
  t.same(alice.client.send('meet me at 5, the door code is 4711'), [], 'addressed to no one');
  t.same(alice.client.undelivered(), [], 'and not kept for later');
  const eve = await join(identity('eve', true), 'late');
  t.ok(await until(() => alice.established.includes('eve') && eve.established.includes(ids.a.nick)), 'a session with the newcomer');
  t.same(alice.client.send('hello eve'), ['eve'], 'a text entered now goes to eve');
  t.ok(await until(() => eve.shown.length >= 1));
  await new Promise((r) => setTimeout(r, 200));
  t.same(eve.shown, [{ from: ids.a.nick, text: 'hello eve' }], 'eve shows only what was sent while she was there');
});

t.test('a text goes only to the members present when it was entered, even if their session is not set up yet', async (t) => {
  const { join } = await setup(t, 3);
  const alice = await join(ids.a, 'present');
  const bob = await join(ids.b, 'present');
  t.ok(await until(() => alice.client.members().length === 1));
  t.same(alice.client.send('for bob only', { to: [ids.b.nick] }), [ids.b.nick]);
  t.same(alice.client.send('to nobody named', { to: ['zed'] }), [], '--to names only present members');
  const carol = await join(ids.c, 'present');
  t.ok(await until(() => bob.shown.length >= 1 && alice.established.includes(ids.c.nick)));
  await new Promise((r) => setTimeout(r, 200));
  t.same(bob.shown.map((s) => s.text), ['for bob only']);
  t.same(carol.shown, [], 'carol, who joined later, received nothing');
});

t.test('PEER_JOINED beyond the announced room size ends the connection as a relay protocol error', async (t) => {
  const { mitm, join } = await setup(t, 2);
  const alice = await join(ids.a, 'size');
  const bob = await join(ids.b, 'size');
  t.ok(await until(() => alice.established.length > 0 && bob.established.length > 0));
  let failure: string | undefined;
  alice.client.on('closed', (e) => (failure = e.failure?.error?.errorName));
  mitm.legs.get(ids.a.nick)!.toClient(frame('PEER_JOINED', { nick: 'eve', key: MALLORY.spki, epoch: 0 }) as RelayFrame);
  t.ok(await until(() => alice.client.closed), 'alice closes');
  t.equal(failure, 'UNEXPECTED_FRAME', 'the relay invented a member the room cannot hold');
  t.notOk(alice.client.members().some((m) => m.nick === 'eve'), 'eve is never a member');
});

t.test('join/leave churn from one nickname is throttled with back-off and one collapsed notice; no session is set up', async (t) => {
  const { mitm, join } = await setup(t, 2);
  const alice = await join(ids.a, 'churn');
  const joined: string[] = [];
  const churn: { joins: number; until: number }[] = [];
  alice.client.on('peer-joined', (e) => joined.push(e.nick));
  alice.client.on('peer-churn', (e) => churn.push({ joins: e.joins, until: e.until }));
  const leg = mitm.legs.get(ids.a.nick)!;
  for (let i = 0; i < 40; i++) {
    leg.toClient(frame('PEER_JOINED', { nick: 'bob', key: MALLORY.spki, epoch: 0 }) as RelayFrame);
    leg.toClient(frame('PEER_LEFT', { nick: 'bob', epoch: 0 }) as RelayFrame);
  }
  leg.toClient(frame('PEER_JOINED', { nick: 'bob', key: MALLORY.spki, epoch: 0 }) as RelayFrame);
  t.ok(await until(() => alice.client.members().length === 1));
  t.equal(joined.length, 5, 'five joins shown (CHURN.JOINS), the rest collapsed');
  t.ok(churn.length >= 1 && churn.length <= 7, `collapsed into ${churn.length} notices, not 36`);
  t.ok(churn[0]!.joins > 5 && churn[0]!.until > Date.now(), 'the notice counts the joins and names the back-off');
  t.same(alice.client.members().map((m) => m.status), ['throttled'], 'the member is present but gets no session');
  t.same(alice.client.send('hello?'), [], 'and no text');
  t.notOk(alice.client.closed, 'the connection stays up');
  // The churning member opens a handshake: a responder would answer it (RSA work) with a SEND to bob,
  // which the real relay refuses (bob is made up) with NO_SUCH_PEER. A throttled member gets no answer.
  const relayErrors: string[] = [];
  alice.client.on('relay-error', (e) => relayErrors.push(e.error.errorName));
  const fake = new PeerSession({
    crypto: nodeBackend,
    room: 'churn',
    self: { nick: 'bob', key: nodePrivateKey(MALLORY.privateKey), spki: MALLORY.spki },
    peerNick: ids.a.nick,
    peerKey: nodePublicKey(ids.a.spki),
    role: 'initiator',
  });
  for (const ev of await fake.start()) if (ev.kind === 'send') leg.toClient(frame('DELIVER', { from: 'bob', body: ev.body }) as RelayFrame);
  const probe = await join(ids.c, 'probe');
  t.ok(probe, 'a round trip through the relay later');
  await new Promise((r) => setTimeout(r, 300));
  t.same(relayErrors, [], 'alice never answered the handshake of the throttled member');
  t.same(alice.rejected, [], 'nor processed it');
});

t.test('3,000 announced members pin nothing: the store is touched only by established sessions', async (t) => {
  const { mitm, join } = await setup(t, 2);
  const pins = PinStore.memory();
  const alice = await join(ids.a, 'flood', pins);
  const leg = mitm.legs.get(ids.a.nick)!;
  let joinedCount = 0;
  alice.client.on('peer-joined', () => joinedCount++);
  for (let i = 0; i < 3000; i++) {
    leg.toClient(frame('PEER_JOINED', { nick: `m${i}`, key: MALLORY.spki, epoch: 0 }) as RelayFrame);
    leg.toClient(frame('PEER_LEFT', { nick: `m${i}`, epoch: 0 }) as RelayFrame);
    if (i % 500 === 499) await until(() => joinedCount >= i + 1);
  }
  t.ok(await until(() => joinedCount === 3000), 'all 3,000 announcements handled');
  t.same(pins.count(), { unverified: 0, verified: 0 }, 'nothing pinned on the relay\'s word');
  t.notOk(alice.client.closed);
  const bob = await join(ids.b, 'flood');
  t.ok(await until(() => alice.established.includes(ids.b.nick) && bob.established.length > 0));
  t.equal(pins.check(mitm.relayName, ids.b.nick, ids.b.spki).status, 'match', 'bob is pinned once his session is established');
});
