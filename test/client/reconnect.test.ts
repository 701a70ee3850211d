/**
 * Reconnecting (ChatClient's ReconnectPolicy, issue 15 point 1), in process against the real relay on
 * 127.0.0.1: a relay that goes away and comes back on the same port, a relay that closes with
 * SERVER_SHUTDOWN, what was not acknowledged before the drop (held, resend()), close() while waiting,
 * giving up, and the back-off itself.
 */
import t from 'tap';
import { createServer, type Socket } from 'node:net';
import { ChatClient, reconnectDelay, RECONNECT, type ChatClientOptions } from '../../src/client/chat-client.js';
import type { NodeChatClientOptions } from '../../src/client/node-client.js';
import { PinStore } from '../../src/client/pins.js';
import type { RelayServer } from '../../src/server/index.js';
import { client as libClient, next, relay as libRelay, type Teardown } from './lib.js';

/** Passed as `reconnect`: a client that does not reconnect. */
const NONE = null;

function client(t: Teardown, port: number, nick: string, extra: Omit<Partial<NodeChatClientOptions>, 'reconnect'> & { reconnect?: ChatClientOptions['reconnect'] | null } = {}): ChatClient {
  const { reconnect, ...rest } = extra;
  const policy = reconnect === undefined ? { reconnect: { baseMs: 50, maxMs: 400 } } : reconnect === null ? {} : { reconnect };
  return libClient(t, port, nick, { pins: PinStore.memory(), ...policy, ...rest });
}

/** A relay on `port` (0: any); closed at teardown unless closed before. */
async function relay(t: Teardown, port = 0): Promise<RelayServer> {
  return libRelay(t, { port, maxRoomSize: 8 });
}

t.test('back-off: each ceiling doubles up to maxMs, the delay is jittered within [ceiling/2, ceiling]', async (t) => {
  const lo = { baseMs: 100, maxMs: 1000, random: () => 0 };
  const hi = { baseMs: 100, maxMs: 1000, random: () => 0.999999 };
  t.same([1, 2, 3, 4, 5, 6].map((n) => reconnectDelay(n, lo)), [50, 100, 200, 400, 500, 500]);
  t.same([1, 2, 3, 4, 5, 6].map((n) => reconnectDelay(n, hi)), [100, 200, 400, 800, 1000, 1000]);
  t.equal(reconnectDelay(1000, { random: () => 0 }), RECONNECT.MAX_MS / 2, 'defaults, and no overflow for a large attempt number');
});

t.test('the relay restarts on the same port: both clients come back to their room with new sessions; texts work again', async (t) => {
  let s = await relay(t);
  const port = s.port;
  const alice = client(t, port, 'alice');
  const bob = client(t, port, 'bob');
  await alice.connect();
  await alice.join('den');
  const est = Promise.all([next(alice, 'established'), next(bob, 'established')]);
  await bob.connect();
  await bob.join('den');
  await est;

  const lostA = next(alice, 'connection-lost');
  const lostB = next(bob, 'connection-lost');
  const retrying = next(alice, 'reconnecting');
  await s.close();
  const [la, lb] = await Promise.all([lostA, lostB]);
  t.equal(la.failure.kind, 'connection', 'SERVER_SHUTDOWN is a lost connection');
  t.equal(lb.failure.error?.errorName, 'SERVER_SHUTDOWN');
  t.equal(alice.reconnecting, true);
  t.equal(alice.closed, true, 'no connection while waiting');
  t.equal((await retrying).attempt, 1);
  t.equal(alice.settled(), false, 'not settled while reconnecting');

  const backA = next(alice, 'reconnected');
  const backB = next(bob, 'reconnected');
  const again = Promise.all([next(alice, 'established'), next(bob, 'established')]);
  s = await relay(t, port);
  const [ra, rb] = await Promise.all([backA, backB]);
  t.equal(ra.room, 'den');
  t.equal(rb.room, 'den');
  t.ok(ra.attempts >= 1 && rb.attempts >= 1);
  await again;
  t.equal(alice.reconnecting, false);
  t.same(alice.members().map((m) => [m.nick, m.status]), [['bob', 'established']], 'a new session with bob');
  const got = next(bob, 'text');
  t.same(alice.send('after the restart'), ['bob']);
  t.equal((await got).text, 'after the restart');
  t.equal(await alice.whenSettled(30_000), true, 'acknowledged on the new session');
});

t.test('what was not acknowledged before the drop is held; resend() sends it to its member once back, and keeps it for an absent one', async (t) => {
  // A relay that forwards nothing after JOINED would be a fake; instead bob's ACKs are stopped by a proxy
  // that the test cuts: the text is sent but never acknowledged when the connection drops.
  const s = await relay(t);
  const cut = new CuttableProxy(s.port);
  await cut.listen();
  t.teardown(() => cut.close());
  const alice = client(t, cut.port, 'alice', { relayName: s.relayName });
  const bob = client(t, s.port, 'bob', { reconnect: NONE });
  const carol = client(t, s.port, 'carol', { reconnect: NONE });
  await bob.connect();
  await bob.join('den');
  await carol.connect();
  await carol.join('den');
  const est = Promise.all([next(alice, 'established', (e) => e.nick === 'bob'), next(alice, 'established', (e) => e.nick === 'carol')]);
  await alice.connect();
  await alice.join('den');
  await est;
  cut.holdDownstream = true; // nothing reaches alice any more: no ACK
  const lost = next(alice, 'connection-lost');
  t.same(alice.send('in flight').sort(), ['bob', 'carol']);
  // bob and carol receive it; alice never learns.
  await next(bob, 'text');
  cut.refuse = true; // alice cannot come back until the test allows it
  cut.cutAll();
  const l = await lost;
  t.same(l.undelivered.map((u) => [u.to, u.text]).sort(), [['bob', 'in flight'], ['carol', 'in flight']]);
  t.same(alice.heldTexts().map((u) => [u.to, u.seq]).sort(), [['bob', null], ['carol', null]], 'held without their old seq');
  t.same(alice.send('typed while down', { to: ['bob'] }), ['bob'], 'send() while reconnecting is held for the members present at the drop');
  t.same(alice.undelivered().length, 3, 'undelivered() lists what is held');

  // carol leaves meanwhile; alice comes back with bob only.
  await carol.leave();
  cut.holdDownstream = false;
  cut.refuse = false;
  const back = next(alice, 'reconnected');
  const est2 = next(alice, 'established');
  await back;
  await est2;
  const got: string[] = [];
  bob.on('text', (e) => got.push(e.text));
  const acked: string[] = [];
  alice.on('delivered', (e) => acked.push(e.text));
  const { sent, kept } = alice.resend();
  t.same(sent.map((u) => [u.to, u.text]), [['bob', 'in flight'], ['bob', 'typed while down']]);
  t.same(kept.map((u) => [u.to, u.text]), [['carol', 'in flight']], 'kept for carol, who is not here');
  t.equal(alice.settled(), false, 'a held text keeps it unsettled');
  t.same(alice.resend((u) => u.to !== 'carol'), { sent: [], kept: kept }, 'select: nothing else to send');
  await new Promise<void>((r) => {
    const check = () => (got.length >= 2 && acked.length >= 2 ? r() : setTimeout(check, 20));
    check();
  });
  t.same(got, ['in flight', 'typed while down'], 'bob gets both (the first one a second time: v1 has no message ids)');
  const closed = next(alice, 'closed');
  alice.close();
  const c = await closed;
  t.equal(c.failure, null);
  t.same(c.undelivered.map((u) => [u.to, u.text]), [['carol', 'in flight']], 'what is still held is listed at the end');
});

t.test('close() while waiting to reconnect ends it with closed (no failure); a relay that never returns is given up after giveUpMs', async (t) => {
  const s = await relay(t);
  const a = client(t, s.port, 'alice');
  await a.connect();
  await a.join('den');
  const r = next(a, 'reconnecting');
  await s.close();
  await r;
  const closed = next(a, 'closed');
  a.close();
  t.equal((await closed).failure, null);
  t.equal(a.reconnecting, false);
  t.equal(await a.whenSettled(10), true, 'settled once closed by the user');

  const s2 = await relay(t);
  const b = client(t, s2.port, 'bob', { reconnect: { baseMs: 20, maxMs: 40, giveUpMs: 300 } });
  await b.connect();
  await b.join('den');
  const attempts: number[] = [];
  b.on('reconnecting', (e) => attempts.push(e.attempt));
  const end = next(b, 'closed');
  await s2.close();
  const f = await end;
  t.equal(f.failure?.kind, 'connect', 'the last failure: the relay refuses connections');
  t.ok(attempts.length >= 2, `several attempts (${attempts.length}) before giving up`);
  t.same(attempts, attempts.map((_, i) => i + 1), 'numbered in order');
  t.equal(b.reconnecting, false);
});

t.test('no reconnect before the room was joined, nor after leave(), nor for a refused AUTH', async (t) => {
  const s = await relay(t);
  const a = client(t, s.port, 'alice');
  await a.connect();
  const closed = next(a, 'closed');
  const lost: unknown[] = [];
  a.on('connection-lost', (e) => lost.push(e));
  await s.close();
  t.equal((await closed).failure?.kind, 'connection', 'connected but never joined: closed at once');
  t.same(lost, []);

  const s2 = await relay(t);
  const b = client(t, s2.port, 'bob');
  await b.connect();
  await b.join('den');
  await b.leave();
  t.equal(b.reconnecting, false);
  t.equal(b.closed, true);
});

t.test('while reconnecting, a join refused with NICK_IN_ROOM (our old connection still there) is retried until it succeeds', async (t) => {
  const s = await relay(t);
  const other = client(t, s.port, 'alice', { reconnect: NONE });
  // A second connection of alice (same key) holds the nickname in the room: the relay refuses alice's rejoin.
  const proxy = new CuttableProxy(s.port);
  await proxy.listen();
  t.teardown(() => proxy.close());
  const viaProxy = client(t, proxy.port, 'alice', { relayName: s.relayName });
  await viaProxy.connect();
  await viaProxy.join('den');
  proxy.refuse = true;
  const refusals: string[] = [];
  viaProxy.on('reconnecting', (e) => refusals.push(e.failure.error?.errorName ?? e.failure.kind));
  const lost = next(viaProxy, 'connection-lost');
  proxy.cutAll();
  await lost;
  // While alice cannot get through, her other connection takes the nickname in the room.
  await other.connect();
  await other.join('den');
  proxy.refuse = false;
  await new Promise<void>((r) => {
    const check = () => (refusals.includes('NICK_IN_ROOM') ? r() : setTimeout(check, 20));
    check();
  });
  const back = next(viaProxy, 'reconnected');
  await other.leave();
  t.equal((await back).room, 'den', 'back once the nickname is free');
  t.ok(refusals.includes('NICK_IN_ROOM'), 'NICK_IN_ROOM was among the retried failures');
});

/** A TCP proxy to the relay whose connections the test can cut, or whose relay-to-client bytes it can hold back. */
class CuttableProxy {
  private readonly server = createServer((c) => this.onClient(c));
  private readonly pairs = new Set<[Socket, Socket]>();
  holdDownstream = false;
  /** New connections are closed at once (the relay unreachable). */
  refuse = false;
  port = 0;
  constructor(private readonly target: number) {}
  listen(): Promise<void> {
    return new Promise((r) =>
      this.server.listen(0, '127.0.0.1', () => {
        this.port = (this.server.address() as { port: number }).port;
        r();
      }),
    );
  }
  private onClient(c: Socket): void {
    if (this.refuse) {
      c.destroy();
      return;
    }
    import('node:net').then(({ connect }) => {
      const up = connect({ host: '127.0.0.1', port: this.target });
      const pair: [Socket, Socket] = [c, up];
      this.pairs.add(pair);
      c.on('data', (d) => up.write(d));
      up.on('data', (d) => {
        if (!this.holdDownstream) c.write(d);
      });
      const end = () => {
        c.destroy();
        up.destroy();
        this.pairs.delete(pair);
      };
      c.on('close', end).on('error', end);
      up.on('close', end).on('error', end);
    });
  }
  cutAll(): void {
    for (const [c, up] of this.pairs) {
      c.destroy();
      up.destroy();
    }
    this.pairs.clear();
  }
  close(): Promise<void> {
    this.cutAll();
    return new Promise((r) => this.server.close(() => r()));
  }
}
