// The per-peer session (spec/PROTOCOL.md §7.2, §8.2, §8.3): the handshake in both roles, messages both
// ways, and every rejection named by the spec, asserted by error code and by the resulting state; on both
// crypto backends (node:crypto and WebCrypto). Then the ordering the asynchronous steps keep.
import t from 'tap';
import { decodeFrame, encodeFrame, frame } from '../../src/codec/index.js';
import { PeerSession, type SessionRsa } from '../../src/handshake/session.js';
import { safetyNumber } from '../../src/crypto/safety.js';
import type { CryptoBackend } from '../../src/crypto/backend.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { webCryptoBackend } from '../../src/crypto/webcrypto.js';
import { BACKENDS, alice, bob, mallory, pair, privateKeyOf, publicKeyOf, session, sent, rejections, handshake, established, flip, thrownCode, local } from './helpers.js';

for (const c of BACKENDS) {
  t.test(`${c.name}: initiator and responder establish a session and agree on the safety number`, async (t) => {
    const { I, R } = await pair(c);
    t.equal(I.state, 'IDLE');
    t.equal(R.state, 'IDLE');
    const init = sent(await I.start());
    t.equal(I.state, 'AWAIT_RESP');
    t.equal(decodeFrame(init, 'e2e').type, 'HS_INIT');
    const eR = await R.receive(init);
    t.equal(R.state, 'AWAIT_FINISH');
    const resp = sent(eR);
    t.equal(decodeFrame(resp, 'e2e').type, 'HS_RESP');
    const eI = await I.receive(resp);
    t.equal(I.state, 'ESTABLISHED');
    t.same(eI.map((e) => e.kind), ['send', 'established']);
    const eR2 = await R.receive(sent(eI));
    t.equal(R.state, 'ESTABLISHED');
    t.same(eR2.map((e) => e.kind), ['established']);
    const snI = await I.safetyNumber();
    const snR = await R.safetyNumber();
    t.match(snI, /^\d{5}( \d{5}){11}$/);
    t.equal(snI, snR, 'both sides show the same number');
    t.equal(snI, safetyNumber('alice', alice.spki, 'bob', bob.spki), 'the same number as the synchronous node:crypto computation');
  });

  t.test(`${c.name}: text messages flow both ways, each is acknowledged, and delivered marks the sender side`, async (t) => {
    const { I, R } = await established(c);
    const m0 = await I.sendText('hello bob', 1000);
    t.equal(m0.seq, 0);
    const atR = await R.receive(sent(m0.events));
    t.same(atR[0], { kind: 'text', seq: 0, ts: 1000, text: 'hello bob' });
    t.same(I.unacknowledged(), [0]);
    t.same(await I.receive(sent(atR)), [{ kind: 'delivered', seq: 0 }]);
    t.same(I.unacknowledged(), []);
    // R's ACK used R's seq 0, so R's first text is seq 1.
    const r1 = await R.sendText('hi alice ☃', 2000);
    t.equal(r1.seq, 1);
    const atI = await I.receive(sent(r1.events));
    t.same(atI[0], { kind: 'text', seq: 1, ts: 2000, text: 'hi alice ☃' });
    t.same(await R.receive(sent(atI)), [{ kind: 'delivered', seq: 1 }]);
    t.equal(I.state, 'ESTABLISHED');
    t.equal(R.state, 'ESTABLISHED');
  });

  t.test(`${c.name}: a message of the largest allowed text round-trips; one byte more is refused locally`, async (t) => {
    const { I, R } = await established(c);
    const big = 'x'.repeat(16384);
    const m = await I.sendText(big, 1);
    const body = sent(m.events);
    t.ok(body.length <= 49152, 'fits in a SEND body');
    const ev = await R.receive(body);
    t.equal(ev[0]?.kind === 'text' ? ev[0].text : '', big);
    t.equal(await thrownCode(() => I.sendText(big + 'x', 1)), 'INVALID_FIELD');
    t.equal(await thrownCode(() => I.sendText('', 1)), 'INVALID_FIELD');
  });

  t.test(`${c.name}: plaintext lengths are padded to power-of-two buckets`, async (t) => {
    const { I } = await established(c);
    const sizes = new Set<number>();
    for (const n of [1, 10, 100, 200, 230]) {
      const ct = decodeFrame(sent((await I.sendText('a'.repeat(n), 0)).events), 'e2e');
      if (ct.type === 'MSG') sizes.add(ct.ct.length);
    }
    t.same([...sizes], [256 + 16], 'all short texts share the 256-byte bucket');
    const ct = decodeFrame(sent((await I.sendText('a'.repeat(300), 0)).events), 'e2e');
    t.equal(ct.type === 'MSG' ? ct.ct.length : 0, 512 + 16);
  });

  t.test(`${c.name}: a replayed MSG is REPLAY, a skipped-ahead one OUT_OF_ORDER; neither changes the session`, async (t) => {
    const { I, R } = await established(c);
    const b0 = sent((await I.sendText('zero', 0)).events);
    const b1 = sent((await I.sendText('one', 0)).events);
    const b2 = sent((await I.sendText('two', 0)).events);
    t.same(rejections(await R.receive(b1)), ['OUT_OF_ORDER']);
    t.same(rejections(await R.receive(b2)), ['OUT_OF_ORDER']);
    t.equal((await R.receive(b0))[0]?.kind, 'text');
    t.same(rejections(await R.receive(b0)), ['REPLAY']);
    t.equal((await R.receive(b1))[0]?.kind, 'text');
    t.equal((await R.receive(b2))[0]?.kind, 'text');
    t.same(rejections(await R.receive(b1)), ['REPLAY']);
    t.equal(R.state, 'ESTABLISHED');
  });

  t.test(`${c.name}: an altered MSG is DECRYPT_FAILED, a truncated one a codec error; the genuine one still opens`, async (t) => {
    const { I, R } = await established(c);
    const b = sent((await I.sendText('integrity', 0)).events);
    t.same(rejections(await R.receive(flip(b, b.length - 1))), ['DECRYPT_FAILED'], 'tag bit');
    t.same(rejections(await R.receive(flip(b, 40))), ['DECRYPT_FAILED'], 'ciphertext bit');
    t.same(rejections(await R.receive(b.subarray(0, b.length - 1))), ['MALFORMED_FRAME'], 'truncated body');
    t.same(rejections(await R.receive(Uint8Array.of(0x81, 0xa1, 0x74, 0x31))), ['UNKNOWN_FRAME_TYPE'], 'an inner frame type outside the e2e layer');
    t.equal(R.state, 'ESTABLISHED');
    t.equal((await R.receive(b))[0]?.kind, 'text');
  });

  t.test(`${c.name}: a MSG re-targeted to another session or replayed into a new session fails to open`, async (t) => {
    const s1 = await established(c);
    const b = sent((await s1.I.sendText('for bob, session 1', 0)).events);
    const s2 = await established(c);
    t.same(rejections(await s2.R.receive(b)), ['DECRYPT_FAILED'], 'same people, new session: different keys');
    // alice's session with mallory (same room) cannot open what alice sent bob.
    const m = await pair(c, alice, mallory);
    await handshake(m.I, m.R);
    t.same(rejections(await m.R.receive(b)), ['DECRYPT_FAILED']);
    // A message bounced back to its own sender is for the other direction: fails too.
    t.same(rejections(await s1.I.receive(b)), ['DECRYPT_FAILED']);
  });

  t.test(`${c.name}: psk: equal secrets establish; a missing or different secret fails with BAD_KEY_CONFIRMATION`, async (t) => {
    const k = new Uint8Array(32).fill(1);
    const ok = await pair(c, alice, bob, { pskI: k, pskR: k });
    await handshake(ok.I, ok.R);
    t.equal(ok.I.state, 'ESTABLISHED');
    t.equal(ok.R.state, 'ESTABLISHED');
    for (const [name, o] of [
      ['different', { pskI: k, pskR: new Uint8Array(32).fill(2) }],
      ['initiator only', { pskI: k }],
      ['responder only', { pskR: k }],
    ] as const) {
      const { I, R } = await pair(c, alice, bob, o);
      const resp = sent(await R.receive(sent(await I.start())));
      t.same(rejections(await I.receive(resp)), ['BAD_KEY_CONFIRMATION'], name);
      t.equal(I.state, 'FAILED', name);
    }
  });

  t.test(`${c.name}: key substitution by the relay never yields a silently working session`, async (t) => {
    // (a) The relay hands alice mallory's key as "bob": bob cannot decrypt alice's secret.
    {
      const I = await session(c, alice, mallory, 'initiator', { peerNick: 'bob' });
      const R = await session(c, bob, alice, 'responder');
      t.same(rejections(await R.receive(sent(await I.start()))), ['OAEP_FAILED']);
      t.equal(R.state, 'FAILED');
    }
    // (b) Mallory answers as "bob" with its own key while alice holds bob's real key.
    {
      const I = await session(c, alice, bob, 'initiator');
      const M = await session(c, mallory, alice, 'responder', { nick: 'bob' });
      t.same(rejections(await M.receive(sent(await I.start()))), ['OAEP_FAILED'], 'mallory cannot read a secret sent to bob');
    }
    // (c) A responder that can decrypt but signs with another key (a stolen decryption oracle): BAD_SIGNATURE.
    {
      const malloryKey = await privateKeyOf(c, mallory);
      const wrongSigner: SessionRsa = {
        oaepEncrypt: (k, m) => c.oaepEncrypt(k, m),
        pssSign: (_k, m) => c.pssSign(malloryKey, m),
      };
      const I = await session(c, alice, bob, 'initiator');
      const R = await session(c, bob, alice, 'responder', { rsa: wrongSigner });
      t.same(rejections(await I.receive(sent(await R.receive(sent(await I.start()))))), ['BAD_SIGNATURE']);
      t.equal(I.state, 'FAILED');
      // and the same for the initiator's signature, seen by the responder
      const I2 = await session(c, alice, bob, 'initiator', { rsa: wrongSigner });
      const R2 = await session(c, bob, alice, 'responder');
      const fin = sent(await I2.receive(sent(await R2.receive(sent(await I2.start())))));
      t.same(rejections(await R2.receive(fin)), ['BAD_SIGNATURE']);
      t.equal(R2.state, 'FAILED');
    }
    // (d) The relay runs both ends itself (mallory's key given to each side): both handshakes complete,
    //     but the safety numbers the two people compare differ.
    {
      const A = await session(c, alice, mallory, 'initiator', { peerNick: 'bob' });
      const MB = await session(c, mallory, alice, 'responder', { nick: 'bob' });
      const MA = await session(c, mallory, bob, 'initiator', { nick: 'alice' });
      const B = await session(c, bob, mallory, 'responder', { peerNick: 'alice' });
      await handshake(A, MB);
      await handshake(MA, B);
      t.equal(A.state, 'ESTABLISHED');
      t.equal(B.state, 'ESTABLISHED');
      t.not(await A.safetyNumber(), await B.safetyNumber(), 'alice and bob see different numbers');
    }
  });

  t.test(`${c.name}: any single-bit change in any handshake frame prevents establishment`, async (t) => {
    // A sample of bit positions across each frame (every 7th byte, a rotating bit), bounded in count.
    const p = await pair(c);
    const frames = await handshake(p.I, p.R);
    for (const which of ['init', 'resp', 'finish'] as const) {
      const len = frames[which].length;
      let failedEverywhere = true;
      for (let i = 0; i < len; i += 7) {
        const { I, R } = await pair(c);
        const init = sent(await I.start());
        let ok: boolean;
        if (which === 'init') {
          const e = await R.receive(flip(init, i, i % 8));
          ok = R.state === 'AWAIT_FINISH' && (await I.receive(sent(e))) && I.state !== 'FAILED';
        } else {
          const resp = sent(await R.receive(init));
          if (which === 'resp') {
            await I.receive(flip(resp, i, i % 8));
            ok = I.state === 'ESTABLISHED';
          } else {
            const fin = sent(await I.receive(resp));
            await R.receive(flip(fin, i, i % 8));
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

  t.test(`${c.name}: handshake refusals: version, low-order ephemeral key, wrong-size secret, frames out of order`, async (t) => {
    {
      const { I, R } = await pair(c);
      const init = decodeFrame(sent(await I.start()), 'e2e');
      if (init.type !== 'HS_INIT') throw new Error('unreachable');
      t.same(rejections(await R.receive(encodeFrame(frame('HS_INIT', { ...init, version: 1 })))), ['UNSUPPORTED_VERSION']);
      t.equal(R.state, 'FAILED');
    }
    for (const [name, eph] of [
      ['zero point', new Uint8Array(32)],
      ['point of order 8', Uint8Array.from(Buffer.from('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'hex'))],
    ] as const) {
      const { I, R } = await pair(c);
      const init = decodeFrame(sent(await I.start()), 'e2e');
      if (init.type !== 'HS_INIT') throw new Error('unreachable');
      t.same(rejections(await R.receive(encodeFrame(frame('HS_INIT', { ...init, eph })))), ['BAD_EPHEMERAL_KEY'], name);
    }
    {
      // A valid OAEP ciphertext of 31 bytes instead of the 32-byte secret.
      const { I, R } = await pair(c);
      const init = decodeFrame(sent(await I.start()), 'e2e');
      if (init.type !== 'HS_INIT') throw new Error('unreachable');
      const ct = await c.oaepEncrypt(await publicKeyOf(c, bob), new Uint8Array(31));
      t.same(rejections(await R.receive(encodeFrame(frame('HS_INIT', { ...init, ct })))), ['OAEP_FAILED']);
    }
    {
      const { I, R } = await pair(c);
      const init = sent(await I.start());
      t.same(rejections(await I.receive(init)), ['UNEXPECTED_FRAME'], 'HS_INIT at the initiator in AWAIT_RESP');
      t.equal(I.state, 'FAILED');
      t.same(rejections(await I.receive(init)), ['UNEXPECTED_FRAME'], 'after FAILED: reported, stays FAILED');
      t.equal(I.state, 'FAILED');
      const resp = sent(await R.receive(init));
      t.same(rejections(await R.receive(resp)), ['UNEXPECTED_FRAME'], 'HS_RESP at the responder');
      t.equal(R.state, 'FAILED');
    }
    {
      const { I, R } = await established(c);
      const again = await pair(c);
      t.same(rejections(await R.receive(sent(await again.I.start()))), ['UNEXPECTED_FRAME'], 'HS_INIT in ESTABLISHED');
      t.equal(R.state, 'FAILED');
      t.equal(await thrownCode(() => R.sendText('x')), 'UNEXPECTED_FRAME');
      t.equal(I.state, 'ESTABLISHED');
    }
    {
      const { I, R } = await pair(c);
      const b = sent((await (await established(c)).I.sendText('early', 0)).events);
      t.same(rejections(await R.receive(b)), ['UNEXPECTED_FRAME'], 'MSG before the handshake');
      t.same(rejections(await R.start()), ['UNEXPECTED_FRAME'], 'start on a responder');
      t.equal(await thrownCode(() => I.sendText('x')), 'UNEXPECTED_FRAME', 'sendText before ESTABLISHED');
      t.same(rejections(await I.receive(Uint8Array.of(0xc1))), ['MALFORMED_FRAME'], 'garbage in IDLE fails the session');
      t.equal(I.state, 'FAILED');
    }
  });

  t.test(`${c.name}: an ACK marks its message delivered once; the same ACK again is a REPLAY`, async (t) => {
    const { I, R } = await established(c);
    const m = await I.sendText('one', 0);
    const ack = sent(await R.receive(sent(m.events)));
    t.same(await I.receive(ack), [{ kind: 'delivered', seq: 0 }]);
    t.same(rejections(await I.receive(ack)), ['REPLAY'], 'the same ACK again is a replay');
  });

  t.test(`${c.name}: timeout fails a pending handshake and is ignored otherwise; peerLeft closes; destroy erases`, async (t) => {
    {
      const { I, R } = await pair(c);
      await R.receive(sent(await I.start()));
      t.same(rejections(await I.timeout()), ['TIMEOUT']);
      t.equal(I.state, 'FAILED');
      t.same(rejections(await R.timeout()), ['TIMEOUT']);
      t.equal(R.state, 'FAILED');
    }
    {
      const { I, R } = await established(c);
      t.same(await I.timeout(), []);
      t.equal(I.state, 'ESTABLISHED');
      const b = sent((await I.sendText('unanswered', 0)).events);
      await I.sendText('also unanswered', 0);
      I.peerLeft();
      t.equal(I.state, 'CLOSED');
      t.same(I.unacknowledged(), [0, 1]);
      t.same(rejections(await I.receive(sent(await R.receive(b)))), ['UNEXPECTED_FRAME'], 'nothing is acted on after CLOSED');
      t.equal(I.state, 'CLOSED');
      R.destroy();
      t.equal(R.state, 'CLOSED');
      t.equal(await thrownCode(() => R.sendText('x')), 'UNEXPECTED_FRAME');
    }
  });

  t.test(`${c.name}: importPublicKey refuses a peer key that is not a canonical RSA-2048 key`, async (t) => {
    const bad = [new Uint8Array(10), Uint8Array.from([...bob.spki, 0]), bob.spki.subarray(0, 293)];
    for (const spki of bad) t.equal(await thrownCode(() => c.importPublicKey(spki)), 'BAD_PUBLIC_KEY');
  });
}

/**
 * A backend whose every asynchronous operation finishes after a pseudo-random delay (0-3 ms), so that
 * steps which were not serialized would finish out of order.
 */
function jittery(inner: CryptoBackend, seed: number): CryptoBackend {
  let s = seed;
  const pause = () => new Promise<void>((resolve) => setTimeout(resolve, (s = (s * 1103515245 + 12345) % 2 ** 31) % 4));
  const out: Record<string, unknown> = { name: inner.name, randomBytes: (n: number) => inner.randomBytes(n) };
  for (const k of Object.keys(inner) as (keyof CryptoBackend)[]) {
    // Without the synchronous per-message primitives: every operation goes through a delayed promise.
    if (k === 'name' || k === 'randomBytes' || k === 'sync') continue;
    const f = inner[k] as (...a: unknown[]) => Promise<unknown>;
    out[k] = async (...a: unknown[]) => {
      await pause();
      const r = await f(...a);
      await pause();
      return r;
    };
  }
  return out as unknown as CryptoBackend;
}

t.test('steps called without waiting run in call order: frames are never processed out of order', async (t) => {
  const c = jittery(nodeBackend, 7);
  const { I, R } = await pair(c);
  // The three handshake frames each delivered the moment they exist; the first texts called at once
  // after the last handshake step was called, before it finished: every step waits for the one before.
  const resp = I.start().then((e) => R.receive(sent(e)));
  const established = resp.then((e) => {
    const fin = I.receive(sent(e));
    const texts = [I.sendText('one', 1), I.sendText('two', 2), I.sendText('three', 3)];
    return { fin, texts };
  });
  const { fin, texts } = await established;
  t.same((await R.receive(sent(await fin))).map((e) => e.kind), ['established']);
  const msgs = await Promise.all(texts);
  t.same(msgs.map((m) => m.seq), [0, 1, 2], 'message numbers in call order');
  // Delivered in order without waiting in between: each opens, none is OUT_OF_ORDER.
  const got = await Promise.all(msgs.map((m) => R.receive(sent(m.events))));
  t.same(got.map((e) => (e[0]?.kind === 'text' ? e[0].text : rejections(e).join())), ['one', 'two', 'three']);
  // R's ACKs took its numbers 0, 1, 2 in that order; a text of R's called after them takes 3.
  const own = await R.sendText('four', 4);
  t.equal(own.seq, 3);
  const acks = await Promise.all(got.map((e) => I.receive(sent(e))));
  t.same(acks.map((e) => e[0]?.kind === 'delivered' && e[0].seq), [0, 1, 2]);
});

t.test('a session closed while a step is in flight installs and reports nothing from that step', async (t) => {
  const c = jittery(webCryptoBackend(), 3);
  const { I, R } = await pair(c);
  const pendingInit = I.start();
  I.destroy();
  t.same(await pendingInit, [], 'the HS_INIT being built is not reported');
  t.equal(I.state, 'CLOSED');
  const { I: I2 } = await pair(c);
  const init = sent(await I2.start());
  const pendingResp = R.receive(init);
  R.peerLeft();
  t.same(await pendingResp, [], 'the HS_RESP being built is not reported');
  t.equal(R.state, 'CLOSED');
});

t.test('a key handle works only with the backend that made it', async (t) => {
  const w = webCryptoBackend();
  const nodeKey = await nodeBackend.importPublicKey(bob.spki);
  const webKey = await w.importPublicKey(bob.spki);
  t.equal(webKey.backend, 'webcrypto');
  t.same(Array.from(webKey.spki), Array.from(bob.spki));
  await t.rejects(w.oaepEncrypt(nodeKey, new Uint8Array(32)), TypeError);
  await t.rejects(nodeBackend.oaepEncrypt(webKey, new Uint8Array(32)), TypeError);
  await t.rejects(w.oaepEncrypt({ ...webKey }, new Uint8Array(32)), TypeError, 'a copy of a handle is not a handle');
});

t.test('WebCrypto: an identity kept as non-extractable CryptoKeys (as a page keeps it) runs a session', async (t) => {
  const w = webCryptoBackend();
  const subtle = globalThis.crypto.subtle;
  const oaep = await subtle.importKey('pkcs8', alice.pkcs8, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt']);
  const pss = await subtle.importKey('pkcs8', alice.pkcs8, { name: 'RSA-PSS', hash: 'SHA-256' }, false, ['sign']);
  const key = w.privateKeyFromCryptoKeys(oaep, pss);
  const R = await session(w, bob, alice, 'responder');
  const I = new PeerSession({ crypto: w, room: 'lobby', self: { nick: 'alice', key, spki: alice.spki }, peerNick: 'bob', peerKey: await publicKeyOf(w, bob), role: 'initiator' });
  await handshake(I, R);
  t.equal(I.state, 'ESTABLISHED');
  t.equal(R.state, 'ESTABLISHED');
  t.throws(() => w.privateKeyFromCryptoKeys(pss, oaep), RangeError, 'the two keys swapped');
});

// §8.3 step 6 (version 2): cumulative, delayed ACKs.
t.test('a read batch of TEXTs gets one cumulative ACK at its end, which delivers every TEXT it covers', async (t) => {
  const { I, R } = await established(nodeBackend);
  const bodies = [];
  for (const text of ['one', 'two', 'three']) bodies.push(sent((await I.sendText(text, 1)).events));
  const e0 = await R.receive(bodies[0]!, true);
  const e1 = await R.receive(bodies[1]!, true);
  t.same([e0, e1].map((e) => e.map((x) => x.kind)), [['text'], ['text']], 'no ACK while the batch has more');
  const e2 = await R.receive(bodies[2]!);
  t.same(e2.map((x) => x.kind), ['text', 'send'], 'the last body of the batch ends with the ACK');
  const ack = decodeFrame(sent(e2), 'e2e');
  t.equal(ack.type === 'MSG' ? ack.seq : -1, 0, "the ACK is R's first MSG");
  t.same(await I.receive(sent(e2)), [0, 1, 2].map((seq) => ({ kind: 'delivered', seq })), 'one ACK delivers all three');
  t.same(I.unacknowledged(), []);
  t.equal(R.sealedCount, 1, 'three TEXTs cost R one seal');
  t.same(await R.flushAck(), [], 'nothing is due after the ACK');
});

t.test('an ACK is sent at the latest after ACK_BATCH_TEXTS TEXTs, even inside a batch', async (t) => {
  const { I, R } = await established(nodeBackend);
  const acks: number[] = [];
  let first: Uint8Array | undefined;
  for (let i = 0; i < LIMITS.ACK_BATCH_TEXTS + 1; i++) {
    const ev = await R.receive(sent((await I.sendText(`m${i}`, 1)).events), true);
    if (ev.some((e) => e.kind === 'send')) {
      acks.push(i);
      first = sent(ev);
    }
  }
  t.same(acks, [LIMITS.ACK_BATCH_TEXTS - 1], 'one ACK, at the bound');
  t.equal((await I.receive(first!)).filter((e) => e.kind === 'delivered').length, LIMITS.ACK_BATCH_TEXTS, 'it covers the first ACK_BATCH_TEXTS texts');
  const flushed = await R.flushAck();
  t.equal(flushed.length, 1, 'the text after the bound is acknowledged when the batch ends');
  t.same((await I.receive(sent(flushed))).map((e) => (e.kind === 'delivered' ? e.seq : -1)), [LIMITS.ACK_BATCH_TEXTS]);
});

/**
 * A backend that logs when the OAEP decryption is called, and an `rsa` whose signature is logged when it
 * starts and finishes a turn of the event loop later (or fails then, with `failSign`).
 */
function logged(c: CryptoBackend, log: string[], failSign = false): { c: CryptoBackend; rsa: SessionRsa } {
  const wrapped: CryptoBackend = {
    ...c,
    oaepDecrypt: (k, ct, label) => {
      log.push('decrypt');
      return c.oaepDecrypt(k, ct, label);
    },
  };
  const rsa: SessionRsa = {
    oaepEncrypt: (k, m) => c.oaepEncrypt(k, m),
    pssSign: async (k, m) => {
      log.push('sign started');
      const sig = await c.pssSign(k, m);
      await new Promise<void>((resolve) => setImmediate(resolve));
      log.push('sign done');
      if (failSign) throw new Error('signer failed');
      return sig;
    },
  };
  return { c: wrapped, rsa };
}

for (const c of BACKENDS) {
  t.test(`${c.name}: each side's signature runs beside its OAEP decryption, and is sent only when the step succeeds`, async (t) => {
    const log: string[] = [];
    const w = logged(c, log);
    const I = new PeerSession({ crypto: w.c, room: 'lobby', self: await local(w.c, alice), peerNick: 'bob', peerKey: await publicKeyOf(c, bob), role: 'initiator', rsa: w.rsa });
    const R = new PeerSession({ crypto: w.c, room: 'lobby', self: await local(w.c, bob), peerNick: 'alice', peerKey: await publicKeyOf(c, alice), role: 'responder', rsa: w.rsa });
    const init = sent(await I.start());
    log.length = 0;
    const resp = sent(await R.receive(init));
    t.same(log, ['sign started', 'decrypt', 'sign done'], 'responder: the decryption of s_I does not wait for sig_R');
    log.length = 0;
    const fin = sent(await I.receive(resp));
    t.same(log, ['sign started', 'decrypt', 'sign done'], 'initiator: the decryption of s_R does not wait for sig_I');
    t.same((await R.receive(fin)).map((e) => e.kind), ['established']);
    t.equal(I.state, 'ESTABLISHED');
    t.equal(R.state, 'ESTABLISHED');

    // A failed decryption is OAEP_FAILED as before, whatever the signature in flight does afterwards.
    for (const failSign of [false, true]) {
      const l2: string[] = [];
      const w2 = logged(c, l2, failSign);
      const I2 = await session(c, alice, mallory, 'initiator', { peerNick: 'bob' });
      const R2 = new PeerSession({ crypto: w2.c, room: 'lobby', self: await local(w2.c, bob), peerNick: 'alice', peerKey: await publicKeyOf(c, alice), role: 'responder', rsa: w2.rsa });
      const out = await R2.receive(sent(await I2.start()));
      t.same(rejections(out), ['OAEP_FAILED'], `responder, signature ${failSign ? 'failing' : 'succeeding'} later`);
      t.notOk(out.some((e) => e.kind === 'send'), 'nothing is sent');
      t.equal(R2.state, 'FAILED');
      // The initiator's checks keep the spec's order: a substituted responder key is BAD_SIGNATURE
      // (after a successful decryption), and the early signature is never sent.
      const l3: string[] = [];
      const w3 = logged(c, l3, failSign);
      const I3 = new PeerSession({ crypto: w3.c, room: 'lobby', self: await local(w3.c, alice), peerNick: 'bob', peerKey: await publicKeyOf(c, bob), role: 'initiator', rsa: w3.rsa });
      const M = await session(c, bob, alice, 'responder', { rsa: { oaepEncrypt: (k, m) => c.oaepEncrypt(k, m), pssSign: async (_k, m) => c.pssSign(await privateKeyOf(c, mallory), m) } });
      const out3 = await I3.receive(sent(await M.receive(sent(await I3.start()))));
      t.same(rejections(out3), ['BAD_SIGNATURE'], `initiator, signature ${failSign ? 'failing' : 'succeeding'} later`);
      t.notOk(out3.some((e) => e.kind === 'send'), 'no HS_FINISH');
      t.equal(I3.state, 'FAILED');
    }
    // The signature failing after a successful decryption fails the step as an internal error.
    const l4: string[] = [];
    const w4 = logged(c, l4, true);
    const I4 = await session(c, alice, bob, 'initiator');
    const R4 = new PeerSession({ crypto: w4.c, room: 'lobby', self: await local(w4.c, bob), peerNick: 'alice', peerKey: await publicKeyOf(c, alice), role: 'responder', rsa: w4.rsa });
    t.same(rejections(await R4.receive(sent(await I4.start()))), ['INTERNAL_ERROR']);
    t.equal(R4.state, 'FAILED');
  });
}
