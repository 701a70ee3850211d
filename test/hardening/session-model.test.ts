// Model-based test of the client's peer-session machine (spec §7.2, §8.2, §8.3) with fc.commands: two
// real PeerSessions, initiator A and responder B, joined by a hostile channel that delivers, reorders,
// duplicates, drops, replays, bit-flips and truncates handshake frames and messages in any order, while
// both sides send texts whenever they are established. After every command:
// - receive() never threw, and every rejection is a ProtocolError with a code the §7.2 table allows;
// - nothing is shown before ESTABLISHED, and every shown text is one the other side sent, under the same
//   seq, each seq shown at most once and in increasing order (nothing false, nothing twice, no reorder);
// - a replay of a message that was already accepted is rejected as REPLAY;
// - once both sides are established they show the same safety number.
import t from 'tap';
import fc from 'fast-check';
import { decodeFrame } from '../../src/codec/index.js';
import { ProtocolError, type ErrorName } from '../../src/protocol/errors.js';
import { PeerSession, type SessionEvent } from '../../src/handshake/session.js';
import { SESSION_TRANSITIONS } from '../../src/protocol/session-machine.js';
import { nodeBackend, nodePrivateKey, nodePublicKey } from '../../src/crypto/node.js';
import { identity } from '../../src/wirekit/relay-conn.js';

const A = identity('alice', true);
const B = identity('bob', true);
const keyA = nodePrivateKey(A.privateKey);
const keyB = nodePrivateKey(B.privateKey);
const ROOM = 'model';
const ALLOWED = new Set<ErrorName>(['UNEXPECTED_FRAME', 'TIMEOUT', ...SESSION_TRANSITIONS.flatMap((x) => x.errors)]);

type Side = 'A' | 'B';
interface Real {
  s: Record<Side, PeerSession>;
  /** In flight towards each side, and everything ever sent towards it. */
  flight: Record<Side, Uint8Array[]>;
  history: Record<Side, Uint8Array[]>;
  /** Texts each side sent, by seq. */
  sent: Record<Side, Map<number, string>>;
  /** Highest seq shown by each side, and bodies each side accepted. */
  shownUpTo: Record<Side, number>;
  accepted: Record<Side, Set<string>>;
  safety: Partial<Record<Side, string>>;
  stats: Record<string, number>;
}
type Model = Record<string, never>;

const other = (x: Side): Side => (x === 'A' ? 'B' : 'A');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Feeds one body to side `to` and checks every event against the invariants. */
async function deliver(r: Real, to: Side, body: Uint8Array, how: string): Promise<SessionEvent[]> {
  const s = r.s[to];
  let events: SessionEvent[];
  try {
    events = await s.receive(body);
  } catch (e) {
    throw new Error(`${how}: receive() rejected ${String(e)}`);
  }
  let acceptedNow = false;
  for (const e of events) {
    if (e.kind === 'send') {
      r.flight[other(to)].push(e.body);
      r.history[other(to)].push(e.body);
    } else if (e.kind === 'rejected') {
      if (!(e.error instanceof ProtocolError) || !ALLOWED.has(e.error.errorName)) throw new Error(`${how}: rejection ${String(e.error)} is not a §7.2 code`);
      r.stats[e.error.errorName] = (r.stats[e.error.errorName] ?? 0) + 1;
    } else if (e.kind === 'text') {
      if (s.state !== 'ESTABLISHED') throw new Error(`${how}: text shown in ${s.state}`);
      const want = r.sent[other(to)].get(e.seq);
      if (want === undefined || want !== e.text) throw new Error(`${how}: showed ${JSON.stringify(e.text)} as seq ${e.seq}, the peer sent ${JSON.stringify(want)}`);
      if (e.seq <= r.shownUpTo[to]) throw new Error(`${how}: seq ${e.seq} shown after seq ${r.shownUpTo[to]}`);
      r.shownUpTo[to] = e.seq;
      r.stats['shown'] = (r.stats['shown'] ?? 0) + 1;
      acceptedNow = true;
    } else if (e.kind === 'established') {
      r.safety[to] = await s.safetyNumber();
      r.stats['established'] = (r.stats['established'] ?? 0) + 1;
      acceptedNow = true;
    } else if (e.kind === 'delivered') {
      acceptedNow = true;
    }
  }
  if (acceptedNow) r.accepted[to].add(hex(body));
  if (r.safety.A !== undefined && r.safety.B !== undefined && r.safety.A !== r.safety.B) throw new Error('the two sides show different safety numbers');
  return events;
}

abstract class ChannelCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly to: Side, readonly k: number) {}
  check = (): boolean => true;
  abstract act(r: Real): Promise<void>;
  async run(_m: Model, r: Real): Promise<void> {
    await this.act(r);
  }
  toString = (): string => `${this.constructor.name}(${this.to}, ${this.k})`;
  protected take(r: Real, remove: boolean): Uint8Array | undefined {
    const q = r.flight[this.to];
    if (q.length === 0) return undefined;
    const i = this.k % q.length;
    const b = q[i]!;
    if (remove) q.splice(i, 1);
    return b;
  }
}

class Deliver extends ChannelCommand {
  async act(r: Real): Promise<void> {
    const b = this.take(r, true);
    if (b) await deliver(r, this.to, b, this.toString());
  }
}
class Duplicate extends ChannelCommand {
  async act(r: Real): Promise<void> {
    const b = this.take(r, false);
    if (b) await deliver(r, this.to, b, this.toString());
  }
}
class Drop extends ChannelCommand {
  async act(r: Real): Promise<void> {
    this.take(r, true);
  }
}
class Replay extends ChannelCommand {
  async act(r: Real): Promise<void> {
    const h = r.history[this.to];
    if (h.length === 0) return;
    const b = h[this.k % h.length]!;
    const wasAccepted = r.accepted[this.to].has(hex(b));
    const events = await deliver(r, this.to, b, this.toString());
    let isMsg = false;
    try {
      isMsg = decodeFrame(b, 'e2e').type === 'MSG';
    } catch {
      isMsg = false;
    }
    if (wasAccepted && isMsg && r.s[this.to].state === 'ESTABLISHED') {
      const codes = events.filter((e) => e.kind === 'rejected').map((e) => (e as { error: ProtocolError }).error.errorName);
      if (codes.length !== 1 || codes[0] !== 'REPLAY') throw new Error(`${this.toString()}: replay of an accepted MSG gave ${JSON.stringify(codes)}, not REPLAY`);
      r.stats['replay caught'] = (r.stats['replay caught'] ?? 0) + 1;
    }
  }
}
class Tamper extends ChannelCommand {
  constructor(to: Side, k: number, readonly bit: number) {
    super(to, k);
  }
  async act(r: Real): Promise<void> {
    const b = this.take(r, true);
    if (!b) return;
    const c = Uint8Array.from(b);
    const i = this.bit % (c.length * 8);
    c[i >> 3]! ^= 1 << (i & 7);
    await deliver(r, this.to, c, this.toString());
  }
}
class Truncate extends ChannelCommand {
  async act(r: Real): Promise<void> {
    const b = this.take(r, true);
    if (b && b.length > 1) await deliver(r, this.to, b.subarray(0, 1 + (this.k % (b.length - 1))), this.toString());
  }
}
class SendText implements fc.AsyncCommand<Model, Real> {
  constructor(readonly from: Side, readonly text: string) {}
  check = (): boolean => true;
  async run(_m: Model, r: Real): Promise<void> {
    const s = r.s[this.from];
    if (s.state !== 'ESTABLISHED') return;
    const { seq, events } = await s.sendText(this.text, 1);
    r.sent[this.from].set(seq, this.text);
    for (const e of events) {
      if (e.kind !== 'send') continue;
      r.flight[other(this.from)].push(e.body);
      r.history[other(this.from)].push(e.body);
    }
  }
  toString = (): string => `send(${this.from}, ${JSON.stringify(this.text)})`;
}

const side = fc.constantFrom<Side>('A', 'B');
const k = fc.nat(50);
const honest = [fc.tuple(side, k).map(([s, i]) => new Deliver(s, i)), fc.tuple(side, fc.constant(0)).map(([s]) => new Deliver(s, 0))];
const commands = fc.commands(
  [
    ...honest,
    ...honest,
    fc.tuple(side, fc.string({ minLength: 1, maxLength: 40 })).map(([s, x]) => new SendText(s, x)),
    fc.tuple(side, fc.string({ minLength: 1, maxLength: 40 })).map(([s, x]) => new SendText(s, x)),
    fc.tuple(side, k).map(([s, i]) => new Duplicate(s, i)),
    fc.tuple(side, k).map(([s, i]) => new Drop(s, i)),
    fc.tuple(side, k).map(([s, i]) => new Replay(s, i)),
    fc.tuple(side, k, fc.nat(1 << 20)).map(([s, i, bit]) => new Tamper(s, i, bit)),
    fc.tuple(side, k).map(([s, i]) => new Truncate(s, i)),
  ],
  { maxCommands: 80, size: 'max' },
);

t.test('peer sessions under a hostile channel: nothing false shown, replays caught, codes from §7.2', async (t) => {
  const stats: Record<string, number> = {};
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(commands, async (cmds) => {
      runs++;
      const sa = new PeerSession({ crypto: nodeBackend, room: ROOM, self: { nick: A.nick, key: keyA, spki: A.spki }, peerNick: B.nick, peerKey: nodePublicKey(B.spki), role: 'initiator' });
      const sb = new PeerSession({ crypto: nodeBackend, room: ROOM, self: { nick: B.nick, key: keyB, spki: B.spki }, peerNick: A.nick, peerKey: nodePublicKey(A.spki), role: 'responder' });
      const r: Real = {
        s: { A: sa, B: sb },
        flight: { A: [], B: [] },
        history: { A: [], B: [] },
        sent: { A: new Map(), B: new Map() },
        shownUpTo: { A: -1, B: -1 },
        accepted: { A: new Set(), B: new Set() },
        safety: {},
        stats,
      };
      for (const e of await sa.start()) if (e.kind === 'send') (r.flight.B.push(e.body), r.history.B.push(e.body));
      await fc.asyncModelRun(() => ({ model: {} as Model, real: r }), cmds);
    }),
    { numRuns: 120, seed: 777, endOnFailure: true },
  );
  t.ok(runs >= 120, `${runs} runs`);
  for (const key of ['established', 'shown', 'replay caught', 'REPLAY', 'DECRYPT_FAILED', 'OUT_OF_ORDER']) {
    t.ok((stats[key] ?? 0) > 0, `reached ${key} (${stats[key] ?? 0} times)`);
  }
  t.comment(JSON.stringify(stats));
});
