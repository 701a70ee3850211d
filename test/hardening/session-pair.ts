// Test helper: two members complete an end-to-end session through a relay, over raw connections, with the
// real PeerSession (spec §7.2, §8.2, §8.3): A joins first, B joins second and is the initiator; the
// handshake frames travel in SEND/DELIVER bodies; then A sends one text and B must show exactly it.
import { frame } from '../../src/codec/index.js';
import { PeerSession, type SessionEvent } from '../../src/handshake/session.js';
import { nodeBackend, nodePrivateKey } from '../../src/crypto/node.js';
import { RawConnection, type Identity } from '../../src/wirekit/relay-conn.js';

export interface PairResult {
  safetyA: string;
  safetyB: string;
  shown: string[];
}

function sends(events: SessionEvent[]): Uint8Array[] {
  return events.filter((e): e is Extract<SessionEvent, { kind: 'send' }> => e.kind === 'send').map((e) => e.body);
}

/** Authenticates both, joins `room`, runs the handshake and one message. Rejects on any refusal. */
export async function sessionPair(host: string, port: number, a: Identity, b: Identity, room: string, localAddress?: string): Promise<PairResult> {
  const ca = await RawConnection.open(host, port, localAddress);
  const cb = await RawConnection.open(host, port, localAddress);
  try {
    await ca.authenticate(a);
    await cb.authenticate(b);
    await ca.join(room);
    const joined = await cb.join(room);
    const keyA = joined.members.find((m) => m.nick === a.nick)?.key;
    if (keyA === undefined) throw new Error('JOINED does not list the first member');
    const pj = await ca.expect('PEER_JOINED');
    const c = nodeBackend;
    const sa = new PeerSession({ crypto: c, room, self: { nick: a.nick, key: nodePrivateKey(a.privateKey), spki: a.spki }, peerNick: b.nick, peerKey: await c.importPublicKey(pj.key), role: 'responder' });
    const sb = new PeerSession({ crypto: c, room, self: { nick: b.nick, key: nodePrivateKey(b.privateKey), spki: b.spki }, peerNick: a.nick, peerKey: await c.importPublicKey(keyA), role: 'initiator' });
    for (const body of sends(await sb.start())) cb.send(frame('SEND', { to: a.nick, body }));
    let safetyA = '';
    let safetyB = '';
    const shown: string[] = [];
    // Each step moves one DELIVER; the handshake and one message take four, so ten is a generous bound.
    for (let step = 0; step < 10 && (safetyA === '' || safetyB === ''); step++) {
      const [to, s, peer] = step % 2 === 0 ? [ca, sa, b.nick] : [cb, sb, a.nick];
      const d = await to.expect('DELIVER');
      if (d.from !== peer) throw new Error(`DELIVER from ${d.from}, expected ${peer}`);
      const ev = await s.receive(d.body);
      for (const e of ev) {
        if (e.kind === 'rejected') throw e.error;
        if (e.kind === 'established') {
          if (s === sa) safetyA = await s.safetyNumber();
          else safetyB = await s.safetyNumber();
        }
      }
      for (const body of sends(ev)) (s === sa ? ca : cb).send(frame('SEND', { to: s === sa ? b.nick : a.nick, body }));
    }
    if (safetyA === '' || safetyB === '') throw new Error('handshake did not complete');
    const { events } = await sa.sendText('hello through the storm');
    for (const body of sends(events)) ca.send(frame('SEND', { to: b.nick, body }));
    const d = await cb.expect('DELIVER');
    for (const e of await sb.receive(d.body)) {
      if (e.kind === 'text') shown.push(e.text);
      if (e.kind === 'rejected') throw e.error;
    }
    return { safetyA, safetyB, shown };
  } finally {
    ca.close();
    cb.close();
  }
}
