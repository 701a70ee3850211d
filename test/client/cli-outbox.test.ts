/**
 * Issue 14 point 1 with the real CLI in scripted mode, through the malicious relay of test/hardening: a
 * line entered while nobody else is present is reported and never reaches a member who joins later; with
 * `--to NICK` it waits for NICK only, who must come with the key pinned in an earlier session, and a
 * member not named never receives it.
 */
import t from 'tap';
import { join } from 'node:path';
import { decodeFrame, FrameReader } from '../../src/codec/index.js';
import { RecordingProxy, startClient, startServerProc, tempDir } from './procs.js';
import { MaliciousRelay } from '../hardening/malicious-relay.js';

async function relay(t: { teardown(f: () => unknown): void }, dir: string) {
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db'), args: ['--max-room-size', '3'] });
  const mitm = await MaliciousRelay.start('127.0.0.1', port);
  t.teardown(() => mitm.close());
  return mitm;
}

t.test('scripted: a line typed while alone is not sent, and a later joiner (eve) never receives it', async (t) => {
  const dir = tempDir(t);
  const mitm = await relay(t, dir);
  const alice = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'alice', home: join(dir, 'alice'), room: 'r' });
  await alice.waitFor(/^\* joined r as alice/);
  alice.write('meet me at 5, the door code is 4711');
  await alice.waitFor(/^\* not sent \(nobody else in the room\): meet me at 5/);
  const eve = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'eve', home: join(dir, 'eve'), room: 'r' });
  await alice.waitFor(/^\* secure session with eve/);
  await eve.waitFor(/^\* secure session with alice/);
  alice.write('hello eve');
  t.equal(await eve.waitFor(/^alice: /), 'alice: hello eve');
  alice.end();
  t.equal((await alice.exited).code, 9, 'status 9: a line was not delivered');
  eve.end();
  t.equal((await eve.exited).code, 0);
  t.notOk(eve.out.some((l) => l.includes('4711')), 'eve never shows the door code');
  t.equal(eve.out.filter((l) => l.startsWith('alice: ')).length, 1, 'eve received exactly the one line sent while she was there');
});

t.test('on the wire (a recording proxy): a line entered while alone never leaves the client, not even once a member has joined', async (t) => {
  const dir = tempDir(t);
  const { port } = await startServerProc(t, { registry: join(dir, 'reg.db') });
  const proxy = new RecordingProxy(port);
  const via = await proxy.listen();
  t.teardown(() => proxy.close());
  const alice = startClient(t, { port: via, relayName: `localhost:${port}`, nick: 'alice', home: join(dir, 'alice'), room: 'r' });
  await alice.waitFor(/^\* joined r as alice/);
  alice.write('meet me at 5, the door code is 4711');
  await alice.waitFor(/^\* not sent \(nobody else in the room\)/);
  const eve = startClient(t, { port, nick: 'eve', home: join(dir, 'eve'), room: 'r' });
  await alice.waitFor(/^\* secure session with eve/);
  await eve.waitFor(/^\* secure session with alice/);
  alice.write('hello eve');
  t.equal(await eve.waitFor(/^alice: /), 'alice: hello eve');
  await alice.waitFor(/^\* delivered to eve #/);
  alice.end();
  t.equal((await alice.exited).code, 9);
  eve.end();
  await eve.exited;
  // Every end-to-end frame alice sent through the relay: the handshake, her ROSTER once the session was
  // established (§8.6), and one MSG for the line (eve sent nothing to acknowledge). The client that
  // queued the first line sent three MSGs to eve.
  const reader = new FrameReader();
  const sent: string[] = [];
  for (const chunk of proxy.upstream) {
    for (const body of reader.push(chunk)) {
      const f = decodeFrame(body, 'relay');
      if (f.type === 'SEND') sent.push(decodeFrame(f.body, 'e2e').type);
    }
  }
  t.equal(sent.filter((x) => x === 'MSG').length, 2, `two MSGs on the wire: the ROSTER and the line typed with eve present (${sent.join(' ')})`);
  t.ok(sent.length > 1, 'the handshake frames were recorded too');
});

t.test('scripted --to NICK: waits for NICK with its pinned key; a member not named never receives the line', async (t) => {
  const dir = tempDir(t);
  const mitm = await relay(t, dir);
  const homes = { alice: join(dir, 'alice'), bob: join(dir, 'bob'), carol: join(dir, 'carol') };
  // First meeting: alice pins bob's key.
  const a1 = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'alice', home: homes.alice, room: 'r1' });
  await a1.waitFor(/^\* joined /);
  const b1 = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'bob', home: homes.bob, room: 'r1' });
  await a1.waitFor(/^\* secure session with bob/);
  a1.end();
  b1.end();
  t.equal((await a1.exited).code, 0);
  t.equal((await b1.exited).code, 0);

  const alice = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'alice', home: homes.alice, room: 'r2', args: ['--to', 'bob', '--to', 'dave', '--wait', '1'] });
  await alice.waitFor(/^\* joined r2 as alice/);
  alice.write('for bob: the door code is 1234');
  const carol = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'carol', home: homes.carol, room: 'r2' });
  await alice.waitFor(/^\* secure session with carol/);
  const bob = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'bob', home: homes.bob, room: 'r2' });
  t.equal(await bob.waitFor(/^alice: /), 'alice: for bob: the door code is 1234', 'bob, named and pinned, receives it');
  await alice.waitFor(/^\* delivered to bob #/);
  alice.end();
  t.equal((await alice.exited).code, 9, 'status 9: dave never got it');
  t.ok(alice.out.some((l) => /^\* not delivered to dave \(never sent/.test(l)), 'the named member who never came is listed');
  carol.end();
  bob.end();
  await Promise.all([carol.exited, bob.exited]);
  t.notOk(carol.out.some((l) => l.startsWith('alice: ')), 'carol, present but not named, received nothing');

  // A named member seen for the first time (dave never met alice) is not sent to.
  const a3 = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'alice', home: homes.alice, room: 'r3', args: ['--to', 'dave', '--wait', '1'] });
  await a3.waitFor(/^\* joined r3/);
  a3.write('dave?');
  const d3 = startClient(t, { port: mitm.port, relayName: mitm.relayName, nick: 'dave', home: join(dir, 'dave'), room: 'r3' });
  await a3.waitFor(/^\* not sending to dave: its key is not pinned/);
  a3.end();
  t.equal((await a3.exited).code, 9);
  d3.end();
  await d3.exited;
  t.notOk(d3.out.some((l) => l.startsWith('alice: ')), 'an unpinned dave receives nothing under --to');
});
