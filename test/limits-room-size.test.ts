/**
 * Spec §6 JOINED / §10 MAX_LISTABLE_ROOM_SIZE: the limit table's figure equals the one the relay computes
 * from the codec (the largest room whose worst-case JOINED fits in one frame), and one more does not fit.
 */
import t from 'tap';
import { LIMITS } from '../src/protocol/limits.js';
import { encodeFrame, frame } from '../src/codec/index.js';
import { MAX_LISTABLE_ROOM_SIZE } from '../src/server/index.js';

function joinedBytes(size: number): number {
  const key = new Uint8Array(294);
  const members = Array.from({ length: size - 1 }, (_, i) => ({ nick: `m${i}`.padEnd(LIMITS.NICK_MAX_BYTES, 'x'), key }));
  try {
    return encodeFrame(frame('JOINED', { room: 'r'.repeat(LIMITS.ROOM_MAX_BYTES), epoch: LIMITS.MAX_UINT, members })).length;
  } catch {
    return Infinity;
  }
}

t.equal(LIMITS.MAX_LISTABLE_ROOM_SIZE, MAX_LISTABLE_ROOM_SIZE, 'limits table and relay agree');
t.ok(joinedBytes(LIMITS.MAX_LISTABLE_ROOM_SIZE) <= LIMITS.MAX_FRAME_BYTES, 'a full room of MAX_LISTABLE_ROOM_SIZE is listable');
t.ok(joinedBytes(LIMITS.MAX_LISTABLE_ROOM_SIZE + 1) > LIMITS.MAX_FRAME_BYTES, 'one member more is not');
t.ok(LIMITS.MAX_LISTABLE_ROOM_SIZE <= LIMITS.MAX_ROOM_SIZE, 'within the field bound');
