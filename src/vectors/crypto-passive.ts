/**
 * vectors/passive.json (spec/VECTORS.md "passive.json"): a recipient's private keys plus a recorded
 * stream of DELIVER bodies from one sender, with the outcome each must have (spec/PROTOCOL.md §7.2,
 * §8.3): shown text and the ACK the recipient sends, delivered, or a rejection code, and the state after.
 * Another implementation can check its receive path offline, without reproducing the sender.
 *
 * The cases are steps applied in order to one session. The first, `passive_establish`, carries the
 * setup: the recipient (bob, responder) with its identity key, its s_R, X25519 scalar, OAEP seed and PSS
 * salt, and the frames of the handshake (HS_INIT and HS_FINISH received, and its own HS_RESP, which a
 * runner that can fix the seed and salt reproduces byte for byte; one that cannot checks it instead).
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { decodeFrame, encodeFrame, frame } from '../codec/index.js';
import { PeerSession, type SessionEvent, type SessionRsa } from '../handshake/session.js';
import type { CryptoBackend } from '../crypto/backend.js';
import { nodeBackend } from '../crypto/node.js';
import { fromHex, toHex } from './hex.js';
import { diff, loadForge, suite, verifyCases, type Json } from './crypto-common.js';
import type { VectorCase, VectorSuite } from './types.js';
import { isClamped } from './crypto-keys.js';

interface Setup {
  room: string;
  psk: string | null;
  recipient: { nick: string; spki: string; pkcs8: string; secret: string; eph: string; oaep_seed: string; pss_salt: string };
  sender: { nick: string; spki: string };
  hs_init: string;
  hs_resp: string;
  hs_finish: string;
}

type Step =
  | { deliver: string; batch?: true }
  | { send_text: { ts: number; text: string } };

/** What a step of session `s` produced, in vector terms. */
async function outcome(s: PeerSession, ev: SessionEvent[]): Promise<Record<string, Json>> {
  const o: Record<string, Json> = {};
  const delivered: number[] = [];
  for (const e of ev) {
    if (e.kind === 'text') o['text'] = { seq: e.seq, ts: e.ts, text: e.text };
    else if (e.kind === 'send') o['send'] = toHex(e.body);
    else if (e.kind === 'delivered') delivered.push(e.seq);
    else if (e.kind === 'rejected') o['error'] = e.error.errorName;
    else if (e.kind === 'established') o['safety_number'] = await s.safetyNumber();
  }
  // One ACK may acknowledge several TEXTs (§8.3 step 6): every seq it covers, ascending.
  if (delivered.length > 0) o['delivered'] = delivered;
  o['state'] = s.state;
  return o;
}

async function apply(s: PeerSession, step: Step): Promise<Record<string, Json>> {
  if ('deliver' in step) return outcome(s, await s.receive(fromHex(step.deliver, 'deliver'), step.batch === true));
  const { seq, events } = await s.sendText(step.send_text.text, step.send_text.ts);
  return { ...(await outcome(s, events)), seq };
}

/** Rebuilds the recipient from the vector alone, with backend `c`, and runs the handshake frames through its session. */
async function recipientFromSetup(su: Setup, c: CryptoBackend): Promise<{ session: PeerSession; established: Record<string, Json> }> {
  // A consistency check of the vector itself (not of the backend under test): spki belongs to pkcs8.
  const privateKey = createPrivateKey({ key: Buffer.from(fromHex(su.recipient.pkcs8, 'pkcs8')), format: 'der', type: 'pkcs8' });
  if (toHex(createPublicKey(privateKey).export({ format: 'der', type: 'spki' })) !== su.recipient.spki) throw new Error('recipient spki is not the public key of pkcs8');
  const publicKey = await c.importPublicKey(fromHex(su.recipient.spki, 'spki'));
  // bob's OAEP seed and PSS salt are given, so his HS_RESP is a function of the vector: node-forge (which
  // takes a seed and a salt) makes ct_R and sig_R, and the backend under test checks sig_R.
  const forge = await loadForge();
  const pkcs8 = fromHex(su.recipient.pkcs8, 'pkcs8');
  const seeded: SessionRsa = {
    oaepEncrypt: (k, m, random) => forge.forgeOaepEncrypt(k.spki, m, random(32)),
    pssSign: async (_k, message, random) => {
      const sig = forge.forgePssSign(pkcs8, message, random(32));
      if (!(await c.pssVerify(publicKey, message, sig))) throw new Error('sig_R made from pss_salt does not verify under the recipient key');
      return sig;
    },
  };
  const chunks = [fromHex(su.recipient.secret, 'secret'), fromHex(su.recipient.eph, 'eph'), fromHex(su.recipient.oaep_seed, 'oaep_seed'), fromHex(su.recipient.pss_salt, 'pss_salt')];
  if (!isClamped(chunks[1]!)) throw new Error('recipient.eph must be a clamped X25519 scalar');
  let i = 0;
  const session = new PeerSession({
    crypto: c,
    room: su.room,
    role: 'responder',
    self: { nick: su.recipient.nick, key: await c.importPrivateKey(fromHex(su.recipient.pkcs8, 'pkcs8')), spki: fromHex(su.recipient.spki) },
    peerNick: su.sender.nick,
    peerKey: await c.importPublicKey(fromHex(su.sender.spki, 'sender spki')),
    random: (n) => {
      const c = chunks[i++];
      if (c === undefined || c.length !== n) throw new Error('randomness not in the vector');
      return c;
    },
    rsa: seeded,
    ...(su.psk === null ? {} : { psk: fromHex(su.psk, 'psk') }),
  });
  const sent = await session.receive(fromHex(su.hs_init, 'hs_init'));
  const own = sent.find((e) => e.kind === 'send');
  if (own?.kind !== 'send' || toHex(own.body) !== su.hs_resp) throw new Error(`the rebuilt HS_RESP differs from the recorded one (${sent.map((e) => (e.kind === 'rejected' ? e.error.errorName : e.kind)).join(',')})`);
  return { session, established: await outcome(session, await session.receive(fromHex(su.hs_finish, 'hs_finish'))) };
}

interface StepSpec {
  id: string;
  description: string;
  section: string;
  step: Step;
}

async function build(): Promise<VectorCase[]> {
  const f = await loadForge();
  const rnd = (side: string) => f.labelledRandomness(`passive/${side}`);
  const setup = { room: 'lobby', initiator: 'alice' as const, responder: 'bob' as const, randI: rnd('alice'), randR: rnd('bob') };
  const run = await f.runHandshake(setup);
  const tr = await f.recompute(setup, run);
  const names = { room: 'lobby', nickI: 'alice', nickR: 'bob' };
  const su: Setup = {
    room: 'lobby',
    psk: null,
    recipient: {
      nick: 'bob',
      spki: toHex(run.idR.spki),
      pkcs8: toHex(run.idR.pkcs8),
      secret: toHex(setup.randR.secret),
      eph: toHex(setup.randR.eph),
      oaep_seed: toHex(setup.randR.oaepSeed),
      pss_salt: toHex(setup.randR.pssSalt),
    },
    sender: { nick: 'alice', spki: toHex(run.idI.spki) },
    hs_init: toHex(run.init),
    hs_resp: toHex(run.resp),
    hs_finish: toHex(run.finish!),
  };
  const msg = async (seq: number, inner: Uint8Array, o: Parameters<typeof f.sealMsg>[5] = {}) => toHex(await f.sealMsg(tr.keys, names, 'I->R', seq, inner, o));
  const text = (seq: number, s: string) => msg(seq, f.textFrame(1767225600000 + seq, s));
  const padded = (len: number, inner: Uint8Array, lengthField = inner.length) => {
    const p = Buffer.alloc(len);
    p.writeUInt32BE(lengthField, 0);
    p.set(inner, 4);
    return p;
  };
  const hi = f.textFrame(1, 'hi');
  const nonzero = padded(256, hi);
  nonzero[200] = 0x01;
  const t0 = await text(0, 'first');
  const t1 = await text(1, 'second');
  const t2 = await text(2, 'third');
  const flipped = Buffer.from(t1, 'hex');
  flipped[flipped.length - 20] = (flipped[flipped.length - 20] as number) ^ 0x04;
  type Pending = Omit<StepSpec, 'step'> & { step: { deliver: string | Promise<string>; batch?: true } | { send_text: { ts: number; text: string } } };
  const pendingSteps: Pending[] = [
    { id: 'passive_text_0', description: 'message 0, a TEXT: shown, and bob sends ACK{upto: 0} as its message 0', section: '§8.3', step: { deliver: t0 } },
    { id: 'passive_replay_0', description: 'message 0 again', section: '§8.3', step: { deliver: t0 } },
    { id: 'passive_reordered_2', description: 'message 2 before message 1', section: '§8.3', step: { deliver: t2 } },
    { id: 'passive_tampered_1', description: 'message 1 with one ciphertext bit flipped', section: '§8.3', step: { deliver: toHex(flipped) } },
    { id: 'passive_truncated_1', description: 'message 1 with its last byte cut off', section: '§4, §8.3', step: { deliver: t1.slice(0, -2) } },
    { id: 'passive_wrong_key_1', description: 'message 1 sealed with mk_5 instead of mk_1', section: '§8.3', step: { deliver: msg(1, f.textFrame(1, 'x'), { keyIndex: 5 }) } },
    { id: 'passive_reflected_1', description: 'message 1 sealed with the key of the other direction (bob to alice)', section: '§8.3', step: { deliver: f.sealMsg(tr.keys, names, 'R->I', 1, f.textFrame(1, 'x'), { sender: 'alice', recipient: 'bob' }).then(toHex) } },
    { id: 'passive_retargeted_1', description: 'message 1 whose AD names carol as recipient (re-targeted)', section: '§8.3', step: { deliver: msg(1, f.textFrame(1, 'x'), { recipient: 'carol' }) } },
    { id: 'passive_wrong_sender_1', description: 'message 1 whose AD names mallory as sender', section: '§8.3', step: { deliver: msg(1, f.textFrame(1, 'x'), { sender: 'mallory' }) } },
    { id: 'passive_wrong_room_1', description: 'message 1 whose AD names room "other"', section: '§8.3', step: { deliver: msg(1, f.textFrame(1, 'x'), { room: 'other' }) } },
    { id: 'passive_text_1', description: 'the genuine message 1, after all the rejected ones', section: '§8.3', step: { deliver: t1 } },
    { id: 'passive_text_2_in_turn', description: 'message 2, refused earlier as reordered, now in turn', section: '§8.3', step: { deliver: t2 } },
    { id: 'passive_padding_nonzero_3', description: 'message 3: a non-zero padding byte (authentic, so the chain moves on)', section: '§8.3', step: { deliver: msg(3, hi, { padded: nonzero }) } },
    { id: 'passive_padding_not_bucket_4', description: 'message 4: padded to 300 bytes', section: '§8.3', step: { deliver: msg(4, hi, { padded: padded(300, hi) }) } },
    { id: 'passive_padding_wrong_bucket_5', description: 'message 5: a short frame padded to 512 bytes', section: '§8.3', step: { deliver: msg(5, hi, { padded: padded(512, hi) }) } },
    { id: 'passive_padding_length_6', description: 'message 6: a length field larger than the padded size allows', section: '§8.3', step: { deliver: msg(6, hi, { padded: padded(256, hi, 253) }) } },
    { id: 'passive_inner_unknown_type_7', description: 'message 7: the inner frame is a relay PING', section: '§4, §8.3', step: { deliver: msg(7, encodeFrame(frame('PING', { n: 1 }))) } },
    { id: 'passive_inner_malformed_8', description: 'message 8: the inner frame is the byte 0xc1 (never valid msgpack)', section: '§4, §8.3', step: { deliver: msg(8, Uint8Array.of(0xc1)) } },
    { id: 'passive_inner_empty_text_9', description: 'message 9: a TEXT with an empty text', section: '§6, §8.3', step: { deliver: msg(9, Buffer.from('83a17431a27473' + '01' + 'a474657874a0', 'hex')) } },
    { id: 'passive_inner_trailing_10', description: 'message 10: a TEXT followed by one extra byte', section: '§4, §8.3', step: { deliver: msg(10, Buffer.concat([f.textFrame(1, 'x'), Buffer.of(0)])) } },
    { id: 'passive_ack_unknown_11', description: 'message 11: ACK{upto: 40}, for nothing bob sent', section: '§8.3', step: { deliver: msg(11, f.ackFrame(40)) } },
    { id: 'passive_own_text', description: 'bob sends a TEXT (its message 3, after its ACKs 0-2)', section: '§8.3', step: { send_text: { ts: 1767225700000, text: 'pong' } } },
    { id: 'passive_ack_12', description: 'message 12: ACK{upto: 3} for bob\'s TEXT', section: '§8.3', step: { deliver: msg(12, f.ackFrame(3)) } },
    { id: 'passive_ack_again_13', description: 'message 13: ACK{upto: 3} again', section: '§8.3', step: { deliver: msg(13, f.ackFrame(3)) } },
    { id: 'passive_text_14', description: 'message 14: a TEXT, still accepted after every rejection above', section: '§8.3', step: { deliver: text(14, 'still here') } },
    { id: 'passive_batch_text_15', description: 'message 15, a TEXT, with more bodies in the same read batch (batch): shown, no ACK yet', section: '§8.3 step 6', step: { deliver: text(15, 'one'), batch: true } },
    { id: 'passive_batch_text_16', description: 'message 16, a TEXT, still in the batch: shown, no ACK yet', section: '§8.3 step 6', step: { deliver: text(16, 'two'), batch: true } },
    { id: 'passive_batch_text_17', description: 'message 17, a TEXT, the last of the batch: shown, and one ACK{upto: 17} covers 15-17', section: '§8.3 step 6', step: { deliver: text(17, 'three') } },
    { id: 'passive_batch_text_18', description: 'message 18, a TEXT, with more in the batch: no ACK yet', section: '§8.3 step 6', step: { deliver: text(18, 'four'), batch: true } },
    { id: 'passive_batch_ends_refused', description: 'message 18 again, the last of the batch: REPLAY, and the ACK{upto: 18} due for the batch is still sent', section: '§8.3 step 6', step: { deliver: text(18, 'four') } },
    { id: 'passive_own_text_a', description: 'bob sends a TEXT', section: '§8.3', step: { send_text: { ts: 1767225800000, text: 'a' } } },
    { id: 'passive_own_text_b', description: 'bob sends another TEXT', section: '§8.3', step: { send_text: { ts: 1767225800001, text: 'b' } } },
    { id: 'passive_ack_of_ack_19', description: 'message 19: ACK{upto: 4}, the seq of one of bob\'s ACKs, not of a TEXT', section: '§8.3 step 6', step: { deliver: msg(19, f.ackFrame(4)) } },
    { id: 'passive_ack_cumulative_20', description: 'message 20: ACK{upto: 8} acknowledges both of bob\'s TEXTs, 7 and 8', section: '§8.3 step 6', step: { deliver: msg(20, f.ackFrame(8)) } },
    { id: 'passive_ack_nothing_new_21', description: 'message 21: ACK{upto: 7}, covered by the previous ACK: acknowledges nothing new', section: '§8.3 step 6', step: { deliver: msg(21, f.ackFrame(7)) } },
    { id: 'passive_ack_never_sent_22', description: 'message 22: ACK{upto: 9}, a seq bob never sent', section: '§8.3 step 6', step: { deliver: msg(22, f.ackFrame(9)) } },
    { id: 'passive_handshake_again', description: 'the HS_INIT again, in ESTABLISHED: fails the session', section: '§7.2', step: { deliver: su.hs_init } },
    { id: 'passive_after_failed_23', description: 'message 23 after the session failed: not acted on', section: '§7.2', step: { deliver: text(23, 'too late') } },
  ];
  const steps: StepSpec[] = await Promise.all(pendingSteps.map(async (s) => ({ ...s, step: 'deliver' in s.step ? { ...s.step, deliver: await s.step.deliver } : s.step })));
  const { session, established } = await recipientFromSetup(su, nodeBackend);
  const cases: VectorCase[] = [
    { id: 'passive_establish', description: 'bob (responder) completes the handshake from the recorded frames', section: '§8.2', setup: su as unknown as Json, expect: established },
  ];
  for (const s of steps) cases.push({ id: s.id, description: s.description, section: s.section, ...s.step, expect: await apply(session, s.step) });
  return cases;
}

export const passiveSuite: VectorSuite = suite(
  'passive.json',
  {
    title: 'e2ee-chat passive recipient vectors',
    spec: 'spec/PROTOCOL.md §7.2, §8.2, §8.3, format in spec/VECTORS.md',
    description:
      'Steps applied in order to one session of the recipient. passive_establish.setup gives the room, psk, the ' +
      'recipient (nick, spki, pkcs8, secret = s_R, eph = its X25519 private scalar, oaep_seed and pss_salt of its ' +
      'one OAEP encryption and one PSS signature), the sender (nick, spki) and the handshake frames (hs_resp is ' +
      'the HS_RESP the recipient sends with that randomness). Each later step either delivers a DELIVER ' +
      'body (deliver, hex; batch: true when more bodies follow in the same read batch, so no ACK is sent yet) or has ' +
      'the recipient send a text (send_text); expect lists what happens: text (shown), send (the frame the ' +
      'recipient sends, hex: its cumulative ACKs and its own texts are deterministic), delivered (every seq the ' +
      'ACK acknowledged, ascending), error (§9 code name), seq (for send_text), and state (§7.2) afterwards.',
  },
  () => build(),
  async (doc: unknown, backend: CryptoBackend = nodeBackend) => {
    let session: PeerSession | undefined;
    return verifyCases(doc, async (c, i) => {
      const allowed = i === 0 ? ['id', 'description', 'section', 'setup', 'expect'] : ['id', 'description', 'section', 'deliver', 'batch', 'send_text', 'expect'];
      const extra = Object.keys(c).filter((k) => !allowed.includes(k));
      if (extra.length > 0) return `unknown case fields: ${extra.join(', ')}`;
      if (i > 0 && ('deliver' in c) === ('send_text' in c)) return 'expected exactly one of deliver, send_text';
      if (i === 0) {
        if (c.id !== 'passive_establish') return 'the first case must be passive_establish';
        const su = c['setup'] as Record<string, unknown> | undefined;
        const keys = Object.keys(su ?? {}).sort().join();
        if (keys !== 'hs_finish,hs_init,hs_resp,psk,recipient,room,sender') return `setup fields ${keys}`;
        const r = await recipientFromSetup(c['setup'] as unknown as Setup, backend);
        session = r.session;
        return diff(`${c.id}.expect`, c['expect'], r.established);
      }
      if (session === undefined) return 'no session (passive_establish failed)';
      if ('batch' in c && (c['batch'] !== true || !('deliver' in c))) return 'batch must be true, and only on a deliver step';
      const step = (c['deliver'] !== undefined ? { deliver: c['deliver'], ...(c['batch'] === true ? { batch: true } : {}) } : { send_text: c['send_text'] }) as Step;
      return diff(`${c.id}.expect`, c['expect'], await apply(session, step));
    });
  },
);
