/**
 * vectors/roster.json (spec/VECTORS.md §2.5): the roster agreement of spec/PROTOCOL.md §8.6. Ops:
 * roster_preimage and roster_commitment (what is hashed, and the hash), roster_seal and roster_open (a
 * ROSTER sealed as a MSG of a session, §8.3, and opened again, with its refusals), and roster_check (a
 * receiver's decisions: relay events, peers' ROSTERs and the passing of time in, reports out).
 */
import { decodeFrame, encodeFrame, frame } from '../codec/index.js';
import { ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import type { CryptoBackend } from '../crypto/backend.js';
import { nodeBackend } from '../crypto/node.js';
import { Chain, messageAd, openMessage, pad, sealMessage, unpad } from '../crypto/schedule.js';
import { RosterTracker, rosterPreimage, type RosterReport } from '../client/roster.js';
import { fromHex, toHex } from './hex.js';
import { opCases, suite, verifyOpCases, type Json, type OpResult, type OpSpec } from './crypto-common.js';
import { fixedIdentity } from './crypto-keys.js';
import type { VectorCase, VectorSuite } from './types.js';

type Input = Record<string, Json>;
type MemberJson = { nick: string; key: string };

const h = (v: Json | undefined, what: string): Uint8Array => {
  if (typeof v !== 'string') throw new Error(`${what}: expected hex`);
  return fromHex(v, what);
};
const members = (v: Json | undefined): { nick: string; key: Uint8Array }[] => {
  if (!Array.isArray(v)) throw new Error('members: expected an array');
  return (v as MemberJson[]).map((m) => ({ nick: String(m.nick), key: h(m.key, 'key') }));
};

/** The message key of message `seq` from chain key ck (the chain is at `seq`: ck is ck_seq). */
async function messageKey(c: CryptoBackend, ck: Uint8Array): Promise<Uint8Array> {
  return new Chain(c, Uint8Array.from(ck)).peekKey();
}

function reportJson(r: RosterReport): Json {
  if (r.kind === 'mismatch') return { kind: r.kind, epoch: r.epoch, peer: r.peer, members: r.members };
  return { kind: r.kind, epoch: r.epoch, peer: r.peer, our_epoch: r.ourEpoch };
}

async function runOp(op: string, i: Input, c: CryptoBackend): Promise<OpResult> {
  switch (op) {
    case 'roster_preimage':
      return { output: { preimage: toHex(rosterPreimage(String(i['room']), Number(i['epoch']), members(i['members']))) } };
    case 'roster_commitment':
      return { output: { hash: toHex(await c.sha256(rosterPreimage(String(i['room']), Number(i['epoch']), members(i['members'])))) } };
    case 'roster_seal': {
      const seq = Number(i['seq']);
      const inner = encodeFrame(frame('ROSTER', { epoch: Number(i['epoch']), hash: h(i['hash'], 'hash') }));
      const padded = pad(inner);
      const ad = messageAd(h(i['sid'], 'sid'), String(i['sender']), String(i['recipient']), String(i['room']), seq);
      const ct = await sealMessage(c, await messageKey(c, h(i['ck'], 'ck')), seq, padded, ad);
      return { output: { inner: toHex(inner), padded: toHex(padded), msg: toHex(encodeFrame(frame('MSG', { seq, ct }))) } };
    }
    case 'roster_open': {
      const msg = decodeFrame(h(i['msg'], 'msg'), 'e2e');
      if (msg.type !== 'MSG') throw new ProtocolError('UNEXPECTED_FRAME', `${msg.type}, not MSG`);
      const ad = messageAd(h(i['sid'], 'sid'), String(i['sender']), String(i['recipient']), String(i['room']), msg.seq);
      let padded: Uint8Array;
      try {
        padded = await openMessage(c, await messageKey(c, h(i['ck'], 'ck')), msg.seq, msg.ct, ad);
      } catch {
        throw new ProtocolError('DECRYPT_FAILED', 'AEAD open failed');
      }
      const f = decodeFrame(unpad(padded), 'inner');
      if (f.type !== 'ROSTER') throw new ProtocolError('UNEXPECTED_FRAME', `${f.type}, not ROSTER`);
      return { output: { epoch: f.epoch, hash: toHex(f.hash) } };
    }
    case 'roster_check': {
      const self = (i['self'] ?? {}) as unknown as MemberJson;
      const t = new RosterTracker({
        room: String(i['room']),
        self: { nick: String(self.nick), key: h(self.key, 'self.key') },
        sha256: (d) => c.sha256(d),
        windowEpochs: Number(i['window']),
        waitMs: Number(i['wait_ms']),
      });
      const reports: Json[] = [];
      for (const raw of i['steps'] as Input[]) {
        const [kind, v] = Object.entries(raw)[0] as [string, Input];
        let rs: RosterReport[] = [];
        if (kind === 'joined') t.joined(Number(v['epoch']), members(v['others']));
        else if (kind === 'peer_joined') t.peerJoined(Number(v['epoch']), { nick: String(v['nick']), key: h(v['key'], 'key') });
        else if (kind === 'peer_left') t.peerLeft(Number(v['epoch']), String(v['nick']));
        else if (kind === 'roster') rs = await t.received(String(v['peer']), Number(v['epoch']), h(v['hash'], 'hash'), Number(v['at_ms']));
        else if (kind === 'batch_end') rs = await t.check();
        else if (kind === 'time') rs = t.expire(Number(v['at_ms']));
        else throw new Error(`unknown step ${kind}`);
        reports.push(...rs.map(reportJson));
      }
      return { output: { reports } };
    }
    default:
      throw new Error(`unknown op ${op}`);
  }
}

const OP_INPUTS: Record<string, readonly string[]> = {
  roster_preimage: ['room', 'epoch', 'members'],
  roster_commitment: ['room', 'epoch', 'members'],
  roster_seal: ['ck', 'sid', 'sender', 'recipient', 'room', 'seq', 'epoch', 'hash'],
  roster_open: ['ck', 'sid', 'sender', 'recipient', 'room', 'msg'],
  roster_check: ['room', 'self', 'window', 'wait_ms', 'steps'],
};

const label = async (tag: string) => toHex(await nodeBackend.sha256(new TextEncoder().encode(`e2ee-chat/2 vector ${tag}`)));

async function specs(): Promise<OpSpec[]> {
  const out: OpSpec[] = [];
  const add = (id: string, section: string, op: string, input: Input, description: string) => out.push({ id, section, op, input, description });
  const key = (n: 'alice' | 'bob' | 'mallory') => toHex(fixedIdentity(n).spki);
  const A = { nick: 'alice', key: key('alice') };
  const B = { nick: 'bob', key: key('bob') };
  const M = { nick: 'mallory', key: key('mallory') };
  const C = { nick: 'carol', key: toHex(fromHex('30820122'.padEnd(588, 'c'), 'k')) }; // any bytes the relay announced

  add('roster_preimage_two', '§8.6', 'roster_preimage', { room: 'lobby', epoch: 2, members: [B, A] }, 'the input of the commitment for alice and bob at epoch 2, given in join order: members sorted by nickname');
  add('roster_commitment_two', '§8.6', 'roster_commitment', { room: 'lobby', epoch: 2, members: [B, A] }, 'its SHA-256, the ROSTER.hash of alice and of bob at epoch 2');
  add('roster_commitment_order', '§8.6', 'roster_commitment', { room: 'lobby', epoch: 2, members: [A, B] }, 'the same roster listed in another order: the same hash');
  add('roster_commitment_epoch', '§8.6', 'roster_commitment', { room: 'lobby', epoch: 3, members: [A, B] }, 'the same members at epoch 3: another hash');
  add('roster_commitment_room', '§8.6', 'roster_commitment', { room: 'lobby2', epoch: 2, members: [A, B] }, 'the same members in another room: another hash');
  add('roster_commitment_extra_member', '§8.6', 'roster_commitment', { room: 'lobby', epoch: 2, members: [A, B, M] }, 'a member added for one of them (mallory): another hash');
  add('roster_commitment_other_key', '§8.6', 'roster_commitment', { room: 'lobby', epoch: 2, members: [A, { nick: 'bob', key: key('mallory') }] }, 'bob with another key: another hash');
  const bytewise = [
    { nick: 'b', key: '01' },
    { nick: 'B', key: '02' },
    { nick: '_', key: '03' },
    { nick: '-', key: '04' },
    { nick: '9', key: '05' },
    { nick: 'ab', key: '06' },
    { nick: 'a', key: '07' },
  ];
  add('roster_preimage_byte_order', '§8.6', 'roster_preimage', { room: 'r', epoch: 1, members: bytewise }, 'nicknames sorted by bytes (- 0x2d, 9, B, _, a, ab, b), not by locale; short keys (any bytes the relay announced)');
  add('roster_preimage_max_epoch', '§8.6', 'roster_preimage', { room: 'r', epoch: LIMITS.MAX_UINT, members: [A] }, 'epoch MAX_UINT as u64 (2^53 - 1), a member alone');
  const big = Array.from({ length: LIMITS.MAX_LISTABLE_ROOM_SIZE }, (_, i) => ({ nick: `m${String(i).padStart(3, '0')}`.padEnd(LIMITS.NICK_MAX_BYTES, 'x'), key: key(i % 2 === 0 ? 'alice' : 'bob') }));
  add('roster_commitment_192', '§8.6, §10', 'roster_commitment', { room: 'r'.repeat(LIMITS.ROOM_MAX_BYTES), epoch: 9000, members: big }, 'the largest room (MAX_LISTABLE_ROOM_SIZE = 192 members, 32-byte nicknames, a 64-byte room name)');

  const ck = await label('roster/ck');
  const sid = await label('roster/sid');
  const hash = toHex(await nodeBackend.sha256(rosterPreimage('lobby', 2, members([A, B]))));
  const sealIn = { ck, sid, sender: 'alice', recipient: 'bob', room: 'lobby', seq: 0, epoch: 2, hash };
  add('roster_seal', '§8.3, §8.6', 'roster_seal', sealIn, "alice's first MSG to bob once established: ROSTER{epoch 2, roster_commitment_two}, sealed with the message key of ck at seq 0");
  const sealed = (await runOp('roster_seal', sealIn, nodeBackend)) as { output: { msg: string } };
  const openIn = { ck, sid, sender: 'alice', recipient: 'bob', room: 'lobby' };
  add('roster_open', '§8.3, §8.6', 'roster_open', { ...openIn, msg: sealed.output.msg }, 'bob opens it: the epoch and the hash');
  const flip = (hex: string, at: number) => hex.slice(0, at * 2) + ((parseInt(hex.slice(at * 2, at * 2 + 2), 16) ^ 1).toString(16).padStart(2, '0')) + hex.slice(at * 2 + 2);
  add('roster_open_tampered', '§8.3', 'roster_open', { ...openIn, msg: flip(sealed.output.msg, sealed.output.msg.length / 2 - 1) }, 'one bit of the tag flipped: DECRYPT_FAILED');
  add('roster_open_wrong_recipient', '§8.3', 'roster_open', { ...openIn, recipient: 'carol', msg: sealed.output.msg }, 'the MSG re-targeted to carol: DECRYPT_FAILED (the AD names the recipient)');
  // A ROSTER whose hash is 31 bytes (bin 8 of length 0x1f), sealed properly: the inner frame is out of bounds.
  const inner31 = Uint8Array.from([...encodeFrame(frame('ROSTER', { epoch: 2, hash: new Uint8Array(32) })).subarray(0, -33), 0x1f, ...new Uint8Array(31)]);
  const ct31 = await sealMessage(nodeBackend, await messageKey(nodeBackend, fromHex(ck, 'ck')), 0, pad(inner31), messageAd(fromHex(sid, 'sid'), 'alice', 'bob', 'lobby', 0));
  add('roster_open_hash_31', '§6 ROSTER, §8.3 step 5', 'roster_open', { ...openIn, msg: toHex(encodeFrame(frame('MSG', { seq: 0, ct: ct31 }))) }, 'an authentic MSG whose ROSTER.hash has 31 bytes: INVALID_FIELD');

  const self = A;
  const base = { room: 'lobby', self, window: 4, wait_ms: 10000 };
  const commit = async (epoch: number, ms: MemberJson[]) => toHex(await nodeBackend.sha256(rosterPreimage('lobby', epoch, members(ms))));
  add('roster_check_agree', '§8.6', 'roster_check', { ...base, steps: [{ joined: { epoch: 2, others: [B] } }, { roster: { peer: 'bob', epoch: 2, hash: await commit(2, [A, B]), at_ms: 0 } }] }, 'bob commits to the roster alice saw at the same epoch: no report');
  add('roster_check_mismatch', '§8.6', 'roster_check', { ...base, steps: [{ joined: { epoch: 2, others: [B] } }, { roster: { peer: 'bob', epoch: 2, hash: await commit(2, [A, B, M]), at_ms: 0 } }] }, 'bob saw mallory too at epoch 2: a mismatch naming epoch 2, bob, and the members alice saw');
  add('roster_check_behind', '§8.6', 'roster_check', {
    ...base,
    steps: [{ joined: { epoch: 2, others: [B] } }, { peer_joined: { epoch: 3, nick: 'carol', key: C.key } }, { roster: { peer: 'bob', epoch: 2, hash: await commit(2, [A, B]), at_ms: 0 } }],
  }, 'bob is behind (epoch 2 while alice is at 3): checked against alice\'s own commitment for 2, no report');
  add('roster_check_ahead_then_agree', '§8.6', 'roster_check', {
    ...base,
    steps: [
      { joined: { epoch: 2, others: [B] } },
      { roster: { peer: 'bob', epoch: 3, hash: await commit(3, [A, B, C]), at_ms: 0 } },
      { time: { at_ms: 9999 } },
      { peer_joined: { epoch: 3, nick: 'carol', key: C.key } },
      { batch_end: {} },
      { time: { at_ms: 20000 } },
    ],
  }, 'bob is ahead (epoch 3): held, not a warning; alice reaches 3 before ROSTER_WAIT_MS and they agree');
  add('roster_check_withheld_peer_left', '§8.6', 'roster_check', {
    ...base,
    steps: [
      { joined: { epoch: 3, others: [B, C] } },
      { roster: { peer: 'bob', epoch: 4, hash: await commit(4, [A, B]), at_ms: 100 } },
      { time: { at_ms: 10099 } },
      { time: { at_ms: 10100 } },
    ],
  }, 'carol left at epoch 4 and the relay never told alice: bob stays ahead, and after ROSTER_WAIT_MS alice reports epoch 4 withheld, naming bob');
  add('roster_check_withheld_then_mismatch', '§8.6', 'roster_check', {
    ...base,
    steps: [
      { joined: { epoch: 3, others: [B, C] } },
      { roster: { peer: 'bob', epoch: 4, hash: await commit(4, [A, B]), at_ms: 0 } },
      { peer_joined: { epoch: 4, nick: 'mallory', key: M.key } },
      { batch_end: {} },
    ],
  }, 'the relay hid carol\'s PEER_LEFT and gave alice another event as epoch 4: her roster at 4 still lists carol, a mismatch');
  add('roster_check_unverifiable_before_join', '§8.6', 'roster_check', { ...base, steps: [{ joined: { epoch: 5, others: [B] } }, { roster: { peer: 'bob', epoch: 4, hash: await commit(4, [A, B]), at_ms: 0 } }] }, 'a commitment for an epoch before alice\'s JOINED cannot be checked: unverifiable');
  add('roster_check_unverifiable_window', '§8.6', 'roster_check', {
    ...base,
    steps: [
      { joined: { epoch: 1, others: [] } },
      { peer_joined: { epoch: 2, nick: 'bob', key: B.key } },
      { peer_joined: { epoch: 3, nick: 'carol', key: C.key } },
      { peer_left: { epoch: 4, nick: 'carol' } },
      { peer_joined: { epoch: 5, nick: 'carol', key: C.key } },
      { peer_left: { epoch: 6, nick: 'carol' } },
      { roster: { peer: 'bob', epoch: 2, hash: await commit(2, [A, B]), at_ms: 0 } },
    ],
  }, 'with a window of 4 epochs (3..6 kept), bob\'s commitment for epoch 2 cannot be checked any more: unverifiable');
  add('roster_check_epoch_gap', '§7.4', 'roster_check', { ...base, steps: [{ joined: { epoch: 2, others: [B] } }, { peer_joined: { epoch: 4, nick: 'carol', key: C.key } }] }, 'a PEER_JOINED that skips epoch 3: INVALID_FIELD (a relay error)');
  add('roster_check_epoch_repeat', '§7.4', 'roster_check', { ...base, steps: [{ joined: { epoch: 2, others: [B] } }, { peer_left: { epoch: 2, nick: 'bob' } }] }, 'a PEER_LEFT that repeats epoch 2: INVALID_FIELD');
  return out;
}

async function build(c: CryptoBackend): Promise<VectorCase[]> {
  return opCases(await specs(), (op, input) => runOp(op, input, c));
}

export const rosterSuite: VectorSuite = suite(
  'roster.json',
  {
    title: 'e2ee-chat roster agreement vectors',
    spec: 'spec/PROTOCOL.md §7.1 "Room epoch", §7.4, §8.6, format in spec/VECTORS.md §2.5',
    description:
      'Each case: op, input (hex for bytes), and exactly one of output (every field must match) or error (a §9 code name). ' +
      'Ops: roster_preimage and roster_commitment (the input of §8.6 and its SHA-256; members in any order), roster_seal ' +
      '(ROSTER{epoch, hash} as the MSG of seq `seq` under the message key of chain key ck, §8.3), roster_open (the reverse, ' +
      'with its refusals), roster_check (a receiver: steps joined / peer_joined / peer_left are relay events, roster a ' +
      "peer's ROSTER at time at_ms, batch_end the end of a read batch, time the clock reaching at_ms; output: every report " +
      'in order, each {kind: mismatch|withheld|unverifiable, epoch, peer, and members or our_epoch}).',
  },
  () => build(nodeBackend),
  async (doc: unknown, backend: CryptoBackend = nodeBackend) => {
    return verifyOpCases(doc, OP_INPUTS, (op, input) => runOp(op, input, backend));
  },
);
