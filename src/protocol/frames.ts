/**
 * The message catalogue (spec/PROTOCOL.md §5): every frame type with its code, layer, direction and
 * fields in canonical order. This table is the single definition; the decoder and encoder are driven by
 * it and test/spec-tables.test.ts holds it equal to the spec's catalogue table.
 *
 * Layers:
 * - `relay`: frames on the TCP connection between a client and the relay (length-prefixed).
 * - `e2e`:   frames between two clients, carried as the opaque `body` of SEND / DELIVER.
 * - `inner`: the plaintext of an end-to-end MSG, inside the AEAD (after unpadding).
 */
import { LIMITS } from './limits.js';

export type Layer = 'relay' | 'e2e' | 'inner';
export type Direction = 'c2s' | 's2c' | 'both' | 'peer';

export type FieldSpec =
  | { readonly name: string; readonly kind: 'uint'; readonly min: number; readonly max: number }
  | { readonly name: string; readonly kind: 'str'; readonly min: number; readonly max: number; readonly alphabet?: 'nick' | 'room' }
  | { readonly name: string; readonly kind: 'bin'; readonly min: number; readonly max: number }
  | { readonly name: string; readonly kind: 'members'; readonly min: number; readonly max: number };

const L = LIMITS;
// The helpers are generic in the field name so that FrameOf<N> below gets literal keys (a plain `string`
// name would collapse every frame type into an index signature).
const nick = <N extends string>(name: N) => ({ name, kind: 'str', min: L.NICK_MIN_BYTES, max: L.NICK_MAX_BYTES, alphabet: 'nick' }) as const;
const room = <N extends string>(name: N) => ({ name, kind: 'str', min: L.ROOM_MIN_BYTES, max: L.ROOM_MAX_BYTES, alphabet: 'room' }) as const;
const uint = <N extends string>(name: N, min = 0, max: number = L.MAX_UINT) => ({ name, kind: 'uint', min, max }) as const;
const bin = <N extends string>(name: N, min: number, max: number = min) => ({ name, kind: 'bin', min, max }) as const;
const key = <N extends string>(name: N) => bin(name, 1, L.KEY_MAX_BYTES);

/** Frame types: name -> code, layer, direction, fields (the `t` field is implicit and always first). */
export const FRAMES = {
  HELLO: { code: 0x01, layer: 'relay', dir: 'c2s', fields: [uint('version', 0, 255), nick('nick'), key('key')] },
  CHALLENGE: {
    code: 0x02,
    layer: 'relay',
    dir: 's2c',
    fields: [uint('version', 0, 255), bin('nonce', L.NONCE_BYTES), { name: 'relay', kind: 'str', min: 1, max: L.RELAY_NAME_MAX_BYTES }],
  },
  AUTH: { code: 0x03, layer: 'relay', dir: 'c2s', fields: [bin('sig', L.RSA_BYTES)] },
  WELCOME: {
    code: 0x04,
    layer: 'relay',
    dir: 's2c',
    fields: [uint('idle_ms', 1), uint('max_frame', 1, L.MAX_FRAME_BYTES), uint('room_size', 2, L.MAX_ROOM_SIZE), uint('rate', 1)],
  },
  JOIN: { code: 0x05, layer: 'relay', dir: 'c2s', fields: [room('room')] },
  JOINED: {
    code: 0x06,
    layer: 'relay',
    dir: 's2c',
    fields: [room('room'), uint('epoch', 1), { name: 'members', kind: 'members', min: 0, max: L.MAX_ROOM_SIZE - 1 }],
  },
  // §7.1 "Room epoch": every membership event carries the room's epoch after it (1 for a new room).
  PEER_JOINED: { code: 0x07, layer: 'relay', dir: 's2c', fields: [nick('nick'), key('key'), uint('epoch', 1)] },
  PEER_LEFT: { code: 0x08, layer: 'relay', dir: 's2c', fields: [nick('nick'), uint('epoch', 1)] },
  SEND: { code: 0x09, layer: 'relay', dir: 'c2s', fields: [nick('to'), bin('body', 1, L.MAX_BODY_BYTES)] },
  DELIVER: { code: 0x0a, layer: 'relay', dir: 's2c', fields: [nick('from'), bin('body', 1, L.MAX_BODY_BYTES)] },
  LEAVE: { code: 0x0b, layer: 'relay', dir: 'c2s', fields: [] },
  LEFT: { code: 0x0c, layer: 'relay', dir: 's2c', fields: [] },
  PING: { code: 0x0d, layer: 'relay', dir: 'c2s', fields: [uint('n')] },
  PONG: { code: 0x0e, layer: 'relay', dir: 's2c', fields: [uint('n')] },
  ERROR: {
    code: 0x0f,
    layer: 'relay',
    dir: 'both',
    fields: [uint('code', 1, 255), { name: 'detail', kind: 'str', min: 0, max: L.DETAIL_MAX_BYTES }],
  },
  RECOVER: {
    code: 0x10,
    layer: 'relay',
    dir: 'c2s',
    fields: [bin('sig', L.RSA_BYTES), bin('code', L.RECOVERY_CODE_BYTES), bin('commit', L.RECOVERY_COMMIT_BYTES)],
  },
  SET_RECOVERY: { code: 0x11, layer: 'relay', dir: 'c2s', fields: [bin('commit', L.RECOVERY_COMMIT_BYTES)] },
  RECOVERY_SET: { code: 0x12, layer: 'relay', dir: 's2c', fields: [] },
  HS_INIT: {
    code: 0x21,
    layer: 'e2e',
    dir: 'peer',
    fields: [uint('version', 0, 255), bin('eph', L.X25519_BYTES), bin('ct', L.RSA_BYTES)],
  },
  HS_RESP: {
    code: 0x22,
    layer: 'e2e',
    dir: 'peer',
    fields: [bin('eph', L.X25519_BYTES), bin('ct', L.RSA_BYTES), bin('sig', L.RSA_BYTES), bin('mac', L.MAC_BYTES)],
  },
  HS_FINISH: { code: 0x23, layer: 'e2e', dir: 'peer', fields: [bin('sig', L.RSA_BYTES), bin('mac', L.MAC_BYTES)] },
  MSG: { code: 0x24, layer: 'e2e', dir: 'peer', fields: [uint('seq'), bin('ct', L.PAD_MIN_BYTES + 16, L.PAD_MAX_BYTES + 16)] },
  TEXT: {
    code: 0x31,
    layer: 'inner',
    dir: 'peer',
    fields: [uint('ts'), { name: 'text', kind: 'str', min: 1, max: L.MAX_TEXT_BYTES }],
  },
  ACK: { code: 0x32, layer: 'inner', dir: 'peer', fields: [uint('upto')] },
  // §8.6: the sender's commitment to the room's members at one epoch.
  ROSTER: { code: 0x33, layer: 'inner', dir: 'peer', fields: [uint('epoch', 1), bin('hash', L.ROSTER_HASH_BYTES)] },
} as const satisfies Record<string, { code: number; layer: Layer; dir: Direction; fields: readonly FieldSpec[] }>;

export type FrameName = keyof typeof FRAMES;

/** A member of a room as listed in JOINED: nickname and identity key (SPKI DER). */
export interface Member {
  nick: string;
  key: Uint8Array;
}

type FieldValue<F> = F extends { kind: 'uint' }
  ? number
  : F extends { kind: 'str' }
    ? string
    : F extends { kind: 'bin' }
      ? Uint8Array
      : F extends { kind: 'members' }
        ? Member[]
        : never;

type FieldsOf<Fs> = Fs extends readonly [infer H, ...infer R]
  ? (H extends { name: infer N extends string } ? { [K in N]: FieldValue<H> } : never) & FieldsOf<R>
  : unknown;

type Flatten<T> = { [K in keyof T]: T[K] };

/** The typed frame for one catalogue entry: `{ type: 'SEND', to: string, body: Uint8Array }`. */
export type FrameOf<N extends FrameName> = Flatten<{ type: N } & FieldsOf<(typeof FRAMES)[N]['fields']>>;

/** Every frame, as a discriminated union on `type`. */
export type Frame = { [N in FrameName]: FrameOf<N> }[FrameName];
export type LayerFrame<Ly extends Layer> = { [N in FrameName]: (typeof FRAMES)[N]['layer'] extends Ly ? FrameOf<N> : never }[FrameName];
export type RelayFrame = LayerFrame<'relay'>;
export type E2EFrame = LayerFrame<'e2e'>;
export type InnerFrame = LayerFrame<'inner'>;

const BY_CODE: ReadonlyMap<number, FrameName> = new Map(
  (Object.keys(FRAMES) as FrameName[]).map((name) => [FRAMES[name].code, name]),
);

/** The frame name for a code, or undefined when no frame has that code. */
export function frameName(code: number): FrameName | undefined {
  return BY_CODE.get(code);
}
