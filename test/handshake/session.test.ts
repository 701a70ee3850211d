// The per-peer session (spec/PROTOCOL.md §7.2, §8.2, §8.3): the handshake in both roles, messages both
// ways, and every rejection named by the spec, asserted by error code and by the resulting state.
import t from 'tap';
import { decodeFrame, encodeFrame, frame } from '../../src/codec/index.js';
import { PeerSession, establishmentRsaOps, type SessionRsa } from '../../src/handshake/session.js';
import { safetyNumber } from '../../src/crypto/safety.js';
import { oaepEncrypt as nodeOaep, pssSign } from '../../src/crypto/rsa.js';
import { alice, bob, mallory, local, pair, sent, rejections, handshake, established, flip, thrownCode } from './helpers.js';

t.test('initiator and responder establish a session and agree on the safety number', async (t) => {
  const { I, R } = pair();
  t.equal(I.state, 'IDLE');
  t.equal(R.state, 'IDLE');
  const init = sent(I.start());
  t.equal(I.state, 'AWAIT_RESP');
  t.equal(decodeFrame(init, 'e2e').type, 'HS_INIT');
  const eR = R.receive(init);
  t.equal(R.state, 'AWAIT_FINISH');
  const resp = sent(eR);
  t.equal(decodeFrame(resp, 'e2e').type, 'HS_RESP');
  const eI = I.receive(resp);
  t.equal(I.state, 'ESTABLISHED');
  t.same(eI.map((e) => e.kind), ['send', 'established']);
  const eR2 = R.receive(sent(eI));
  t.equal(R.state, 'ESTABLISHED');
  t.same(eR2.map((e) => e.kind), ['established']);
  const snI = eI[1]?.kind === 'established' ? eI[1].safetyNumber : '';
  const snR = eR2[0]?.kind === 'established' ? eR2[0].safetyNumber : '';
  t.match(snI, /^\d{5}( \d{5}){11}$/);
  t.equal(snI, snR, 'both sides show the same number');
  t.equal(snI, safetyNumber('alice', alice.spki, 'bob', bob.spki));
});

t.test('text messages flow both ways, each is acknowledged, and delivered marks the sender side', async (t) => {
  const { I, R } = established();
  const m0 = I.sendText('hello bob', 1000);
  t.equal(m0.seq, 0);
  const atR = R.receive(sent(m0.events));
  t.same(atR[0], { kind: 'text', seq: 0, ts: 1000, text: 'hello bob' });
  t.same(I.unacknowledged(), [0]);
  t.same(I.receive(sent(atR)), [{ kind: 'delivered', seq: 0 }]);
  t.same(I.unacknowledged(), []);
  // R's ACK used R's seq 0, so R's first text is seq 1.
  const r1 = R.sendText('hi alice ☃', 2000);
  t.equal(r1.seq, 1);
  const atI = I.receive(sent(r1.events));
  t.same(atI[0], { kind: 'text', seq: 1, ts: 2000, text: 'hi alice ☃' });
  t.same(R.receive(sent(atI)), [{ kind: 'delivered', seq: 1 }]);
  t.equal(I.state, 'ESTABLISHED');
  t.equal(R.state, 'ESTABLISHED');
});

t.test('a message of the largest allowed text round-trips; one byte more is refused locally', async (t) => {
  const { I, R } = established();
  const big = 'x'.repeat(16384);
  const m = I.sendText(big, 1);
  const body = sent(m.events);
  t.ok(body.length <= 49152, 'fits in a SEND body');
  const ev = R.receive(body);
  t.equal(ev[0]?.kind === 'text' ? ev[0].text : '', big);
  t.equal(thrownCode(() => I.sendText(big + 'x', 1)), 'INVALID_FIELD');
  t.equal(thrownCode(() => I.sendText('', 1)), 'INVALID_FIELD');
});

t.test('plaintext lengths are padded to power-of-two buckets', async (t) => {
  const { I } = established();
  const sizes = new Set<number>();
  for (const n of [1, 10, 100, 200, 230]) {
    const ct = decodeFrame(sent(I.sendText('a'.repeat(n), 0).events), 'e2e');
    if (ct.type === 'MSG') sizes.add(ct.ct.length);
  }
  t.same([...sizes], [256 + 16], 'all short texts share the 256-byte bucket');
  const ct = decodeFrame(sent(I.sendText('a'.repeat(300), 0).events), 'e2e');
  t.equal(ct.type === 'MSG' ? ct.ct.length : 0, 512 + 16);
});

t.test('a replayed MSG is REPLAY, a skipped-ahead one OUT_OF_ORDER; neither changes the session', async (t) => {
  const { I, R } = established();
  const b0 = sent(I.sendText('zero', 0).events);
  const b1 = sent(I.sendText('one', 0).events);
  const b2 = sent(I.sendText('two', 0).events);
  t.same(rejections(R.receive(b1)), ['OUT_OF_ORDER']);
  t.same(rejections(R.receive(b2)), ['OUT_OF_ORDER']);
  t.equal(R.receive(b0)[0]?.kind, 'text');
  t.same(rejections(R.receive(b0)), ['REPLAY']);
  t.equal(R.receive(b1)[0]?.kind, 'text');
  t.equal(R.receive(b2)[0]?.kind, 'text');
  t.same(rejections(R.receive(b1)), ['REPLAY']);
  t.equal(R.state, 'ESTABLISHED');
});

t.test('an altered MSG is DECRYPT_FAILED, a truncated one a codec error; the genuine one still opens', async (t) => {
  const { I, R } = established();
  const b = sent(I.sendText('integrity', 0).events);
  t.same(rejections(R.receive(flip(b, b.length - 1))), ['DECRYPT_FAILED'], 'tag bit');
  t.same(rejections(R.receive(flip(b, 40))), ['DECRYPT_FAILED'], 'ciphertext bit');
  const trunc = rejections(R.receive(b.subarray(0, b.length - 1)));
  t.same(trunc, ['MALFORMED_FRAME'], 'truncated body');
  t.same(rejections(R.receive(Uint8Array.of(0x81, 0xa1, 0x74, 0x31))), ['UNKNOWN_FRAME_TYPE'], 'an inner frame type outside the e2e layer');
  t.equal(R.state, 'ESTABLISHED');
  t.equal(R.receive(b)[0]?.kind, 'text');
});

t.test('a MSG re-targeted to another session or replayed into a new session fails to open', async (t) => {
  const s1 = established();
  const b = sent(s1.I.sendText('for bob, session 1', 0).events);
  const s2 = established();
  t.same(rejections(s2.R.receive(b)), ['DECRYPT_FAILED'], 'same people, new session: different keys');
  // alice's session with mallory (same room) cannot open what alice sent bob.
  const m = pair(alice, mallory);
  handshake(m.I, m.R);
  t.same(rejections(m.R.receive(b)), ['DECRYPT_FAILED']);
  // A message bounced back to its own sender is for the other direction: fails too.
  t.same(rejections(s1.I.receive(b)), ['DECRYPT_FAILED']);
});

t.test('psk: equal secrets establish; a missing or different secret fails with BAD_KEY_CONFIRMATION', async (t) => {
  const k = new Uint8Array(32).fill(1);
  const ok = pair(alice, bob, { pskI: k, pskR: k });
  handshake(ok.I, ok.R);
  t.equal(ok.I.state, 'ESTABLISHED');
  t.equal(ok.R.state, 'ESTABLISHED');
  for (const [name, o] of [
    ['different', { pskI: k, pskR: new Uint8Array(32).fill(2) }],
    ['initiator only', { pskI: k }],
    ['responder only', { pskR: k }],
  ] as const) {
    const { I, R } = pair(alice, bob, o);
    const resp = sent(R.receive(sent(I.start())));
    t.same(rejections(I.receive(resp)), ['BAD_KEY_CONFIRMATION'], name);
    t.equal(I.state, 'FAILED', name);
  }
});

t.test('key substitution by the relay never yields a silently working session', async (t) => {
  // (a) The relay hands alice mallory's key as "bob": bob cannot decrypt alice's secret.
  {
    const I = new PeerSession({ room: 'lobby', self: local(alice), peerNick: 'bob', peerKey: mallory.spki, role: 'initiator' });
    const R = new PeerSession({ room: 'lobby', self: local(bob), peerNick: 'alice', peerKey: alice.spki, role: 'responder' });
    t.same(rejections(R.receive(sent(I.start()))), ['OAEP_FAILED']);
    t.equal(R.state, 'FAILED');
  }
  // (b) Mallory answers as "bob" with its own key while alice holds bob's real key.
  {
    const I = new PeerSession({ room: 'lobby', self: local(alice), peerNick: 'bob', peerKey: bob.spki, role: 'initiator' });
    const M = new PeerSession({ room: 'lobby', self: local(mallory, 'bob'), peerNick: 'alice', peerKey: alice.spki, role: 'responder' });
    t.same(rejections(M.receive(sent(I.start()))), ['OAEP_FAILED'], 'mallory cannot read a secret sent to bob');
  }
  // (c) A responder that can decrypt but signs with another key (a stolen decryption oracle): BAD_SIGNATURE.
  {
    const wrongSigner: SessionRsa = {
      oaepEncrypt: (k, m) => nodeOaep(k, m),
      pssSign: (_k, m) => pssSign(mallory.privateKey, m),
    };
    const I = new PeerSession({ room: 'lobby', self: local(alice), peerNick: 'bob', peerKey: bob.spki, role: 'initiator' });
    const R = new PeerSession({ room: 'lobby', self: local(bob), peerNick: 'alice', peerKey: alice.spki, role: 'responder', rsa: wrongSigner });
    t.same(rejections(I.receive(sent(R.receive(sent(I.start()))))), ['BAD_SIGNATURE']);
    t.equal(I.state, 'FAILED');
    // and the same for the initiator's signature, seen by the responder
    const I2 = new PeerSession({ room: 'lobby', self: local(alice), peerNick: 'bob', peerKey: bob.spki, role: 'initiator', rsa: wrongSigner });
    const R2 = new PeerSession({ room: 'lobby', self: local(bob), peerNick: 'alice', peerKey: alice.spki, role: 'responder' });
    const fin = sent(I2.receive(sent(R2.receive(sent(I2.start())))));
    t.same(rejections(R2.receive(fin)), ['BAD_SIGNATURE']);
    t.equal(R2.state, 'FAILED');
  }
  // (d) The relay runs both ends itself (mallory's key given to each side): both handshakes complete,
  //     but the safety numbers the two people compare differ.
  {
    const A = new PeerSession({ room: 'lobby', self: local(alice), peerNick: 'bob', peerKey: mallory.spki, role: 'initiator' });
    const MB = new PeerSession({ room: 'lobby', self: local(mallory, 'bob'), peerNick: 'alice', peerKey: alice.spki, role: 'responder' });
    const MA = new PeerSession({ room: 'lobby', self: local(mallory, 'alice'), peerNick: 'bob', peerKey: bob.spki, role: 'initiator' });
    const B = new PeerSession({ room: 'lobby', self: local(bob), peerNick: 'alice', peerKey: mallory.spki, role: 'responder' });
    handshake(A, MB);
    handshake(MA, B);
    t.equal(A.state, 'ESTABLISHED');
    t.equal(B.state, 'ESTABLISHED');
    t.not(A.safetyNumber, B.safetyNumber, 'alice and bob see different numbers');
    t.equal(safetyNumber('alice', alice.spki, 'bob', bob.spki), safetyNumber('bob', bob.spki, 'alice', alice.spki));
  }
});


t.test('any single-bit change in any handshake frame prevents establishment', async (t) => {
  // A sample of bit positions across each frame (every byte once, a rotating bit), bounded in count.
  const frames = handshake(...Object.values(pair()) as [PeerSession, PeerSession]);
  for (const which of ['init', 'resp', 'finish'] as const) {
    const len = frames[which].length;
    let failedEverywhere = true;
    for (let i = 0; i < len; i += 7) {
      const { I, R } = pair();
      const init = sent(I.start());
      let ok = true;
      if (which === 'init') {
        const e = R.receive(flip(init, i, i % 8));
        if (R.state !== 'AWAIT_FINISH') ok = false;
        else if (I.receive(sent(e)) && I.state !== 'FAILED') ok = true;
        else ok = false;
      } else {
        const resp = sent(R.receive(init));
        if (which === 'resp') {
          I.receive(flip(resp, i, i % 8));
          ok = I.state === 'ESTABLISHED';
        } else {
          const fin = sent(I.receive(resp));
          R.receive(flip(fin, i, i % 8));
          ok = R.state === 'ESTABLISHED';
        }
      }
      if (ok) {
        failedEverywhere = false;
        t.fail(`${which} byte ${i} bit ${i % 8} still established`);
      }
    }
    t.ok(failedEverywhere, `${which}: every sampled flip was rejected`);
  }
});

t.test('handshake refusals: version, low-order ephemeral key, wrong-size secret, frames out of order', async (t) => {
  {
    const { I, R } = pair();
    const init = decodeFrame(sent(I.start()), 'e2e');
    if (init.type !== 'HS_INIT') throw new Error('unreachable');
    t.same(rejections(R.receive(encodeFrame(frame('HS_INIT', { ...init, version: 2 })))), ['UNSUPPORTED_VERSION']);
    t.equal(R.state, 'FAILED');
  }
  for (const [name, eph] of [
    ['zero point', new Uint8Array(32)],
    ['point of order 8', Uint8Array.from(Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex'))],
  ] as const) {
    const { I, R } = pair();
    const init = decodeFrame(sent(I.start()), 'e2e');
    if (init.type !== 'HS_INIT') throw new Error('unreachable');
    t.same(rejections(R.receive(encodeFrame(frame('HS_INIT', { ...init, eph })))), ['BAD_EPHEMERAL_KEY'], name);
  }
  {
    // A valid OAEP ciphertext of 31 bytes instead of the 32-byte secret.
    const { I, R } = pair();
    const init = decodeFrame(sent(I.start()), 'e2e');
    if (init.type !== 'HS_INIT') throw new Error('unreachable');
    const ct = nodeOaep(bob.publicKey, new Uint8Array(31));
    t.same(rejections(R.receive(encodeFrame(frame('HS_INIT', { ...init, ct })))), ['OAEP_FAILED']);
  }
  {
    const { I, R } = pair();
    const init = sent(I.start());
    t.same(rejections(I.receive(init)), ['UNEXPECTED_FRAME'], 'HS_INIT at the initiator in AWAIT_RESP');
    t.equal(I.state, 'FAILED');
    t.same(rejections(I.receive(init)), ['UNEXPECTED_FRAME'], 'after FAILED: reported, stays FAILED');
    t.equal(I.state, 'FAILED');
    const resp = sent(R.receive(init));
    t.same(rejections(R.receive(resp)), ['UNEXPECTED_FRAME'], 'HS_RESP at the responder');
    t.equal(R.state, 'FAILED');
  }
  {
    const { I, R } = established();
    const again = pair();
    t.same(rejections(R.receive(sent(again.I.start()))), ['UNEXPECTED_FRAME'], 'HS_INIT in ESTABLISHED');
    t.equal(R.state, 'FAILED');
    t.equal(thrownCode(() => R.sendText('x')), 'UNEXPECTED_FRAME');
    t.equal(I.state, 'ESTABLISHED');
  }
  {
    const { I, R } = pair();
    const b = sent(established().I.sendText('early', 0).events);
    t.same(rejections(R.receive(b)), ['UNEXPECTED_FRAME'], 'MSG before the handshake');
    t.same(rejections(R.start()), ['UNEXPECTED_FRAME'], 'start on a responder');
    t.equal(thrownCode(() => I.sendText('x')), 'UNEXPECTED_FRAME', 'sendText before ESTABLISHED');
    t.same(rejections(I.receive(Uint8Array.of(0xc1))), ['MALFORMED_FRAME'], 'garbage in IDLE fails the session');
    t.equal(I.state, 'FAILED');
  }
});

t.test('an ACK marks its message delivered once; the same ACK again is a REPLAY', async (t) => {
  const { I, R } = established();
  const m = I.sendText('one', 0);
  const ack = sent(R.receive(sent(m.events)));
  t.same(I.receive(ack), [{ kind: 'delivered', seq: 0 }]);
  t.same(rejections(I.receive(ack)), ['REPLAY'], 'the same ACK again is a replay');
});

t.test('timeout fails a pending handshake and is ignored otherwise; peerLeft closes; destroy erases', async (t) => {
  {
    const { I, R } = pair();
    R.receive(sent(I.start()));
    t.same(rejections(I.timeout()), ['TIMEOUT']);
    t.equal(I.state, 'FAILED');
    t.same(rejections(R.timeout()), ['TIMEOUT']);
    t.equal(R.state, 'FAILED');
  }
  {
    const { I, R } = established();
    t.same(I.timeout(), []);
    t.equal(I.state, 'ESTABLISHED');
    const b = sent(I.sendText('unanswered', 0).events);
    I.sendText('also unanswered', 0);
    I.peerLeft();
    t.equal(I.state, 'CLOSED');
    t.same(I.unacknowledged(), [0, 1]);
    t.same(rejections(I.receive(sent(R.receive(b)))), ['UNEXPECTED_FRAME'], 'nothing is acted on after CLOSED');
    t.equal(I.state, 'CLOSED');
    R.destroy();
    t.equal(R.state, 'CLOSED');
    t.equal(thrownCode(() => R.sendText('x')), 'UNEXPECTED_FRAME');
  }
});

t.test('the constructor refuses a peer key that is not a canonical RSA-2048 key', async (t) => {
  const bad = [new Uint8Array(10), Uint8Array.from([...bob.spki, 0])];
  for (const peerKey of bad) {
    t.equal(thrownCode(() => new PeerSession({ room: 'lobby', self: local(alice), peerNick: 'bob', peerKey, role: 'initiator' })), 'BAD_PUBLIC_KEY');
  }
});

t.test('establishmentRsaOps runs one side and both sides of the RSA work', async (t) => {
  const ops = establishmentRsaOps(alice, bob);
  t.doesNotThrow(() => ops.side());
  t.doesNotThrow(() => ops.both());
});
