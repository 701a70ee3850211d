/**
 * The cryptographic floor's work (bench/crypto-floor.ts) is protocol v2's per-message work and nothing
 * less: a batch of texts gives exactly one cumulative ACK (§8.3 step 6), the ACK acknowledges every text
 * of the batch, and no step is skipped. Nothing is timed here: the loops run for a window the test does
 * not check, only what they did in it.
 */
import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { FLOOR_BATCH, establishedPair, measureFloor, oneBatch, primitivesRate } from '../../bench/crypto-floor.js';
import { LIMITS } from '../../src/protocol/limits.js';

function identity(nick: string) {
  const k = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  return { nick, privateKey: k.privateKey, spki: new Uint8Array(k.publicKey.export({ format: 'der', type: 'spki' })) };
}

const a = identity('floora');
const b = identity('floorb');

t.test('a batch of ACK_BATCH_TEXTS texts costs one ACK, which acknowledges all of them', async (t) => {
  t.equal(FLOOR_BATCH, LIMITS.ACK_BATCH_TEXTS, 'the floor waits as long as the rule allows, no longer');
  const pair = await establishedPair('floor', a, b);
  const s0 = pair.sender.sealedCount;
  const r0 = pair.receiver.sealedCount;
  await oneBatch(pair.sender, pair.receiver, 'x'.repeat(200));
  t.equal(pair.sender.sealedCount - s0, FLOOR_BATCH, 'one seal per text');
  t.equal(pair.receiver.sealedCount - r0, 1, 'one ACK sealed for the whole batch');
  t.same(pair.sender.unacknowledged(), [], 'every text of the batch is acknowledged');
  await oneBatch(pair.sender, pair.receiver, 'y', 1);
  t.equal(pair.receiver.sealedCount - r0, 2, 'a batch of one is one ACK too');
});

t.test('batch sizes the rule does not allow are refused', async (t) => {
  const pair = await establishedPair('floor2', a, b);
  await t.rejects(oneBatch(pair.sender, pair.receiver, 'x', 0), RangeError);
  await t.rejects(oneBatch(pair.sender, pair.receiver, 'x', LIMITS.ACK_BATCH_TEXTS + 1), RangeError);
  t.equal(pair.sender.sealedCount, 0, 'nothing was sent for a refused batch');
});

t.test('the measuring loops count whole batches', async (t) => {
  const pair = await establishedPair('floor3', a, b);
  const r = await measureFloor(pair, 'x'.repeat(200), 0, 1);
  t.ok(r.messages >= FLOOR_BATCH, 'at least one batch ran');
  t.equal(r.messages % FLOOR_BATCH, 0, 'only whole batches are counted');
  t.ok(Number.isFinite(r.msgsPerS) && r.msgsPerS > 0);
  t.ok(Number.isFinite(r.primitivesPerS) && r.primitivesPerS > 0);
  t.same(pair.sender.unacknowledged(), [], 'the loop left nothing unacknowledged');
  t.ok((await primitivesRate('x', 0, 1)) > 0);
});
