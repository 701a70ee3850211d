// node:crypto for the vector suites' harness when they run inside a page (test/web/vectors.test.ts). Only
// the two helpers the suites use to derive an SPKI from a PKCS#8 (a consistency step of the harness, not
// an operation under test) exist, computed with node-forge; every other function throws if called, so a
// suite that reached for node:crypto in the page would fail, never pass on Node's behalf.
import forge from 'node-forge';

const bin = (u8) => forge.util.binary.raw.encode(u8);
const u8 = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));

class ForgeKey {
  constructor(priv, pub) {
    this.priv = priv;
    this.pub = pub;
  }
  export(o) {
    if (o.format === 'der' && o.type === 'spki') return Buffer.from(u8(forge.asn1.toDer(forge.pki.publicKeyToAsn1(this.pub)).getBytes()));
    throw new Error(`node:crypto shim: export ${JSON.stringify(o)} is not available in the page`);
  }
}

export function createPrivateKey(o) {
  if (o.format !== 'der' || o.type !== 'pkcs8') throw new Error('node:crypto shim: only DER PKCS#8');
  const priv = forge.pki.privateKeyFromAsn1(forge.asn1.fromDer(bin(o.key)));
  return new ForgeKey(priv, forge.pki.setRsaPublicKey(priv.n, priv.e));
}

export function createPublicKey(k) {
  if (!(k instanceof ForgeKey)) throw new Error('node:crypto shim: createPublicKey takes a shim private key');
  return new ForgeKey(undefined, k.pub);
}

const absent = (name) => () => {
  throw new Error(`node:crypto ${name} is not available in the page`);
};
export const constants = {};
export const createCipheriv = absent('createCipheriv');
export const createDecipheriv = absent('createDecipheriv');
export const createHash = absent('createHash');
export const createHmac = absent('createHmac');
export const diffieHellman = absent('diffieHellman');
export const generateKeyPairSync = absent('generateKeyPairSync');
export const hkdfSync = absent('hkdfSync');
export const privateDecrypt = absent('privateDecrypt');
export const publicEncrypt = absent('publicEncrypt');
export const randomBytes = absent('randomBytes');
export const sign = absent('sign');
export const timingSafeEqual = absent('timingSafeEqual');
export const verify = absent('verify');
