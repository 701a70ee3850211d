/**
 * Room membership (spec/PROTOCOL.md §7.1 "Joining", "Leaving"). Pure data: no sockets, no timers.
 *
 * Rooms are created on first join and removed when their last member leaves. A room holds at most
 * `maxRoomSize` members and each nickname at most once. `join` checks and inserts in one synchronous
 * step, so of concurrent joins to a room with k free places exactly k succeed: a caller on Node's single
 * event loop cannot observe a room between the check and the insert.
 *
 * Each room has an epoch (spec §7.1 "Room epoch"): 1 when the room is created by its first join, one more
 * with every join and every leave, in the same synchronous step as the change, so every member is told
 * the same number for the same membership. It starts again at 1 when an emptied room is created anew.
 *
 * `T` is whatever the caller attaches to a member (the server attaches its connection); the manager never
 * looks inside it.
 */
import { ProtocolError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';

export interface RoomMember<T> {
  readonly nick: string;
  /** The member's identity key, DER SubjectPublicKeyInfo (294 bytes for RSA-2048). */
  readonly key: Uint8Array;
  readonly handle: T;
}

export class RoomManager<T> {
  // Insertion order is join order, so JOINED lists members in the order they arrived.
  private readonly rooms = new Map<string, Map<string, RoomMember<T>>>();
  private readonly epochs = new Map<string, number>();

  /** @param maxRoomSize members per room, 2..MAX_ROOM_SIZE (spec §10). */
  constructor(readonly maxRoomSize: number = LIMITS.DEFAULT_ROOM_SIZE) {
    if (!Number.isInteger(maxRoomSize) || maxRoomSize < 2 || maxRoomSize > LIMITS.MAX_ROOM_SIZE) {
      throw new RangeError(`maxRoomSize: expected an integer 2..${LIMITS.MAX_ROOM_SIZE}, got ${maxRoomSize}`);
    }
  }

  /**
   * Adds `member` to `room`, creating the room if needed, and returns the members that were there before
   * (in join order). Throws ProtocolError NICK_IN_ROOM when the nickname is already a member, ROOM_FULL
   * when the room already holds maxRoomSize members; the room is unchanged in both cases.
   */
  join(room: string, member: RoomMember<T>): RoomMember<T>[] {
    const existing = this.rooms.get(room);
    // NICK_IN_ROOM is checked first: a duplicate nickname is refused for what it is even in a full room.
    if (existing?.has(member.nick)) throw new ProtocolError('NICK_IN_ROOM', `${member.nick} is already in ${room}`);
    if (existing !== undefined && existing.size >= this.maxRoomSize) {
      throw new ProtocolError('ROOM_FULL', `${room} holds ${this.maxRoomSize} members`);
    }
    const others = existing === undefined ? [] : [...existing.values()];
    const members = existing ?? new Map<string, RoomMember<T>>();
    members.set(member.nick, member);
    if (existing === undefined) this.rooms.set(room, members);
    this.epochs.set(room, (this.epochs.get(room) ?? 0) + 1);
    return others;
  }

  /**
   * Removes `nick` from `room` and returns the members that remain (to be sent PEER_LEFT). Removes the
   * room when it becomes empty. Leaving a room one is not in returns [] and changes nothing.
   */
  leave(room: string, nick: string): RoomMember<T>[] {
    const members = this.rooms.get(room);
    if (members === undefined || !members.delete(nick)) return [];
    if (members.size === 0) {
      this.rooms.delete(room);
      this.epochs.delete(room);
      return [];
    }
    this.epochs.set(room, this.epochs.get(room)! + 1);
    return [...members.values()];
  }

  /**
   * The epoch of `room` (§7.1 "Room epoch"): the number of the last join or leave, which JOINED,
   * PEER_JOINED and PEER_LEFT carry; 0 for a room that does not exist.
   */
  epoch(room: string): number {
    return this.epochs.get(room) ?? 0;
  }

  /** The member `nick` of `room`, or undefined. */
  member(room: string, nick: string): RoomMember<T> | undefined {
    return this.rooms.get(room)?.get(nick);
  }

  /** The members of `room` in join order ([] for a room that does not exist). */
  members(room: string): RoomMember<T>[] {
    const members = this.rooms.get(room);
    return members === undefined ? [] : [...members.values()];
  }

  /** Number of rooms that currently exist (each has at least one member). */
  get roomCount(): number {
    return this.rooms.size;
  }

  /** Names of the rooms that currently exist. */
  roomNames(): string[] {
    return [...this.rooms.keys()];
  }
}
