/**
 * The ChatClient library against the real relay (startServer, in process, 127.0.0.1:0), and against
 * a scripted fake relay for the relay misbehaviours a client must refuse (spec §3, §4, §7.1, §9).
 */
import t from 'tap';
import { connect, createServer, type Socket } from 'node:net';
import { ChatClient, ClientFailure } from '../../src/client/chat-client.js';
import { PinStore } from '../../src/client/pins.js';
import { decodeFrame, encodeFrame, encodeWire, frame, FrameReader, type Frame, type RelayFrame } from '../../src/codec/index.js';
import type { RsaPrivateKey } from '../../src/crypto/backend.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { startServer } from '../../src/server/index.js';
import { RecordingProxy } from './procs.js';
import { client, id, next, relay, type Teardown } from './lib.js';
import type { TransportFactory } from '../../src/client/transport.js';
import { RelayConnection, type ConnectionEvents } from '../../src/client/relay-connection.js';
import { wire } from '../../src/wirekit/msgpack.js';


async function inRoom(c: ChatClient, room = 'lobby'): Promise<string[]> {
  await c.connect();
  return c.join(room);
}

t.test('two library clients: sessions, texts both ways, acks, safety numbers, members', async (t) => {
  const s = await relay(t);
  const alice = client(t, s.port, 'alice');
  t.same(await inRoom(alice), [], 'alice is first');
  t.equal(alice.welcome?.roomSize, 2, 'WELCOME limits are exposed');
  t.same(alice.send('before bob'), [], 'alone: addressed to no one, and not kept for whoever joins (issue 14)');
  const bob = client(t, s.port, 'bob');
  const estA = next(alice, 'established');
  const estB = next(bob, 'established');
  t.same(await inRoom(bob), ['alice'], 'JOINED lists alice');
  const [ea, eb] = await Promise.all([estA, estB]);
  t.equal(await ea.safetyNumber, await eb.safetyNumber, 'same safety number on both sides');
  t.equal(await alice.safetyNumber('bob'), await ea.safetyNumber, 'safetyNumber() agrees with the session');
  const first = next(bob, 'text');
  t.same(alice.send('after bob joined'), ['bob']);
  t.equal((await first).text, 'after bob joined', 'bob gets only what was sent while he was there');

  const got = next(alice, 'text');
  const acked = next(bob, 'delivered');
  t.same(bob.send('hi alice'), ['alice'], 'send() names the addressees');
  const txt = await got;
  t.equal(txt.from, 'bob');
  t.equal(txt.text, 'hi alice');
  const d = await acked;
  t.same([d.to, d.text], ['alice', 'hi alice'], 'delivered event carries the text');
  t.same(alice.members().map((m) => [m.nick, m.status, m.verified]), [['bob', 'established', false]]);
  t.ok(await bob.whenSettled(60000), 'settled once everything is acknowledged');

  t.throws(() => bob.send(''), RangeError, 'empty text refused');
  t.throws(() => bob.send('x'.repeat(16385)), RangeError, 'text over MAX_TEXT_BYTES refused');
  t.throws(() => bob.send('a\ud800b'), RangeError, 'lone surrogate refused');

  const left = next(alice, 'peer-left');
  t.same(await bob.leave(), [], 'nothing undelivered');
  t.same((await left).undelivered, [], 'alice sees bob leave');
  t.ok(bob.closed);
});

t.test('a reply sent from inside a text listener reaches the peer after the ACK it follows (no OUT_OF_ORDER)', async (t) => {
  const s = await relay(t);
  const alice = client(t, s.port, 'echo-a');
  const bob = client(t, s.port, 'echo-b');
  await inRoom(alice, 'echo');
  const est = next(bob, 'established');
  await inRoom(bob, 'echo');
  await est;
  const rejected: string[] = [];
  alice.on('rejected', (e) => rejected.push(e.error.errorName));
  bob.on('rejected', (e) => rejected.push(e.error.errorName));
  // alice answers every text synchronously, from inside the listener.
  alice.on('text', (e) => {
    alice.send(`re: ${e.text}`);
  });
  const replies: string[] = [];
  const three = new Promise<void>((resolve) => {
    bob.on('text', (e) => {
      replies.push(e.text);
      if (replies.length === 3) resolve();
    });
  });
  for (const m of ['one', 'two', 'three']) bob.send(m);
  await three;
  t.same(replies, ['re: one', 're: two', 're: three'], 'every reply arrives, in order');
  t.same(rejected, [], 'nothing was rejected on either side');
});

t.test('a changed key blocks the peer until trust(); then the session runs, unverified', async (t) => {
  const pins = PinStore.memory();
  // Pins are kept under the name the relay announces and AUTH signs (§7.3): two relay processes started
  // with one name are one relay to them.
  const relayName = 'relay-under-test:1';
  {
    const s1 = await relay(t, { relayName });
    const alice = client(t, s1.port, 'alice', { pins, relayName });
    await inRoom(alice);
    const bob = client(t, s1.port, 'bob', { relayName });
    const est = next(alice, 'established');
    await inRoom(bob);
    await est;
    t.ok(alice.verify('bob'), 'alice verifies bob');
    t.equal(pins.get(relayName, 'bob')?.verified, true, 'verified mark stored in the pins');
    await bob.leave();
    await alice.leave();
    await s1.close();
  }

  // Alice is present when the new "bob" joins: bob initiates, alice holds his HS_INIT until /trust.
  const s2 = await relay(t, { relayName });
  const alice = client(t, s2.port, 'alice', { pins, relayName });
  await inRoom(alice);
  const mallory = client(t, s2.port, 'bob', { identity: id('bob-new'), relayName });
  const changed = next(alice, 'key-changed');
  await inRoom(mallory);
  const kc = await changed;
  t.equal(kc.nick, 'bob');
  t.not(kc.pinnedFingerprint, kc.offeredFingerprint, 'both fingerprints are named');
  t.equal(kc.error.errorName, 'KEY_CHANGED', 'reported as KEY_CHANGED (§8.5, §9)');
  t.same(alice.members().map((m) => m.status), ['key-changed']);
  t.same(alice.send('for the real bob only'), [], 'nothing is sent to the changed key');
  t.same(alice.undelivered(), [], 'nor kept for later: the text is not queued for whoever comes next');
  t.notOk(alice.verify('bob'), 'a changed key cannot be verified');
  t.equal(pins.get(relayName, 'bob')?.verified, true, 'the old pin stays until trust');

  const seen: string[] = [];
  mallory.on('text', (e) => seen.push(e.text));
  const est = next(alice, 'established');
  t.ok(alice.trust('bob'), 'trust() accepts the new key');
  const e = await est;
  t.equal(e.verified, false, 'the new key is not verified');
  t.equal(pins.get(relayName, 'bob')?.verified, false, 'the pin now holds the new key, unverified');
  t.same(pins.get(relayName, 'bob')?.key, id('bob-new').spki);
  t.notOk(alice.trust('bob'), 'nothing left to trust');
  const txt = next(alice, 'text');
  mallory.send('hello after trust');
  t.equal((await txt).text, 'hello after trust');
  const got = next(mallory, 'text');
  alice.send('after trust');
  await got;
  t.same(seen, ['after trust'], 'what was typed while the key was blocked was never sent, not even after trust');
});

t.test('a changed key of a member already in the room (we initiate) is held too', async (t) => {
  const pins = PinStore.memory();
  const s = await relay(t);
  // Pinned under the relay's name (what it announces and AUTH signs), not under the address dialled.
  pins.pin(s.relayName, 'carol', id('carol-old').spki);
  const carol = client(t, s.port, 'carol');
  await inRoom(carol);
  const dave = client(t, s.port, 'dave', { pins });
  const changed = next(dave, 'key-changed');
  await inRoom(dave);
  t.equal((await changed).nick, 'carol');
  const est = next(dave, 'established');
  dave.trust('carol');
  t.equal((await est).nick, 'carol', 'after trust the initiator starts the handshake');
});

t.test('different room secrets: the handshake fails with BAD_KEY_CONFIRMATION; equal ones work', async (t) => {
  const s = await relay(t);
  const a = client(t, s.port, 'a', { psk: new Uint8Array(Buffer.from('one')) });
  await inRoom(a, 'r1');
  const b = client(t, s.port, 'b', { psk: new Uint8Array(Buffer.from('two')) });
  const rej = next(b, 'rejected');
  await inRoom(b, 'r1');
  const r = await rej;
  t.equal(r.error.errorName, 'BAD_KEY_CONFIRMATION');
  t.equal(r.fatal, true);
  t.same(b.members().map((m) => m.status), ['failed']);

  const c = client(t, s.port, 'c', { psk: new Uint8Array(Buffer.from('same')) });
  await inRoom(c, 'r2');
  const d = client(t, s.port, 'd', { psk: new Uint8Array(Buffer.from('same')) });
  const est = next(d, 'established');
  await inRoom(d, 'r2');
  t.equal((await est).nick, 'c');
});

t.test('ROOM_FULL rejects join() with a room failure and leaves the connection usable', async (t) => {
  const s = await relay(t);
  await inRoom(client(t, s.port, 'm1'));
  await inRoom(client(t, s.port, 'm2'));
  const third = client(t, s.port, 'm3');
  await third.connect();
  const err = await third.join('lobby').then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof ClientFailure && err.kind === 'room' && err.error?.errorName === 'ROOM_FULL', 'ROOM_FULL');
  t.same(await third.join('elsewhere'), [], 'another room still works on the same connection');
});

t.test('keepalive: PINGs keep a connection open past the idle timeout', async (t) => {
  const s = await relay(t, { idleTimeoutMs: 300 });
  const proxy = new RecordingProxy(s.port);
  const port = await proxy.listen();
  t.teardown(() => proxy.close());
  // §7.3: the client addresses the relay behind the proxy (its name), not the proxy.
  const c = client(t, port, 'idler', { relayName: s.relayName });
  let failure: ClientFailure | null = null;
  c.on('closed', (e) => (failure = e.failure));
  await inRoom(c);
  t.equal(c.welcome?.idleMs, 300);
  // Bounded wait: until the client has sent 6 PINGs (two idle periods), or it was closed.
  const pings = () => {
    const r = new FrameReader();
    return r.push(Buffer.concat(proxy.upstream)).filter((b) => decodeFrame(b, 'relay').type === 'PING').length;
  };
  for (let i = 0; i < 200 && pings() < 6 && failure === null; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(failure, null, 'not closed by the relay');
  t.ok(pings() >= 6, `the client sent PINGs (${pings()})`);
  t.notOk(c.closed);
});

t.test('pacing: a client never exceeds WELCOME.rate, so a low relay rate loses nothing', async (t) => {
  const s = await relay(t, { rateFramesPerSecond: 40, rateBurst: 40 });
  const a = client(t, s.port, 'fast');
  await inRoom(a);
  const b = client(t, s.port, 'slow');
  const est = next(a, 'established');
  await inRoom(b);
  await est;
  const failures: string[] = [];
  for (const c of [a, b]) c.on('closed', (e) => e.failure && failures.push(e.failure.message));
  const got: string[] = [];
  b.on('text', (e) => got.push(e.text));
  const N = 100;
  for (let i = 0; i < N; i++) a.send(`m${i}`);
  t.ok(await a.whenSettled(120000), 'all acknowledged');
  t.same(failures, [], 'no one was disconnected (no RATE_LIMITED)');
  t.same(got, Array.from({ length: N }, (_, i) => `m${i}`), 'all texts, in order');
  t.notOk(s.stats().errors.RATE_LIMITED, 'the relay refused nothing');
});

t.test('texts are bounded so their SEND frame fits the announced max_frame', async (t) => {
  const s = await relay(t, { maxFrameBytes: 1024 });
  const a = client(t, s.port, 'mfa');
  await inRoom(a);
  const b = client(t, s.port, 'mfb');
  const est = next(a, 'established');
  await inRoom(b);
  await est;
  const max = a.maxTextBytes();
  t.ok(max > 0 && max < 1024, `a smaller bound under max_frame 1024 (${max} bytes)`);
  t.throws(() => a.send('y'.repeat(max + 1)), RangeError, 'one byte more is refused locally');
  const got = next(b, 'text');
  a.send('y'.repeat(max));
  t.equal((await got).text.length, max, 'the longest allowed text is relayed');
  t.ok(await a.whenSettled(60000));
  t.notOk(s.stats().errors.FRAME_TOO_LARGE, 'the relay never saw a frame over its limit');
});

/** A fake relay: `script` answers each frame the client sends with raw bytes. */
async function fakeRelay(t: Teardown, script: (f: RelayFrame, sock: Socket) => void) {
  const seen: RelayFrame[] = [];
  const srv = createServer((sock) => {
    const r = new FrameReader();
    sock.on('error', () => {});
    sock.on('data', (d) => {
      for (const b of r.push(d)) {
        const f = decodeFrame(b, 'relay');
        seen.push(f);
        script(f, sock);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  return { port: (srv.address() as { port: number }).port, seen };
}

const w = (f: Frame) => encodeWire(f);
const nonce = new Uint8Array(32);
const welcome = frame('WELCOME', { idle_ms: 60000, max_frame: 65536, room_size: 2, rate: 1000 });

const misbehaviours: { name: string; kind: string; code: string; script: (f: RelayFrame, s: Socket) => void; sentError?: number }[] = [
  {
    name: 'a CHALLENGE naming another relay than the one dialled (§7.3)',
    kind: 'protocol',
    code: 'WRONG_RELAY',
    sentError: 19,
    script: (f, s) => f.type === 'HELLO' && s.write(w(frame('CHALLENGE', { version: 2, nonce, relay: `127.0.0.2:${s.localPort}` }))),
  },
  {
    name: 'a DELIVER before CHALLENGE',
    kind: 'protocol',
    code: 'UNEXPECTED_FRAME',
    sentError: 5,
    script: (f, s) => f.type === 'HELLO' && s.write(w(frame('DELIVER', { from: 'x', body: new Uint8Array(1) }))),
  },
  {
    name: 'a frame length over MAX_FRAME_BYTES',
    kind: 'protocol',
    code: 'FRAME_TOO_LARGE',
    sentError: 2,
    script: (f, s) => f.type === 'HELLO' && s.write(Buffer.from([0, 1, 0, 1])),
  },
  {
    name: 'a CHALLENGE of another version',
    kind: 'protocol',
    code: 'UNSUPPORTED_VERSION',
    sentError: 6,
    script: (f, s) => f.type === 'HELLO' && s.write(w(frame('CHALLENGE', { version: 1, nonce, relay: `localhost:${s.localPort}` }))),
  },
  {
    name: 'a non-canonical frame (map with a nil value)',
    kind: 'protocol',
    code: 'MALFORMED_FRAME',
    sentError: 1,
    script: (f, s) => f.type === 'HELLO' && s.write(Buffer.from([0, 0, 0, 4, 0x82, 0xa1, 0x74, 0xc0])),
  },
  {
    name: 'an ERROR with an unknown code',
    kind: 'protocol',
    code: 'UNEXPECTED_FRAME',
    script: (f, s) => f.type === 'HELLO' && s.write(w(frame('ERROR', { code: 200, detail: '' }))),
  },
  {
    name: 'ERROR AUTH_FAILED',
    kind: 'auth',
    code: 'AUTH_FAILED',
    script: (f, s) => {
      if (f.type === 'HELLO') s.write(w(frame('CHALLENGE', { version: 2, nonce, relay: `localhost:${s.localPort}` })));
      if (f.type === 'AUTH') s.end(w(frame('ERROR', { code: 8, detail: '' })));
    },
  },
  {
    name: 'a WELCOME whose max_frame cannot carry a handshake',
    kind: 'protocol',
    code: 'INVALID_FIELD',
    sentError: 4,
    script: (f, s) => {
      if (f.type === 'HELLO') s.write(w(frame('CHALLENGE', { version: 2, nonce, relay: `localhost:${s.localPort}` })));
      if (f.type === 'AUTH') s.write(w({ ...welcome, max_frame: 600 }));
    },
  },
  {
    name: 'a JOINED that lists the joiner itself',
    kind: 'protocol',
    code: 'INVALID_FIELD',
    sentError: 4,
    script: (f, s) => {
      if (f.type === 'HELLO') s.write(w(frame('CHALLENGE', { version: 2, nonce, relay: `localhost:${s.localPort}` })));
      if (f.type === 'AUTH') s.write(w(welcome));
      if (f.type === 'JOIN') s.write(w(frame('JOINED', { room: 'lobby', epoch: 2, members: [{ nick: 'probe', key: id('probe').spki }] })));
    },
  },
  {
    // §5: PING is c2s only; the client answers a relay's PING with ERROR, not PONG (§7.4).
    name: 'a PING after WELCOME',
    kind: 'protocol',
    code: 'UNEXPECTED_FRAME',
    sentError: 5,
    script: (f, s) => {
      if (f.type === 'HELLO') s.write(w(frame('CHALLENGE', { version: 2, nonce, relay: `localhost:${s.localPort}` })));
      if (f.type === 'AUTH') s.write(w(welcome));
      if (f.type === 'JOIN') s.write(w(frame('PING', { n: 7 })));
    },
  },
];

for (const m of misbehaviours) {
  t.test(`a relay that sends ${m.name} ends the connection: ${m.kind} / ${m.code}`, async (t) => {
    const fake = await fakeRelay(t, m.script);
    const c = client(t, fake.port, 'probe');
    const closed = next(c, 'closed');
    const err = await inRoom(c).then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(err instanceof ClientFailure, 'connect/join rejects with a ClientFailure');
    const { failure } = await closed;
    t.equal(failure?.kind, m.kind);
    t.equal(failure?.error?.errorName, m.code);
    if (m.sentError !== undefined) {
      // Bounded wait for the client's ERROR frame to reach the fake relay.
      for (let i = 0; i < 100 && !fake.seen.some((f) => f.type === 'ERROR'); i++) await new Promise((r) => setTimeout(r, 10));
      const e = fake.seen.find((f) => f.type === 'ERROR');
      t.equal(e?.type === 'ERROR' ? e.code : undefined, m.sentError, 'the client told the relay the code (§3)');
    }
    t.notOk(fake.seen.some((f) => f.type === 'PONG'), 'the client never sends PONG (§5: PONG is s2c)');
    if (m.code === 'WRONG_RELAY') t.notOk(fake.seen.some((f) => f.type === 'AUTH'), 'nothing is signed for another relay (§7.3)');
  });
}

t.test('nothing listening: connect() rejects with kind connect', async (t) => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const c = client(t, port, 'lonely');
  const err = await c.connect().then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof ClientFailure && err.kind === 'connect');
});

t.test('an initiator whose HS_INIT is never answered fails the session with TIMEOUT (§7.2)', async (t) => {
  const s = await relay(t);
  // The responder never gets past decrypting eve's HS_INIT (its OAEP never returns): no HS_RESP ever
  // comes, and it sends nothing else either. (A responder that blocks eve's key now says so at once,
  // test/client/recover.test.ts.)
  const holder = client(t, s.port, 'holder', { crypto: { ...nodeBackend, oaepDecrypt: () => new Promise<Uint8Array>(() => undefined) } });
  await inRoom(holder);
  const eve = client(t, s.port, 'eve', { handshakeTimeoutMs: 200 });
  const rej = next(eve, 'rejected');
  await inRoom(eve);
  const r = await rej;
  t.equal(r.error.errorName, 'TIMEOUT');
  t.equal(r.fatal, true);
  t.same(eve.members().map((m) => m.status), ['failed']);
  t.ok(await eve.whenSettled(60000), 'a failed session does not hold back settling');
});

t.test('leave() while members come and go: traffic after LEAVE is ignored, not a protocol error', async (t) => {
  const s = await relay(t, { maxRoomSize: 3 });
  const a = client(t, s.port, 'la');
  await inRoom(a);
  const b = client(t, s.port, 'lb');
  const est = next(a, 'established');
  await inRoom(b);
  await est;
  let failure: unknown = null;
  a.on('closed', (e) => (failure = e.failure));
  const leaving = a.leave();
  b.send('in flight while a leaves');
  const c = client(t, s.port, 'lc');
  await inRoom(c);
  await leaving;
  t.equal(failure, null, 'a closed cleanly');
  t.same(a.send('after leaving'), [], 'send() after leave() is a no-op');
});

t.test("a 'text' listener that throws is the application's error: reported as listener-error, connection and session survive", async (t) => {
  const s = await relay(t);
  const alice = client(t, s.port, 'alice');
  const bob = client(t, s.port, 'bob');
  await inRoom(alice, 'throwing');
  const established = next(alice, 'established');
  await inRoom(bob, 'throwing');
  await established;
  const boom = new Error('bug in the application');
  let throws = 1;
  alice.on('text', () => {
    if (throws-- > 0) throw boom;
  });
  const reported = next(alice, 'listener-error');
  let closed = false;
  alice.on('closed', () => (closed = true));
  bob.send('first');
  const r = await reported;
  t.equal(r.event, 'text', 'the event whose listener threw');
  t.equal(r.error, boom, 'the exception the listener threw');
  // The session and the connection carry on: the next text arrives, and is acknowledged to bob.
  const second = next(alice, 'text');
  const delivered = next(bob, 'delivered', (d) => d.text === 'second');
  bob.send('second');
  t.equal((await second).text, 'second', 'a later text still arrives');
  t.equal((await delivered).to, 'alice', 'and is acknowledged');
  t.notOk(closed, 'alice saw no closed event');
  t.notOk(alice.closed, 'the relay connection is still open');
  t.same(alice.members().map((m) => m.status), ['established'], 'the session with bob is still established');
});

t.test('a message transport (one frame body per message, §3.1) carries the same client: session and texts both ways', async (t) => {
  const s = await relay(t);
  // A message transport over TCP for the test: the relay's stream is split into bodies, and each body the
  // client writes gets its length prefix here, so every write must be exactly one bare frame body.
  const written: string[] = [];
  const messages: TransportFactory = (h) => {
    const sock = connect({ host: '127.0.0.1', port: s.port });
    const reader = new FrameReader();
    sock.once('connect', () => h.open());
    sock.on('data', (chunk: Buffer) => {
      for (const body of reader.push(chunk)) h.data(body);
    });
    sock.on('drain', () => h.drain());
    sock.on('error', () => {});
    sock.on('close', () => h.close());
    return {
      encode: encodeFrame,
      write: (body) => {
        written.push(decodeFrame(body, 'relay').type);
        return sock.write(wire(body));
      },
      cork: () => {},
      uncork: () => {},
      end: () => sock.end(),
    };
  };
  const alice = client(t, s.port, 'alice', { transport: messages });
  const bob = client(t, s.port, 'bob');
  await inRoom(alice, 'messages');
  const established = next(alice, 'established');
  await inRoom(bob, 'messages');
  await established;
  const got = next(alice, 'text');
  bob.send('to a message transport');
  t.equal((await got).text, 'to a message transport', 'alice receives over messages');
  const back = next(bob, 'text');
  alice.send('from a message transport');
  t.equal((await back).text, 'from a message transport', 'bob receives what alice sent over messages');
  t.same(written.slice(0, 3), ['HELLO', 'AUTH', 'JOIN'], 'each write is one bare frame body');
  t.ok(written.includes('SEND'), 'SEND frames too');
});

/**
 * A proxy in front of the relay that can hold what the relay sends its client and then hand it over in
 * one write, so that frames the relay sent one by one reach the client in one read.
 */
async function holdingProxy(t: Teardown, target: number) {
  const state = { hold: false, held: [] as Buffer[], down: null as Socket | null };
  const proxy = createServer((down) => {
    const up = connect({ host: '127.0.0.1', port: target });
    state.down = down;
    down.on('data', (d: Buffer) => up.write(d));
    up.on('data', (d: Buffer) => (state.hold ? state.held.push(Buffer.from(d)) : down.write(d)));
    const close = () => {
      down.destroy();
      up.destroy();
    };
    down.on('close', close).on('error', close);
    up.on('close', close).on('error', close);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => void proxy.close());
  /** Bounded: waits until the held bytes include a frame of `type`. */
  const until = async (type: string): Promise<boolean> => {
    for (let i = 0; i < 400; i++) {
      if (state.held.length > 0 && new FrameReader().push(Buffer.concat(state.held)).some((f) => decodeFrame(f, 'relay').type === type)) return true;
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  };
  const release = () => {
    state.hold = false;
    state.down!.write(Buffer.concat(state.held));
    state.held = [];
  };
  return { port: (proxy.address() as { port: number }).port, state, until, release };
}

t.test("a member's last ACK and its PEER_LEFT in one read: the text counts as delivered, not lost (v2 cumulative ACKs)", async (t) => {
  const s = await relay(t);
  const proxy = await holdingProxy(t, s.port);
  const alice = client(t, proxy.port, 'alice', { relayName: s.relayName });
  await inRoom(alice);
  const bob = client(t, s.port, 'bob');
  const est = next(alice, 'established');
  await inRoom(bob);
  await est;
  t.ok(await bob.whenSettled(60000), 'bob is settled');

  const got = next(bob, 'text');
  proxy.state.hold = true;
  t.same(alice.send('the door code is 4711'), ['bob']);
  await got;
  t.same(await bob.leave(), [], 'bob leaves with nothing of his own pending');
  t.ok(await proxy.until('PEER_LEFT'), 'the PEER_LEFT is held together with what came before it');
  const delivered: string[] = [];
  alice.on('delivered', (d) => delivered.push(d.text));
  const left = next(alice, 'peer-left');
  proxy.release();
  t.same((await left).undelivered, [], 'nothing is listed as undelivered');
  t.same(delivered, ['the door code is 4711'], 'the ACK before the PEER_LEFT was honoured first');
});

t.test('a member that leaves and joins again within one read is reported leaving before joining', async (t) => {
  const s = await relay(t);
  const proxy = await holdingProxy(t, s.port);
  const alice = client(t, proxy.port, 'alice', { relayName: s.relayName });
  await inRoom(alice);
  const bob = client(t, s.port, 'bob');
  const est = next(alice, 'established');
  await inRoom(bob);
  await est;
  const got = next(bob, 'text');
  proxy.state.hold = true;
  alice.send('hello bob');
  await got;
  await bob.leave();
  const again = client(t, s.port, 'bob', { identity: id('bob') });
  await inRoom(again);
  t.ok(await proxy.until('PEER_JOINED'), 'the PEER_LEFT and the new PEER_JOINED are held together');
  const order: string[] = [];
  alice.on('peer-left', () => order.push('left'));
  alice.on('peer-joined', () => order.push('joined'));
  const joined = next(alice, 'peer-joined');
  proxy.release();
  await joined;
  t.same(order, ['left', 'joined'], 'peer-left first, then peer-joined');
});

t.test('join() called with connect(): JOIN leaves right behind AUTH, before any WELCOME (§7.4 "JOIN behind AUTH"), and both resolve', async (t) => {
  // This relay answers AUTH only once the JOIN behind it has arrived: a client that waited for WELCOME
  // before joining would never get one (its connect() fails at its handshake timeout).
  const fake = await fakeRelay(t, (f, s) => {
    if (f.type === 'HELLO') s.write(w(frame('CHALLENGE', { version: 2, nonce, relay: `localhost:${s.localPort}` })));
    if (f.type === 'JOIN') s.write(Buffer.concat([w(welcome), w(frame('JOINED', { room: f.room, epoch: 1, members: [] }))]));
  });
  const c = client(t, fake.port, 'early', { connectTimeoutMs: 5000 });
  const [welcomed, members] = await Promise.all([c.connect(), c.join('lobby')]);
  t.equal(welcomed.roomSize, 2, 'connect() resolves with the WELCOME');
  t.same(members, [], 'join() resolves with the JOINED members');
  t.same(
    fake.seen.map((f) => f.type),
    ['HELLO', 'AUTH', 'JOIN'],
    'HELLO, AUTH, then JOIN, with nothing from the relay between AUTH and JOIN',
  );
  t.equal(c.state, 'IN_ROOM');
  t.rejects(c.join('lobby'), ClientFailure, 'a second join() is refused');
});

t.test('a second join() while the first waits behind AUTH is refused; the first still resolves (§7.4 "JOIN behind AUTH")', async (t) => {
  const fake = await fakeRelay(t, (f, s) => {
    if (f.type === 'HELLO') s.write(w(frame('CHALLENGE', { version: 2, nonce, relay: `localhost:${s.localPort}` })));
    if (f.type === 'JOIN') s.write(Buffer.concat([w(welcome), w(frame('JOINED', { room: f.room, epoch: 1, members: [] }))]));
  });
  // The AUTH signature waits for the test: both join() calls come in AWAIT_WELCOME with AUTH not yet
  // written, the first held to go behind it.
  let signing!: () => void;
  const signStarted = new Promise<void>((r) => (signing = r));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const crypto = {
    ...nodeBackend,
    pssSign: async (k: RsaPrivateKey, m: Uint8Array) => {
      signing();
      await gate;
      return nodeBackend.pssSign(k, m);
    },
  };
  const c = client(t, fake.port, 'twice', { connectTimeoutMs: 5000, crypto });
  const connected = c.connect();
  await signStarted;
  const first = c.join('lobby');
  const refusal = c.join('other').then(() => null, (e: unknown) => e);
  release();
  const second = await refusal;
  t.ok(second instanceof ClientFailure && second.kind === 'protocol', 'the second join() rejects: protocol');
  // Awaited only when the second was refused: otherwise it replaced the first, which never settles.
  if (second !== null) t.same(await first, [], 'the first join() resolves with the JOINED members');
  await connected;
  t.same(fake.seen.filter((f) => f.type === 'JOIN').map((f) => (f as { room: string }).room), ['lobby'], 'one JOIN, for the first room');
});

t.test('RelayConnection.join() refuses an invalid room up front (RangeError), not when the JOIN behind AUTH is encoded', async (t) => {
  const conn = new RelayConnection(
    { nick: 'badroom', spki: id('badroom').spki, key: new Promise<RsaPrivateKey>(() => {}), crypto: nodeBackend, transport: () => { throw new Error('not connected'); }, relayName: null },
    {} as ConnectionEvents,
  );
  // Settled or not by the next turn of the event loop (a refusal is immediate; a held JOIN would wait).
  const outcome = await Promise.race([
    conn.join('no spaces').then(() => 'resolved', (e: unknown) => e),
    new Promise((r) => setImmediate(() => r('pending'))),
  ]);
  t.ok(outcome instanceof RangeError, 'rejects with a RangeError');
});

t.test('a JOIN behind an AUTH the relay refuses: connect() and join() both reject with the auth failure', async (t) => {
  const fake = await fakeRelay(t, (f, s) => {
    if (f.type === 'HELLO') s.write(w(frame('CHALLENGE', { version: 2, nonce, relay: `localhost:${s.localPort}` })));
    if (f.type === 'JOIN') s.end(w(frame('ERROR', { code: 8, detail: '' })));
  });
  const c = client(t, fake.port, 'refused');
  const closed = next(c, 'closed');
  const [e1, e2] = await Promise.all([c.connect(), c.join('lobby')].map((p) => p.then(() => null, (e: unknown) => e)));
  t.ok(e1 instanceof ClientFailure && e1.kind === 'auth', 'connect() rejects: auth');
  t.ok(e2 instanceof ClientFailure && e2.kind === 'auth' && e2.error?.errorName === 'AUTH_FAILED', 'join() rejects with the same failure');
  t.equal((await closed).failure?.error?.errorName, 'AUTH_FAILED');
});

t.test('against the relay, join() with connect() (JOIN behind AUTH) joins the room and sets up the session', async (t) => {
  const r = await relay(t);
  const a = client(t, r.port, 'pa');
  await Promise.all([a.connect(), a.join('lobby')]);
  const b = client(t, r.port, 'pb');
  const established = Promise.all([next(a, 'established'), next(b, 'established')]);
  const [, members] = await Promise.all([b.connect(), b.join('lobby')]);
  t.same(members, ['pa'], 'the second joiner finds the first');
  await established;
  t.equal(a.state, 'IN_ROOM');
  t.equal(b.state, 'IN_ROOM');
});
