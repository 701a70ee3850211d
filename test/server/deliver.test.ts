// The relay's direct DELIVER encoder equals the codec's canonical encoding (spec §4, §6 DELIVER) for every
// nickname length and every body-length boundary of the bin 8/16 forms (bin 16 covers every body up to MAX_BODY_BYTES), and refuses what DELIVER cannot hold.
import t from 'tap';
import fc from 'fast-check';
import { decodeFrame, encodeWire, frame } from '../../src/codec/index.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { Outbox, Spare, deliverHead, deliverWire, readSend, sendAt, sendToIs } from '../../src/server/deliver.js';

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

// readSend: the relay's direct SEND reader accepts exactly the canonical valid SEND, with the result the
// strict decoder gives; for everything else it declines (undefined) and the strict decoder decides.
const sendBody = (to: string, body: Uint8Array): Buffer => Buffer.from(encodeWire(frame('SEND', { to, body })).subarray(4));

function decodeOrError(b: Buffer): { type: string; to?: string; body?: Buffer } | string {
  try {
    const f = decodeFrame(b, 'relay');
    return f.type === 'SEND' ? { type: f.type, to: f.to, body: Buffer.from(f.body) } : { type: f.type };
  } catch (e) {
    return (e as { errorName?: string }).errorName ?? 'other';
  }
}

t.test('readSend reads every canonical SEND as the strict decoder does: each nick length, each body boundary', async (t) => {
  const lengths = [1, 2, 255, 256, 257, LIMITS.MAX_BODY_BYTES];
  let same = 0;
  let total = 0;
  for (let k = LIMITS.NICK_MIN_BYTES; k <= LIMITS.NICK_MAX_BYTES; k++) {
    const to = Array.from({ length: k }, (_, i) => NICK_CHARS[(i * 7) % NICK_CHARS.length]).join('');
    for (const n of lengths) {
      total++;
      const b = sendBody(to, Buffer.alloc(n, n & 0xff));
      const fast = readSend(b);
      const slow = decodeOrError(b);
      if (fast !== undefined && typeof slow === 'object' && fast.to === slow.to && Buffer.from(fast.body).equals(slow.body!)) same++;
    }
  }
  t.equal(same, total, `${total} SENDs read directly, equal to decodeFrame`);
  const b = sendBody('bob', Buffer.alloc(10, 1));
  t.equal(readSend(b)!.body.buffer, b.buffer, 'the body is a view, not a copy');
  const last = 'bob';
  t.equal(readSend(b, last)!.to, last, 'the previous addressee string is reused when the bytes spell it');
  t.equal(readSend(b, 'bo')!.to, 'bob', 'and not when they do not');
  t.equal(readSend(b, 'bod')!.to, 'bob');
});

t.test('readSend declines every non-canonical, invalid or other frame, and the strict decoder refuses or reads it', async (t) => {
  const good = sendBody('bob', Buffer.alloc(300, 2));
  const cases: [string, Buffer][] = [
    ['another frame (PING)', Buffer.from(encodeWire(frame('PING', { n: 1 })).subarray(4))],
    ['trailing byte', Buffer.concat([sendBody('bob', Buffer.alloc(3)), Buffer.from([0])])],
    ['truncated body', good.subarray(0, good.length - 1)],
    ['empty body (bin 8 of 0)', Buffer.from([0x83, 0xa1, 0x74, 0x09, 0xa2, 0x74, 0x6f, 0xa3, 0x62, 0x6f, 0x62, 0xa4, 0x62, 0x6f, 0x64, 0x79, 0xc4, 0x00])],
    ['bin 16 for a short body', Buffer.from([0x83, 0xa1, 0x74, 0x09, 0xa2, 0x74, 0x6f, 0xa1, 0x62, 0xa4, 0x62, 0x6f, 0x64, 0x79, 0xc5, 0x00, 0x01, 0x07])],
    ['str 8 for a short nick', Buffer.from([0x83, 0xa1, 0x74, 0x09, 0xa2, 0x74, 0x6f, 0xd9, 0x01, 0x62, 0xa4, 0x62, 0x6f, 0x64, 0x79, 0xc4, 0x01, 0x07])],
    ['nick outside the alphabet', Buffer.from([0x83, 0xa1, 0x74, 0x09, 0xa2, 0x74, 0x6f, 0xa1, 0x2e, 0xa4, 0x62, 0x6f, 0x64, 0x79, 0xc4, 0x01, 0x07])],
    ['empty nick', Buffer.from([0x83, 0xa1, 0x74, 0x09, 0xa2, 0x74, 0x6f, 0xa0, 0xa4, 0x62, 0x6f, 0x64, 0x79, 0xc4, 0x01, 0x07])],
    ['keys out of order', Buffer.from([0x83, 0xa1, 0x74, 0x09, 0xa4, 0x62, 0x6f, 0x64, 0x79, 0xc4, 0x01, 0x07, 0xa2, 0x74, 0x6f, 0xa1, 0x62])],
    ['body key misspelt', Buffer.from([0x83, 0xa1, 0x74, 0x09, 0xa2, 0x74, 0x6f, 0xa1, 0x62, 0xa4, 0x62, 0x6f, 0x64, 0x78, 0xc4, 0x01, 0x07])],
    ['body over MAX_BODY_BYTES', sendBodyRaw('bob', LIMITS.MAX_BODY_BYTES + 1)],
    ['a str where the body goes', Buffer.from([0x83, 0xa1, 0x74, 0x09, 0xa2, 0x74, 0x6f, 0xa1, 0x62, 0xa4, 0x62, 0x6f, 0x64, 0x79, 0xa1, 0x07])],
  ];
  for (const [what, b] of cases.slice(1)) {
    t.equal(readSend(b), undefined, `declined: ${what}`);
    t.type(decodeOrError(b), 'string', `and refused by the strict decoder with a code: ${what}`);
  }
  t.equal(readSend(cases[0]![1]), undefined, 'declined: a PING');
  t.same(decodeOrError(cases[0]![1]), { type: 'PING' }, 'which the strict decoder reads');
});

/** A SEND body of n bytes laid out by hand (bin 16), for lengths the encoder refuses. */
function sendBodyRaw(to: string, n: number): Buffer {
  return Buffer.concat([Buffer.from([0x83, 0xa1, 0x74, 0x09, 0xa2, 0x74, 0x6f, 0xa0 | to.length]), Buffer.from(to), Buffer.from([0xa4, 0x62, 0x6f, 0x64, 0x79, 0xc5, n >> 8, n & 0xff]), Buffer.alloc(n, 1)]);
}

t.test('property: on any mutation of a SEND, readSend either declines or agrees with the strict decoder', async (t) => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom(...NICK_CHARS), minLength: 1, maxLength: LIMITS.NICK_MAX_BYTES }),
      fc.uint8Array({ minLength: 1, maxLength: 600 }),
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: -3, max: 3 }),
      (to, body, at, byte, cut) => {
        let b = sendBody(to, body);
        b[at % b.length] = byte;
        if (cut < 0) b = b.subarray(0, Math.max(0, b.length + cut));
        else if (cut > 0) b = Buffer.concat([b, Buffer.alloc(cut, byte)]);
        const fast = readSend(b);
        if (fast === undefined) return true;
        const slow = decodeOrError(b);
        return typeof slow === 'object' && slow.type === 'SEND' && slow.to === fast.to && slow.body!.equals(fast.body);
      },
    ),
    { numRuns: 2000 },
  );
  t.pass('2000 mutated SENDs');
});

t.test('deliverHead + Outbox lay out the same DELIVERs as deliverWire, one buffer per batch', async (t) => {
  const out = new Outbox();
  t.equal(out.take(), undefined, 'nothing queued, nothing taken');
  const head = deliverHead('alice');
  const bodies = [Buffer.alloc(1, 1), Buffer.alloc(255, 2), Buffer.alloc(256, 3), Buffer.alloc(LIMITS.MAX_BODY_BYTES, 4)];
  const ping = Buffer.from(encodeWire(frame('PONG', { n: 9 })));
  let n = 0;
  for (const b of bodies) n += out.appendDeliver(head, b);
  out.append(ping);
  t.equal(out.length, n + ping.length);
  const bytes = out.take()!;
  t.ok(bytes.equals(Buffer.concat([...bodies.map((b) => deliverWire('alice', b)), ping])), 'byte-equal to the frames one by one, in order');
  t.equal(out.length, 0);
  t.equal(out.take(), undefined, 'taken once');
  out.append(ping);
  const small = out.take()!;
  t.ok(small.equals(ping), 'a lone frame after a large batch');
  t.ok(small.buffer.byteLength <= 8192, 'is not handed on inside the large batch-sized buffer it was queued in');
  t.throws(() => out.appendDeliver(head, new Uint8Array(0)), RangeError);
  t.throws(() => deliverHead('no.dots'), RangeError);
});

t.test('sendAt reads a SEND inside a larger buffer as readSend reads it alone', async (t) => {
  const bodies = [Buffer.from('x'), Buffer.alloc(255, 1), Buffer.alloc(256, 2), Buffer.alloc(LIMITS.MAX_BODY_BYTES, 3)];
  const frames = bodies.map((body, i) => encodeWire(frame('SEND', { to: i % 2 === 0 ? 'bob' : 'b'.repeat(32), body })));
  const all = Buffer.concat(frames);
  let p = 0;
  for (const [i, f] of frames.entries()) {
    const alone = readSend(f.subarray(4))!;
    const at = sendAt(all, p + 4, p + f.length);
    t.ok(at > 0);
    t.ok(all.subarray(at, p + f.length).equals(Buffer.from(alone.body)), `frame ${i}: the same body`);
    t.equal(sendToIs(all, alone.to), true);
    t.equal(sendToIs(all, alone.to.slice(1)), false);
    t.equal(sendAt(all, p + 4, p + f.length - 1), -1, 'a frame cut short is not a SEND');
    p += f.length;
  }
  t.equal(sendAt(all, 1, all.length), -1);
});

t.test('Outbox with a Spare: a batch buffer whose bytes were written starts the next batch; what the spare keeps is bounded', async (t) => {
  const spare = new Spare();
  const out = new Outbox(spare);
  const head = deliverHead('alice');
  const body = Buffer.alloc(256, 9);
  const batch = (n: number, fill: number): Buffer => {
    for (let i = 0; i < n; i++) out.appendDeliver(head, Buffer.alloc(256, fill));
    return out.take()!;
  };
  const first = batch(100, 1); // about 27 KB: owns its memory
  const firstBuffer = first.buffer;
  out.recycle();
  const second = batch(100, 2);
  t.equal(second.buffer, firstBuffer, 'the recycled buffer carries the next batch');
  t.ok(second.equals(Buffer.concat(Array.from({ length: 100 }, () => deliverWire('alice', Buffer.alloc(256, 2))))), 'with the next batch bytes');
  // Not recycled (the write did not complete at once): the next batch gets a fresh buffer.
  const third = batch(100, 3);
  t.not(third.buffer, firstBuffer);
  // A small batch never goes to the spare (its buffer may be a slice of a shared pool).
  const other = new Outbox(spare);
  other.appendDeliver(head, body);
  const small = other.take()!;
  other.recycle();
  t.equal(spare.get(1), undefined, 'nothing kept');
  t.equal(small.length, deliverWire('alice', body).length);
  // A buffer much larger than its bytes is copied out and kept at once; the spare holds one, at most 1 MiB.
  spare.put(Buffer.allocUnsafeSlow(2 * 1024 * 1024));
  t.equal(spare.get(1), undefined, 'over 1 MiB is not kept');
  const kept = Buffer.allocUnsafeSlow(64 * 1024);
  spare.put(kept);
  t.equal(spare.get(128 * 1024), undefined, 'too small for the request');
  t.equal(spare.get(1000), kept);
  t.equal(spare.get(1000), undefined, 'handed out once');
});
