// Properties of the end-to-end session (issue 3 "Tests"), stated as invariants over random inputs with
// fast-check, with fixed run counts: any message round-trips; any single-bit change in a MSG is refused
// and changes nothing; a session never reuses a (key, nonce) pair; both sides derive the same keys and
// safety number; a psk mismatch is BAD_KEY_CONFIRMATION; a substituted key never completes.
import t from 'tap';
import fc from 'fast-check';
import { decodeFrame } from '../../src/codec/index.js';
import { type SessionEvent } from '../../src/handshake/session.js';
import { recompute, runHandshake, sealMsg, textFrame, messageKeyAt, type HandshakeSetup, type SideRandomness } from '../../src/vectors/crypto-handshake.js';
import { bytesToHex } from '../../src/crypto/bytes.js';
import { nodeBackend } from '../../src/crypto/node.js';
import { messageNonce } from '../../src/crypto/schedule.js';
import { established, sent, rejections, flip, alice, bob, mallory, session } from './helpers.js';

const c = nodeBackend;

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const side: fc.Arbitrary<SideRandomness> = fc.record({ secret: bytes32, eph: bytes32, oaepSeed: bytes32, pssSalt: bytes32 });
const psk = fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }), { nil: undefined });
const setup: fc.Arbitrary<HandshakeSetup> = fc
  .record({ room: fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/), randI: side, randR: side, psk })
  .map(({ psk: k, ...r }) => ({ ...r, initiator: 'alice' as const, responder: 'bob' as const, ...(k === undefined ? {} : { psk: k }) }));
const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 400 }).filter((s) => Buffer.byteLength(s) <= 16384);

function textOf(events: SessionEvent[]): string | undefined {
  const e = events.find((x) => x.kind === 'text');
  return e?.kind === 'text' ? e.text : undefined;
}

t.test('any text round-trips in both directions and is acknowledged', async (t) => {
  const { I, R } = await established(c);
  await t.resolves(
    fc.assert(
      fc.asyncProperty(text, fc.boolean(), fc.nat({ max: 2 ** 40 }), async (s, fromI, ts) => {
        const [a, b] = fromI ? [I, R] : [R, I];
        const m = await a.sendText(s, ts);
        const got = await b.receive(sent(m.events));
        const ack = await a.receive(sent(got));
        return textOf(got) === s && ack.length === 1 && ack[0]?.kind === 'delivered' && ack[0].seq === m.seq;
      }),
      { numRuns: 150 },
    ),
  );
});

t.test('any single-bit change anywhere in a MSG body is refused and leaves the session usable', async (t) => {
  const { I, R } = await established(c);
  await t.resolves(
    fc.assert(
      fc.asyncProperty(text, fc.nat(), fc.integer({ min: 0, max: 7 }), async (s, pos, bit) => {
        const body = sent((await I.sendText(s, 0)).events);
        const bad = flip(body, pos % body.length, bit);
        const r = await R.receive(bad);
        const refused = r.length === 1 && r[0]?.kind === 'rejected' && R.state === 'ESTABLISHED';
        const good = await R.receive(body);
        await I.receive(sent(good));
        return refused && textOf(good) === s;
      }),
      { numRuns: 300 },
    ),
  );
});

t.test('a session never reuses a nonce: per direction the seqs run 0,1,2,... and every message key differs', async (t) => {
  await t.resolves(
    fc.assert(
      fc.asyncProperty(setup, fc.array(fc.boolean(), { minLength: 1, maxLength: 30 }), async (s, order) => {
        const run = await runHandshake(s);
        const tr = await recompute(s, run);
        const seqs: Record<'I->R' | 'R->I', number[]> = { 'I->R': [], 'R->I': [] };
        const note = (dir: 'I->R' | 'R->I', body: Uint8Array) => {
          const f = decodeFrame(body, 'e2e');
          if (f.type === 'MSG') seqs[dir].push(f.seq);
        };
        for (const fromI of order) {
          const [a, b, dir, back] = fromI ? ([run.I, run.R, 'I->R', 'R->I'] as const) : ([run.R, run.I, 'R->I', 'I->R'] as const);
          const m = sent((await a.sendText('x', 0)).events);
          note(dir, m);
          const ack = sent(await b.receive(m));
          note(back, ack);
          await a.receive(ack);
        }
        const pairs = new Set<string>();
        for (const dir of ['I->R', 'R->I'] as const) {
          if (!seqs[dir].every((v, i) => v === i)) return false;
          for (const n of seqs[dir]) pairs.add(bytesToHex(await messageKeyAt(tr.keys, dir, n)) + bytesToHex(messageNonce(n)));
        }
        return pairs.size === seqs['I->R'].length + seqs['R->I'].length;
      }),
      { numRuns: 10 },
    ),
  );
});

t.test('both sides derive the same keys and the same safety number', async (t) => {
  await t.resolves(
    fc.assert(
      fc.asyncProperty(setup, async (s) => {
        const run = await runHandshake(s);
        if (run.I.state !== 'ESTABLISHED' || run.R.state !== 'ESTABLISHED') return false;
        const tr = await recompute(s, run);
        const names = { room: s.room, nickI: 'alice', nickR: 'bob' };
        // Messages sealed with the independently recomputed keys open on each side, and vice versa.
        const toR = textOf(await run.R.receive(await sealMsg(tr.keys, names, 'I->R', 0, textFrame(1, 'to R'))));
        const toI = textOf(await run.I.receive(await sealMsg(tr.keys, names, 'R->I', 0, textFrame(1, 'to I'))));
        return toR === 'to R' && toI === 'to I' && (await run.I.safetyNumber()) === (await run.R.safetyNumber());
      }),
      { numRuns: 12 },
    ),
  );
});

t.test('a psk mismatch fails with BAD_KEY_CONFIRMATION', async (t) => {
  await t.resolves(
    fc.assert(
      fc.asyncProperty(setup, psk, async (s, other) => {
        fc.pre(!(other === undefined && s.psk === undefined) && !(other !== undefined && s.psk !== undefined && Buffer.from(other).equals(Buffer.from(s.psk))));
        const run = await runHandshake({ ...s, responderPsk: other ?? null });
        return run.I.state === 'FAILED' && rejections(run.eventsI).join() === 'BAD_KEY_CONFIRMATION' && run.R.state === 'AWAIT_FINISH';
      }),
      { numRuns: 10 },
    ),
  );
});

t.test('a substituted identity key never completes a handshake', async (t) => {
  // The relay hands one side mallory's key in place of the peer's; whichever side it is, some check fails.
  await t.resolves(
    fc.assert(
      fc.asyncProperty(fc.boolean(), fc.option(fc.uint8Array({ minLength: 1, maxLength: 32 }), { nil: undefined }), async (fooledInitiator, k) => {
        const withPsk = { room: 'r', ...(k === undefined ? {} : { psk: k }) };
        const I = await session(c, alice, fooledInitiator ? mallory : bob, 'initiator', { ...withPsk, peerNick: 'bob' });
        const R = await session(c, bob, fooledInitiator ? alice : mallory, 'responder', { ...withPsk, peerNick: 'alice' });
        const eR = await R.receive(sent(await I.start()));
        if (R.state === 'FAILED') return rejections(eR).join() === 'OAEP_FAILED';
        const eI = await I.receive(sent(eR));
        if (I.state === 'FAILED') return ['OAEP_FAILED', 'BAD_SIGNATURE'].includes(rejections(eI).join());
        return false;
      }),
      { numRuns: 8 },
    ),
  );
});
