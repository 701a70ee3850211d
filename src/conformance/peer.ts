/**
 * The kit's own end-to-end peer (spec/PROTOCOL.md §8.2 handshake, §8.3 messages), written from the spec
 * and independent of src/handshake, so that a reference client and reference session that share a bug
 * cannot agree on it here. It plays the RESPONDER: the client under test joins a room where the kit's
 * peers already are, so it is the initiator (§7.2); for the responder-side cases the kit initiates.
 * Every primitive is node:crypto.
 *
 * It exposes what an attacker-in-the-relay needs: sealing with any sequence number, any padding, any
 * inner bytes, and a transcript-faithful handshake that can be signed with the wrong key.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  constants,
  randomBytes,
  sign,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { decodeFrame, encodeFrame, type E2EFrame, type FrameOf } from '../codec/index.js';
import { lp, oaepDecrypt, oaepEncrypt, pssSign, pssVerify } from '../crypto/rsa.js';
import { ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import type { Identity } from './context.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';

const ascii = (s: string) => Buffer.from(s, 'ascii');
const sha256 = (...parts: Uint8Array[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
const hmac = (key: Uint8Array, ...parts: Uint8Array[]) => createHmac('sha256', key).update(Buffer.concat(parts)).digest();
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

function x25519Pair(): { priv: KeyObject; pub: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const jwk = publicKey.export({ format: 'jwk' });
  return { priv: privateKey, pub: Buffer.from(jwk.x!, 'base64url') };
}

function x25519(priv: KeyObject, peer: Uint8Array): Buffer {
  const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(peer).toString('base64url') }, format: 'jwk' });
  return diffieHellman({ privateKey: priv, publicKey: pub });
}

/** One step of a message chain (§8.3): mk_n || ck_{n+1} = HMAC-SHA-512(ck_n, "e2ee-chat/1 chain"), 32 bytes each. */
export function chainStep(ck: Uint8Array): { mk: Buffer; next: Buffer } {
  const out = createHmac('sha512', ck).update(ascii('e2ee-chat/1 chain')).digest();
  return { mk: out.subarray(0, 32), next: out.subarray(32, 64) };
}

/** `padded` of §8.3: u32(len) || inner || zeros, to the smallest power of two >= 4 + len, at least PAD_MIN_BYTES. */
export function pad(inner: Uint8Array): Buffer {
  let b: number = LIMITS.PAD_MIN_BYTES;
  while (b < 4 + inner.length) b *= 2;
  const out = Buffer.alloc(b);
  out.writeUInt32BE(inner.length, 0);
  out.set(inner, 4);
  return out;
}

export interface Party {
  readonly nick: string;
  readonly spki: Uint8Array;
}

/** Options of the responder's HS_RESP, to build the handshake attacks of the client cases. */
export interface RespOptions {
  /** Sign sig_R with this key instead of the responder's own (a substituted key, §11). */
  readonly signWith?: KeyObject;
  /** Flip a bit of mac_R (BAD_KEY_CONFIRMATION at the initiator, §8.2). */
  readonly badMac?: boolean;
  /** Send this X_R instead of a fresh one (an all-zero key makes dh all-zero: BAD_EPHEMERAL_KEY, §8.2). */
  readonly eph?: Uint8Array;
  /** Send this ct_R instead of the encryption of s_R (OAEP_FAILED at the initiator, §8.2). */
  readonly ct?: Uint8Array;
  /** Sign sig_R with this PSS salt length instead of 32 (BAD_SIGNATURE at the initiator, §8.1). */
  readonly pssSaltLength?: number;
}

/** The message layer of one session (§8.3): both chains, sealing and opening; shared by both roles. */
export abstract class SessionBase {
  protected th0: Buffer;
  protected sid: Buffer | undefined;
  protected sendCk: Buffer | undefined;
  /** ck_0 of the receiving chain (kept for the lax-client fixture, which opens any seq from it). */
  protected recvCk0: Buffer | undefined;
  protected recvCk: Buffer | undefined;
  protected recvNext = 0;
  /** Next sequence number `seal` uses when none is given. */
  sendNext = 0;
  established = false;

  constructor(
    readonly room: string,
    readonly me: Party & { readonly privateKey: KeyObject },
    readonly peer: Party,
    initiator: Party,
    responder: Party,
  ) {
    this.th0 = sha256(ascii('e2ee-chat/1 handshake'), lp(room), lp(initiator.nick), lp(initiator.spki), lp(responder.nick), lp(responder.spki));
  }

  /**
   * Verifies a handshake signature (§8.1: RSA-PSS, SHA-256, MGF1-SHA-256, salt length exactly 32). The
   * kit's peers keep it strict; a test fixture overrides it to show the kit catches a lax verifier.
   */
  protected verifySignature(key: KeyObject, message: Uint8Array, sig: Uint8Array): boolean {
    return pssVerify(key, message, sig);
  }

  /** Whether an HS_INIT of `version` is answered (§2.1: only PROTOCOL_VERSION; a fixture overrides it). */
  protected acceptsVersion(version: number): boolean {
    return version === PROTOCOL_VERSION;
  }

  /** True once the key schedule ran (keys exist), whether or not the handshake finished. */
  get keyed(): boolean {
    return this.sendCk !== undefined;
  }

  /** Derives the key schedule of §8.2 (no room secret: psk_key is 32 zero bytes). */
  protected schedule(sI: Uint8Array, sR: Uint8Array, dh: Uint8Array, th2: Uint8Array, role: 'I' | 'R'): { confI: Buffer; confR: Buffer } {
    const ikm = Buffer.concat([sI, sR, dh]);
    const K = (label: string) => Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(32), Buffer.concat([ascii(`e2ee-chat/1 ${label}`), th2]), 32));
    const ckIR = K('chain initiator');
    const ckRI = K('chain responder');
    this.sendCk = role === 'I' ? ckIR : ckRI;
    this.recvCk0 = this.recvCk = role === 'I' ? ckRI : ckIR;
    this.sid = K('session id');
    return { confI: K('confirm initiator'), confR: K('confirm responder') };
  }

  private ad(sender: string, recipient: string, n: number): Buffer {
    return Buffer.concat([ascii('e2ee-chat/1 msg'), lp(this.sid!), lp(sender), lp(recipient), lp(this.room), u64(n)]);
  }

  /** mk_n from a chain key ck_0: n chain steps, then the message key of the last. */
  protected static messageKey(ck0: Buffer, n: number): Buffer {
    let ck = ck0;
    for (let i = 0; i < n; i++) ck = chainStep(ck).next;
    return chainStep(ck).mk;
  }

  /**
   * Seals `padded` (default: the padded encoding of `inner`) as message number `seq` (default the next)
   * and returns the MSG body. Sealing an earlier number again reproduces the same key (for replays).
   */
  seal(inner: Uint8Array, o: { seq?: number; padded?: Uint8Array } = {}): Uint8Array {
    const seq = o.seq ?? this.sendNext;
    if (o.seq === undefined) this.sendNext++;
    const padded = o.padded ?? pad(inner);
    const c = createCipheriv('aes-256-gcm', SessionBase.messageKey(this.sendCk!, seq), Buffer.concat([Buffer.alloc(4), u64(seq)]));
    c.setAAD(this.ad(this.me.nick, this.peer.nick, seq));
    const ct = Buffer.concat([c.update(padded), c.final(), c.getAuthTag()]);
    return encodeFrame({ type: 'MSG', seq, ct });
  }

  /** A TEXT inner frame, sealed as the next message (or as `seq`). */
  text(text: string, o: { seq?: number } = {}): Uint8Array {
    return this.seal(encodeFrame({ type: 'TEXT', ts: Date.now(), text }), o);
  }

  /**
   * Opens a MSG body with message key `mk` (§8.3 steps 2, 4, 5). Throws ProtocolError DECRYPT_FAILED,
   * BAD_PADDING, or the inner frame's decoding error.
   */
  protected openWith(f: FrameOf<'MSG'>, mk: Buffer): FrameOf<'TEXT'> | FrameOf<'ACK'> | FrameOf<'ROSTER'> {
    let padded: Buffer;
    try {
      const d = createDecipheriv('aes-256-gcm', mk, Buffer.concat([Buffer.alloc(4), u64(f.seq)]));
      d.setAAD(this.ad(this.peer.nick, this.me.nick, f.seq));
      d.setAuthTag(f.ct.subarray(f.ct.length - 16));
      padded = Buffer.concat([d.update(f.ct.subarray(0, f.ct.length - 16)), d.final()]);
    } catch {
      throw new ProtocolError('DECRYPT_FAILED', 'AEAD open failed');
    }
    const n = padded.readUInt32BE(0);
    const ok = 4 + n <= padded.length && pad(padded.subarray(4, 4 + n)).equals(padded);
    if (!ok) throw new ProtocolError('BAD_PADDING', 'padding is not the canonical bucket');
    return decodeFrame(padded.subarray(4, 4 + n), 'inner');
  }

  /** Opens the next MSG in order (§8.3); returns the inner frame, or undefined when it is refused. */
  open(body: Uint8Array): FrameOf<'TEXT'> | FrameOf<'ACK'> | FrameOf<'ROSTER'> | undefined {
    let f: E2EFrame;
    try {
      f = decodeFrame(body, 'e2e');
    } catch {
      return undefined;
    }
    if (f.type !== 'MSG' || f.seq !== this.recvNext || !this.recvCk) return undefined;
    try {
      const step = chainStep(this.recvCk);
      const inner = this.openWith(f, step.mk);
      this.recvCk = step.next;
      this.recvNext++;
      return inner;
    } catch {
      return undefined;
    }
  }
}

/** One end-to-end session, responder side (§8.2). */
export class ResponderSession extends SessionBase {
  private th3: Buffer | undefined;
  private confI: Buffer | undefined;

  constructor(room: string, me: Party & { readonly privateKey: KeyObject }, initiator: Party) {
    super(room, me, initiator, initiator, me);
  }

  /** Handles HS_INIT (the exact body bytes as received) and returns the HS_RESP body to send. */
  onInit(initBody: Uint8Array, opts: RespOptions = {}): Uint8Array {
    const init = decodeFrame(initBody, 'e2e');
    if (init.type !== 'HS_INIT') throw new ProtocolError('UNEXPECTED_FRAME', `expected HS_INIT, got ${init.type}`);
    if (!this.acceptsVersion(init.version)) throw new ProtocolError('UNSUPPORTED_VERSION', `version ${init.version}`);
    const th1 = sha256(this.th0, lp(initBody));
    const eph = x25519Pair();
    const dh = x25519(eph.priv, init.eph);
    const sI = oaepDecrypt(this.me.privateKey, init.ct);
    if (sI.length !== 32) throw new ProtocolError('OAEP_FAILED', 's_I is not 32 bytes');
    const sR = randomBytes(32);
    const ctR = opts.ct ?? oaepEncrypt(createPublicKey({ key: Buffer.from(this.peer.spki), format: 'der', type: 'spki' }), sR);
    const ephR = opts.eph ?? eph.pub;
    const th2 = sha256(th1, lp(ephR), lp(ctR));
    const { confI, confR } = this.schedule(sI, sR, dh, th2, 'R');
    this.confI = confI;
    const signed = Buffer.concat([ascii('e2ee-chat/1 responder signature'), th2]);
    const signer = opts.signWith ?? this.me.privateKey;
    const sig =
      opts.pssSaltLength === undefined
        ? pssSign(signer, signed)
        : new Uint8Array(sign('sha256', signed, { key: signer, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: opts.pssSaltLength }));
    const mac = hmac(confR, th2);
    if (opts.badMac) mac[0]! ^= 0x01;
    this.th3 = sha256(th2, lp(sig), lp(mac));
    return encodeFrame({ type: 'HS_RESP', eph: ephR, ct: ctR, sig, mac });
  }

  /** Verifies HS_FINISH; true when the initiator's signature and MAC are right (§8.2 "R on HS_FINISH"). */
  onFinish(body: Uint8Array): boolean {
    const f = decodeFrame(body, 'e2e');
    if (f.type !== 'HS_FINISH' || !this.th3 || !this.confI) return false;
    const key = createPublicKey({ key: Buffer.from(this.peer.spki), format: 'der', type: 'spki' });
    const ok = this.verifySignature(key, Buffer.concat([ascii('e2ee-chat/1 initiator signature'), this.th3]), f.sig) && timingSafeEqual(hmac(this.confI, this.th3), f.mac);
    this.established = ok;
    return ok;
  }
}

/** One end-to-end session, initiator side (§8.2). */
export class InitiatorSession extends SessionBase {
  private x: KeyObject | undefined;
  private sI: Buffer | undefined;
  private th1: Buffer | undefined;

  constructor(room: string, me: Party & { readonly privateKey: KeyObject }, responder: Party) {
    super(room, me, responder, me, responder);
  }

  /** The HS_INIT body to send (input `start` of §7.2); another `version` only to test a responder. */
  init(version = PROTOCOL_VERSION): Uint8Array {
    const eph = x25519Pair();
    this.x = eph.priv;
    this.sI = randomBytes(32);
    const ct = oaepEncrypt(createPublicKey({ key: Buffer.from(this.peer.spki), format: 'der', type: 'spki' }), this.sI);
    const body = encodeFrame({ type: 'HS_INIT', version, eph: eph.pub, ct });
    this.th1 = sha256(this.th0, lp(body));
    return body;
  }

  /**
   * Handles HS_RESP with the checks of §8.2 in order and returns the HS_FINISH body. Throws ProtocolError
   * BAD_EPHEMERAL_KEY, OAEP_FAILED, BAD_SIGNATURE or BAD_KEY_CONFIRMATION.
   */
  onResp(body: Uint8Array): Uint8Array {
    const r = decodeFrame(body, 'e2e');
    if (r.type !== 'HS_RESP' || !this.x || !this.sI || !this.th1) throw new ProtocolError('UNEXPECTED_FRAME', 'HS_RESP out of turn');
    let dh: Buffer;
    try {
      dh = x25519(this.x, r.eph);
    } catch {
      throw new ProtocolError('BAD_EPHEMERAL_KEY', 'X25519 failed');
    }
    if (dh.every((b) => b === 0)) throw new ProtocolError('BAD_EPHEMERAL_KEY', 'all-zero shared secret');
    const sR = oaepDecrypt(this.me.privateKey, r.ct);
    if (sR.length !== 32) throw new ProtocolError('OAEP_FAILED', 's_R is not 32 bytes');
    const th2 = sha256(this.th1, lp(r.eph), lp(r.ct));
    const key = createPublicKey({ key: Buffer.from(this.peer.spki), format: 'der', type: 'spki' });
    if (!this.verifySignature(key, Buffer.concat([ascii('e2ee-chat/1 responder signature'), th2]), r.sig)) throw new ProtocolError('BAD_SIGNATURE', 'sig_R');
    const { confI, confR } = this.schedule(this.sI, sR, dh, th2, 'I');
    if (!timingSafeEqual(hmac(confR, th2), r.mac)) throw new ProtocolError('BAD_KEY_CONFIRMATION', 'mac_R');
    const th3 = sha256(th2, lp(r.sig), lp(r.mac));
    const sig = pssSign(this.me.privateKey, Buffer.concat([ascii('e2ee-chat/1 initiator signature'), th3]));
    this.established = true;
    this.x = undefined;
    this.sI = undefined;
    return encodeFrame({ type: 'HS_FINISH', sig, mac: hmac(confI, th3) });
  }
}

/** A kit peer: a nickname and an identity (made by the kit, never the client's). */
export interface KitPeer extends Party {
  readonly ident: Identity;
}

/** The 30 digits of one party (§8.4): 5200 SHA-512 iterations over the key and nick, six 5-byte chunks mod 100000. */
function partyDigits(nick: string, spki: Uint8Array): string {
  let h = createHash('sha512').update(Buffer.concat([Buffer.from([0, 0]), spki, Buffer.from(nick, 'utf8')])).digest();
  for (let i = 0; i < 5199; i++) h = createHash('sha512').update(Buffer.concat([h, spki])).digest();
  let out = '';
  for (let c = 0; c < 6; c++) out += (h.readUIntBE(c * 5, 5) % 100000).toString().padStart(5, '0');
  return out;
}

/** The safety number of two parties (§8.4): both 30-digit strings in ascending order, as 12 groups of 5. */
export function safetyNumber(a: Party, b: Party): string {
  const digits = [partyDigits(a.nick, a.spki), partyDigits(b.nick, b.spki)].sort().join('');
  return digits.match(/\d{5}/g)!.join(' ');
}
