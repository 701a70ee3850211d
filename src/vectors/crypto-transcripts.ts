/**
 * vectors/handshake.json (spec/VECTORS.md "handshake.json"): complete handshakes of spec/PROTOCOL.md
 * §8.2 with both parties' keys and randomness, every frame's bytes, TH0-TH3, dh and every derived key,
 * then messages both ways (§8.3); and one-defect handshake frames, each with the code the receiving side
 * must fail with (§7.2).
 *
 * Verification regenerates each transcript with the runtime PeerSession from the case's inputs (keys,
 * randomness, room, psk, the message script) and compares every field, so a change to any byte of a
 * case fails. Seeded OAEP and salted PSS come from node-forge; the receiving sessions decrypt and verify
 * them with the backend under test (node:crypto by default, or WebCrypto: `vectors verify --crypto
 * webcrypto`), so each transcript is checked by two implementations, through the session machine.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { decodeFrame, type InnerFrame } from '../codec/index.js';
import { PeerSession, type SessionEvent, type SessionRsa } from '../handshake/session.js';
import type { CryptoBackend } from '../crypto/backend.js';
import { equalSecret } from '../crypto/bytes.js';
import { nodeBackend } from '../crypto/node.js';
import { hmac } from '../crypto/primitives.js';
import { initiatorSignedMessage, keySchedule, pskKey, responderSignedMessage, th0, th1, th2, th3 } from '../crypto/schedule.js';
import { fromHex, toHex } from './hex.js';
import { FIXED_RSA_PKCS8, clampScalar, isClamped, type FixedName } from './crypto-keys.js';
import { diff, loadForge, suite, verifyCases, type Json } from './crypto-common.js';
import type { VectorCase, VectorSuite } from './types.js';

type Forge = Awaited<ReturnType<typeof loadForge>>;

interface PartyJson {
  nick: string;
  spki: string;
  pkcs8: string;
  randomness: { secret: string; eph: string; oaep_seed: string; pss_salt: string };
}
type Script = { from: 'initiator' | 'responder'; inner: { type: 'TEXT'; ts: number; text: string } }[];

const ascii = (s: string) => Buffer.from(s, 'ascii');
function rnd(tag: string): string {
  return toHex(hmac(ascii('e2ee-chat/1 vector randomness'), Buffer.from(tag, 'utf8')));
}

function party(name: FixedName, tag: string): PartyJson {
  const key = createPrivateKey({ key: Buffer.from(FIXED_RSA_PKCS8[name], 'hex'), format: 'der', type: 'pkcs8' });
  return {
    nick: name,
    spki: toHex(createPublicKey(key).export({ format: 'der', type: 'spki' })),
    pkcs8: FIXED_RSA_PKCS8[name],
    randomness: { secret: rnd(`${tag}/secret`), eph: toHex(clampScalar(fromHex(rnd(`${tag}/eph`)))), oaep_seed: rnd(`${tag}/oaep-seed`), pss_salt: rnd(`${tag}/pss-salt`) },
  };
}

function scripted(p: PartyJson): (n: number) => Uint8Array {
  if (!isClamped(fromHex(p.randomness.eph, 'eph'))) throw new Error(`${p.nick}: randomness.eph must be a clamped X25519 scalar`);
  const chunks = [p.randomness.secret, p.randomness.eph, p.randomness.oaep_seed, p.randomness.pss_salt].map((x, i) => fromHex(x, `randomness[${i}]`));
  let i = 0;
  return (n) => {
    const c = chunks[i++];
    if (c === undefined || c.length !== n) throw new Error(`randomness draw ${i} of ${n} bytes not in the vector`);
    return c;
  };
}

/**
 * The RSA operations of one party replayed from a transcript's own frames: its OAEP ciphertext and its
 * signature as recorded, the signature checked by the backend over the message the session signs.
 * Defect cases only need to reach a state, so they need no seeded RSA (and no node-forge).
 */
function recordedRsa(c: CryptoBackend, self: PartyJson, ownCt: Uint8Array, ownSig: Uint8Array | undefined): SessionRsa {
  return {
    oaepEncrypt: () => ownCt,
    pssSign: async (_privateKey, message) => {
      if (ownSig === undefined || !(await c.pssVerify(await c.importPublicKey(fromHex(self.spki, 'spki')), message, ownSig))) {
        throw new Error('recorded signature does not fit this transcript');
      }
      return ownSig;
    },
  };
}

/** A PeerSession of backend `c` for `self` talking to `peer`, drawing its randomness from the vector. */
async function session(c: CryptoBackend, rsa: SessionRsa | undefined, room: string, role: 'initiator' | 'responder', self: PartyJson, peer: PartyJson, psk: string | null): Promise<PeerSession> {
  // A consistency check of the vector itself (not of the backend under test): spki belongs to pkcs8.
  const privateKey = createPrivateKey({ key: Buffer.from(fromHex(self.pkcs8, 'pkcs8')), format: 'der', type: 'pkcs8' });
  const spki = toHex(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }));
  if (spki !== self.spki) throw new Error(`${self.nick}: spki is not the public key of pkcs8`);
  return new PeerSession({
    crypto: c,
    room,
    role,
    self: { nick: self.nick, key: await c.importPrivateKey(fromHex(self.pkcs8, 'pkcs8')), spki: fromHex(self.spki) },
    peerNick: peer.nick,
    peerKey: await c.importPublicKey(fromHex(peer.spki, 'peer spki')),
    random: scripted(self),
    ...(rsa === undefined ? {} : { rsa }),
    ...(psk === null ? {} : { psk: fromHex(psk, 'psk') }),
  });
}

const sendOf = (ev: SessionEvent[]): Uint8Array => {
  const s = ev.find((e) => e.kind === 'send');
  if (s?.kind !== 'send') throw new Error(`expected a frame to send, got ${ev.map((e) => (e.kind === 'rejected' ? e.error.errorName : e.kind)).join(',')}`);
  return s.body;
};

function innerJson(f: InnerFrame): Json {
  if (f.type === 'TEXT') return { type: 'TEXT', ts: f.ts, text: f.text };
  return f.type === 'ACK' ? { type: 'ACK', upto: f.upto } : { type: 'ROSTER', epoch: f.epoch, hash: toHex(f.hash) };
}

/** Builds the whole transcript case from its inputs: the single definition used to generate and to verify. */
async function transcript(c: CryptoBackend, forge: Forge, id: string, description: string, room: string, psk: string | null, I: PartyJson, R: PartyJson, script: Script): Promise<VectorCase> {
  const sI = await session(c, forge.forgeRsa(fromHex(I.pkcs8, 'pkcs8')), room, 'initiator', I, R, psk);
  const sR = await session(c, forge.forgeRsa(fromHex(R.pkcs8, 'pkcs8')), room, 'responder', R, I, psk);
  const init = sendOf(await sI.start());
  const resp = sendOf(await sR.receive(init));
  const evI = await sI.receive(resp);
  const finish = sendOf(evI);
  const evR = await sR.receive(finish);
  if (sI.state !== 'ESTABLISHED' || sR.state !== 'ESTABLISHED' || !evR.some((e) => e.kind === 'established')) throw new Error('handshake did not complete');

  // The intermediate values of §8.2, recomputed from the frames and secrets, not read from the sessions.
  const fi = decodeFrame(init, 'e2e');
  const fr = decodeFrame(resp, 'e2e');
  if (fi.type !== 'HS_INIT' || fr.type !== 'HS_RESP') throw new Error('unexpected frame types');
  const t0 = await th0(c, room, I.nick, fromHex(I.spki), R.nick, fromHex(R.spki));
  const t1 = await th1(c, t0, init);
  const t2 = await th2(c, t1, fr.eph, fr.ct);
  const t3 = await th3(c, t2, fr.sig, fr.mac);
  const dh = await c.x25519((await c.x25519KeyPair(fromHex(R.randomness.eph))).privateKey, fi.eph);
  const dhCheck = await c.x25519((await c.x25519KeyPair(fromHex(I.randomness.eph))).privateKey, fr.eph);
  if (!equalSecret(dh, dhCheck)) throw new Error('the two X25519 computations differ');
  const pskBytes = psk === null ? undefined : fromHex(psk);
  const keys = await keySchedule(c, fromHex(I.randomness.secret), fromHex(R.randomness.secret), dh, t2, pskBytes);

  // Messages in the order of the script; each text is answered by the recipient's ACK.
  const messages: Json[] = [];
  for (const m of script) {
    const [a, b, other] = m.from === 'initiator' ? ([sI, sR, 'responder'] as const) : ([sR, sI, 'initiator'] as const);
    const { seq, events } = await a.sendText(m.inner.text, m.inner.ts);
    const body = sendOf(events);
    const got = await b.receive(body);
    const shown = got.find((e) => e.kind === 'text');
    if (shown?.kind !== 'text' || shown.text !== m.inner.text || shown.seq !== seq) throw new Error(`message ${seq} not received intact`);
    messages.push({ from: m.from, seq, inner: m.inner, body: toHex(body) });
    const ack = sendOf(got);
    const fa = decodeFrame(ack, 'e2e');
    const delivered = await a.receive(ack);
    if (delivered[0]?.kind !== 'delivered' || delivered[0].seq !== seq || fa.type !== 'MSG') throw new Error(`ACK of ${seq} not delivered`);
    messages.push({ from: other, seq: fa.seq, inner: { type: 'ACK', upto: seq }, body: toHex(ack) });
  }
  const hx = (b: Uint8Array) => toHex(b);
  return {
    id,
    description,
    section: '§8.2, §8.3',
    room,
    psk,
    initiator: I as unknown as Json,
    responder: R as unknown as Json,
    frames: { hs_init: hx(init), hs_resp: hx(resp), hs_finish: hx(finish) },
    intermediate: {
      eph_i: hx(fi.eph),
      eph_r: hx(fr.eph),
      dh: hx(dh),
      th0: hx(t0),
      th1: hx(t1),
      th2: hx(t2),
      th3: hx(t3),
      psk_key: hx(await pskKey(c, pskBytes)),
      prk: hx(keys.prk),
      conf_i: hx(keys.confI),
      conf_r: hx(keys.confR),
      ck_ir: hx(keys.ckIR),
      ck_ri: hx(keys.ckRI),
      sid: hx(keys.sid),
    },
    safety_number: await sI.safetyNumber(),
    messages,
  };
}

const SCRIPT: Script = [
  { from: 'initiator', inner: { type: 'TEXT', ts: 1767225600000, text: 'hello bob' } },
  { from: 'responder', inner: { type: 'TEXT', ts: 1767225601000, text: 'hi alice, ça va? ☕' } },
  { from: 'initiator', inner: { type: 'TEXT', ts: 1767225602000, text: 'x'.repeat(300) } },
];

/** The salts of the §8.1 salt-length defects: 20 bytes (SHA-1's length), none, and 64 bytes. */
function pssSalts(): [number, Uint8Array][] {
  const a = fromHex(rnd('handshake/pss-salt-other'));
  return [
    [20, a.subarray(0, 20)],
    [0, new Uint8Array(0)],
    [64, Buffer.concat([a, fromHex(rnd('handshake/pss-salt-other-2'))])],
  ];
}

type At = 'responder_idle' | 'initiator_await_resp' | 'responder_await_finish';

/** Drives a fresh side of `base` to `at` and delivers `frame`: the resulting rejection code and state. */
async function deliver(c: CryptoBackend, base: VectorCase, at: At, frame: Uint8Array, initiatorPsk: string | null | undefined): Promise<{ error: string | null; state: string }> {
  const room = String(base['room']);
  const psk = (base['psk'] ?? null) as string | null;
  const I = base['initiator'] as unknown as PartyJson;
  const R = base['responder'] as unknown as PartyJson;
  const frames = base['frames'] as Record<string, string>;
  const fi = decodeFrame(fromHex(frames['hs_init'], 'hs_init'), 'e2e');
  const fr = decodeFrame(fromHex(frames['hs_resp'], 'hs_resp'), 'e2e');
  const ff = decodeFrame(fromHex(frames['hs_finish'], 'hs_finish'), 'e2e');
  if (fi.type !== 'HS_INIT' || fr.type !== 'HS_RESP' || ff.type !== 'HS_FINISH') throw new Error(`${base.id}: frames of the wrong types`);
  let s: PeerSession;
  if (at === 'initiator_await_resp') {
    s = await session(c, recordedRsa(c, I, fi.ct, ff.sig), room, 'initiator', I, R, initiatorPsk === undefined ? psk : initiatorPsk);
    // The initiator must be exactly where the transcript's initiator was: it sent the recorded HS_INIT.
    if (toHex(sendOf(await s.start())) !== frames['hs_init']) throw new Error(`${base.id}: the rebuilt HS_INIT differs`);
  } else {
    s = await session(c, recordedRsa(c, R, fr.ct, fr.sig), room, 'responder', R, I, psk);
    if (at === 'responder_await_finish' && toHex(sendOf(await s.receive(fromHex(frames['hs_init'], 'hs_init')))) !== frames['hs_resp']) {
      throw new Error(`${base.id}: the rebuilt HS_RESP differs`);
    }
  }
  const ev = await s.receive(frame);
  const rej = ev.find((e) => e.kind === 'rejected');
  return { error: rej?.kind === 'rejected' ? rej.error.errorName : null, state: s.state };
}

function flipByte(hex: string, i: number): string {
  const b = Buffer.from(hex, 'hex');
  b[i] = (b[i] as number) ^ 0x01;
  return b.toString('hex');
}

/** Replaces the value of one bin field in an encoded frame (all handshake fields have fixed lengths). */
function withField(frameHex: string, field: string, valueHex: string): string {
  const f = decodeFrame(fromHex(frameHex), 'e2e') as unknown as Record<string, unknown>;
  const old = toHex(f[field] as Uint8Array);
  if (old.length !== valueHex.length) throw new Error('field length changes');
  const i = frameHex.indexOf(old);
  return frameHex.slice(0, i) + valueHex + frameHex.slice(i + old.length);
}

async function build(forge: Forge): Promise<VectorCase[]> {
  const c = nodeBackend;
  const I = party('alice', 'handshake/alice');
  const R = party('bob', 'handshake/bob');
  const plain = await transcript(c, forge, 'handshake_no_psk', 'alice (initiator) and bob (responder) in room "lobby" without a room secret', 'lobby', null, I, R, SCRIPT);
  const withPsk = await transcript(
    c,
    forge,
    'handshake_psk',
    'the same parties and randomness with the room secret "correct horse battery staple"',
    'lobby',
    toHex(Buffer.from('correct horse battery staple', 'utf8')),
    I,
    R,
    SCRIPT,
  );
  const fr = plain['frames'] as Record<string, string>;
  const fp = withPsk['frames'] as Record<string, string>;
  const low = 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800';
  const neg = async (id: string, description: string, based_on: string, at: At, frame: string, extra: Record<string, Json> = {}): Promise<VectorCase> => {
    const base = based_on === 'handshake_psk' ? withPsk : plain;
    const r = await deliver(c, base, at, fromHex(frame), extra['initiator_psk'] as string | null | undefined);
    if (r.state !== 'FAILED' || r.error === null) throw new Error(`${id}: the defect was not rejected`);
    return { id, description, section: '§7.2, §8.2', based_on, at, ...extra, frame, error: r.error };
  };
  // Version field: the HS_INIT body is 83 a1 74 21 a7 "version" 01 ...; the version byte follows the key.
  const versionAt = fr['hs_init']!.indexOf(toHex(Buffer.from('version'))) + 14;
  const v1 = fr['hs_init']!.slice(0, versionAt) + '01' + fr['hs_init']!.slice(versionAt + 2);
  return Promise.all([
    plain,
    withPsk,
    neg('handshake_init_version_1', 'HS_INIT with version 1, from a v1 initiator (§2.1: refused by its version, never guessed)', 'handshake_no_psk', 'responder_idle', v1),
    neg('handshake_init_low_order_eph', 'HS_INIT whose eph is a point of order 8', 'handshake_no_psk', 'responder_idle', withField(fr['hs_init']!, 'eph', low)),
    neg('handshake_init_tampered_ct', 'HS_INIT with one bit of ct flipped', 'handshake_no_psk', 'responder_idle', flipByte(fr['hs_init']!, 200)),
    neg('handshake_resp_tampered_sig', 'HS_RESP with one bit of sig flipped', 'handshake_no_psk', 'initiator_await_resp', flipByte(fr['hs_resp']!, fr['hs_resp']!.length / 2 - 40)),
    neg('handshake_resp_tampered_mac', 'HS_RESP with one bit of mac flipped', 'handshake_no_psk', 'initiator_await_resp', flipByte(fr['hs_resp']!, fr['hs_resp']!.length / 2 - 1)),
    neg('handshake_resp_tampered_ct', 'HS_RESP with one bit of ct flipped', 'handshake_no_psk', 'initiator_await_resp', withField(fr['hs_resp']!, 'ct', flipByte(toHex((decodeFrame(fromHex(fr['hs_resp']!), 'e2e') as { ct: Uint8Array }).ct), 5))),
    neg('handshake_resp_low_order_eph', 'HS_RESP whose eph is the zero point', 'handshake_no_psk', 'initiator_await_resp', withField(fr['hs_resp']!, 'eph', '00'.repeat(32))),
    neg(
      'handshake_resp_wrong_signer',
      'HS_RESP whose sig is a valid PSS signature over the right TH2, but by mallory (a substituted responder key)',
      'handshake_no_psk',
      'initiator_await_resp',
      withField(fr['hs_resp']!, 'sig', toHex(forge.forgePssSign(fromHex(FIXED_RSA_PKCS8.mallory), responderSignedMessage(fromHex((plain['intermediate'] as Record<string, string>)['th2'])), fromHex(rnd('handshake/mallory/pss-salt'))))),
    ),
    neg('handshake_psk_mismatch', 'the initiator has no room secret, the responder has one', 'handshake_psk', 'initiator_await_resp', fp['hs_resp']!, { initiator_psk: null }),
    neg('handshake_finish_tampered_sig', 'HS_FINISH with one bit of sig flipped', 'handshake_no_psk', 'responder_await_finish', flipByte(fr['hs_finish']!, 30)),
    neg('handshake_finish_tampered_mac', 'HS_FINISH with one bit of mac flipped', 'handshake_no_psk', 'responder_await_finish', flipByte(fr['hs_finish']!, fr['hs_finish']!.length / 2 - 1)),
    neg('handshake_finish_replayed_resp', 'an HS_RESP where HS_FINISH is expected', 'handshake_no_psk', 'responder_await_finish', fr['hs_resp']!),
    ...pssSalts().flatMap(([n, salt]) => {
      const mid = plain['intermediate'] as Record<string, string>;
      const sigR = forge.forgePssSignSaltLength(fromHex(R.pkcs8), responderSignedMessage(fromHex(mid['th2'])), salt);
      const sigI = forge.forgePssSignSaltLength(fromHex(I.pkcs8), initiatorSignedMessage(fromHex(mid['th3'])), salt);
      return [
        neg(`handshake_resp_pss_salt_${n}`, `HS_RESP whose sig is bob's PSS signature over the right TH2 with a ${n}-byte salt (§8.1: exactly 32)`, 'handshake_no_psk', 'initiator_await_resp', withField(fr['hs_resp']!, 'sig', toHex(sigR))),
        neg(`handshake_finish_pss_salt_${n}`, `HS_FINISH whose sig is alice's PSS signature over the right TH3 with a ${n}-byte salt (§8.1: exactly 32)`, 'handshake_no_psk', 'responder_await_finish', withField(fr['hs_finish']!, 'sig', toHex(sigI))),
      ];
    }),
  ]);
}

async function verifyOne(backend: CryptoBackend, forge: Forge, c: VectorCase, earlier: Map<string, VectorCase>): Promise<string | undefined> {
  if (c['based_on'] === undefined) {
    const want = await transcript(
      backend,
      forge,
      c.id,
      c.description,
      String(c['room']),
      (c['psk'] ?? null) as string | null,
      c['initiator'] as unknown as PartyJson,
      c['responder'] as unknown as PartyJson,
      (c['messages'] as { from: 'initiator' | 'responder'; inner: { type: string; ts: number; text: string } }[])
        .filter((m) => m.inner.type === 'TEXT')
        .map((m) => ({ from: m.from, inner: { type: 'TEXT', ts: m.inner.ts, text: m.inner.text } })),
    );
    return diff(c.id, want, c);
  }
  const base = earlier.get(String(c['based_on']));
  if (base === undefined) return `based_on ${String(c['based_on'])}: no earlier transcript case with that id`;
  const got = await deliver(backend, base, c['at'] as At, fromHex(c['frame'], 'frame'), c['initiator_psk'] as string | null | undefined);
  if (got.error !== c['error'] || got.state !== 'FAILED') return `expected ${String(c['error'])} and FAILED, got ${String(got.error)} in ${got.state}`;
  return undefined;
}

export const handshakeSuite: VectorSuite = suite(
  'handshake.json',
  {
    title: 'e2ee-chat handshake transcripts',
    spec: 'spec/PROTOCOL.md §7.2, §8.2, §8.3, format in spec/VECTORS.md',
    description:
      'Transcript cases give room, psk (hex or null), both parties (nick, spki, pkcs8, randomness: secret = s_I/s_R, ' +
      'eph = X25519 private scalar, oaep_seed, pss_salt), the three handshake frames, every intermediate value, the ' +
      'safety number and the messages exchanged afterwards (each text answered by an ACK; body = the MSG frame). ' +
      'An implementation that uses the same randomness must produce every byte. Defect cases name a transcript ' +
      '(based_on), the receiving side and its state (at: responder_idle, initiator_await_resp, ' +
      'responder_await_finish; the side is driven there with the transcript\'s own frames and randomness), the ' +
      'defective frame, and the code the session must fail with (initiator_psk, when present, replaces the ' +
      'initiator\'s psk).',
  },
  async () => build(await loadForge()),
  async (doc: unknown, backend: CryptoBackend = nodeBackend) => {
    const forge = await loadForge();
    const earlier = new Map<string, VectorCase>();
    return verifyCases(doc, async (c) => {
      const r = await verifyOne(backend, forge, c, earlier);
      if (c['based_on'] === undefined) earlier.set(c.id, c);
      return r;
    });
  },
);
