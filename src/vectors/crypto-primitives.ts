/**
 * vectors/primitives.json (spec/VECTORS.md "primitives.json"): the primitives of spec/PROTOCOL.md §8.1
 * with fixed keys and fixed randomness, the psk key, message chain, nonce, AD and padding of §8.2-§8.3,
 * safety numbers and fingerprints of §8.4. Each case names an `op`, gives its `input` (hex for bytes) and
 * exactly one of `output` (every field must match) or `error` (a §9 code name).
 *
 * The randomized operations (RSA-OAEP encryption, RSA-PSS signing) are reproduced with node-forge from
 * the given seed / salt, and each result is also checked with the backend under test (node:crypto, or
 * WebCrypto with `vectors verify --crypto webcrypto`: decrypt / verify), so a case holds only if two
 * independent implementations agree.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { authMessage } from '../crypto/identity.js';
import type { CryptoBackend } from '../crypto/backend.js';
import { fingerprintOf, safetyNumberOf } from '../crypto/fingerprint.js';
import { nodeBackend } from '../crypto/node.js';
import { equalSecret } from '../crypto/bytes.js';
import { aeadSeal, hmac, sha256, x25519KeyPair } from '../crypto/primitives.js';
import { formatRecoveryCode, parseRecoveryCode, recoveryCommit, recoveryCommitInput } from '../crypto/recovery.js';
import { Chain, messageAd, messageNonce, pad, pskKey, unpad } from '../crypto/schedule.js';
import { fromHex, toHex } from './hex.js';
import { FIXED_RSA_PKCS8, REFUSED_SPKI, fixedIdentity } from './crypto-keys.js';
import { loadForge, opCases, suite, verifyOpCases, type Json, type OpSpec } from './crypto-common.js';
import type { VectorCase, VectorSuite } from './types.js';

type Forge = Awaited<ReturnType<typeof loadForge>>;
type Input = Record<string, Json>;
type Result = { output: Record<string, Json> } | { error: string };

const h = (v: Json | undefined, where: string): Uint8Array => fromHex(v, where);
const label = (tag: string): Uint8Array => hmac(Buffer.from('e2ee-chat/1 vector randomness', 'ascii'), Buffer.from(tag, 'utf8'));

/** The SPKI of a PKCS#8 key (a consistency helper of the vectors, not an operation under test). */
function spkiOfPkcs8(pkcs8: Uint8Array): Uint8Array {
  return new Uint8Array(createPublicKey(createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' }));
}

/** Runs one operation with the runtime code of backend `c` (forge only where fixed randomness is needed); a refusal throws its ProtocolError (opResult). */
async function runOp(op: string, i: Input, forge: Forge, c: CryptoBackend): Promise<Result> {
  switch (op) {
    case 'rsa_oaep_encrypt': {
      const ct = forge.forgeOaepEncrypt(h(i['spki'], 'spki'), h(i['message'], 'message'), h(i['seed'], 'seed'));
      const back = await c.oaepDecrypt(await c.importPrivateKey(h(i['pkcs8'], 'pkcs8')), ct);
      if (toHex(back) !== i['message']) throw new Error(`${c.name} does not decrypt what forge encrypted`);
      return { output: { ct: toHex(ct) } };
    }
    case 'rsa_oaep_decrypt':
      return { output: { message: toHex(await c.oaepDecrypt(await c.importPrivateKey(h(i['pkcs8'], 'pkcs8')), h(i['ct'], 'ct'))) } };
    case 'rsa_pss_sign': {
      const sig = forge.forgePssSign(h(i['pkcs8'], 'pkcs8'), h(i['message'], 'message'), h(i['salt'], 'salt'));
      const pub = await c.importPublicKey(spkiOfPkcs8(h(i['pkcs8'], 'pkcs8')));
      if (!(await c.pssVerify(pub, h(i['message'], 'message'), sig))) throw new Error(`${c.name} does not verify what forge signed`);
      return { output: { sig: toHex(sig) } };
    }
    case 'rsa_pss_verify': {
      const key = await c.importPublicKey(h(i['spki'], 'spki'));
      if (!(await c.pssVerify(key, h(i['message'], 'message'), h(i['sig'], 'sig')))) return { error: 'BAD_SIGNATURE' };
      return { output: { valid: true } };
    }
    case 'public_key':
      await c.importPublicKey(h(i['spki'], 'spki'));
      return { output: { fingerprint: await fingerprintOf(c, h(i['spki'], 'spki')) } };
    case 'x25519': {
      const kp = await c.x25519KeyPair(h(i['private'], 'private'));
      const own = toHex(kp.publicKey);
      return { output: { own_public: own, shared: toHex(await c.x25519(kp.privateKey, h(i['peer_public'], 'peer_public'))) } };
    }
    case 'psk_key':
      return { output: { psk_key: toHex(await pskKey(c, i['psk'] === null ? undefined : h(i['psk'], 'psk'))) } };
    case 'hkdf':
      return { output: { okm: toHex(await c.hkdfSha256(h(i['ikm'], 'ikm'), h(i['salt'], 'salt'), h(i['info'], 'info'), Number(i['length']))) } };
    case 'aead_seal':
      return { output: { ct: toHex(await c.aesGcmSeal(h(i['key'], 'key'), h(i['nonce'], 'nonce'), h(i['plaintext'], 'plaintext'), h(i['ad'], 'ad'))) } };
    case 'aead_open':
      return { output: { plaintext: toHex(await c.aesGcmOpen(h(i['key'], 'key'), h(i['nonce'], 'nonce'), h(i['ct'], 'ct'), h(i['ad'], 'ad'))) } };
    case 'chain': {
      const chain = new Chain(c, Uint8Array.from(h(i['ck0'], 'ck0')));
      const mks: string[] = [];
      for (let n = 0; n < Number(i['count']); n++) {
        mks.push(toHex(await chain.peekKey()));
        await chain.advance();
      }
      return { output: { message_keys: mks } };
    }
    case 'message_ad': {
      const n = Number(i['n']);
      return { output: { ad: toHex(messageAd(h(i['sid'], 'sid'), String(i['sender']), String(i['recipient']), String(i['room']), n)), nonce: toHex(messageNonce(n)) } };
    }
    case 'pad':
      return { output: { padded: toHex(pad(h(i['inner'], 'inner'))) } };
    case 'unpad':
      return { output: { inner: toHex(unpad(h(i['padded'], 'padded'))) } };
    case 'auth_message': {
      // §7.3: the exact bytes a client signs in AUTH, then the signature over them checked under spki.
      const message = authMessage(h(i['nonce'], 'nonce'), String(i['nick']), h(i['spki'], 'spki'), String(i['relay']), h(i['cb'], 'cb'));
      const sig = forge.forgePssSign(h(i['pkcs8'], 'pkcs8'), message, h(i['salt'], 'salt'));
      if (!(await c.pssVerify(await c.importPublicKey(h(i['spki'], 'spki')), message, sig))) throw new Error(`${c.name} does not verify the AUTH signature`);
      return { output: { message: toHex(message), sig: toHex(sig) } };
    }
    case 'safety_number':
      return { output: { safety_number: await safetyNumberOf(c, String(i['nick_a']), h(i['spki_a'], 'spki_a'), String(i['nick_b']), h(i['spki_b'], 'spki_b')) } };
    case 'recovery_commit': {
      const code = h(i['code'], 'code');
      return { output: { commit: toHex(await recoveryCommit(c, String(i['nick']), code)), text: formatRecoveryCode(code) } };
    }
    case 'recovery_check': {
      // §7.5 step 2 at the relay: the presented code's commitment against the registered one.
      const proof = await recoveryCommit(c, String(i['nick']), h(i['code'], 'code'));
      if (!equalSecret(proof, h(i['commit'], 'commit'))) return { error: 'NICK_BOUND' };
      return { output: { valid: true } };
    }
    case 'recovery_code_parse': {
      let code: string | null;
      try {
        code = toHex(parseRecoveryCode(String(i['text'])));
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        code = null;
      }
      return { output: { code } };
    }
    default:
      throw new Error(`unknown op ${op}`);
  }
}

/** The input fields of each op (spec/VECTORS.md §2.2). */
const OP_INPUTS: Record<string, readonly string[]> = {
  rsa_oaep_encrypt: ['spki', 'pkcs8', 'seed', 'message'],
  rsa_oaep_decrypt: ['pkcs8', 'ct'],
  rsa_pss_sign: ['pkcs8', 'salt', 'message'],
  rsa_pss_verify: ['spki', 'message', 'sig'],
  auth_message: ['nonce', 'nick', 'spki', 'pkcs8', 'relay', 'cb', 'salt'],
  public_key: ['spki'],
  x25519: ['private', 'peer_public'],
  psk_key: ['psk'],
  hkdf: ['ikm', 'salt', 'info', 'length'],
  chain: ['ck0', 'count'],
  message_ad: ['sid', 'sender', 'recipient', 'room', 'n'],
  aead_seal: ['key', 'nonce', 'plaintext', 'ad'],
  aead_open: ['key', 'nonce', 'ct', 'ad'],
  pad: ['inner'],
  unpad: ['padded'],
  safety_number: ['nick_a', 'spki_a', 'nick_b', 'spki_b'],
  recovery_commit: ['nick', 'code'],
  recovery_check: ['nick', 'code', 'commit'],
  recovery_code_parse: ['text'],
};

function specs(): OpSpec[] {
  const alice = fixedIdentity('alice');
  const bob = fixedIdentity('bob');
  const mallory = fixedIdentity('mallory');
  const secret = label('primitives/secret');
  const pkcs8 = (n: 'alice' | 'bob' | 'mallory') => FIXED_RSA_PKCS8[n];
  const out: OpSpec[] = [];
  const add = (id: string, section: string, op: string, input: Input, description: string) => out.push({ id, description, section, op, input });

  // §8.1 RSA-OAEP with a fixed seed (reproducible with any RFC 8017 implementation that takes a seed).
  add('rsa_oaep_fixed_seed', '§8.1', 'rsa_oaep_encrypt', { spki: toHex(bob.spki), pkcs8: pkcs8('bob'), seed: toHex(label('primitives/oaep-seed')), message: toHex(secret) }, 'RSA-OAEP-SHA-256 of a 32-byte secret to bob with a fixed 32-byte seed');
  add('rsa_oaep_fixed_seed_empty', '§8.1', 'rsa_oaep_encrypt', { spki: toHex(alice.spki), pkcs8: pkcs8('alice'), seed: toHex(label('primitives/oaep-seed-2')), message: '' }, 'RSA-OAEP of the empty message (the protocol never sends one; the primitive allows it)');
  const ct = toHex(loadForgeSync().forgeOaepEncrypt(bob.spki, secret, label('primitives/oaep-seed')));
  add('rsa_oaep_decrypt_ok', '§8.1', 'rsa_oaep_decrypt', { pkcs8: pkcs8('bob'), ct }, 'bob decrypts the fixed-seed ciphertext');
  add('rsa_oaep_decrypt_wrong_key', '§8.2', 'rsa_oaep_decrypt', { pkcs8: pkcs8('mallory'), ct }, 'the ciphertext for bob under mallory\'s key: OAEP_FAILED');
  add('rsa_oaep_decrypt_tampered', '§8.2', 'rsa_oaep_decrypt', { pkcs8: pkcs8('bob'), ct: flipHex(ct, 100) }, 'one bit of the ciphertext flipped: OAEP_FAILED');
  add('rsa_oaep_decrypt_truncated', '§8.2', 'rsa_oaep_decrypt', { pkcs8: pkcs8('bob'), ct: ct.slice(0, -2) }, 'ciphertext one byte short: OAEP_FAILED');

  // §8.1 RSA-PSS with a fixed salt.
  const msg = toHex(Buffer.concat([Buffer.from('e2ee-chat/1 responder signature', 'ascii'), label('primitives/th2')]));
  add('rsa_pss_fixed_salt', '§8.1', 'rsa_pss_sign', { pkcs8: pkcs8('alice'), salt: toHex(label('primitives/pss-salt')), message: msg }, 'RSA-PSS-SHA-256 by alice with a fixed 32-byte salt');
  const sig = toHex(loadForgeSync().forgePssSign(alice.pkcs8, fromHex(msg), label('primitives/pss-salt')));
  add('rsa_pss_verify_ok', '§8.1', 'rsa_pss_verify', { spki: toHex(alice.spki), message: msg, sig }, 'the fixed-salt signature verifies under alice\'s key');
  add('rsa_pss_verify_wrong_key', '§8.2', 'rsa_pss_verify', { spki: toHex(mallory.spki), message: msg, sig }, 'the same signature under mallory\'s key: BAD_SIGNATURE');
  add('rsa_pss_verify_tampered_sig', '§8.2', 'rsa_pss_verify', { spki: toHex(alice.spki), message: msg, sig: flipHex(sig, 200) }, 'one bit of the signature flipped: BAD_SIGNATURE');
  add('rsa_pss_verify_tampered_msg', '§8.2', 'rsa_pss_verify', { spki: toHex(alice.spki), message: flipHex(msg, 40), sig }, 'one bit of the signed message flipped: BAD_SIGNATURE');
  // §8.1: salt length exactly 32, no auto-detection: well-formed PSS signatures with other salts fail.
  for (const [n, salt] of pssSaltCases(label)) {
    const other = toHex(loadForgeSync().forgePssSignSaltLength(alice.pkcs8, fromHex(msg), salt));
    add(`rsa_pss_verify_salt_${n}`, '§8.1', 'rsa_pss_verify', { spki: toHex(alice.spki), message: msg, sig: other }, `a valid RSA-PSS signature by alice over the message, but with a ${n}-byte salt: BAD_SIGNATURE`);
  }

  // §7.3 the v2 AUTH message: bound to the relay's name, and over TLS to the connection (RFC 9266).
  const authIn = { nonce: toHex(label('primitives/auth-nonce')), nick: 'alice', spki: toHex(alice.spki), pkcs8: pkcs8('alice'), salt: toHex(label('primitives/auth-salt')) };
  add('auth_message_plain_tcp', '§7.3', 'auth_message', { ...authIn, relay: '127.0.0.1:55555', cb: '' }, 'AUTH by alice to the relay 127.0.0.1:55555 without TLS (cb empty): the signed message and its signature with a fixed salt');
  add('auth_message_tls', '§7.3', 'auth_message', { ...authIn, relay: 'chat.example.org:55555', cb: toHex(label('primitives/tls-exporter')) }, 'AUTH by alice to chat.example.org:55555 over TLS, cb a 32-byte tls-exporter value');
  add('auth_message_other_relay', '§7.3', 'auth_message', { ...authIn, relay: '127.0.0.1:55556', cb: '' }, 'the same AUTH for another relay name: another message, so a signature made for one relay does not verify at the other');

  // §8.1 identity keys.
  add('public_key_ok', '§8.1, §8.4', 'public_key', { spki: toHex(alice.spki) }, 'a canonical RSA-2048 e=65537 key, with its fingerprint');
  add('public_key_1024_bits', '§8.1', 'public_key', { spki: REFUSED_SPKI.rsa1024 }, 'a 1024-bit RSA key: BAD_PUBLIC_KEY');
  add('public_key_exponent_3', '§8.1', 'public_key', { spki: REFUSED_SPKI.rsa_e3 }, 'an RSA-2048 key with e = 3: BAD_PUBLIC_KEY');
  add('public_key_not_rsa', '§8.1', 'public_key', { spki: REFUSED_SPKI.ed25519 }, 'an Ed25519 key: BAD_PUBLIC_KEY');
  add('public_key_trailing_byte', '§8.1', 'public_key', { spki: toHex(alice.spki) + '00' }, 'a valid key followed by one byte: BAD_PUBLIC_KEY');
  add('public_key_long_length', '§8.1', 'public_key', { spki: nonCanonicalSpki(alice.spki) }, 'the outer SEQUENCE length in a longer-than-needed form: BAD_PUBLIC_KEY');

  // §8.1 X25519 with fixed scalars.
  const xa = label('primitives/x25519-a');
  const xb = label('primitives/x25519-b');
  const pubB = toHex(x25519KeyPair(xb).publicKey);
  add('x25519_fixed', '§8.1, §8.2', 'x25519', { private: toHex(xa), peer_public: pubB }, 'X25519 with fixed scalars: own public key and shared secret');
  add('x25519_zero_point', '§8.2', 'x25519', { private: toHex(xa), peer_public: '00'.repeat(32) }, 'the peer public key 0 (low order): all-zero result, BAD_EPHEMERAL_KEY');
  add('x25519_order_8_point', '§8.2', 'x25519', { private: toHex(xa), peer_public: 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800' }, 'a point of order 8: all-zero result, BAD_EPHEMERAL_KEY');

  // §8.2 key schedule pieces.
  add('psk_key_absent', '§8.2', 'psk_key', { psk: null }, 'no psk: psk_key is 32 zero bytes');
  add('psk_key_present', '§8.2', 'psk_key', { psk: toHex(Buffer.from('correct horse battery staple', 'utf8')) }, 'psk_key = HKDF(salt "", psk, "e2ee-chat/1 psk", 32)');
  add('hkdf_label', '§8.2', 'hkdf', { ikm: toHex(Buffer.concat([secret, secret, secret])), salt: '00'.repeat(32), info: toHex(Buffer.concat([Buffer.from('e2ee-chat/1 chain initiator'), label('primitives/th2')])), length: 32 }, 'one K(label) of the key schedule: HKDF(psk_key, s_I || s_R || dh, "e2ee-chat/1 " || label || TH2)');

  // §8.3 chains, nonces, AD, AEAD.
  add('chain_five_keys', '§8.3', 'chain', { ck0: toHex(label('primitives/ck0')), count: 5 }, 'mk_0..mk_4 of a chain: mk_n || ck_{n+1} = HMAC-SHA-512(ck_n, "e2ee-chat/1 chain")');
  add('message_ad_nonce', '§8.3', 'message_ad', { sid: toHex(label('primitives/sid')), sender: 'alice', recipient: 'bob', room: 'lobby', n: 7 }, 'ad_n and nonce_n of message 7 from alice to bob');
  add('message_ad_nonce_large_n', '§8.3', 'message_ad', { sid: toHex(label('primitives/sid')), sender: 'bob', recipient: 'alice', room: 'lobby', n: 9007199254740991 }, 'the last allowed message number (MAX_UINT)');
  const k = toHex(label('primitives/mk'));
  const nonce = toHex(messageNonce(3));
  const ad = toHex(messageAd(label('primitives/sid'), 'alice', 'bob', 'lobby', 3));
  const padded = pad(Buffer.from('83a17431a27473cd03e8a474657874a568656c6c6f', 'hex'));
  add('aead_seal', '§8.1, §8.3', 'aead_seal', { key: k, nonce, plaintext: toHex(padded), ad }, 'AES-256-GCM seal of a padded TEXT as message 3');
  const sealed = toHex(aeadSeal(fromHex(k), fromHex(nonce), padded, fromHex(ad)));
  add('aead_open', '§8.3', 'aead_open', { key: k, nonce, ct: sealed, ad }, 'opening it again');
  add('aead_open_tampered_tag', '§8.3', 'aead_open', { key: k, nonce, ct: flipHex(sealed, sealed.length / 2 - 1), ad }, 'last tag bit flipped: DECRYPT_FAILED');
  add('aead_open_wrong_ad', '§8.3', 'aead_open', { key: k, nonce, ct: sealed, ad: toHex(messageAd(label('primitives/sid'), 'alice', 'carol', 'lobby', 3)) }, 'AD naming another recipient (re-targeted): DECRYPT_FAILED');
  add('aead_open_wrong_nonce', '§8.3', 'aead_open', { key: k, nonce: toHex(messageNonce(4)), ct: sealed, ad }, 'nonce of another message number: DECRYPT_FAILED');

  // §8.3 padding.
  for (const n of [1, 252, 253, 1000]) {
    add(`pad_${n}`, '§8.3', 'pad', { inner: toHex(Buffer.alloc(n, 0x61)) }, `an inner frame of ${n} bytes padded to its bucket`);
  }
  const p256 = Buffer.alloc(256);
  p256.writeUInt32BE(10, 0);
  add('unpad_ok', '§8.3', 'unpad', { padded: toHex(p256) }, '10 bytes in the 256 bucket');
  const nz = Buffer.from(p256);
  nz[255] = 1;
  add('unpad_nonzero_padding', '§8.3', 'unpad', { padded: toHex(nz) }, 'a padding byte that is not zero: BAD_PADDING');
  const wrongBucket = Buffer.alloc(512);
  wrongBucket.writeUInt32BE(10, 0);
  add('unpad_wrong_bucket', '§8.3', 'unpad', { padded: toHex(wrongBucket) }, '10 bytes in the 512 bucket (belongs in 256): BAD_PADDING');
  const notPow2 = Buffer.alloc(300);
  notPow2.writeUInt32BE(10, 0);
  add('unpad_not_power_of_two', '§8.3', 'unpad', { padded: toHex(notPow2) }, 'a padded length of 300: BAD_PADDING');
  const over = Buffer.alloc(256);
  over.writeUInt32BE(253, 0);
  add('unpad_length_exceeds', '§8.3', 'unpad', { padded: toHex(over) }, 'a length field larger than the room after it: BAD_PADDING');
  const small = Buffer.alloc(128);
  small.writeUInt32BE(10, 0);
  add('unpad_below_minimum', '§8.3', 'unpad', { padded: toHex(small) }, 'a 128-byte bucket, below PAD_MIN_BYTES: BAD_PADDING');

  // §8.4.
  add('safety_number_alice_bob', '§8.4', 'safety_number', { nick_a: 'alice', spki_a: toHex(alice.spki), nick_b: 'bob', spki_b: toHex(bob.spki) }, 'the safety number of alice and bob');
  add('safety_number_bob_alice', '§8.4', 'safety_number', { nick_a: 'bob', spki_a: toHex(bob.spki), nick_b: 'alice', spki_b: toHex(alice.spki) }, 'the same pair from the other side: the same number');
  // §7.5 recovery codes: commitment and text form, the relay's check, the text form read back.
  const rc = label('primitives/recovery-code').subarray(0, 16);
  add('recovery_commit', '§7.5', 'recovery_commit', { nick: 'alice', code: toHex(rc) }, 'the commitment SHA-256("e2ee-chat/2 recovery" || lp(nick) || lp(code)) and the text form of a code');
  add('recovery_commit_zero', '§7.5', 'recovery_commit', { nick: 'a', code: '00'.repeat(16) }, 'the all-zero code: text form of 26 zeros, and its commitment for a one-byte nickname');
  add('recovery_commit_ones', '§7.5', 'recovery_commit', { nick: 'n'.repeat(32), code: 'ff'.repeat(16) }, 'the all-ones code (last symbol carries 3 bits and two zero pad bits) for a 32-byte nickname');
  const rcommit = toHex(sha256(recoveryCommitInput('alice', rc)));
  add('recovery_check_ok', '§7.5', 'recovery_check', { nick: 'alice', code: toHex(rc), commit: rcommit }, 'the code presented in RECOVER matches the registered commitment: the nickname moves');
  add('recovery_check_code_bit', '§7.5', 'recovery_check', { nick: 'alice', code: flipHex(toHex(rc), 15), commit: rcommit }, 'one bit of the presented code flipped: NICK_BOUND');
  add('recovery_check_commit_bit', '§7.5', 'recovery_check', { nick: 'alice', code: toHex(rc), commit: flipHex(rcommit, 31) }, 'one bit of the registered commitment flipped: NICK_BOUND');
  add('recovery_check_other_nick', '§7.5', 'recovery_check', { nick: 'alicf', code: toHex(rc), commit: rcommit }, 'the right code for another nickname (the commitment covers the nickname): NICK_BOUND');
  const text = formatRecoveryCode(rc);
  add('recovery_code_parse_canonical', '§7.5', 'recovery_code_parse', { text }, 'the text form as shown reads back to the code');
  add('recovery_code_parse_loose', '§7.5', 'recovery_code_parse', { text: ` ${text.toLowerCase().replaceAll('-', ' ').replaceAll('0', 'o').replaceAll('1', 'l')} ` }, 'lower case, spaces for hyphens, O for 0 and L for 1: the same code');
  add('recovery_code_parse_short', '§7.5', 'recovery_code_parse', { text: text.slice(0, -1) }, '25 symbols: refused (code null)');
  add('recovery_code_parse_long', '§7.5', 'recovery_code_parse', { text: text + '0' }, '27 symbols: refused (code null)');
  add('recovery_code_parse_u', '§7.5', 'recovery_code_parse', { text: 'U' + text.slice(1) }, 'the letter U, not in the alphabet: refused (code null)');
  add('recovery_code_parse_pad_bits', '§7.5', 'recovery_code_parse', { text: text.slice(0, -1) + '1' }, 'a last symbol whose pad bits are not zero (non-canonical): refused (code null)');
  add('recovery_code_parse_other_char', '§7.5', 'recovery_code_parse', { text: text.replace('-', '_') }, 'an underscore where a hyphen goes: refused (code null)');
  add('safety_number_substituted', '§8.4, §11', 'safety_number', { nick_a: 'alice', spki_a: toHex(alice.spki), nick_b: 'bob', spki_b: toHex(mallory.spki) }, 'alice with mallory\'s key in place of bob\'s: a different number');
  return out;
}

/** The SPKI with its outer SEQUENCE length re-encoded in a longer form (0x83 00 01 22 for 0x82 01 22). */
function nonCanonicalSpki(spki: Uint8Array): string {
  const s = Buffer.from(spki);
  if (s[0] !== 0x30 || s[1] !== 0x82) throw new Error('unexpected SPKI header');
  return toHex(Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), s.subarray(2)]));
}

function flipHex(hex: string, byte: number): string {
  const b = Buffer.from(hex, 'hex');
  b[byte] = (b[byte] as number) ^ 0x01;
  return b.toString('hex');
}

let forgeCache: Forge | undefined;
function loadForgeSync(): Forge {
  if (forgeCache === undefined) throw new Error('forge not loaded');
  return forgeCache;
}

async function build(): Promise<VectorCase[]> {
  forgeCache ??= await loadForge();
  const forge = forgeCache;
  return opCases(specs(), (op, input) => runOp(op, input, forge, nodeBackend));
}

export const primitivesSuite: VectorSuite = suite(
  'primitives.json',
  {
    title: 'e2ee-chat cryptographic primitive vectors',
    spec: 'spec/PROTOCOL.md §8.1-§8.4, format in spec/VECTORS.md',
    description:
      'Fixed keys and fixed randomness. Each case: op (the operation), input (hex for bytes), and exactly one of ' +
      'output (every field must match) or error (a §9 code name). Ops: rsa_oaep_encrypt (with a fixed seed), ' +
      'rsa_oaep_decrypt, rsa_pss_sign (with a fixed salt), rsa_pss_verify, public_key (§8.1 checks, then the ' +
      'fingerprint), x25519, psk_key, hkdf, chain (message keys of a chain), message_ad (ad_n and nonce_n), ' +
      'aead_seal, aead_open, pad, unpad, safety_number. RSA keys are PKCS#8 / SPKI DER.',
  },
  () => build(),
  async (doc: unknown, backend: CryptoBackend = nodeBackend) => {
    forgeCache ??= await loadForge();
    const forge = forgeCache;
    return verifyOpCases(doc, OP_INPUTS, (op, input) => runOp(op, input, forge, backend));
  },
);

/** The salts of the PSS salt-length defects (§8.1): 20 bytes (SHA-1's length), none, and 64 bytes. */
function pssSaltCases(label: (tag: string) => Uint8Array): [number, Uint8Array][] {
  const a = label('primitives/pss-salt-other');
  const b = label('primitives/pss-salt-other-2');
  return [
    [20, a.subarray(0, 20)],
    [0, new Uint8Array(0)],
    [64, Buffer.concat([a, b])],
  ];
}
