/**
 * node-forge as the independent second implementation of RSA-OAEP and RSA-PSS (issue 3): unlike
 * OpenSSL's API it takes a caller's OAEP seed and PSS salt, so vectors can fix them. Used only by the
 * vector generator/verifier and by tests, never by the chat runtime (its crypto is a CryptoBackend).
 */
import forge from 'node-forge';
import type { SessionRsa } from '../handshake/session.js';

const bin = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('binary');
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'binary'));

/** A forge RSA public key from SPKI DER. */
export function forgePublic(spki: Uint8Array): forge.pki.rsa.PublicKey {
  return forge.pki.publicKeyFromAsn1(forge.asn1.fromDer(bin(spki))) as forge.pki.rsa.PublicKey;
}

/** A forge RSA private key from PKCS#8 DER (parsed keys are kept: vectors reuse a few fixed keys). */
export function forgePrivate(pkcs8: Uint8Array): forge.pki.rsa.PrivateKey {
  const id = bin(pkcs8);
  let k = PRIVATE.get(id);
  if (k === undefined) {
    k = forge.pki.privateKeyFromAsn1(forge.asn1.fromDer(id)) as forge.pki.rsa.PrivateKey;
    if (PRIVATE.size >= 16) PRIVATE.clear();
    PRIVATE.set(id, k);
  }
  return k;
}
const PRIVATE = new Map<string, forge.pki.rsa.PrivateKey>();

const oaepOptions = (seed?: Uint8Array) => ({
  md: forge.md.sha256.create(),
  mgf1: { md: forge.md.sha256.create() },
  ...(seed === undefined ? {} : { seed: bin(seed) }),
});

/** RSA-OAEP-SHA-256 (MGF1-SHA-256, empty label) with a fixed 32-byte seed: 256 bytes. */
export function forgeOaepEncrypt(spki: Uint8Array, message: Uint8Array, seed?: Uint8Array): Uint8Array {
  if (seed !== undefined && seed.length !== 32) throw new RangeError(`OAEP seed: expected 32 bytes, got ${seed.length}`);
  // @types/node-forge does not declare the `seed` option; forge's pkcs1.encode_rsa_oaep reads it.
  const enc = forgePublic(spki).encrypt(bin(message), 'RSA-OAEP', oaepOptions(seed) as never);
  return bytes(enc);
}

/** RSA-OAEP-SHA-256 decryption; throws (forge's Error) on any failure. */
export function forgeOaepDecrypt(pkcs8: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return bytes(forgePrivate(pkcs8).decrypt(bin(ciphertext), 'RSA-OAEP', oaepOptions() as never));
}

function pss(salt?: Uint8Array, anyLength = false): forge.pss.PSS {
  const opts: Record<string, unknown> = {
    md: forge.md.sha256.create(),
    mgf: forge.mgf.mgf1.create(forge.md.sha256.create()),
    saltLength: salt !== undefined && anyLength ? salt.length : 32,
  };
  if (salt !== undefined) {
    if (!anyLength && salt.length !== 32) throw new RangeError(`PSS salt: expected 32 bytes, got ${salt.length}`);
    // forge.pss.create takes a fixed salt as `salt` (a binary string); the typings omit it.
    opts['salt'] = bin(salt);
  }
  return forge.pss.create(opts as never);
}

/** RSA-PSS-SHA-256 (MGF1-SHA-256) with a fixed 32-byte salt: 256 bytes. */
export function forgePssSign(pkcs8: Uint8Array, message: Uint8Array, salt?: Uint8Array): Uint8Array {
  const md = forge.md.sha256.create();
  md.update(bin(message));
  return bytes(forgePrivate(pkcs8).sign(md, pss(salt)));
}

/**
 * RSA-PSS-SHA-256 with a fixed salt of any length (0 included): a well-formed PSS signature that a
 * verifier of §8.1 (salt length exactly 32, no auto-detection) must refuse unless the salt has 32 bytes.
 * For the salt-length defect vectors only.
 */
export function forgePssSignSaltLength(pkcs8: Uint8Array, message: Uint8Array, salt: Uint8Array): Uint8Array {
  const md = forge.md.sha256.create();
  md.update(bin(message));
  return bytes(forgePrivate(pkcs8).sign(md, pss(salt, true)));
}

/** RSA-PSS-SHA-256 verification with salt length 32; false on any failure. */
export function forgePssVerify(spki: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const md = forge.md.sha256.create();
    md.update(bin(message));
    return forgePublic(spki).verify(md.digest().getBytes(), bin(signature), pss());
  } catch {
    return false;
  }
}

/**
 * The SessionRsa of PeerSession that draws its OAEP seed and PSS salt (32 bytes each) from the session's
 * `random`, making a whole handshake a function of its inputs (for vectors). `selfPkcs8` is the signing
 * party's private key (a backend's key handle does not give its bytes back).
 */
export function forgeRsa(selfPkcs8: Uint8Array): SessionRsa {
  const pkcs8 = Uint8Array.from(selfPkcs8);
  return {
    oaepEncrypt: (publicKey, message, random) => forgeOaepEncrypt(publicKey.spki, message, random(32)),
    pssSign: (_privateKey, message, random) => forgePssSign(pkcs8, message, random(32)),
  };
}
