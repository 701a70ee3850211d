/**
 * The client cases of `conformance client` (CLIENT_CASES): a scripted test relay (client-context.ts)
 * plays every other member of the room and the relay itself (so it can also act as a hostile relay,
 * §11), and the client under test is started once per case (client-kit.ts).
 *
 * The client is driven through the scriptable contract of the reference client (spec/CONFORMANCE.md
 * "Client contract"): it is started with placeholders {host} {port} {nick} {room} {home} filled in and
 * stdin a pipe; it prints each received message as `NICK: TEXT` and events as lines starting with `* `;
 * at end of input it leaves and exits 0; exit 5 means a peer's key changed, 6 connection lost, 7 protocol
 * error. The kit observes the wire (what the client sends) and stdout (what it shows).
 *
 * A case passes when the client refused correctly: the forged, replayed, reordered or tampered content
 * is never shown, the refusal is reported as a `* ` event (and if that event names a §9 code, it is the
 * one the spec gives), and the session goes on unchanged where §7.2 says it does.
 */
import { randomBytes } from 'node:crypto';
import { decodeFrame, encodeFrame, encodeWire, type FrameOf } from '../codec/index.js';
import { makeIdentity } from './context.js';
import { ERROR_CODES, type ErrorName } from '../protocol/errors.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { LIMITS } from '../protocol/limits.js';
import { CaseFailure, describe } from './conn.js';
import { InitiatorSession, pad, ResponderSession, type KitPeer, type RespOptions } from './peer.js';
import * as mp from '../wirekit/msgpack.js';
import type { RunnableCase } from './runner.js';
import { closesOnProtocolError, connected, endsWith, ERROR_NAMES, exitsWith, marker, open, refused, SAFETY, shown, withPeer, type ClientCtx, type Session } from './client-context.js';

export interface ClientCase extends RunnableCase<ClientCtx> {}

const cases: ClientCase[] = [];
const add = (c: ClientCase) => cases.push(c);

add({
  id: 'client_baseline_message',
  section: '§8.2, §8.3, §8.4',
  title: 'after the handshake (event with the §8.4 safety number) a TEXT from a peer is shown as "NICK: TEXT", acknowledged with ACK{upto: seq}; exit 0 at end of input',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    const text = marker('hello');
    await s.shows(bob.nick, sess, text, 'on stdout');
    const inner = (await s.nextMsg(bob.nick, sess))?.inner;
    if (!(inner && inner.type === 'ACK' && inner.upto === 0)) throw new CaseFailure('MSG carrying ACK {upto: 0} (§8.3 step 6)', inner ? JSON.stringify(inner) : 'no MSG that opens');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_replay',
  section: '§8.3 step 1',
  title: 'a replayed MSG (same seq and bytes again) is refused (REPLAY), shown once only; the next message is shown',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    const first = marker('once');
    const msg = sess.text(first);
    s.deliver(bob.nick, msg);
    if ((await s.proc.waitLine(shown(bob.nick, first), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${first}"`, s.proc.tail());
    const from = s.proc.lines.length;
    s.deliver(bob.nick, msg);
    const next = marker('next');
    await s.shows(bob.nick, sess, next, 'after the replay');
    const times = s.proc.lines.filter(shown(bob.nick, first)).length;
    if (times !== 1) throw new CaseFailure('the replayed message shown once', `shown ${times} times`);
    refused(s, undefined, from, `${bob.nick}: ${next}`, 'REPLAY');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_reorder',
  section: '§8.3 step 1',
  title: 'a MSG that arrives before its predecessor is refused (OUT_OF_ORDER) and changes nothing: seq 0 then the same seq 1 are shown in order',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    const t0 = marker('zero');
    const t1 = marker('one');
    const m0 = sess.text(t0);
    const m1 = sess.text(t1);
    const from = s.proc.lines.length;
    s.deliver(bob.nick, m1);
    s.deliver(bob.nick, m0);
    if ((await s.proc.waitLine(shown(bob.nick, t0), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${t0}"`, s.proc.tail());
    if (s.proc.lines.some(shown(bob.nick, t1))) throw new CaseFailure('seq 1 not shown before seq 0', 'seq 1 was shown first');
    refused(s, undefined, from, `${bob.nick}: ${t0}`, 'OUT_OF_ORDER');
    s.deliver(bob.nick, m1);
    if ((await s.proc.waitLine(shown(bob.nick, t1), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${t1}" once its turn came`, s.proc.tail());
    await endsWith(s, 0);
  },
});

add({
  id: 'client_tampered_ciphertext',
  section: '§8.3 step 2',
  title: 'a MSG with one bit of its ciphertext flipped is refused (DECRYPT_FAILED), not shown; the genuine MSG is then shown',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    const text = marker('genuine');
    const good = sess.text(text);
    const f = decodeFrame(good, 'e2e') as FrameOf<'MSG'>;
    const ct = Buffer.from(f.ct);
    ct[10]! ^= 0x40;
    const from = s.proc.lines.length;
    s.deliver(bob.nick, mp.map([['t', mp.uint(0x24)], ['seq', mp.uint(f.seq)], ['ct', mp.bin(ct)]]));
    s.deliver(bob.nick, good);
    if ((await s.proc.waitLine(shown(bob.nick, text), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${text}" after the tampered copy`, s.proc.tail());
    if (s.proc.lines.filter(shown(bob.nick, text)).length !== 1) throw new CaseFailure('the text shown once', 'shown twice');
    refused(s, undefined, from, `${bob.nick}: ${text}`, 'DECRYPT_FAILED');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_bad_padding',
  section: '§8.3 step 4',
  title: 'a MSG that opens but whose padding has a non-zero byte is refused (BAD_PADDING), not shown; the next MSG is shown',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    const bad = marker('padded');
    const padded = pad(mp.map([['t', mp.uint(0x31)], ['ts', mp.uint(1)], ['text', mp.str(bad)]]));
    padded[padded.length - 1] = 0x01;
    const from = s.proc.lines.length;
    s.deliver(bob.nick, sess.seal(new Uint8Array(), { padded }));
    // Steps 1-3 succeeded, so the receive chain advanced: the next message is seq 1.
    const next = marker('next');
    await s.shows(bob.nick, sess, next, '(seq 1)');
    refused(s, bad, from, `${bob.nick}: ${next}`, 'BAD_PADDING');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_inner_unknown_type',
  section: '§8.3 step 5, §4 rule 9',
  title: 'a MSG whose inner frame has an unknown type is refused (UNKNOWN_FRAME_TYPE); the next MSG is shown',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    const from = s.proc.lines.length;
    s.deliver(bob.nick, sess.seal(mp.map([['t', mp.uint(0x7f)], ['text', mp.str('x')]])));
    const next = marker('next');
    await s.shows(bob.nick, sess, next, '(seq 1)');
    refused(s, undefined, from, `${bob.nick}: ${next}`, 'UNKNOWN_FRAME_TYPE');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_truncated_e2e_body',
  section: '§4 rule 7, §8.3',
  title: 'a DELIVER whose body is a truncated MSG is refused (MALFORMED_FRAME) and changes nothing: the intact MSG is then shown',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    const text = marker('intact');
    const good = sess.text(text);
    const from = s.proc.lines.length;
    s.deliver(bob.nick, good.subarray(0, good.length - 7));
    s.deliver(bob.nick, good);
    if ((await s.proc.waitLine(shown(bob.nick, text), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${text}"`, s.proc.tail());
    refused(s, undefined, from, `${bob.nick}: ${text}`, 'MALFORMED_FRAME');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_forged_sender',
  section: '§8.3, §11',
  title: "a MSG of bob's session delivered as from carol is refused (DECRYPT_FAILED), shown under neither name; both sessions go on",
  async run(ctx) {
    const bob = ctx.peer(0);
    const carol = ctx.peer(1);
    const s = await open(ctx, [bob, carol]);
    const sb = await s.established(bob);
    const sc = await s.established(carol);
    const forged = marker('forged');
    const from = s.proc.lines.length;
    s.deliver(carol.nick, sb.text(forged, { seq: 0 }));
    const fromCarol = marker('carol');
    s.deliver(carol.nick, sc.text(fromCarol));
    if ((await s.proc.waitLine(shown(carol.nick, fromCarol), ctx.waitMs)) === undefined) throw new CaseFailure(`"${carol.nick}: ${fromCarol}"`, s.proc.tail());
    refused(s, forged, from, `${carol.nick}: ${fromCarol}`, 'DECRYPT_FAILED');
    s.deliver(bob.nick, sb.text(forged, { seq: 0 }));
    if ((await s.proc.waitLine(shown(bob.nick, forged), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${forged}" delivered from its real sender`, s.proc.tail());
    await endsWith(s, 0);
  },
});

add({
  id: 'client_handshake_key_substitution',
  section: '§8.2, §11',
  title: 'an HS_RESP signed with a key other than the one in JOINED is refused (BAD_SIGNATURE): no HS_FINISH, no session, nothing shown',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.handshake(bob, { signWith: ctx.peer(1).ident.privateKey });
    const fin = await s.sendTo(bob.nick, 'HS_FINISH', ctx.waitMs);
    if (fin !== undefined) throw new CaseFailure('no HS_FINISH (BAD_SIGNATURE fails the session, §7.2)', 'HS_FINISH sent');
    const text = marker('mitm');
    s.deliver(bob.nick, sess.text(text));
    await s.proc.waitLine(shown(bob.nick, text), Math.min(ctx.waitMs, 1000));
    if (s.proc.lines.some(shown(bob.nick, text))) throw new CaseFailure('nothing shown from a peer whose handshake failed', `shown: ${text}`);
    const est = s.proc.lines.find((l) => l.startsWith('* ') && l.includes(bob.nick) && SAFETY.test(l));
    if (est) throw new CaseFailure('no session-established event', est);
  },
});

add({
  id: 'client_handshake_bad_confirmation',
  section: '§8.2',
  title: 'an HS_RESP whose key-confirmation MAC is wrong is refused (BAD_KEY_CONFIRMATION): no HS_FINISH, nothing shown',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const sess = await s.handshake(bob, { badMac: true });
    const fin = await s.sendTo(bob.nick, 'HS_FINISH', ctx.waitMs);
    if (fin !== undefined) throw new CaseFailure('no HS_FINISH (BAD_KEY_CONFIRMATION fails the session, §7.2)', 'HS_FINISH sent');
    const text = marker('unconfirmed');
    s.deliver(bob.nick, sess.text(text));
    await s.proc.waitLine(shown(bob.nick, text), Math.min(ctx.waitMs, 1000));
    if (s.proc.lines.some(shown(bob.nick, text))) throw new CaseFailure('nothing shown', `shown: ${text}`);
  },
});

/** A handshake whose HS_RESP is spoiled: the client must send no HS_FINISH and show nothing. */
function badResp(id: string, section: string, title: string, opts: (ctx: ClientCtx) => RespOptions, code?: ErrorName): void {
  add({
    id,
    section,
    title,
    async run(ctx) {
      const bob = ctx.peer(0);
      const s = await open(ctx, [bob]);
      const sess = await s.handshake(bob, opts(ctx));
      const fin = await s.sendTo(bob.nick, 'HS_FINISH', ctx.waitMs);
      if (fin !== undefined) throw new CaseFailure('no HS_FINISH: the refusal fails the session (§7.2)', 'HS_FINISH sent');
      const text = marker('unverified');
      s.deliver(bob.nick, sess.text(text));
      await s.proc.waitLine(shown(bob.nick, text), Math.min(ctx.waitMs, 1000));
      if (s.proc.lines.some(shown(bob.nick, text))) throw new CaseFailure('nothing shown from a peer whose handshake failed', `shown: ${text}`);
      const est = s.proc.lines.find((l) => l.startsWith('* ') && l.includes(bob.nick) && SAFETY.test(l));
      if (est) throw new CaseFailure('no session-established event', est);
      if (code !== undefined) {
        const events = s.proc.lines.filter((l) => l.startsWith('* '));
        const named = events.flatMap((l) => ERROR_NAMES.filter((n) => new RegExp(`\\b${n}\\b`).test(l)));
        if (named.length > 0 && !named.includes(code)) throw new CaseFailure(`the refusal to name ${code} (if it names a code)`, events.join(' | '));
      }
    },
  });
}

for (const n of [20, 0, 64]) {
  badResp(
    `client_handshake_pss_salt_${n}`,
    '§8.1',
    `an HS_RESP whose sig is a valid RSA-PSS signature with a ${n}-byte salt is refused (BAD_SIGNATURE: salt length exactly 32, no auto-detection): no HS_FINISH, nothing shown`,
    () => ({ pssSaltLength: n }),
    'BAD_SIGNATURE',
  );
}

badResp(
  'client_handshake_zero_ephemeral',
  '§8.2',
  'an HS_RESP whose ephemeral key is all zeros (so dh is all zeros) is refused (BAD_EPHEMERAL_KEY): no HS_FINISH, nothing shown',
  () => ({ eph: new Uint8Array(32) }),
);
badResp(
  'client_handshake_bad_oaep',
  '§8.2',
  'an HS_RESP whose ct does not decrypt under the client key is refused (OAEP_FAILED): no HS_FINISH, nothing shown',
  () => ({ ct: randomBytes(256) }),
);

const badPeerKeys: Array<[string, string, (ctx: ClientCtx) => Promise<Uint8Array>]> = [
  ['rsa_1024', 'an RSA-1024 key', async () => (await makeIdentity(1024)).spki],
  ['trailing_byte', 'a valid key followed by one byte', async (ctx) => Buffer.concat([ctx.peer(0).spki, Buffer.from([0])])],
];
for (const [tag, what, key] of badPeerKeys) {
  add({
    id: `client_peer_key_${tag}`,
    section: '§8.1',
    title: `a member listed in JOINED with ${what} gets no session (no HS_INIT), while a member with a valid key does`,
    async run(ctx) {
      const k = await key(ctx);
      const bob = { ...ctx.peer(0), spki: k };
      const carol = ctx.peer(1);
      const s = await open(ctx, [bob, carol]);
      // carol's HS_INIT shows the client is running its handshakes; bob's, if any, has been sent by then or soon after.
      if ((await s.sendTo(carol.nick, 'HS_INIT')) === undefined) throw new CaseFailure(`HS_INIT to ${carol.nick}, whose key is valid`, `nothing; client output: ${s.proc.tail()}`);
      const init = await s.sendTo(bob.nick, 'HS_INIT', Math.min(ctx.waitMs, 1000));
      if (init !== undefined) throw new CaseFailure(`no HS_INIT to a member whose key is not canonical RSA-2048/65537 (§8.1)`, 'HS_INIT sent');
    },
  });
}

add({
  id: 'client_msg_before_established',
  section: '§7.2',
  title: 'a MSG that arrives while the client waits for HS_RESP is never shown and fails the session: no HS_FINISH follows',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const init = await s.sendTo(bob.nick, 'HS_INIT');
    if (init === undefined) throw new CaseFailure(`HS_INIT to ${bob.nick}`, s.proc.tail());
    const early = mp.map([['t', mp.uint(0x24)], ['seq', mp.uint(0)], ['ct', mp.bin(randomBytes(272))]]);
    s.deliver(bob.nick, early);
    const sess = new ResponderSession(ctx.room, { nick: bob.nick, spki: bob.spki, privateKey: bob.ident.privateKey }, { nick: s.clientNick, spki: s.clientKey });
    s.deliver(bob.nick, sess.onInit(init));
    const fin = await s.sendTo(bob.nick, 'HS_FINISH', ctx.waitMs);
    if (fin !== undefined) throw new CaseFailure('no HS_FINISH: MSG in AWAIT_RESP is not in the table, the session FAILED (§7.2)', 'HS_FINISH sent');
    if (s.proc.lines.some((l) => l.startsWith(`${bob.nick}: `))) throw new CaseFailure('nothing shown from bob', s.proc.lines.find((l) => l.startsWith(`${bob.nick}: `))!);
  },
});

/** The client as responder: it is alone in the room, then `peer` joins (PEER_JOINED) and initiates. */
async function responderUpTo(ctx: ClientCtx): Promise<{ s: Session; bob: KitPeer; sess: InitiatorSession; finish: Uint8Array }> {
  const bob = ctx.peer(0);
  const s = await open(ctx, []);
  s.peerJoined(bob);
  const sess = new InitiatorSession(ctx.room, { nick: bob.nick, spki: bob.spki, privateKey: bob.ident.privateKey }, { nick: s.clientNick, spki: s.clientKey });
  s.deliver(bob.nick, sess.init());
  const resp = await s.sendTo(bob.nick, 'HS_RESP');
  if (resp === undefined) throw new CaseFailure(`HS_RESP to ${bob.nick} (the client learnt of it by PEER_JOINED: it responds, §7.2)`, `nothing; client output: ${s.proc.tail()}`);
  let finish: Uint8Array;
  try {
    finish = sess.onResp(resp);
  } catch (e) {
    throw new CaseFailure('an HS_RESP that passes the initiator checks of §8.2', e instanceof Error ? e.message : String(e));
  }
  return { s, bob, sess, finish };
}

add({
  id: 'client_responder_baseline',
  section: '§7.2, §8.2',
  title: 'as responder (peer announced by PEER_JOINED) the client answers HS_INIT with a valid HS_RESP and, after HS_FINISH, shows the peer\'s TEXT',
  async run(ctx) {
    const { s, bob, sess, finish } = await responderUpTo(ctx);
    s.deliver(bob.nick, finish);
    await s.sessionEvent(bob);
    const text = marker('responder');
    await s.shows(bob.nick, sess, text);
    await endsWith(s, 0);
  },
});

add({
  id: 'client_responder_hs_init_version',
  section: '§2.1, §7.2',
  title: 'as responder, an HS_INIT with version 1 (a v1 initiator) fails the session (UNSUPPORTED_VERSION): no HS_RESP',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, []);
    s.peerJoined(bob);
    const sess = new InitiatorSession(ctx.room, { nick: bob.nick, spki: bob.spki, privateKey: bob.ident.privateKey }, { nick: s.clientNick, spki: s.clientKey });
    s.deliver(bob.nick, sess.init(1));
    // A valid HS_INIT to a second peer shows the client is answering handshakes.
    const carol = ctx.peer(1);
    s.peerJoined(carol);
    const ok = new InitiatorSession(ctx.room, { nick: carol.nick, spki: carol.spki, privateKey: carol.ident.privateKey }, { nick: s.clientNick, spki: s.clientKey });
    s.deliver(carol.nick, ok.init());
    if ((await s.sendTo(carol.nick, 'HS_RESP')) === undefined) throw new CaseFailure(`HS_RESP to ${carol.nick} (version 2)`, `nothing; client output: ${s.proc.tail()}`);
    const resp = await s.sendTo(bob.nick, 'HS_RESP', Math.min(ctx.waitMs, 1000));
    if (resp !== undefined) throw new CaseFailure('no HS_RESP to an HS_INIT of version 1 (§2.1)', 'HS_RESP sent');
  },
});

add({
  id: 'client_msg_before_finish',
  section: '§7.2',
  title: 'a correctly sealed MSG that arrives before HS_FINISH (responder in AWAIT_FINISH) is never shown',
  async run(ctx) {
    const { s, bob, sess, finish } = await responderUpTo(ctx);
    const early = marker('early');
    s.deliver(bob.nick, sess.text(early));
    s.deliver(bob.nick, finish);
    await s.proc.waitLine(shown(bob.nick, early), Math.min(ctx.waitMs, 1500));
    if (s.proc.lines.some(shown(bob.nick, early))) throw new CaseFailure('no MSG shown before ESTABLISHED (§7.2)', `shown: ${bob.nick}: ${early}`);
  },
});

add({
  id: 'client_ack_unknown_seq',
  section: '§8.3 step 6',
  title: 'an ACK for a seq the client never sent is refused (INVALID_FIELD) and changes nothing else: the next TEXT is shown',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    const from = s.proc.lines.length;
    s.deliver(bob.nick, sess.seal(encodeFrame({ type: 'ACK', upto: 5 })));
    const next = marker('next');
    await s.shows(bob.nick, sess, next, '(seq 1)');
    refused(s, undefined, from, `${bob.nick}: ${next}`, 'INVALID_FIELD');
    await endsWith(s, 0);
  },
});

add({
  id: 'client_ack_batched',
  section: '§8.3 step 6',
  title: 'three TEXTs delivered in one TCP segment are all shown and acknowledged by fewer than three ACKs, the last ACK{upto: 2} (cumulative, never one per TEXT)',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    const texts = [marker('b0'), marker('b1'), marker('b2')];
    s.conn.raw(Buffer.concat(texts.map((x) => encodeWire({ type: 'DELIVER', from: bob.nick, body: sess.text(x) }))));
    const uptos: number[] = [];
    for (let i = 0; i < 10 && uptos.at(-1) !== 2; i++) {
      const next = await s.nextMsg(bob.nick, sess);
      if (next === undefined) break;
      const inner = next.inner;
      if (inner?.type !== 'ACK') throw new CaseFailure('only ACKs from the client (it sends no text here)', inner ? JSON.stringify(inner) : 'a MSG that does not open');
      uptos.push(inner.upto);
    }
    for (const x of texts) if ((await s.proc.waitLine(shown(bob.nick, x), ctx.waitMs)) === undefined) throw new CaseFailure(`"${bob.nick}: ${x}"`, s.proc.tail());
    if (uptos.at(-1) !== 2) throw new CaseFailure('an ACK{upto: 2} covering all three TEXTs', `ACKs upto ${JSON.stringify(uptos)}`);
    if (uptos.length >= 3) throw new CaseFailure('fewer ACKs than TEXTs in one read batch (§8.3 step 6)', `${uptos.length} ACKs: upto ${JSON.stringify(uptos)}`);
    if (uptos.some((u, i) => i > 0 && u <= uptos[i - 1]!)) throw new CaseFailure('each ACK acknowledges something new', `ACKs upto ${JSON.stringify(uptos)}`);
    await endsWith(s, 0);
  },
});

add({
  id: 'client_ack_cumulative',
  section: '§8.3 step 6',
  title: 'one ACK{upto: 1} from the peer acknowledges both of the client\'s TEXTs (seq 0 and 1): each is reported delivered, and end of input exits 0 (nothing undelivered)',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    const lines = [marker('c0'), marker('c1')];
    s.proc.child.stdin!.write(`${lines[0]}\n${lines[1]}\n`);
    const seqs: number[] = [];
    for (let i = 0; i < 10 && seqs.length < 2; i++) {
      const next = await s.nextMsg(bob.nick, sess);
      if (next === undefined) break;
      const { body: m, inner } = next;
      const f = decodeFrame(m, 'e2e');
      if (f.type === 'MSG' && inner?.type === 'TEXT' && lines.includes(inner.text)) seqs.push(f.seq);
    }
    if (seqs.length < 2) throw new CaseFailure('both lines sent to the peer as TEXTs', `${seqs.length} arrived; output: ${s.proc.tail()}`);
    s.deliver(bob.nick, sess.seal(encodeFrame({ type: 'ACK', upto: Math.max(...seqs) })));
    for (const seq of seqs) {
      if ((await s.proc.waitLine((l) => l === `* delivered to ${bob.nick} #${seq}`, ctx.waitMs)) === undefined) {
        throw new CaseFailure(`"* delivered to ${bob.nick} #${seq}" (the ACK covers every earlier TEXT)`, s.proc.tail());
      }
    }
    await endsWith(s, 0);
  },
});

add({
  id: 'client_handshake_frame_when_established',
  section: '§7.2',
  title: 'a handshake frame (HS_FINISH) in ESTABLISHED fails the session (UNEXPECTED_FRAME): a TEXT that follows is not shown',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    s.deliver(bob.nick, encodeFrame({ type: 'HS_FINISH', sig: randomBytes(256), mac: randomBytes(32) }));
    const after = marker('after');
    s.deliver(bob.nick, sess.text(after));
    await s.proc.waitLine(shown(bob.nick, after), Math.min(ctx.waitMs, 1500));
    if (s.proc.lines.some(shown(bob.nick, after))) throw new CaseFailure('nothing shown after the session failed', `shown: ${bob.nick}: ${after}`);
  },
});

add({
  id: 'client_hs_init_to_initiator',
  section: '§7.2',
  title: 'an HS_INIT sent to the initiator fails its session (roles are fixed): no HS_RESP, and no HS_FINISH for a valid HS_RESP after it',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob]);
    const init = await s.sendTo(bob.nick, 'HS_INIT');
    if (init === undefined) throw new CaseFailure(`HS_INIT to ${bob.nick}`, s.proc.tail());
    const counter = new InitiatorSession(ctx.room, { nick: bob.nick, spki: bob.spki, privateKey: bob.ident.privateKey }, { nick: s.clientNick, spki: s.clientKey });
    s.deliver(bob.nick, counter.init());
    const sess = new ResponderSession(ctx.room, { nick: bob.nick, spki: bob.spki, privateKey: bob.ident.privateKey }, { nick: s.clientNick, spki: s.clientKey });
    s.deliver(bob.nick, sess.onInit(init));
    for (let i = 0; i < 5; i++) {
      const a = await s.conn.next(Math.min(ctx.waitMs, 1500));
      if (a.kind === 'silence' || a.kind === 'closed') return;
      if (a.kind === 'frame' && a.frame.type === 'PING') {
        s.conn.send({ type: 'PONG', n: a.frame.n });
        continue;
      }
      if (a.kind === 'frame' && a.frame.type === 'SEND' && a.frame.to === bob.nick) {
        const t = decodeFrame(a.frame.body, 'e2e').type;
        if (t === 'HS_RESP' || t === 'HS_FINISH') throw new CaseFailure('no HS_RESP or HS_FINISH: the session FAILED on HS_INIT (§7.2)', `${t} sent`);
      }
    }
  },
});

add({
  id: 'client_challenge_version',
  section: '§2.1',
  title: 'a CHALLENGE with version 1 (the client sent 2) makes the client close without AUTH (UNSUPPORTED_VERSION): exit 7',
  async run(ctx) {
    const s = await connected(ctx);
    await s.challenge(1);
    await closesOnProtocolError(s, 'UNSUPPORTED_VERSION', 'the connection closed with no AUTH (optionally after ERROR UNSUPPORTED_VERSION)');
  },
});

add({
  id: 'client_challenge_wrong_relay',
  section: '§7.3',
  title: 'a CHALLENGE naming another relay than the one the client dialled makes the client close without AUTH (WRONG_RELAY): exit 7',
  async run(ctx) {
    const s = await connected(ctx);
    await s.challenge(PROTOCOL_VERSION, `${s.relayName()}.elsewhere`);
    await closesOnProtocolError(s, 'WRONG_RELAY', 'the connection closed with no AUTH (optionally after ERROR WRONG_RELAY)');
  },
});

add({
  id: 'client_welcome_max_frame_below_min',
  section: '§6 WELCOME, §7.4',
  title: 'a WELCOME announcing max_frame 653 (one below MIN_MAX_FRAME_BYTES) is INVALID_FIELD: the client closes, sending nothing after AUTH but a JOIN behind it: exit 7',
  async run(ctx) {
    const s = await connected(ctx);
    await s.challenge(PROTOCOL_VERSION);
    await s.expectFrom('AUTH');
    s.conn.send({ type: 'WELCOME', idle_ms: 60_000, max_frame: LIMITS.MIN_MAX_FRAME_BYTES - 1, room_size: 8, rate: 1000 });
    // §7.4 "JOIN behind AUTH": a client may have sent JOIN before it read WELCOME, and that JOIN may still
    // be in flight when WELCOME is written, so one JOIN is tolerated whenever it arrives; a client that
    // took the WELCOME and joined after it is caught by what follows: it does not close with exit 7.
    let joins = 0;
    await closesOnProtocolError(s, 'INVALID_FIELD', 'the connection closed with nothing after AUTH but one JOIN behind it (optionally ERROR INVALID_FIELD)', {
      reads: 4,
      tolerated: (f) => f.type === 'JOIN' && joins++ === 0,
    });
  },
});

add({
  id: 'client_welcome_max_frame_at_min',
  section: '§6 WELCOME',
  title: 'a WELCOME announcing max_frame 654 (MIN_MAX_FRAME_BYTES) is accepted: the client joins, and leaves at end of input: exit 0',
  async run(ctx) {
    const s = await open(ctx, [], { max_frame: LIMITS.MIN_MAX_FRAME_BYTES });
    await endsWith(s, 0);
  },
});

add({
  id: 'client_respects_max_frame',
  section: '§3',
  title: 'with max_frame 1024 announced, the client sends no larger frame, even for a 3000-byte line (a short line after it still arrives)',
  async run(ctx) {
    const bob = ctx.peer(0);
    const s = await open(ctx, [bob], { max_frame: 1024 });
    const sess = await s.established(bob);
    const short = marker('short');
    s.proc.child.stdin!.write(`${'x'.repeat(3000)}\n${short}\n`);
    let seen = false;
    for (let i = 0; i < 20 && !seen; i++) {
      const next = await s.nextMsg(bob.nick, sess);
      if (next === undefined) break;
      if (next.inner?.type === 'TEXT' && next.inner.text === short) seen = true;
    }
    if (s.conn.maxBody > 1024) throw new CaseFailure('no frame body above the announced max_frame of 1024 bytes', `a frame body of ${s.conn.maxBody} bytes`);
    if (!seen) throw new CaseFailure(`the short line "${short}" sent to ${bob.nick}`, `not received; output: ${s.proc.tail()}`);
  },
});

add({
  id: 'client_keepalive',
  section: '§7.1 Timeouts',
  title: 'with idle_ms 3000 announced (MIN_IDLE_MS), an idle client sends a frame (PING) at least every 3000 ms, for 6000 ms',
  async run(ctx) {
    // MIN_IDLE_MS, not less: a client that hears nothing within its PING interval (idle_ms / 3) of a PING
    // gives the relay up (§7.4), so the scripted relay must answer within it even on a loaded machine.
    const idle = LIMITS.MIN_IDLE_MS;
    const s = await open(ctx, [], { idle_ms: idle });
    const until = Date.now() + 2 * idle;
    for (let i = 0; i < 100 && Date.now() < until; i++) {
      const a = await s.conn.next(idle);
      if (a.kind === 'frame' && a.frame.type === 'PING') s.conn.send({ type: 'PONG', n: a.frame.n });
      else if (a.kind === 'silence') throw new CaseFailure(`a frame within the announced idle_ms (${idle} ms)`, `nothing for ${idle} ms`);
      else if (a.kind !== 'frame') throw new CaseFailure('PING', describe(a));
    }
  },
});

add({
  id: 'client_key_changed',
  section: '§11, client contract',
  title: 'a peer that comes back with another key (same nick, same relay, same --home) stops the client: exit 5, no HS_INIT to it',
  async run(ctx) {
    const nick = `ckpeer${randomBytes(4).toString('hex')}`;
    const first = ctx.peer(0, nick);
    const s1 = await open(ctx, [first]);
    const sess = await s1.established(first);
    const text = marker('pinned');
    s1.deliver(first.nick, sess.text(text));
    if ((await s1.proc.waitLine(shown(nick, text), ctx.waitMs)) === undefined) throw new CaseFailure(`"${nick}: ${text}" on the first run`, s1.proc.tail());
    await endsWith(s1, 0);
    const second = ctx.peer(1, nick);
    const s2 = await open(ctx, [second]);
    const init = await s2.sendTo(nick, 'HS_INIT', Math.min(ctx.waitMs, 1500));
    if (init !== undefined) throw new CaseFailure(`no traffic with ${nick} after its key changed`, 'HS_INIT sent to the changed key');
    await exitsWith(s2, 5, 'exit status 5 (a peer key changed)');
  },
});

add({
  id: 'client_truncated_relay_frame',
  section: '§3',
  title: 'a relay connection that closes in the middle of a DELIVER is a lost connection: the partial message is not shown, exit 6',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    const text = marker('partial');
    const w = encodeWire({ type: 'DELIVER', from: bob.nick, body: sess.text(text) });
    s.conn.raw(w.subarray(0, w.length - 20));
    await new Promise((r) => setTimeout(r, 20));
    s.conn.socket.end();
    const code = await s.proc.exitStatus(ctx.waitMs);
    if (s.proc.lines.some((l) => l.includes(text))) throw new CaseFailure('the partial frame discarded', 'its text was shown');
    if (code !== 6) throw new CaseFailure('exit status 6 (connection lost)', `exit status ${String(code)}; output: ${s.proc.tail()}`);
  },
});

add({
  id: 'client_noncanonical_relay_frame',
  section: '§4 rule 3',
  title: 'a DELIVER whose `t` is written as uint 8 is refused (MALFORMED_FRAME): not shown, exit 7',
  async run(ctx) {
    const { bob, s, sess } = await withPeer(ctx);
    const text = marker('noncanonical');
    s.conn.body(mp.map([['t', Buffer.from([0xcc, 0x0a])], ['from', mp.str(bob.nick)], ['body', mp.bin(sess.text(text))]]));
    const code = await s.proc.exitStatus(ctx.waitMs);
    if (s.proc.lines.some((l) => l.includes(text))) throw new CaseFailure('the non-canonical frame not acted on', 'its text was shown');
    if (code !== 7) throw new CaseFailure('exit status 7 (protocol error)', `exit status ${String(code)}; output: ${s.proc.tail()}`);
  },
});

/** Every client case. */
/** The contract's roster-mismatch event line for `epoch` naming `nick` (spec/CONFORMANCE.md §2.1). */
const rosterLine = (epoch: number, nick: string) => (l: string) => l.startsWith(`* roster mismatch at epoch ${epoch}: ${nick} `);
const anyRosterLine = (l: string) => l.startsWith('* roster mismatch');

add({
  id: 'client_roster_commitment',
  section: '§8.6',
  title: 'once established the client sends ROSTER{epoch, hash} for the room as announced (itself included), and after a PEER_JOINED one for the new epoch',
  async run(ctx) {
    const bob = ctx.peer(0);
    const carol = ctx.peer(1);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    const want = [{ epoch: s.epoch, hash: Buffer.from(s.commitment()).toString('hex') }];
    const roster = async (when: string) => {
      const instead = await s.untilRoster(bob.nick, sess, s.epoch);
      const epochs = JSON.stringify((s.rosters.get(bob.nick) ?? []).map((r) => r.epoch));
      if (instead !== undefined) throw new CaseFailure(`a ROSTER for epoch ${s.epoch} ${when} (§8.6)`, `ROSTER epochs ${epochs}, then ${instead}`);
    };
    await roster('once established');
    s.peerJoined(carol);
    want.push({ epoch: s.epoch, hash: Buffer.from(s.commitment()).toString('hex') });
    await roster('after the PEER_JOINED');
    // A TEXT from bob once both arrived: nothing but its ACK is due, so no second ROSTER for an epoch comes first.
    const text = marker('roster');
    s.deliver(bob.nick, sess.text(text));
    const ack = await s.nextMsg(bob.nick, sess);
    if (ack?.inner?.type !== 'ACK') throw new CaseFailure('the ACK of the TEXT', ack?.inner ? JSON.stringify(ack.inner) : 'no MSG that opens');
    const got = (s.rosters.get(bob.nick) ?? []).map((r) => ({ epoch: r.epoch, hash: Buffer.from(r.hash).toString('hex') }));
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new CaseFailure(`ROSTERs ${JSON.stringify(want)} (§8.6)`, JSON.stringify(got));
    await endsWith(s, 0);
  },
});

add({
  id: 'client_roster_mismatch',
  section: '§8.6',
  title: 'a peer behind or ahead by an epoch that agrees raises nothing; a split roster (the peer committed to another room at the same epoch) is reported naming the epoch and the peer',
  async run(ctx) {
    const bob = ctx.peer(0);
    const carol = ctx.peer(1);
    const s = await open(ctx, [bob]);
    const sess = await s.established(bob);
    const first = s.epoch;
    const before = new Map(s.members);
    s.peerJoined(carol);
    const roster = (epoch: number, hash: Uint8Array) => sess.seal(encodeFrame({ type: 'ROSTER', epoch, hash }));
    // Behind: bob commits to the epoch before carol joined, as the client saw it then.
    s.deliver(bob.nick, roster(first, s.commitment(first, before)));
    // Ahead: bob has already seen carol leave; the client has not yet.
    const after = new Map(before);
    s.deliver(bob.nick, roster(s.epoch + 1, s.commitment(s.epoch + 1, after)));
    s.peerLeft(carol.nick);
    const calm = marker('calm');
    await s.shows(bob.nick, sess, calm);
    const early = s.proc.lines.find(anyRosterLine);
    if (early !== undefined) throw new CaseFailure('no roster report while bob agrees (behind, then ahead, §8.6)', early);
    // Split: carol joins for the client; bob commits to a room that also holds mallory.
    s.peerJoined(carol);
    const split = new Map(s.members);
    split.set('mallory', ctx.peer(2).spki);
    s.deliver(bob.nick, roster(s.epoch, s.commitment(s.epoch, split)));
    if ((await s.proc.waitLine(rosterLine(s.epoch, bob.nick), ctx.waitMs)) === undefined) {
      throw new CaseFailure(`"* roster mismatch at epoch ${s.epoch}: ${bob.nick} ..." (§8.6, CONFORMANCE §2.1)`, s.proc.tail());
    }
    await endsWith(s, 0);
  },
});

export const CLIENT_CASES: readonly ClientCase[] = cases;
