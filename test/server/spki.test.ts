// The relay's HELLO key check (spec §8.1) by byte comparison with the canonical RSA-2048 / 65537 SPKI
// template, and the import of a checked key's modulus for the AUTH signature.
import t from 'tap';
import { authMessage, generateIdentity, pssSign, pssVerify } from '../../src/crypto/rsa.js';
import { importTemplateSpki, isTemplateSpki, SPKI_BYTES } from '../../src/server/spki.js';

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
