/**
 * The identity-key check of spec/PROTOCOL.md §8.1, on bytes, for every platform: a peer's key is accepted
 * only as the canonical DER SubjectPublicKeyInfo of an RSA key (rsaEncryption, NULL parameters) with a
 * 2048-bit modulus and exponent 65537. That encoding has one shape, 294 bytes:
 *
 *     30 82 01 22  30 0d 06 09 2a 86 48 86 f7 0d 01 01 01 05 00  03 82 01 0f 00
 *     30 82 01 0a  02 82 01 01 00 <256-byte modulus, top bit set>  02 03 01 00 01
 *
 * so checking the shape is checking the key: the same keys are accepted as by "OpenSSL parses it, it is
 * RSA, 2048 bits, e = 65537, and re-encoding it gives the same bytes", without a DER decoder and encoder
 * (which cost more than the RSA operations of a handshake in OpenSSL 3).
 */
import { ProtocolError } from '../protocol/errors.js';
import { concatBytes, lp, utf8 } from './bytes.js';

export const IDENTITY_SPKI_BYTES = 294;
const HEADER = Uint8Array.of(
  0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x0f, 0x00,
  0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00,
);
const TRAILER = Uint8Array.of(0x02, 0x03, 0x01, 0x00, 0x01);
const MODULUS_BYTES = 256;

/**
 * Checks `spki` against §8.1 and returns its 256-byte modulus (a view into `spki`). Throws ProtocolError
 * BAD_PUBLIC_KEY for anything else: another key type or size, another exponent, non-canonical DER,
 * trailing bytes.
 */
export function identityModulus(spki: Uint8Array): Uint8Array {
  if (spki.length !== IDENTITY_SPKI_BYTES) throw new ProtocolError('BAD_PUBLIC_KEY', `SPKI of ${spki.length} bytes, expected ${IDENTITY_SPKI_BYTES} (RSA-2048, e = 65537)`);
  for (let i = 0; i < HEADER.length; i++) {
    if (spki[i] !== HEADER[i]) throw new ProtocolError('BAD_PUBLIC_KEY', `not the canonical DER of an RSA-2048 SPKI (byte ${i})`);
  }
  const modulus = spki.subarray(HEADER.length, HEADER.length + MODULUS_BYTES);
  if ((modulus[0] as number) < 0x80) throw new ProtocolError('BAD_PUBLIC_KEY', 'modulus shorter than 2048 bits');
  for (let i = 0; i < TRAILER.length; i++) {
    if (spki[HEADER.length + MODULUS_BYTES + i] !== TRAILER[i]) throw new ProtocolError('BAD_PUBLIC_KEY', 'public exponent is not 65537');
  }
  return modulus;
}

/**
 * The message a client signs with its identity key to authenticate to the relay (spec §7.3): the
 * challenge nonce (32 bytes), its nickname, its SPKI, the relay's name as CHALLENGE.relay gave it (and
 * the client checked), and the channel binding `cb`: the 32-byte RFC 9266 tls-exporter value over TLS,
 * empty without TLS.
 */
export function authMessage(nonce: Uint8Array, nick: string, spki: Uint8Array, relay: string, cb: Uint8Array): Uint8Array {
  return concatBytes(utf8('e2ee-chat/2 auth'), lp(nonce), lp(nick), lp(spki), lp(utf8(relay)), lp(cb));
}
