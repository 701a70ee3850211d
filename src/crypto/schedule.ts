/**
 * The handshake transcript, key schedule, message chains and padding of spec/PROTOCOL.md §8.2-§8.3.
 * Functions over bytes; those that hash, derive or encrypt take the CryptoBackend that does it and are
 * asynchronous. The handshake state machine (src/handshake/session.ts) sequences them. Part of the core.
 */
import { ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { AEAD_NONCE_BYTES, type CryptoBackend, type SyncMessagePrimitives } from './backend.js';
import { concatBytes, lp, readU32BE, utf8, writeU32BE, writeU64BE } from './bytes.js';

export const LABEL_HANDSHAKE = utf8('e2ee-chat/1 handshake');
export const LABEL_PSK = utf8('e2ee-chat/1 psk');
export const LABEL_SIG_RESPONDER = utf8('e2ee-chat/1 responder signature');
export const LABEL_SIG_INITIATOR = utf8('e2ee-chat/1 initiator signature');
export const LABEL_MSG = utf8('e2ee-chat/1 msg');
export const LABEL_CHAIN = utf8('e2ee-chat/1 chain');
export const SECRET_BYTES = 32;

/** TH0 (§8.2): SHA-256 over the room, both nicknames and both identity keys (SPKI DER). 32 bytes. */
export function th0(c: CryptoBackend, room: string, nickI: string, keyI: Uint8Array, nickR: string, keyR: Uint8Array): Promise<Uint8Array> {
  return c.sha256(concatBytes(LABEL_HANDSHAKE, lp(room), lp(nickI), lp(keyI), lp(nickR), lp(keyR)));
}

/** TH1 = SHA-256(TH0 || lp(init)), `init` the encoded HS_INIT body. 32 bytes. */
export function th1(c: CryptoBackend, th0v: Uint8Array, init: Uint8Array): Promise<Uint8Array> {
  return c.sha256(concatBytes(th0v, lp(init)));
}

/** TH2 = SHA-256(TH1 || lp(X_R) || lp(ct_R)). 32 bytes. */
export function th2(c: CryptoBackend, th1v: Uint8Array, ephR: Uint8Array, ctR: Uint8Array): Promise<Uint8Array> {
  return c.sha256(concatBytes(th1v, lp(ephR), lp(ctR)));
}

/** TH3 = SHA-256(TH2 || lp(sig_R) || lp(mac_R)). 32 bytes. */
export function th3(c: CryptoBackend, th2v: Uint8Array, sigR: Uint8Array, macR: Uint8Array): Promise<Uint8Array> {
  return c.sha256(concatBytes(th2v, lp(sigR), lp(macR)));
}

/** psk_key (§8.2): HKDF(salt "", psk, "e2ee-chat/1 psk", 32), or 32 zero bytes without a psk. */
export async function pskKey(c: CryptoBackend, psk: Uint8Array | undefined): Promise<Uint8Array> {
  return psk === undefined ? new Uint8Array(32) : c.hkdfSha256(psk, new Uint8Array(0), LABEL_PSK, 32);
}

/** Every key the schedule of §8.2 derives; each 32 bytes. */
export interface SessionKeys {
  readonly prk: Uint8Array;
  readonly confI: Uint8Array;
  readonly confR: Uint8Array;
  readonly ckIR: Uint8Array;
  readonly ckRI: Uint8Array;
  readonly sid: Uint8Array;
}

const KEY_LABELS = ['confirm initiator', 'confirm responder', 'chain initiator', 'chain responder', 'session id'] as const;

/**
 * The key schedule of §8.2: PRK = HKDF-Extract(psk_key, s_I || s_R || dh) and
 * K(label) = HKDF-Expand(PRK, "e2ee-chat/1 " || label || TH2, 32). Inputs: 32-byte secrets, 32-byte dh,
 * 32-byte TH2. Computed as HKDF(salt, IKM, info) per label, which is Expand(Extract(...)) by definition.
 */
export async function keySchedule(c: CryptoBackend, sI: Uint8Array, sR: Uint8Array, dh: Uint8Array, th2v: Uint8Array, psk: Uint8Array | undefined): Promise<SessionKeys> {
  const salt = await pskKey(c, psk);
  const ikm = concatBytes(sI, sR, dh);
  try {
    const [prk, confI, confR, ckIR, ckRI, sid] = await Promise.all([
      // HKDF-Extract(salt, ikm) = HMAC-SHA-256(salt, ikm) (RFC 5869 §2.2).
      c.hmacSha256(salt, ikm),
      ...KEY_LABELS.map((label) => c.hkdfSha256(ikm, salt, concatBytes(utf8(`e2ee-chat/1 ${label}`), th2v), 32)),
    ]);
    return { prk: prk!, confI: confI!, confR: confR!, ckIR: ckIR!, ckRI: ckRI!, sid: sid! };
  } finally {
    ikm.fill(0);
    salt.fill(0);
  }
}

/** The message a responder signs: "e2ee-chat/1 responder signature" || TH2. */
export function responderSignedMessage(th2v: Uint8Array): Uint8Array {
  return concatBytes(LABEL_SIG_RESPONDER, th2v);
}

/** The message an initiator signs: "e2ee-chat/1 initiator signature" || TH3. */
export function initiatorSignedMessage(th3v: Uint8Array): Uint8Array {
  return concatBytes(LABEL_SIG_INITIATOR, th3v);
}

/** nonce_n = 0x00000000 || u64(n) (§8.3): 12 bytes. */
export function messageNonce(n: number): Uint8Array {
  const b = new Uint8Array(AEAD_NONCE_BYTES);
  writeU64BE(b, 4, n);
  return b;
}

/** ad_n = "e2ee-chat/1 msg" || lp(sid) || lp(sender) || lp(recipient) || lp(room) || u64(n) (§8.3). */
export function messageAd(sid: Uint8Array, sender: string, recipient: string, room: string, n: number): Uint8Array {
  return messageAdFor(messageAdPrefix(sid, sender, recipient, room), n);
}

/** The part of ad_n that is fixed for one direction of one session (everything before u64(n)). */
export function messageAdPrefix(sid: Uint8Array, sender: string, recipient: string, room: string): Uint8Array {
  return concatBytes(LABEL_MSG, lp(sid), lp(sender), lp(recipient), lp(room));
}

/** ad_n from its fixed prefix: prefix || u64(n). */
export function messageAdFor(prefix: Uint8Array, n: number): Uint8Array {
  const ad = new Uint8Array(prefix.length + 8);
  ad.set(prefix, 0);
  writeU64BE(ad, prefix.length, n);
  return ad;
}

/**
 * One step of a chain (§8.3): HMAC-SHA-512(ck_n, "e2ee-chat/1 chain") split into mk_n (the first 32
 * bytes) and ck_{n+1} (the last 32). One HMAC per message instead of two: HMAC-SHA-512 is a PRF, so its
 * two output halves are independent keys.
 */
export async function chainStep(c: CryptoBackend, ck: Uint8Array): Promise<{ mk: Uint8Array; next: Uint8Array }> {
  const out = await c.hmacSha512(ck, LABEL_CHAIN);
  return { mk: out.subarray(0, 32), next: out.subarray(32, 64) };
}

/**
 * One direction's symmetric ratchet (§8.3). Each step replaces and erases the old chain key and the
 * message key. The chain only moves forward, so a message number, and with it a (key, nonce) pair, is
 * never used twice. Callers run one operation at a time on a chain (the session serializes them).
 *
 * A step's HMAC output is kept whole: mk_n is a view of its first half, and ck_{n+1} of its second,
 * which becomes the chain key (no copy of either per message, issue 16: the per-message path).
 */
export class Chain {
  readonly #c: CryptoBackend;
  #ck: Uint8Array;
  #next = 0;
  /** mk_next, a view of the pending step's output (mk_next || ck_{next+1}), until the chain advances. */
  #mk: Uint8Array | undefined;
  #ckNext: Uint8Array | undefined;

  /** Takes ownership of the 32-byte chain key `ck0` (it is erased when the chain advances). */
  constructor(c: CryptoBackend, ck0: Uint8Array) {
    this.#c = c;
    this.#ck = ck0;
  }

  /** The number of the next message in this direction. */
  get next(): number {
    return this.#next;
  }

  /**
   * mk_next without advancing (a receiver tries it first and advances only on success). 32 bytes, owned
   * by the chain: valid until `advance` or `erase`, which wipe it; the caller neither keeps nor erases it.
   */
  async peekKey(): Promise<Uint8Array> {
    return this.#mk ?? this.#pend(await this.#c.hmacSha512(this.#ck, LABEL_CHAIN));
  }

  /** peekKey with the backend's synchronous primitives (CryptoBackend.sync): the same key, owned the same way. */
  peekKeySync(s: SyncMessagePrimitives): Uint8Array {
    return this.#mk ?? this.#pend(s.hmacSha512(this.#ck, LABEL_CHAIN));
  }

  /** Moves to ck_{next+1}, erasing ck_next and mk_next. Throws RangeError past MAX_UINT messages (§8.3). */
  async advance(): Promise<void> {
    if (this.#next >= LIMITS.MAX_UINT) throw new RangeError('message chain exhausted');
    if (this.#mk === undefined) this.#pend(await this.#c.hmacSha512(this.#ck, LABEL_CHAIN));
    this.#install();
  }

  /** advance with the backend's synchronous primitives (CryptoBackend.sync); throws as advance. */
  advanceSync(s: SyncMessagePrimitives): void {
    if (this.#next >= LIMITS.MAX_UINT) throw new RangeError('message chain exhausted');
    if (this.#mk === undefined) this.#pend(s.hmacSha512(this.#ck, LABEL_CHAIN));
    this.#install();
  }

  /** Holds a step's 64-byte HMAC output as the pending step; returns its mk half. */
  #pend(out: Uint8Array): Uint8Array {
    const mk = out.subarray(0, 32);
    this.#mk = mk;
    this.#ckNext = out.subarray(32, 64);
    return mk;
  }

  #install(): void {
    this.#ck.fill(0);
    this.#mk!.fill(0);
    this.#ck = this.#ckNext!;
    this.#mk = undefined;
    this.#ckNext = undefined;
    this.#next += 1;
  }

  /** Erases the chain key; the chain is unusable afterwards. */
  erase(): void {
    this.#ck.fill(0);
    this.#mk?.fill(0);
    this.#ckNext?.fill(0);
  }
}

/**
 * ad_n and nonce_n of one direction (§8.3) in two arrays reused from message to message: `number(n)`
 * writes u64(n) into both, so a message costs no allocation for either. node:crypto reads them during
 * the call; the WebCrypto backend reads them only after its `await importKey`, so they must not be
 * rewritten until the seal or open has settled: a session runs one step at a time, and that is what
 * keeps them intact.
 */
export class MessageNumbers {
  /** "e2ee-chat/1 msg" || lp(sid) || lp(sender) || lp(recipient) || lp(room) || u64(n). */
  readonly ad: Uint8Array;
  /** 0x00000000 || u64(n): 12 bytes. */
  readonly nonce = new Uint8Array(AEAD_NONCE_BYTES);

  /** `prefix`: messageAdPrefix of the direction. */
  constructor(prefix: Uint8Array) {
    this.ad = new Uint8Array(prefix.length + 8);
    this.ad.set(prefix, 0);
  }

  /** Sets ad and nonce to those of message n. */
  number(n: number): void {
    writeU64BE(this.ad, this.ad.length - 8, n);
    writeU64BE(this.nonce, 4, n);
  }
}

/** The padding bucket for an inner frame of `innerLength` bytes (§8.3); RangeError when it cannot fit. */
export function paddedLength(innerLength: number): number {
  let b: number = LIMITS.PAD_MIN_BYTES;
  while (b < 4 + innerLength) b *= 2;
  if (b > LIMITS.PAD_MAX_BYTES) throw new RangeError(`inner frame of ${innerLength} bytes exceeds the largest padding bucket`);
  return b;
}

/**
 * padded = u32(len(inner)) || inner || zeros, to the bucket of §8.3. With `scratch`, an all-zero array
 * the caller reuses (and zeroes again after use), the result is written into it when it has the
 * bucket's size, instead of into a fresh array.
 */
export function pad(inner: Uint8Array, scratch?: Uint8Array): Uint8Array {
  const n = paddedLength(inner.length);
  const out = scratch !== undefined && scratch.length === n ? scratch : new Uint8Array(n);
  writeU32BE(out, 0, inner.length);
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
  const len = readU32BE(padded, 0);
  if (len > n - 4) throw new ProtocolError('BAD_PADDING', `length field ${len} exceeds the padded size`);
  if (paddedLength(len) !== n) throw new ProtocolError('BAD_PADDING', `length ${len} belongs in another bucket than ${n}`);
  let acc = 0;
  for (let i = 4 + len; i < n; i++) acc |= padded[i] as number;
  if (acc !== 0) throw new ProtocolError('BAD_PADDING', 'non-zero padding bytes');
  return padded.subarray(4, 4 + len);
}

/** Seals padded plaintext as message n of a direction: AES-256-GCM under mk with nonce_n and ad_n. */
export function sealMessage(c: CryptoBackend, mk: Uint8Array, n: number, padded: Uint8Array, ad: Uint8Array): Promise<Uint8Array> {
  return c.aesGcmSeal(mk, messageNonce(n), padded, ad);
}

/** Opens message n; ProtocolError DECRYPT_FAILED on failure. */
export function openMessage(c: CryptoBackend, mk: Uint8Array, n: number, ct: Uint8Array, ad: Uint8Array): Promise<Uint8Array> {
  return c.aesGcmOpen(mk, messageNonce(n), ct, ad);
}
