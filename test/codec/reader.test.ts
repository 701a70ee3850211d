/**
 * FrameReader (spec/PROTOCOL.md §3): length checks before buffering, waiting on partial input, the first
 * error poisoning the reader, and the bound on what it buffers.
 */
import t from 'tap';
import { ProtocolError } from '../../src/protocol/errors.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { FrameReader } from '../../src/codec/reader.js';
import { encodeWire, frame } from '../../src/codec/frame.js';
import { cat, wire } from '../../src/wirekit/msgpack.js';

const errName = (fn: () => unknown): string => {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return e instanceof ProtocolError ? e.errorName : 'other';
  }
};

t.test('a zero length prefix is MALFORMED_FRAME', async (t) => {
  t.equal(errName(() => new FrameReader().push(cat('00000000'))), 'MALFORMED_FRAME');
});

t.test('a declared length over the limit is FRAME_TOO_LARGE on the prefix alone, nothing buffered', async (t) => {
  const r = new FrameReader();
  t.equal(errName(() => r.push(cat('00010001'))), 'FRAME_TOO_LARGE');
  t.equal(r.pending, 0);
  // Prefix split over several pushes: still refused when its fourth byte arrives, before any body byte.
  const r2 = new FrameReader();
  t.same(r2.push(cat('00')), []);
  t.same(r2.push(cat('01')), []);
  t.same(r2.push(cat('00')), []);
  t.equal(errName(() => r2.push(cat('01'))), 'FRAME_TOO_LARGE');
  t.equal(errName(() => new FrameReader().push(cat('ffffffff', Buffer.alloc(100)))), 'FRAME_TOO_LARGE');
});

t.test('a smaller configured limit applies: at the limit accepted, one past refused', async (t) => {
  const r = new FrameReader(1024);
  t.same(r.push(wire(new Uint8Array(0), 1024)), []);
  t.notOk(r.atBoundary, 'waiting for the 1024-byte body');
  t.equal(errName(() => new FrameReader(1024).push(wire(new Uint8Array(0), 1025))), 'FRAME_TOO_LARGE');
});

t.test('a declared length of exactly MAX_FRAME_BYTES is accepted and its body assembled', async (t) => {
  const r = new FrameReader();
  const body = Buffer.alloc(LIMITS.MAX_FRAME_BYTES, 7);
  t.same(r.push(wire(new Uint8Array(0), LIMITS.MAX_FRAME_BYTES)), []);
  t.same(r.push(body.subarray(0, 1000)), []);
  t.equal(r.pending, 1000);
  const out = r.push(body.subarray(1000));
  t.equal(out.length, 1);
  t.ok(out[0]!.equals(body));
  t.ok(r.atBoundary);
  t.equal(r.pending, 0);
});

t.test('partial input waits; several frames in one chunk all come out, in order', async (t) => {
  const a = encodeWire(frame('PING', { n: 1 }));
  const b = encodeWire(frame('PONG', { n: 2 }));
  const r = new FrameReader();
  t.same(r.push(a.subarray(0, 2)), []);
  t.notOk(r.atBoundary);
  const out = r.push(Buffer.concat([a.subarray(2), b, a.subarray(0, 5)]));
  t.equal(out.length, 2);
  t.ok(out[0]!.equals(a.subarray(4)));
  t.ok(out[1]!.equals(b.subarray(4)));
  t.notOk(r.atBoundary, 'a partial third frame is pending');
  t.equal(r.push(a.subarray(5)).length, 1);
  t.ok(r.atBoundary);
  t.same(r.push(new Uint8Array(0)), [], 'an empty chunk is nothing');
});

t.test('returned bodies are fresh copies: reusing the input buffer does not change them', async (t) => {
  const chunk = Buffer.from(encodeWire(frame('PING', { n: 5 })));
  const [body] = new FrameReader().push(chunk);
  const copy = Buffer.from(body!);
  chunk.fill(0);
  t.ok(body!.equals(copy));
});

t.test('with views, a body whole in its chunk is a view of it; one spread over chunks is its own buffer', async (t) => {
  const one = Buffer.from(encodeWire(frame('PING', { n: 5 })));
  const two = Buffer.from(encodeWire(frame('PING', { n: 6 })));
  const r = new FrameReader(LIMITS.MAX_FRAME_BYTES, { views: true });
  const chunk = Buffer.concat([one, two.subarray(0, 6)]);
  const [a] = r.push(chunk);
  t.same([...a!], [...one.subarray(4)], 'the first body as sent');
  t.equal(a!.buffer, chunk.buffer, 'a view into the chunk, no copy');
  const [b] = r.push(two.subarray(6));
  t.same([...b!], [...two.subarray(4)], 'the body gathered over two chunks');
  t.not(b!.buffer, chunk.buffer, 'in a buffer of its own, not tied to either chunk');
  t.equal(r.pending, 0);
});

t.test('the first error poisons the reader: later pushes throw the same error', async (t) => {
  const r = new FrameReader();
  let first: unknown;
  try {
    r.push(cat('00000000'));
  } catch (e) {
    first = e;
  }
  t.ok(first instanceof ProtocolError);
  let second: unknown;
  try {
    r.push(encodeWire(frame('PING', { n: 1 })));
  } catch (e) {
    second = e;
  }
  t.equal(second, first, 'the same error object');
  t.equal(r.pending, 0, 'nothing kept after an error');
});

t.test('what the reader holds is bounded by one frame whatever is pushed', async (t) => {
  const r = new FrameReader(100);
  let maxPending = 0;
  const stream = Buffer.concat(Array.from({ length: 50 }, (_, i) => wire(Buffer.alloc(100, i))));
  for (let i = 0; i < stream.length; i += 7) {
    r.push(stream.subarray(i, i + 7));
    maxPending = Math.max(maxPending, r.pending);
  }
  t.ok(maxPending <= 100 + LIMITS.LENGTH_PREFIX_BYTES, `pending stayed at most one frame (${maxPending})`);
  t.ok(r.atBoundary);
});

t.test('a partial frame survives the caller reusing its input buffer', async (t) => {
  const wireBytes = Buffer.from(encodeWire(frame('PING', { n: 300 })));
  const r = new FrameReader();
  const scratch = Buffer.alloc(wireBytes.length);
  const out: Buffer[] = [];
  // One scratch buffer, overwritten before every push, as a caller with a fixed read buffer would do.
  for (let i = 0; i < wireBytes.length; i += 3) {
    scratch.fill(0xee);
    const n = wireBytes.copy(scratch, 0, i, i + 3);
    out.push(...r.push(scratch.subarray(0, n)));
  }
  t.equal(out.length, 1);
  t.ok(out[0]!.equals(wireBytes.subarray(4)));
});

t.test('a configured limit outside 1..MAX_FRAME_BYTES is a programming error', async (t) => {
  t.throws(() => new FrameReader(0), RangeError);
  t.throws(() => new FrameReader(LIMITS.MAX_FRAME_BYTES + 1), RangeError);
  t.throws(() => new FrameReader(1.5), RangeError);
});

t.test('frames before a bad length prefix in the same push are returned; the error follows them (§3)', async (t) => {
  const r = new FrameReader();
  const ping = encodeWire(frame('PING', { n: 7 }));
  const out = r.push(Buffer.concat([ping, ping, cat('ffffffff')]));
  t.equal(out.length, 2, 'both complete frames come out');
  t.equal(r.failure?.errorName, 'FRAME_TOO_LARGE', 'the error is recorded for after them');
  t.equal(errName(() => r.push(ping)), 'FRAME_TOO_LARGE', 'and poisons every later push');
  t.equal(new FrameReader().failure, undefined, 'a fresh reader has no failure');
});

t.test('a partial frame is held in one buffer of its declared length, whatever the segmentation', async (t) => {
  const body = Buffer.alloc(3000, 9);
  const w = Buffer.concat([Buffer.from([0, 0, 0x0b, 0xb8]), body]);
  const r = new FrameReader();
  t.equal(r.reserved, 0);
  // One byte at a time, from a reused buffer: the reader must copy, and hold only the declared length.
  const scratch = Buffer.alloc(1);
  let out: Buffer[] = [];
  const held: number[] = [];
  const pending: number[] = [];
  for (let i = 0; i < w.length; i++) {
    scratch[0] = w[i]!;
    out = r.push(scratch);
    if (i < w.length - 1) {
      held.push(r.reserved);
      pending.push(r.pending);
    }
  }
  t.same(held.slice(0, 3), [0, 0, 0], 'nothing allocated before the prefix is whole');
  t.ok(held.slice(3).every((n) => n === 3000), 'then exactly the declared length, until the frame completes');
  t.ok(pending.every((n, i) => n === (i < 3 ? i + 1 : i - 3)), 'pending counts the prefix bytes, then the body bytes received');
  t.equal(out.length, 1);
  t.same(out[0], body, 'assembled from 3004 one-byte pushes into a reused buffer');
  t.equal(r.reserved, 0);
  t.ok(r.atBoundary);
});

t.test('the limit may change between frames and applies to the next prefix read', async (t) => {
  const r = new FrameReader(600);
  t.equal(r.limit, 600);
  t.same(r.push(wire(new Uint8Array(0), 600).subarray(0, 2)), []);
  r.limit = 65536; // e.g. WELCOME: the relay's max_frame from here on
  t.equal(r.limit, 65536);
  t.same(r.push(Buffer.concat([wire(new Uint8Array(0), 601).subarray(2), Buffer.alloc(601)])).length, 1, 'the raised limit applied to the prefix in progress');
  t.throws(() => {
    r.limit = 0;
  }, RangeError);
  const low = new FrameReader(600);
  t.equal(errName(() => low.push(wire(new Uint8Array(0), 601))), 'FRAME_TOO_LARGE');
});

t.test('remaining: bytes to the end of the frame in progress, 0 between frames, -1 inside the length prefix', async (t) => {
  const r = new FrameReader();
  t.equal(r.remaining, 0);
  const f = Buffer.concat([Buffer.from([0, 0, 0, 10]), Buffer.alloc(10, 7)]);
  t.same(r.push(f.subarray(0, 2)), []);
  t.equal(r.remaining, -1, 'the length is not known yet');
  t.same(r.push(f.subarray(2, 7)), []);
  t.equal(r.remaining, 7, '3 of 10 body bytes read');
  t.equal(r.push(f.subarray(7)).length, 1);
  t.equal(r.remaining, 0);
  t.equal(r.push(Buffer.concat([f, f.subarray(0, 4)])).length, 1);
  t.equal(r.remaining, 10, 'a whole prefix and no body byte yet');
});
