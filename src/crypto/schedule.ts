/**
 * The handshake transcript, key schedule, message chains and padding of spec/PROTOCOL.md §8.2-§8.3.
 * Pure functions over bytes; the handshake state machine (src/handshake/session.ts) sequences them.
 */
import { ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { AEAD_NONCE_BYTES, aeadOpen, aeadSeal, hkdf, hkdfExtract, hmac512, sha256 } from './primitives.js';
import { lp } from './rsa.js';

const ascii = (s: string): Buffer => Buffer.from(s, 'ascii');

export const LABEL_HANDSHAKE = ascii('e2ee-chat/1 handshake');
export const LABEL_PSK = ascii('e2ee-chat/1 psk');
export const LABEL_SIG_RESPONDER = ascii('e2ee-chat/1 responder signature');
export const LABEL_SIG_INITIATOR = ascii('e2ee-chat/1 initiator signature');
export const LABEL_MSG = ascii('e2ee-chat/1 msg');
export const SECRET_BYTES = 32;

/** TH0 (§8.2): SHA-256 over the room, both nicknames and both identity keys (SPKI DER). 32 bytes. */
export function th0(room: string, nickI: string, keyI: Uint8Array, nickR: string, keyR: Uint8Array): Buffer {
  return sha256(LABEL_HANDSHAKE, lp(room), lp(nickI), lp(keyI), lp(nickR), lp(keyR));
}

/** TH1 = SHA-256(TH0 || lp(init)), `init` the encoded HS_INIT body. 32 bytes. */
export function th1(th0v: Uint8Array, init: Uint8Array): Buffer {
  return sha256(th0v, lp(init));
}

/** TH2 = SHA-256(TH1 || lp(X_R) || lp(ct_R)). 32 bytes. */
export function th2(th1v: Uint8Array, ephR: Uint8Array, ctR: Uint8Array): Buffer {
  return sha256(th1v, lp(ephR), lp(ctR));
}

/** TH3 = SHA-256(TH2 || lp(sig_R) || lp(mac_R)). 32 bytes. */
export function th3(th2v: Uint8Array, sigR: Uint8Array, macR: Uint8Array): Buffer {
  return sha256(th2v, lp(sigR), lp(macR));
}

/** psk_key (§8.2): HKDF(salt "", psk, "e2ee-chat/1 psk", 32), or 32 zero bytes without a psk. */
export function pskKey(psk: Uint8Array | undefined): Buffer {
  return psk === undefined ? Buffer.alloc(32) : hkdf(psk, new Uint8Array(0), LABEL_PSK, 32);
}

/** Every key the schedule of §8.2 derives; each 32 bytes. */
export interface SessionKeys {
  readonly prk: Buffer;
  readonly confI: Buffer;
  readonly confR: Buffer;
  readonly ckIR: Buffer;
  readonly ckRI: Buffer;
  readonly sid: Buffer;
}

/**
 * The key schedule of §8.2: PRK = HKDF-Extract(psk_key, s_I || s_R || dh) and
 * K(label) = HKDF-Expand(PRK, "e2ee-chat/1 " || label || TH2, 32). Inputs: 32-byte secrets, 32-byte dh,
 * 32-byte TH2. Computed as HKDF(salt, IKM, info) per label, which is Expand(Extract(...)) by definition.
 */
export function keySchedule(sI: Uint8Array, sR: Uint8Array, dh: Uint8Array, th2v: Uint8Array, psk: Uint8Array | undefined): SessionKeys {
  const salt = pskKey(psk);
  const ikm = Buffer.concat([sI, sR, dh]);
  const k = (label: string): Buffer => hkdf(ikm, salt, Buffer.concat([ascii(`e2ee-chat/1 ${label}`), th2v]), 32);
  const keys: SessionKeys = {
    prk: hkdfExtract(salt, ikm),
    confI: k('confirm initiator'),
    confR: k('confirm responder'),
    ckIR: k('chain initiator'),
    ckRI: k('chain responder'),
    sid: k('session id'),
  };
  ikm.fill(0);
  salt.fill(0);
  return keys;
}

/** The message a responder signs: "e2ee-chat/1 responder signature" || TH2. */
export function responderSignedMessage(th2v: Uint8Array): Buffer {
  return Buffer.concat([LABEL_SIG_RESPONDER, th2v]);
}

/** The message an initiator signs: "e2ee-chat/1 initiator signature" || TH3. */
export function initiatorSignedMessage(th3v: Uint8Array): Buffer {
  return Buffer.concat([LABEL_SIG_INITIATOR, th3v]);
}

/** u64(n) big-endian, n <= MAX_UINT. */
function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** nonce_n = 0x00000000 || u64(n) (§8.3): 12 bytes. */
export function messageNonce(n: number): Buffer {
  const b = Buffer.alloc(AEAD_NONCE_BYTES);
  b.writeBigUInt64BE(BigInt(n), 4);
  return b;
}

/** ad_n = "e2ee-chat/1 msg" || lp(sid) || lp(sender) || lp(recipient) || lp(room) || u64(n) (§8.3). */
export function messageAd(sid: Uint8Array, sender: string, recipient: string, room: string, n: number): Buffer {
  return messageAdFor(messageAdPrefix(sid, sender, recipient, room), n);
}

/** The part of ad_n that is fixed for one direction of one session (everything before u64(n)). */
export function messageAdPrefix(sid: Uint8Array, sender: string, recipient: string, room: string): Buffer {
  return Buffer.concat([LABEL_MSG, lp(sid), lp(sender), lp(recipient), lp(room)]);
}

/** ad_n from its fixed prefix: prefix || u64(n). */
export function messageAdFor(prefix: Uint8Array, n: number): Buffer {
  const ad = Buffer.allocUnsafe(prefix.length + 8);
  ad.set(prefix, 0);
  ad.writeBigUInt64BE(BigInt(n), prefix.length);
  return ad;
}

export const LABEL_CHAIN = ascii('e2ee-chat/1 chain');

/**
 * One step of a chain (§8.3): HMAC-SHA-512(ck_n, "e2ee-chat/1 chain") split into mk_n (the first 32
 * bytes) and ck_{n+1} (the last 32). One HMAC per message instead of two: HMAC-SHA-512 is a PRF, so its
 * two output halves are independent keys.
 */
export function chainStep(ck: Uint8Array): { mk: Buffer; next: Buffer } {
  const out = hmac512(ck, LABEL_CHAIN);
  return { mk: out.subarray(0, 32), next: out.subarray(32, 64) };
}

/**
 * One direction's symmetric ratchet (§8.3). Each step replaces and erases the old chain key; the caller
 * erases the message key after use. The chain only moves forward, so a message number, and with it a
 * (key, nonce) pair, is never used twice.
 */
export class Chain {
  #ck: Buffer;
  #next = 0;
  #pending: { mk: Buffer; next: Buffer } | undefined;

  /** Takes ownership of the 32-byte chain key `ck0` (it is erased when the chain advances). */
  constructor(ck0: Buffer) {
    this.#ck = ck0;
  }

  /** The number of the next message in this direction. */
  get next(): number {
    return this.#next;
  }

  /** mk_next without advancing (a receiver tries it first and advances only on success). 32 bytes. */
  peekKey(): Buffer {
    this.#pending ??= chainStep(this.#ck);
    return Buffer.from(this.#pending.mk);
  }

  /** Moves to ck_{next+1}, erasing ck_next and mk_next. Throws RangeError past MAX_UINT messages (§8.3). */
  advance(): void {
    if (this.#next >= LIMITS.MAX_UINT) throw new RangeError('message chain exhausted');
    const step = this.#pending ?? chainStep(this.#ck);
    this.#pending = undefined;
    this.#ck.fill(0);
    step.mk.fill(0);
    this.#ck = Buffer.from(step.next);
    step.next.fill(0);
    this.#next += 1;
  }

  /** Erases the chain key; the chain is unusable afterwards. */
  erase(): void {
    this.#ck.fill(0);
    this.#pending?.mk.fill(0);
    this.#pending?.next.fill(0);
  }
}

/** The padding bucket for an inner frame of `innerLength` bytes (§8.3); RangeError when it cannot fit. */
export function paddedLength(innerLength: number): number {
  let b: number = LIMITS.PAD_MIN_BYTES;
  while (b < 4 + innerLength) b *= 2;
  if (b > LIMITS.PAD_MAX_BYTES) throw new RangeError(`inner frame of ${innerLength} bytes exceeds the largest padding bucket`);
  return b;
}

/** padded = u32(len(inner)) || inner || zeros, to the bucket of §8.3. */
export function pad(inner: Uint8Array): Buffer {
  const out = Buffer.alloc(paddedLength(inner.length));
  out.writeUInt32BE(inner.length, 0);
  out.set(inner, 4);
  return out;
}

/**
 * Removes the padding of §8.3. Throws ProtocolError BAD_PADDING unless the length is a power of two in
 * PAD_MIN_BYTES..PAD_MAX_BYTES, it is exactly the bucket the length field implies, and every padding
 * byte is zero. Returns a view into `padded`.
 */
export function unpad(padded: Uint8Array): Uint8Array {
  const n = padded.length;
  if (n < LIMITS.PAD_MIN_BYTES || n > LIMITS.PAD_MAX_BYTES || (n & (n - 1)) !== 0) {
    throw new ProtocolError('BAD_PADDING', `padded length ${n} is not a bucket`);
  }
  const len = Buffer.from(padded.buffer, padded.byteOffset, 4).readUInt32BE(0);
  if (len > n - 4) throw new ProtocolError('BAD_PADDING', `length field ${len} exceeds the padded size`);
  if (paddedLength(len) !== n) throw new ProtocolError('BAD_PADDING', `length ${len} belongs in another bucket than ${n}`);
  let acc = 0;
  for (let i = 4 + len; i < n; i++) acc |= padded[i] as number;
  if (acc !== 0) throw new ProtocolError('BAD_PADDING', 'non-zero padding bytes');
  return padded.subarray(4, 4 + len);
}

/** Seals padded plaintext as message n of a direction: AES-256-GCM under mk with nonce_n and ad_n. */
export function sealMessage(mk: Uint8Array, n: number, padded: Uint8Array, ad: Uint8Array): Buffer {
  return aeadSeal(mk, messageNonce(n), padded, ad);
}

/** Opens message n; ProtocolError DECRYPT_FAILED on failure. */
export function openMessage(mk: Uint8Array, n: number, ct: Uint8Array, ad: Uint8Array): Buffer {
  return aeadOpen(mk, messageNonce(n), ct, ad);
}
