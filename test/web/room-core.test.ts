// The page's room logic (src/web/room.ts) in-process, on Node's WebCrypto: two WebRooms wired back to back
// as a relay would (each SEND becomes the other's DELIVER). Pins, the key-change block (nothing sent,
// nothing processed, the opening handshake held until accept), texts only to members present, ticks, and
// undelivered texts when a member leaves. Deterministic: each step awaits the event it expects.
import t from 'tap';
import { webCryptoBackend } from '../../src/crypto/webcrypto.js';
import { fixedIdentity, type FixedName } from '../../src/vectors/crypto-keys.js';
import { WebRoom, type Pin, type PinBook, type RoomEvent } from '../../src/web/room.js';

const c = webCryptoBackend();

class Side {
  readonly events: RoomEvent[] = [];
  readonly pins = new Map<string, Pin>();
  room!: WebRoom;
  peer: Side | undefined;
  sent = 0;
  private waiters: { test: (e: RoomEvent) => boolean; resolve: (e: RoomEvent) => void }[] = [];
  constructor(readonly nick: string) {}

  async open(name: FixedName): Promise<void> {
    const id = fixedIdentity(name);
    const book: PinBook = { get: async (n) => this.pins.get(n), put: async (n, p) => void this.pins.set(n, p) };
    this.room = new WebRoom({
      crypto: c,
      room: 'lobby',
      self: { nick: this.nick, key: await c.importPrivateKey(id.pkcs8), spki: id.spki },
      pins: book,
      send: (to, body) => {
        this.sent++;
        if (this.peer !== undefined && to === this.peer.nick) this.peer.room.deliver(this.nick, body);
      },
      onEvent: (e) => {
        this.events.push(e);
        for (const w of [...this.waiters]) if (w.test(e)) this.waiters.splice(this.waiters.indexOf(w), 1) && w.resolve(e);
      },
    });
  }

  /** The first event (already seen or future) that passes `test`. */
  next<T extends RoomEvent['type']>(type: T, test: (e: Extract<RoomEvent, { type: T }>) => boolean = () => true): Promise<Extract<RoomEvent, { type: T }>> {
    const ok = (e: RoomEvent) => e.type === type && test(e as Extract<RoomEvent, { type: T }>);
    const seen = this.events.find(ok);
    if (seen !== undefined) return Promise.resolve(seen as Extract<RoomEvent, { type: T }>);
    return new Promise((resolve) => this.waiters.push({ test: ok, resolve: resolve as (e: RoomEvent) => void }));
  }
}

async function pair(aliceKey: FixedName, bobKey: FixedName, pinsOfAlice?: Map<string, Pin>): Promise<[Side, Side]> {
  const a = new Side('alice');
  const b = new Side('bob');
  if (pinsOfAlice !== undefined) for (const [k, v] of pinsOfAlice) a.pins.set(k, v);
  await a.open(aliceKey);
  await b.open(bobKey);
  a.peer = b;
  b.peer = a;
  // bob joined later: he initiates towards alice (JOINED), alice responds (PEER_JOINED).
  a.room.add('bob', fixedIdentity(bobKey).spki, 'responder');
  b.room.add('alice', fixedIdentity(aliceKey).spki, 'initiator');
  return [a, b];
}

t.test('a pair establishes, pins each other, texts both ways with delivery, and reports what a leaver never acknowledged', async (t) => {
  t.equal(new WebRoom({ crypto: c, room: 'x', self: { nick: 'a', key: await c.importPrivateKey(fixedIdentity('alice').pkcs8), spki: fixedIdentity('alice').spki }, pins: { get: async () => undefined, put: async () => {} }, send: () => {}, onEvent: () => {} }).send('alone'), null, 'alone: sent to no one');
  const [a, b] = await pair('alice', 'bob');
  await a.next('established');
  await b.next('established');
  t.same(a.pins.get('bob')?.spki, fixedIdentity('bob').spki, 'pinned once the session is established');
  t.equal((await a.next('member', (e) => e.nick === 'bob')).firstSeen, true);

  const m = a.room.send('hello bob')!;
  t.equal((await b.next('text')).text, 'hello bob');
  await a.next('outgoing', (e) => e.message.id === m.id && e.message.to.get('bob')?.state === 'delivered');
  b.room.send('hi alice');
  t.equal((await a.next('text')).text, 'hi alice');
  t.equal(await a.room.verify('bob'), true);
  t.equal(a.pins.get('bob')?.verified, true);

  // bob stops relaying alice's frames to himself (as if gone): the next text is never acknowledged.
  b.room.close();
  const lost = a.room.send('into the void')!;
  a.room.remove('bob');
  const u = await a.next('undelivered', (e) => e.message.id === lost.id);
  t.equal(u.reason, 'left');
  t.equal(lost.to.get('bob')?.state, 'lost');
  t.same(a.room.list(), []);
});

t.test('a key that differs from the pin blocks the member until accepted: nothing sent, its handshake held', async (t) => {
  const pins = new Map<string, Pin>([['bob', { spki: fixedIdentity('bob').spki, verified: true }]]);
  // The relay now lists "bob" with mallory's key.
  const [a, b] = await pair('alice', 'mallory', pins);
  const kc = await a.next('key-changed');
  t.equal(kc.nick, 'bob');
  t.not(kc.pinnedFingerprint, kc.offeredFingerprint);
  t.same(a.room.list(), [{ nick: 'bob', status: 'key-changed', verified: false }]);
  // bob's HS_INIT has left (he initiates) and reached alice's room, where it must be held, not answered.
  for (let i = 0; i < 1000 && b.sent === 0; i++) await new Promise((r) => setImmediate(r));
  t.equal(b.sent, 1, "bob's HS_INIT was sent");
  // Let alice's chain run the DELIVER step (holding the body involves no crypto: a few turns).
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  t.equal(a.room.send('secret'), null, 'nothing is sent to a blocked member');
  t.equal(await a.room.verify('bob'), false, 'a blocked key cannot be verified');
  t.equal(a.sent, 0, 'alice sent nothing at all (not even a handshake reply)');
  t.equal(b.events.some((e) => e.type === 'established'), false);

  t.equal(await a.room.accept('bob'), true);
  // Established below needs bob's HS_INIT, which he sent once: alice kept it while bob was blocked.
  t.equal(await a.room.accept('bob'), false, 'accepting twice does nothing');
  await a.next('established');
  await b.next('established');
  t.same(a.pins.get('bob'), { spki: fixedIdentity('mallory').spki, verified: false }, 're-pinned, unverified');
  a.room.send('now you');
  t.equal((await b.next('text')).text, 'now you');
});

t.test('a key that is not an RSA-2048 identity is refused with its code and never gets a session', async (t) => {
  const a = new Side('alice');
  await a.open('alice');
  a.room.add('mallory', Uint8Array.of(1, 2, 3), 'responder');
  const r = await a.next('rejected');
  t.equal(r.code, 'BAD_PUBLIC_KEY');
  t.same(a.room.list(), [{ nick: 'mallory', status: 'bad-key', verified: false }]);
  t.equal(a.room.send('hi'), null);
});
