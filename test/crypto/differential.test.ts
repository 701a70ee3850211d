// node:crypto (OpenSSL) against node-forge, an independent implementation (issue 3): each library
// decrypts and verifies what the other produced, for random messages, keys, seeds and salts, and both
// refuse any single-bit change. Run counts are fixed; forge's private-key operations are slow.
import t from 'tap';
import fc from 'fast-check';
import forge from 'node-forge';
import { generateKeyPairSync } from 'node:crypto';
import { oaepDecrypt, oaepEncrypt, pssSign, pssSignAsync, pssVerify } from '../../src/crypto/rsa.js';
import { aeadOpen, aeadSeal } from '../../src/crypto/primitives.js';
import { forgeOaepDecrypt, forgeOaepEncrypt, forgePssSign, forgePssVerify } from '../../src/vectors/crypto-forge.js';
import { fixedIdentity } from '../../src/vectors/crypto-keys.js';

// Three fixed keys plus two fresh ones, so the properties are not tied to the committed test keys.
const fresh = [0, 1].map(() => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  return {
    privateKey,
    publicKey,
    spki: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })),
    pkcs8: new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' })),
  };
});
const KEYS = [...(['alice', 'bob', 'mallory'] as const).map(fixedIdentity), ...fresh];
const key = fc.integer({ min: 0, max: KEYS.length - 1 }).map((i) => KEYS[i]!);
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
// RSA-OAEP-2048 with SHA-256 carries at most 256 - 2*32 - 2 = 190 bytes.
const oaepMessage = fc.uint8Array({ minLength: 0, maxLength: 190 });
const flipAt = (b: Uint8Array, pos: number, bit: number): Uint8Array => {
  const c = Uint8Array.from(b);
  const i = pos % c.length;
  c[i] = (c[i] as number) ^ (1 << bit);
  return c;
};
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

t.test('RSA-OAEP: forge (fixed seed) -> node and node -> forge round-trip any message', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
    fc.property(key, oaepMessage, bytes32, (k, m, seed) => {
      const c1 = forgeOaepEncrypt(k.spki, m, seed);
      const c2 = oaepEncrypt(k.publicKey, m);
      return same(oaepDecrypt(k.privateKey, c1), m) && same(forgeOaepDecrypt(k.pkcs8, c2), m) && c1.length === 256;
    }),
    { numRuns: 25 },
  ), '25 runs each way');
});

t.test('RSA-OAEP: a single-bit change in the ciphertext is refused by both libraries', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
    fc.property(key, oaepMessage, fc.nat(), fc.integer({ min: 0, max: 7 }), (k, m, pos, bit) => {
      const bad = flipAt(oaepEncrypt(k.publicKey, m), pos, bit);
      let nodeRefused = false;
      let forgeRefused = false;
      try {
        oaepDecrypt(k.privateKey, bad);
      } catch {
        nodeRefused = true;
      }
      try {
        forgeOaepDecrypt(k.pkcs8, bad);
      } catch {
        forgeRefused = true;
      }
      return nodeRefused && forgeRefused;
    }),
    { numRuns: 20 },
  ), '20 runs');
});

t.test('RSA-PSS: forge (fixed salt) -> node and node -> forge verify; any bit change is refused by both', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
    fc.property(key, fc.uint8Array({ maxLength: 300 }), bytes32, fc.nat(), fc.integer({ min: 0, max: 7 }), (k, m, salt, pos, bit) => {
      const s1 = forgePssSign(k.pkcs8, m, salt);
      const s2 = pssSign(k.privateKey, m);
      const goodBoth = pssVerify(k.publicKey, m, s1) && forgePssVerify(k.spki, m, s2);
      const badSig = flipAt(s2, pos, bit);
      const refused = !pssVerify(k.publicKey, m, badSig) && !forgePssVerify(k.spki, m, badSig);
      const badMsg = m.length === 0 ? Uint8Array.of(0) : flipAt(m, pos, bit);
      const refusedMsg = !pssVerify(k.publicKey, badMsg, s1) && !forgePssVerify(k.spki, badMsg, s2);
      return goodBoth && refused && refusedMsg;
    }),
    { numRuns: 20 },
  ), '20 runs');
});

t.test('RSA-PSS with a fixed salt is deterministic; signatures under another key are refused', async (t) => {
  const [a, b] = [KEYS[0]!, KEYS[1]!];
  const m = Buffer.from('e2ee-chat/1 responder signature');
  const salt = new Uint8Array(32).fill(0x5a);
  t.ok(same(forgePssSign(a.pkcs8, m, salt), forgePssSign(a.pkcs8, m, salt)));
  t.notOk(pssVerify(b.publicKey, m, forgePssSign(a.pkcs8, m, salt)));
  t.notOk(forgePssVerify(b.spki, m, pssSign(a.privateKey, m)));
});

t.test('RSA-PSS in the thread pool (pssSignAsync): the same scheme, verified by node and forge; a public key is refused', async (t) => {
  const [a, b] = [KEYS[0]!, KEYS[1]!];
  const m = Buffer.from('e2ee-chat/1 initiator signature');
  const sigs = await Promise.all([1, 2, 3].map(() => pssSignAsync(a.privateKey, m)));
  for (const s of sigs) {
    t.equal(s.length, 256);
    t.ok(pssVerify(a.publicKey, m, s) && forgePssVerify(a.spki, m, s), 'verified by both');
    t.notOk(pssVerify(b.publicKey, m, s), 'not under another key');
  }
  t.notOk(same(sigs[0]!, sigs[1]!), 'a fresh salt each time');
  await t.rejects(pssSignAsync(a.publicKey, m), 'a public key cannot sign');
});

t.test('AES-256-GCM: forge -> node and node -> forge for any plaintext and AD; any bit change refused', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
    fc.property(bytes32, fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ maxLength: 80 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (k, iv, m, ad, pos, bit) => {
      const bin = (x: Uint8Array) => Buffer.from(x).toString('binary');
      const c = forge.cipher.createCipher('AES-GCM', bin(k));
      c.start({ iv: bin(iv), additionalData: bin(ad), tagLength: 128 });
      c.update(forge.util.createBuffer(bin(m)));
      c.finish();
      const forgeSealed = Buffer.concat([Buffer.from(c.output.getBytes(), 'binary'), Buffer.from(c.mode.tag.getBytes(), 'binary')]);
      const nodeSealed = aeadSeal(k, iv, m, ad);
      const d = forge.cipher.createDecipher('AES-GCM', bin(k));
      d.start({ iv: bin(iv), additionalData: bin(ad), tagLength: 128, tag: forge.util.createBuffer(bin(nodeSealed.subarray(nodeSealed.length - 16))) });
      d.update(forge.util.createBuffer(bin(nodeSealed.subarray(0, nodeSealed.length - 16))));
      const forgeOk = d.finish() && Buffer.from(d.output.getBytes(), 'binary').equals(Buffer.from(m));
      let tamperedRefused = false;
      try {
        aeadOpen(k, iv, flipAt(forgeSealed, pos, bit), ad);
      } catch {
        tamperedRefused = true;
      }
      return forgeSealed.equals(nodeSealed) && aeadOpen(k, iv, forgeSealed, ad).equals(Buffer.from(m)) && forgeOk && tamperedRefused;
    }),
    { numRuns: 200 },
  ), '200 runs');
});
