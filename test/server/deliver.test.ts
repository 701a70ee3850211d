// The relay's direct DELIVER encoder equals the codec's canonical encoding (spec §4, §6 DELIVER) for every
// nickname length and every body-length boundary of the bin 8/16 forms (bin 16 covers every body up to MAX_BODY_BYTES), and refuses what DELIVER cannot hold.
import t from 'tap';
import fc from 'fast-check';
import { decodeFrame, encodeWire, frame } from '../../src/codec/index.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { deliverWire } from '../../src/server/deliver.js';

const NICK_CHARS = 'ABCXYZabcxyz0189_-';

t.test('equal to encodeWire for every nick length and the body-length boundaries', async (t) => {
  const lengths = [1, 2, 31, 32, 255, 256, 257, LIMITS.MAX_BODY_BYTES - 1, LIMITS.MAX_BODY_BYTES];
  let equal = 0;
  let total = 0;
  for (let k = LIMITS.NICK_MIN_BYTES; k <= LIMITS.NICK_MAX_BYTES; k++) {
    const nick = Array.from({ length: k }, (_, i) => NICK_CHARS[i % NICK_CHARS.length]).join('');
    for (const n of lengths) {
      const body = Buffer.alloc(n, k);
      total++;
      if (deliverWire(nick, body).equals(encodeWire(frame('DELIVER', { from: nick, body })))) equal++;
    }
  }
  t.equal(equal, total, `${total} nick x body-length combinations byte-equal`);
});

t.test('property: equal to encodeWire and decodes back to the same frame', async (t) => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom(...NICK_CHARS), minLength: 1, maxLength: LIMITS.NICK_MAX_BYTES }),
      fc.uint8Array({ minLength: 1, maxLength: 70_000 }).map((b) => b.subarray(0, LIMITS.MAX_BODY_BYTES)),
      (nick, body) => {
        const fast = deliverWire(nick, body);
        if (!fast.equals(encodeWire(frame('DELIVER', { from: nick, body })))) return false;
        const back = decodeFrame(fast.subarray(4), 'relay');
        return back.type === 'DELIVER' && back.from === nick && Buffer.from(back.body).equals(body) && fast.readUInt32BE(0) === fast.length - 4;
      },
    ),
    { numRuns: 200 },
  );
  t.pass('200 random (nick, body) pairs');
});

t.test('refuses a body or nick DELIVER cannot carry', async (t) => {
  t.throws(() => deliverWire('a', new Uint8Array(0)), RangeError);
  t.throws(() => deliverWire('a', new Uint8Array(LIMITS.MAX_BODY_BYTES + 1)), RangeError);
  t.throws(() => deliverWire('', new Uint8Array(1)), RangeError);
  t.throws(() => deliverWire('x'.repeat(LIMITS.NICK_MAX_BYTES + 1), new Uint8Array(1)), RangeError);
  t.throws(() => deliverWire('é', new Uint8Array(1)), RangeError);
});
