// The relay's HELLO key check (spec §8.1) by byte comparison with the canonical RSA-2048 / 65537 SPKI
// template, and the import of a checked key's modulus for the AUTH signature.
import t from 'tap';
import { authMessage, generateIdentity, pssSign, pssVerify } from '../../src/crypto/rsa.js';
import { importTemplateSpki, isTemplateSpki, KeyCache, SPKI_BYTES } from '../../src/server/spki.js';

const id = generateIdentity();

t.test('a generated RSA-2048 key matches the template; every single-byte change of head or tail does not', async (t) => {
  t.equal(SPKI_BYTES, 294);
  t.equal(isTemplateSpki(id.spki), true);
  const bad: number[] = [];
  for (const i of [...Array(33).keys(), 289, 290, 291, 292, 293]) {
    const k = Uint8Array.from(id.spki);
    k[i] = k[i]! ^ 0x01;
    if (isTemplateSpki(k)) bad.push(i);
  }
  t.same(bad, [], 'no byte of the fixed parts may change');
  const low = Uint8Array.from(id.spki);
  low[33] = 0x7f; // a modulus under 2^2047 is not 2048 bits
  t.equal(isTemplateSpki(low), false);
  t.equal(isTemplateSpki(id.spki.subarray(0, 293)), false);
  t.equal(isTemplateSpki(Uint8Array.from([...id.spki, 0])), false);
});

t.test('the imported key verifies the owner signature and nothing else', async (t) => {
  const key = importTemplateSpki(id.spki);
  const msg = authMessage(new Uint8Array(32), 'alice', id.spki, 'r:1', new Uint8Array(0));
  const sig = pssSign(id.privateKey, msg);
  t.equal(pssVerify(key, msg, sig), true);
  t.equal(pssVerify(key, authMessage(new Uint8Array(32), 'bob', id.spki, 'r:1', new Uint8Array(0)), sig), false);
});

t.test('the key cache: only remembered keys are reused, the least recently used goes first, the size is bounded', async (t) => {
  const ids = [id, generateIdentity(), generateIdentity()];
  const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64');
  const cache = new KeyCache(2);
  const k0 = cache.get(b64(ids[0]!.spki), ids[0]!.spki);
  t.not(cache.get(b64(ids[0]!.spki), ids[0]!.spki), k0, 'a key not remembered is imported again');
  t.equal(cache.size, 0);
  cache.remember(b64(ids[0]!.spki), k0);
  t.equal(cache.get(b64(ids[0]!.spki), ids[0]!.spki), k0, 'a remembered key is the same object');
  const k1 = cache.get(b64(ids[1]!.spki), ids[1]!.spki);
  cache.remember(b64(ids[1]!.spki), k1);
  cache.get(b64(ids[0]!.spki), ids[0]!.spki); // 0 is now the most recently used
  const k2 = cache.get(b64(ids[2]!.spki), ids[2]!.spki);
  cache.remember(b64(ids[2]!.spki), k2);
  t.equal(cache.size, 2);
  t.equal(cache.get(b64(ids[0]!.spki), ids[0]!.spki), k0, 'the recently used key stays');
  t.not(cache.get(b64(ids[1]!.spki), ids[1]!.spki), k1, 'the least recently used key was dropped');
  t.equal(cache.get(b64(ids[2]!.spki), ids[2]!.spki), k2);
  // A cached key still verifies exactly what its owner signed.
  const msg = authMessage(new Uint8Array(32), 'carol', ids[2]!.spki, 'r:1', new Uint8Array(0));
  t.equal(pssVerify(cache.get(b64(ids[2]!.spki), ids[2]!.spki), msg, pssSign(ids[2]!.privateKey, msg)), true);
  t.equal(pssVerify(cache.get(b64(ids[2]!.spki), ids[2]!.spki), msg, pssSign(ids[0]!.privateKey, msg)), false);
});
