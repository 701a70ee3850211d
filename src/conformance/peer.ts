/**
 * The kit's own end-to-end peer (spec/PROTOCOL.md §8.2 handshake, §8.3 messages), written from the spec
 * and independent of src/handshake, so that a reference client and reference session that share a bug
 * cannot agree on it here. It plays the RESPONDER: the client under test joins a room where the kit's
 * peers already are, so it is the initiator (§7.2). Every primitive is node:crypto.
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
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { decodeFrame, encodeFrame, type E2EFrame, type FrameOf } from '../codec/index.js';
import { lp, oaepDecrypt, oaepEncrypt, pssSign, pssVerify } from '../crypto/rsa.js';
import { LIMITS } from '../limits.js';
import type { Identity } from './context.js';

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
}

/** One end-to-end session, responder side (§8.2), with the sending and receiving chains of §8.3. */
export class ResponderSession {
  private th0: Buffer;
  private th3: Buffer | undefined;
  private confI: Buffer | undefined;
  private sid: Buffer | undefined;
  private sendCk: Buffer | undefined;
  private recvCk: Buffer | undefined;
  private recvNext = 0;
  /** Next sequence number `seal` uses when none is given. */
  sendNext = 0;
  established = false;

  constructor(
    readonly room: string,
    readonly me: Party & { readonly privateKey: KeyObject },
    readonly initiator: Party,
  ) {
    this.th0 = sha256(ascii('e2ee-chat/1 handshake'), lp(room), lp(initiator.nick), lp(initiator.spki), lp(me.nick), lp(me.spki));
  }

  /** Handles HS_INIT (the exact body bytes as received) and returns the HS_RESP body to send. */
  onInit(initBody: Uint8Array, opts: RespOptions = {}): Uint8Array {
    const init = decodeFrame(initBody, 'e2e');
    if (init.type !== 'HS_INIT') throw new Error(`expected HS_INIT, got ${init.type}`);
    const th1 = sha256(this.th0, lp(initBody));
    const eph = x25519Pair();
    const dh = x25519(eph.priv, init.eph);
    const sI = oaepDecrypt(this.me.privateKey, init.ct);
    const sR = randomBytes(32);
    const ctR = opts.ct ?? oaepEncrypt(createPublicKey({ key: Buffer.from(this.initiator.spki), format: 'der', type: 'spki' }), sR);
    const ephR = opts.eph ?? eph.pub;
    const th2 = sha256(th1, lp(ephR), lp(ctR));
    const pskKey = Buffer.alloc(32); // no room secret configured (§8.2)
    const ikm = Buffer.concat([sI, sR, dh]);
    const K = (label: string) => Buffer.from(hkdfSync('sha256', ikm, pskKey, Buffer.concat([ascii(`e2ee-chat/1 ${label}`), th2]), 32));
    const confR = K('confirm responder');
    this.confI = K('confirm initiator');
    this.recvCk = K('chain initiator');
    this.sendCk = K('chain responder');
    this.sid = K('session id');
    const sig = pssSign(opts.signWith ?? this.me.privateKey, Buffer.concat([ascii('e2ee-chat/1 responder signature'), th2]));
    const mac = hmac(confR, th2);
    if (opts.badMac) mac[0]! ^= 0x01;
    this.th3 = sha256(th2, lp(sig), lp(mac));
    return encodeFrame({ type: 'HS_RESP', eph: ephR, ct: ctR, sig, mac });
  }

  /** Verifies HS_FINISH; true when the initiator's signature and MAC are right (§8.2 "R on HS_FINISH"). */
  onFinish(body: Uint8Array): boolean {
    const f = decodeFrame(body, 'e2e');
    if (f.type !== 'HS_FINISH' || !this.th3 || !this.confI) return false;
    const key = createPublicKey({ key: Buffer.from(this.initiator.spki), format: 'der', type: 'spki' });
    const ok = pssVerify(key, Buffer.concat([ascii('e2ee-chat/1 initiator signature'), this.th3]), f.sig) && hmac(this.confI, this.th3).equals(Buffer.from(f.mac));
    this.established = ok;
    return ok;
  }

  private ad(sender: string, recipient: string, n: number): Buffer {
    return Buffer.concat([ascii('e2ee-chat/1 msg'), lp(this.sid!), lp(sender), lp(recipient), lp(this.room), u64(n)]);
  }

  /** The message key and chain key for message `n` of the sending chain (ck_0 = chain responder). */
  private sendKey(n: number): Buffer {
    let ck = this.sendCk!;
    for (let i = 0; i < n; i++) ck = hmac(ck, Buffer.from([0x02]));
    return hmac(ck, Buffer.from([0x01]));
  }

  /**
   * Seals `padded` (default: the padded encoding of `inner`) as message number `seq` (default the next)
   * and returns the MSG body. Sealing an earlier number again reproduces the same key (for replays).
   */
  seal(inner: Uint8Array, o: { seq?: number; padded?: Uint8Array } = {}): Uint8Array {
    const seq = o.seq ?? this.sendNext;
    if (o.seq === undefined) this.sendNext++;
    const padded = o.padded ?? pad(inner);
    const c = createCipheriv('aes-256-gcm', this.sendKey(seq), Buffer.concat([Buffer.alloc(4), u64(seq)]));
    c.setAAD(this.ad(this.me.nick, this.initiator.nick, seq));
    const ct = Buffer.concat([c.update(padded), c.final(), c.getAuthTag()]);
    return encodeFrame({ type: 'MSG', seq, ct });
  }

  /** A TEXT inner frame, sealed as the next message. */
  text(text: string, o: { seq?: number } = {}): Uint8Array {
    return this.seal(encodeFrame({ type: 'TEXT', ts: Date.now(), text }), o);
  }

  /** Opens a MSG from the initiator in order; returns the inner frame, or undefined when it does not open. */
  open(body: Uint8Array): FrameOf<'TEXT'> | FrameOf<'ACK'> | undefined {
    let f: E2EFrame;
    try {
      f = decodeFrame(body, 'e2e');
    } catch {
      return undefined;
    }
    if (f.type !== 'MSG' || f.seq !== this.recvNext || !this.recvCk) return undefined;
    const mk = hmac(this.recvCk, Buffer.from([0x01]));
    try {
      const d = createDecipheriv('aes-256-gcm', mk, Buffer.concat([Buffer.alloc(4), u64(f.seq)]));
      d.setAAD(this.ad(this.initiator.nick, this.me.nick, f.seq));
      d.setAuthTag(f.ct.subarray(f.ct.length - 16));
      const padded = Buffer.concat([d.update(f.ct.subarray(0, f.ct.length - 16)), d.final()]);
      this.recvCk = hmac(this.recvCk, Buffer.from([0x02]));
      this.recvNext++;
      const n = padded.readUInt32BE(0);
      const inner = decodeFrame(padded.subarray(4, 4 + n), 'inner');
      return inner;
    } catch {
      return undefined;
    }
  }
}

/** A kit peer: a nickname and an identity (made by the kit, never the client's). */
export interface KitPeer extends Party {
  readonly ident: Identity;
}
