/**
 * Every limit of the protocol, in one place (spec/PROTOCOL.md §10 "Limits"). Each row appears in the
 * spec's limits table with the same name and value; test/spec-tables.test.ts keeps the two equal.
 *
 * Byte counts are counts of encoded bytes (UTF-8 bytes for strings). Times are milliseconds.
 * Rows marked "default" are the reference relay's defaults and may be configured; the relay announces
 * the values in force in its WELCOME frame.
 */
export const LIMITS = {
  /** Size of the big-endian unsigned length prefix in front of every frame on the wire. */
  LENGTH_PREFIX_BYTES: 4,
  /** Largest frame body (the msgpack value after the prefix). A larger declared length is refused unread. */
  MAX_FRAME_BYTES: 65536,
  /**
   * Largest frame a relay accepts before WELCOME: the largest HELLO (a 512-byte key and a 32-byte nick,
   * 572 bytes; AUTH is 267 and ERROR at most 268). A larger declared length is refused on the prefix.
   */
  MAX_PRELOGIN_FRAME_BYTES: 572,
  /**
   * relay over TLS (§3.2): bytes of TLS records a client may send before its ClientHello is complete,
   * record headers included (a TLS 1.3 ClientHello is 0.3 to 2 KB). The relay gathers them itself and
   * hands them to TLS only once the ClientHello is complete; a ClientHello that needs more is refused.
   */
  MAX_CLIENT_HELLO_BYTES: 8192,
  /** Deepest container nesting in a frame: the frame map is depth 1. */
  MAX_DEPTH: 3,
  /** Most entries in any map. */
  MAX_MAP_ENTRIES: 8,
  /** Largest integer value: 2^53 - 1, so every value is exact in every language's doubles. */
  MAX_UINT: 9007199254740991,
  /** Nickname: 1 to 32 bytes of [A-Za-z0-9_-]. */
  NICK_MIN_BYTES: 1,
  NICK_MAX_BYTES: 32,
  /** Room name: 1 to 64 bytes of [A-Za-z0-9_.-]. */
  ROOM_MIN_BYTES: 1,
  ROOM_MAX_BYTES: 64,
  /** ERROR detail text. */
  DETAIL_MAX_BYTES: 256,
  /** An identity key as SPKI DER (RSA-2048 with e = 65537 is 294 bytes). */
  KEY_MAX_BYTES: 512,
  /** Length of an RSA-2048 signature or OAEP ciphertext. */
  RSA_BYTES: 256,
  /** Length of an X25519 public key, a challenge nonce, a key-confirmation MAC. */
  X25519_BYTES: 32,
  NONCE_BYTES: 32,
  /** Longest relay name in CHALLENGE.relay (§7.3): a host name of up to 253 bytes and a port fit. */
  RELAY_NAME_MAX_BYTES: 255,
  MAC_BYTES: 32,
  /** Largest opaque body the relay forwards (SEND.body, DELIVER.body). */
  MAX_BODY_BYTES: 49152,
  /** Largest message text, in UTF-8 bytes. */
  MAX_TEXT_BYTES: 16384,
  /** Padding buckets: plaintexts are padded to the next power of two from 256 to 32768 bytes. */
  PAD_MIN_BYTES: 256,
  PAD_MAX_BYTES: 32768,
  /** Field bound of WELCOME.room_size (and JOINED.members: one less); not a size a relay may configure. */
  MAX_ROOM_SIZE: 256,
  /**
   * Most members a relay may be configured to allow in one room: the largest room whose JOINED, with
   * 294-byte keys, 32-byte nicks and a 64-byte room name, fits in MAX_FRAME_BYTES (spec §6 JOINED).
   * src/server computes the same figure from the codec (MAX_LISTABLE_ROOM_SIZE); a test keeps them equal.
   */
  MAX_LISTABLE_ROOM_SIZE: 192,
  /** default: members per room. */
  DEFAULT_ROOM_SIZE: 2,
  /** default: time from TCP accept to WELCOME. */
  HANDSHAKE_TIMEOUT_MS: 10000,
  /** default: a connection that sends no frame for this long is closed with TIMEOUT. */
  IDLE_TIMEOUT_MS: 60000,
  /** Smallest idle_ms a relay should announce (§6 WELCOME: SHOULD NOT below; the relay CLI refuses less). */
  MIN_IDLE_MS: 3000,
  /** Smallest rate a relay should announce (§6 WELCOME: SHOULD NOT below; the relay CLI refuses less). */
  MIN_RATE: 10,
  /** Smallest max_frame a relay may announce (§6 WELCOME: the largest SEND a session needs, 654 bytes). */
  MIN_MAX_FRAME_BYTES: 654,
  /** A receiver sends its cumulative ACK at the latest when this many TEXTs await it (§8.3 step 6). */
  ACK_BATCH_TEXTS: 64,
  /** Length of a roster commitment, ROSTER.hash (§8.6): a SHA-256 output. */
  ROSTER_HASH_BYTES: 32,
  /** A client keeps its own roster commitments for this many of the latest epochs (§8.6). */
  ROSTER_WINDOW_EPOCHS: 256,
  /** A peer's commitment for an epoch the client has not reached is reported once it waited this long (§8.6). */
  ROSTER_WAIT_MS: 10000,
  /** Clients send PING when they have sent nothing for a third of the announced idle timeout. */
  KEEPALIVE_DIVISOR: 3,
  /** default: connections the relay holds at once, in total and from one address. */
  MAX_CONNECTIONS: 1024,
  MAX_CONNECTIONS_PER_ADDRESS: 64,
  /** Open files the relay keeps free beyond its connection limit (registry, logs, listening socket). */
  FD_HEADROOM: 64,
  /** default: connections from one IPv4 /24 or IPv6 /48 (beside the per-address cap). */
  MAX_CONNECTIONS_PER_SUBNET: 256,
  /**
   * default: authenticated connections of one identity key, and of one nickname, at once: one person's
   * few devices and a reconnect that overlaps the connection it replaces, not a hog of every slot.
   */
  MAX_CONNECTIONS_PER_KEY: 4,
  MAX_CONNECTIONS_PER_NICK: 4,
  /** default: the interval over which new nickname bindings are counted (token buckets refilled per interval). */
  BIND_INTERVAL_MS: 3600000,
  /** default: new nickname bindings per interval by one key, from one address, and by the whole relay. */
  BINDS_PER_KEY: 128,
  BINDS_PER_ADDRESS: 512,
  BINDS_PER_RELAY: 4096,
  /** A recovery code (§7.5): 16 random bytes (128 bits), shown to the user in the text form of §7.5. */
  RECOVERY_CODE_BYTES: 16,
  /** A recovery commitment (§7.5): SHA-256 over the nickname and the code. */
  RECOVERY_COMMIT_BYTES: 32,
  /** default: a binding not used (no AUTH or RECOVER with it) for this long expires (§7.5): 365 days. */
  BINDING_EXPIRY_MS: 31536000000,
  /** relay: a binding's last use is written at most this often, or every BINDING_EXPIRY_MS / 8 if sooner (§7.5). */
  BINDING_TOUCH_MS: 3600000,
  /** default: JOINs one connection may send per minute (token bucket of this size); LEAVE needs a JOIN first. */
  JOINS_PER_MINUTE: 60,
  /** default: bytes per second a connection may send (token bucket refill) and the bucket size. */
  RATE_BYTES_PER_S: 1048576,
  RATE_BURST_BYTES: 4194304,
  /** default: frames per second a connection may send (token bucket refill) and the bucket size. */
  RATE_FRAMES_PER_S: 1000,
  RATE_BURST_FRAMES: 2000,
  /** default: bytes queued for one slow reader before it is disconnected with SLOW_CONSUMER. */
  WRITE_HIGH_WATER_BYTES: 1048576,
  /** default: a frame whose first byte has arrived must be complete within this time, or TIMEOUT. */
  FRAME_TIMEOUT_MS: 10000,
  /** default: bytes the relay holds for all connections together (partial frames plus unsent output). */
  BUFFER_BUDGET_BYTES: 268435456,
  /** Time a connection closed with an ERROR has to close its side before the relay resets it (§7.1). */
  CLOSE_GRACE_MS: 2000,
  /** A client gives up an end-to-end handshake that has not completed in this time. */
  E2E_HANDSHAKE_TIMEOUT_MS: 30000,
} as const;

export type LimitName = keyof typeof LIMITS;
