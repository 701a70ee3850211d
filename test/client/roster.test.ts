/**
 * Roster agreement (spec §8.6, src/client/roster.ts). The core property: an honest relay never causes
 * a report, whatever the joins, leaves, read batches and session timings (fast-check model of the relay's
 * ordering rules of §7.1 driving one RosterAgreement per member, as ChatClient drives it). Then the
 * tracker's own rules: bounded holding, the window, epochs that skip, stop().
 */
import t from 'tap';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { RosterAgreement, RosterTracker, rosterPreimage, type RosterReport } from '../../src/client/roster.js';
import { isProtocolError } from '../../src/protocol/errors.js';

/** The §9 code a call throws, or 'none'. */
function codeOf(f: () => unknown): string {
  try {
    f();
    return 'none';
  } catch (e) {
    return isProtocolError(e) ? e.errorName : String(e);
  }
}

const sha256 = async (d: Uint8Array) => new Uint8Array(createHash('sha256').update(d).digest());
const keyOf = (nick: string, gen: number) => new TextEncoder().encode(`key of ${nick} #${gen}`);

type Inbound =
  | { kind: 'joined'; epoch: number; others: { nick: string; key: Uint8Array }[] }
  | { kind: 'peer-joined'; epoch: number; nick: string; key: Uint8Array }
  | { kind: 'peer-left'; epoch: number; nick: string }
  | { kind: 'roster'; from: string; fromGen: number; epoch: number; hash: Uint8Array };

interface Member {
  nick: string;
  gen: number;
  key: Uint8Array;
  agreement: RosterAgreement;
  inbound: Inbound[];
  /** SENDs this client wrote, in order, not yet handled by the relay. */
  outbound: { to: string; epoch: number; hash: Promise<Uint8Array> }[];
  /** Peers it knows now (nick -> their generation), and those it has an established session with. */
  known: Map<string, number>;
  established: Set<string>;
  /** Per peer generation: the epoch of the last ROSTER received (§8.6: must grow). */
  lastFrom: Map<string, number>;
  reports: RosterReport[];
}

/** The honest relay of §7.1 and its members, driven step by step. */
class Model {
  readonly members = new Map<string, Member>();
  epoch = 0;
  gen = 0;
  readonly reports: { who: string; r: RosterReport }[] = [];
  readonly all: Member[] = [];

  join(nick: string): void {
    if (this.members.has(nick)) return;
    const gen = ++this.gen;
    const key = keyOf(nick, gen);
    const m: Member = {
      nick,
      gen,
      key,
      inbound: [],
      outbound: [],
      known: new Map(),
      established: new Set(),
      lastFrom: new Map(),
      reports: [],
      agreement: undefined as unknown as RosterAgreement,
    };
    m.agreement = new RosterAgreement({ nick, key }, {
      sha256,
      send: (to, epoch, hash) => m.outbound.push({ to, epoch, hash }),
      report: (r) => {
        m.reports.push(r);
        this.reports.push({ who: nick, r });
      },
    });
    const others = [...this.members.values()];
    this.epoch = others.length === 0 ? 1 : this.epoch + 1; // an emptied room starts again at 1
    this.members.set(nick, m);
    this.all.push(m);
    m.inbound.push({ kind: 'joined', epoch: this.epoch, others: others.map((o) => ({ nick: o.nick, key: o.key })) });
    for (const o of others) o.inbound.push({ kind: 'peer-joined', epoch: this.epoch, nick, key });
  }

  /** The relay handles the next SEND of `nick`: DELIVER to the addressee if still a member (§7.1). */
  async relaySend(nick: string): Promise<void> {
    const m = this.members.get(nick);
    const s = m?.outbound.shift();
    if (m === undefined || s === undefined) return;
    const to = this.members.get(s.to);
    if (to === undefined) return; // NO_SUCH_PEER: nothing delivered
    to.inbound.push({ kind: 'roster', from: nick, fromGen: m.gen, epoch: s.epoch, hash: await s.hash });
  }

  /** LEAVE: what it sent before is relayed first (§7.1 "Leaving"), then PEER_LEFT to the rest. */
  async leave(nick: string): Promise<void> {
    const m = this.members.get(nick);
    if (m === undefined) return;
    while (m.outbound.length > 0) await this.relaySend(nick);
    this.members.delete(nick);
    m.agreement.stop();
    if (this.members.size === 0) return; // the room is removed with its epoch
    this.epoch++;
    for (const o of this.members.values()) o.inbound.push({ kind: 'peer-left', epoch: this.epoch, nick });
  }

  /** One read batch of `nick`: its next `n` inbound items, then the end of the batch (as ChatClient.onData). */
  async read(nick: string, n: number): Promise<void> {
    const m = this.members.get(nick);
    if (m === undefined) return;
    const batch = m.inbound.splice(0, n);
    const rosters: Inbound[] = [];
    for (const x of batch) {
      if (x.kind === 'joined') {
        m.agreement.joined('room', x.epoch, x.others);
        for (const o of x.others) m.known.set(o.nick, this.members.get(o.nick)?.gen ?? -1);
      } else if (x.kind === 'peer-joined') {
        m.agreement.peerJoined(x.epoch, { nick: x.nick, key: x.key });
        m.known.set(x.nick, this.members.get(x.nick)?.gen ?? -1);
      } else if (x.kind === 'peer-left') {
        m.agreement.peerLeft(x.epoch, x.nick);
        m.known.delete(x.nick);
        m.established.delete(x.nick);
      } else rosters.push(x);
    }
    m.agreement.endOfBatch([...m.established]);
    // DELIVER bodies go to their sessions after the parse (ChatClient's per-peer chains).
    for (const x of rosters) {
      if (x.kind !== 'roster') continue;
      if (m.known.get(x.from) !== x.fromGen) continue; // not the member it came from any more
      const k = `${x.from}#${x.fromGen}`;
      const last = m.lastFrom.get(k) ?? 0;
      if (x.epoch <= last) throw new Error(`${nick} got ROSTER epochs out of order from ${x.from}: ${x.epoch} after ${last}`);
      m.lastFrom.set(k, x.epoch);
      if (!m.established.has(x.from)) continue; // a MSG before ESTABLISHED is never opened
      await m.agreement.received(x.from, x.epoch, x.hash);
    }
    await new Promise((r) => setImmediate(r)); // let endOfBatch's check settle
  }

  /** `nick`'s session with `peer` reaches ESTABLISHED (only once both know each other: a handshake needs that). */
  establish(nick: string, peer: string): void {
    const m = this.members.get(nick);
    const p = this.members.get(peer);
    if (m === undefined || p === undefined || m.established.has(peer)) return;
    if (m.known.get(peer) !== p.gen || p.known.get(nick) !== m.gen) return;
    m.established.add(peer);
    m.agreement.established(peer);
  }

  async quiesce(): Promise<void> {
    for (let round = 0; round < 50; round++) {
      let busy = false;
      for (const m of [...this.members.values()]) {
        for (const p of m.known.keys()) this.establish(m.nick, p);
        while (m.outbound.length > 0) {
          busy = true;
          await this.relaySend(m.nick);
        }
      }
      for (const m of [...this.members.values()]) {
        if (m.inbound.length > 0) {
          busy = true;
          await this.read(m.nick, m.inbound.length);
        }
      }
      if (!busy) return;
    }
  }
}

const NICKS = ['ann', 'bo', 'cy', 'di', 'ed', 'flo'];
const step = fc.oneof(
  fc.record({ op: fc.constant('join' as const), who: fc.constantFrom(...NICKS) }),
  fc.record({ op: fc.constant('leave' as const), who: fc.constantFrom(...NICKS) }),
  fc.record({ op: fc.constant('read' as const), who: fc.constantFrom(...NICKS), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant('relay' as const), who: fc.constantFrom(...NICKS) }),
  fc.record({ op: fc.constant('establish' as const), who: fc.constantFrom(...NICKS), peer: fc.constantFrom(...NICKS) }),
);

t.test('an honest relay under random joins, leaves, read batches and session timings causes no roster report', async (t) => {
  let runs = 0;
  let compared = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 60 }), async (steps) => {
      runs++;
      const model = new Model();
      try {
        for (const s of steps) {
          if (s.op === 'join') model.join(s.who);
          else if (s.op === 'leave') await model.leave(s.who);
          else if (s.op === 'read') await model.read(s.who, s.n);
          else if (s.op === 'relay') await model.relaySend(s.who);
          else model.establish(s.who, s.peer);
        }
        await model.quiesce();
        for (const m of model.all) compared += m.lastFrom.size;
        // Nothing reported, and nothing held that could time out into a `withheld` report later.
        if (model.reports.length > 0) throw new Error(`false report: ${JSON.stringify(model.reports[0])}`);
        for (const m of model.members.values()) if (m.agreement.held() > 0) throw new Error(`${m.nick} still holds ${m.agreement.held()} commitments at rest`);
      } finally {
        for (const m of model.all) m.agreement.stop();
      }
    }),
    { numRuns: 150, seed: 0x13a, endOnFailure: true },
  );
  t.equal(runs >= 150, true, `${runs} runs`);
  t.ok(compared > 100, `ROSTERs were actually exchanged and checked (${compared} sender sessions)`);
});

t.test('the same model with a relay that hides one join from one member: someone reports it', async (t) => {
  // Control for the property above: the model can see a split. ann, bo, cy; di joins but bo is not told.
  const model = new Model();
  for (const n of ['ann', 'bo', 'cy']) model.join(n);
  await model.quiesce();
  model.join('di');
  const bo = model.members.get('bo')!;
  const hidden = bo.inbound.pop()!;
  t.equal(hidden.kind, 'peer-joined');
  // The relay renumbers bo's stream so that it stays consecutive: bo is told of a made-up member instead.
  bo.inbound.push({ kind: 'peer-joined', epoch: model.epoch, nick: 'zed', key: keyOf('zed', 99) });
  const di = model.members.get('di')!;
  di.known.set('bo', bo.gen); // di believes bo is present (JOINED listed him); bo never learns of di
  await model.quiesce();
  t.ok(model.reports.some((x) => x.r.kind === 'mismatch' && x.r.epoch === model.epoch), JSON.stringify(model.reports.map((x) => [x.who, x.r])));
  t.ok(model.reports.some((x) => x.who === 'bo'), 'bo, shown another room, reports it');
  t.ok(model.reports.some((x) => x.who !== 'bo' && x.r.peer === 'bo'), 'and a member that saw di reports bo');
  for (const m of model.all) m.agreement.stop();
});

t.test('tracker: an epoch that skips or repeats is INVALID_FIELD; events before JOINED are UNEXPECTED_FRAME', async (t) => {
  const tr = new RosterTracker({ room: 'r', self: { nick: 'a', key: keyOf('a', 1) }, sha256 });
  t.equal(codeOf(() => tr.peerJoined(1, { nick: 'b', key: keyOf('b', 1) })), 'UNEXPECTED_FRAME');
  tr.joined(3, []);
  t.equal(codeOf(() => tr.peerJoined(5, { nick: 'b', key: keyOf('b', 1) })), 'INVALID_FIELD');
  t.equal(codeOf(() => tr.peerLeft(3, 'b')), 'INVALID_FIELD');
  tr.peerJoined(4, { nick: 'b', key: keyOf('b', 1) });
  t.equal(tr.epoch, 4);
  const agreement = new RosterAgreement({ nick: 'a', key: keyOf('a', 1) }, { sha256, send: () => {}, report: () => {} });
  t.equal(codeOf(() => agreement.peerJoined(2, { nick: 'b', key: keyOf('b', 1) })), 'UNEXPECTED_FRAME');
  t.equal(codeOf(() => agreement.peerLeft(2, 'b')), 'UNEXPECTED_FRAME');
});

t.test('tracker: at most 8 commitments of one peer are held; a ROSTER from a non-member is ignored', async (t) => {
  const tr = new RosterTracker({ room: 'r', self: { nick: 'a', key: keyOf('a', 1) }, sha256, waitMs: 100 });
  tr.joined(2, [{ nick: 'b', key: keyOf('b', 1) }]);
  for (let e = 3; e < 20; e++) t.same(await tr.received('b', e, new Uint8Array(32), 0), []);
  t.same(await tr.received('x', 2, new Uint8Array(32), 0), [], 'not a member: nothing');
  t.equal(tr.nextDeadline(), 100);
  const expired = tr.expire(100);
  t.same(expired, [{ kind: 'withheld', epoch: 19, peer: 'b', ourEpoch: 2 }], 'one report per peer, its highest epoch');
  t.equal(tr.nextDeadline(), undefined, 'nothing held afterwards');
});

t.test('agreement: a held commitment times out into one withheld report; stop() ends everything', async (t) => {
  const reports: RosterReport[] = [];
  const sent: number[] = [];
  const a = new RosterAgreement({ nick: 'a', key: keyOf('a', 1) }, { sha256, send: (_p, e) => sent.push(e), report: (r) => reports.push(r) }, 30);
  t.equal(a.epoch, 0);
  a.joined('r', 2, [{ nick: 'b', key: keyOf('b', 1) }]);
  a.established('b');
  a.established('b');
  t.same(sent, [2], 'one ROSTER per epoch per peer');
  a.peerJoined(3, { nick: 'c', key: keyOf('c', 1) });
  a.endOfBatch(['b']);
  a.endOfBatch(['b']);
  t.same(sent, [2, 3], 'after a batch that moved the epoch, once');
  await a.received('b', 4, await sha256(rosterPreimage('r', 4, [])));
  t.equal(a.held(), 1);
  for (let i = 0; i < 100 && reports.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.same(reports, [{ kind: 'withheld', epoch: 4, peer: 'b', ourEpoch: 3 }]);
  await a.received('b', 5, new Uint8Array(32));
  a.stop();
  t.equal(a.held(), 0, 'stop forgets what was held');
  await new Promise((r) => setTimeout(r, 60));
  t.equal(reports.length, 1, 'and nothing is reported after stop');
  await a.received('b', 6, new Uint8Array(32));
  a.endOfBatch(['b']);
  a.established('b');
  t.equal(reports.length, 1);
});
