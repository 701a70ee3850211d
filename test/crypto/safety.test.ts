// Safety numbers and fingerprints (spec/PROTOCOL.md §8.4).
import t from 'tap';
import { createHash } from 'node:crypto';
import { fingerprint, partyDigits, safetyNumber } from '../../src/crypto/safety.js';
import { fixedIdentity } from '../../src/vectors/crypto-keys.js';

const a = fixedIdentity('alice');
const b = fixedIdentity('bob');
const m = fixedIdentity('mallory');

t.test('a safety number is 60 digits in 12 groups of 5 and the same from both sides', async (t) => {
  const ab = safetyNumber('alice', a.spki, 'bob', b.spki);
  t.match(ab, /^\d{5}( \d{5}){11}$/);
  t.equal(ab, safetyNumber('bob', b.spki, 'alice', a.spki));
  const [pa, pb] = [partyDigits('alice', a.spki), partyDigits('bob', b.spki)];
  t.equal(ab.replaceAll(' ', ''), pa < pb ? pa + pb : pb + pa, 'the two halves in ascending order');
});

t.test('the number changes when either key or either nickname changes', async (t) => {
  const ab = safetyNumber('alice', a.spki, 'bob', b.spki);
  t.not(safetyNumber('alice', a.spki, 'bob', m.spki), ab, 'bob key substituted');
  t.not(safetyNumber('alice', m.spki, 'bob', b.spki), ab, 'alice key substituted');
  t.not(safetyNumber('alice', a.spki, 'bobby', b.spki), ab, 'nickname changed');
});

t.test('the digits follow the spec formula (checked against a direct transcription)', async (t) => {
  // Independent transcription of §8.4 with BigInt chunking, for one party.
  let h = createHash('sha512').update(Buffer.concat([Buffer.from([0, 0]), a.spki, Buffer.from('alice')])).digest();
  for (let i = 0; i < 5199; i++) h = createHash('sha512').update(Buffer.concat([h, a.spki])).digest();
  let digits = '';
  for (let c = 0; c < 6; c++) digits += (BigInt('0x' + h.subarray(c * 5, c * 5 + 5).toString('hex')) % 100000n).toString().padStart(5, '0');
  t.equal(partyDigits('alice', a.spki), digits);
});

t.test('a fingerprint is the first 16 bytes of SHA-256(key) as 8 colon-separated groups of 4 hex digits', async (t) => {
  const f = fingerprint(a.spki);
  t.match(f, /^[0-9a-f]{4}(:[0-9a-f]{4}){7}$/);
  t.equal(f.replaceAll(':', ''), createHash('sha256').update(a.spki).digest().subarray(0, 16).toString('hex'));
  t.not(fingerprint(b.spki), f);
});
