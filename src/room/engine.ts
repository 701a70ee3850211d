/**
 * Where rooms live when they are not in this process (spec/CLUSTER.md): the relay calls a `RoomEngine`
 * for JOIN, SEND and LEAVE when one is configured, and keeps its in-memory RoomManager otherwise. The
 * engine owns fan-out: PEER_JOINED, PEER_LEFT and DELIVER for this relay's connections come back
 * through `RoomSink.write`, in the order the engine decided them.
 */

/** A member as JOINED and PEER_JOINED show it (spec §6). */
export interface EngineMember {
  readonly nick: string;
  /** DER SubjectPublicKeyInfo. */
  readonly key: Uint8Array;
}

/** What the relay gives an engine: a way to write to one of its connections and to be told of failure. */
export interface RoomSink<H> {
  /** Writes a frame's wire bytes (length prefix and body) to connection `handle`. */
  write(handle: H, wire: Buffer): void;
  /**
   * Refuses on connection `handle` (counted and logged as any refusal of the relay): SLOW_CONSUMER when the engine cannot give the
   * connection every event it is owed (spec/CLUSTER.md §3), so it must not stay and miss some silently;
   * INTERNAL_ERROR when the engine failed for this connection.
   */
  refuse(handle: H, code: 'SLOW_CONSUMER' | 'INTERNAL_ERROR', detail: string): void;
  /** The engine can no longer keep its promises (store unreachable, presence lost): stop taking work. */
  lost(reason: string): void;
  /** The engine works again after `lost`. */
  restored(): void;
}

export interface RoomEngine<H> {
  /** Called once by the relay before any other method. */
  attach(sink: RoomSink<H>): void;
  /**
   * Adds `handle` (nickname `nick`, key `key`) to `room`. On success calls `joined(others, epoch)` (the
   * other members, in join order, and the room's epoch after this join, spec §7.1 "Room epoch", which
   * the engine increments atomically with the add and puts in every PEER_JOINED and PEER_LEFT it fans
   * out) before any event for `handle` reaches the sink, then resolves. Rejects with
   * ProtocolError NICK_IN_ROOM or ROOM_FULL (checked in that order, atomically with the add), or another
   * error when the engine failed. Resolves without calling `joined` when the engine dropped `handle`
   * (RoomSink.refuse) while the join was in flight; the membership it made is then already undone.
   */
  join(room: string, nick: string, key: Uint8Array, handle: H, joined: (others: EngineMember[], epoch: number) => void): Promise<void>;
  /**
   * Queues DELIVER{from: nick of handle, body} for member `to`, decided when called: throws ProtocolError
   * NO_SUCH_PEER when `to` is not another member of the room as `handle` knows it, another error when
   * `handle` is no member here. Returns a promise (that never rejects) when the relay should read nothing
   * more from `handle` until it settles, else undefined.
   */
  send(handle: H, to: string, body: Uint8Array): Promise<void> | undefined;
  /**
   * Removes `handle` from its room (no-op if it is in none), after its queued SENDs are decided; the rest
   * get PEER_LEFT. Never rejects.
   */
  leave(handle: H): Promise<void>;
  /** Rooms with at least one member on this relay. */
  localRooms(): number;
  /** Whether the engine accepts work now. */
  readonly available: boolean;
  /** Leaves every local member, stops timers, disconnects. Idempotent. */
  close(): Promise<void>;
}
