/**
 * The cluster's own protocol as data (spec/CLUSTER.md): the Redis scripts, one per invariant and named
 * after it, and the presence timings. model/cluster.pml names the same steps (a script `a-b-c` is the
 * model's `inline a_b_c`) and derives its constants from these rows; test/cluster/model.test.ts holds the
 * two equal.
 */

/**
 * One Lua script per invariant on shared state the cluster keeps (STYLE.md rule 14). DELIVER to members
 * only is kept by the relays (spec/CLUSTER.md §3: the addressee's token and view checks), not by a
 * script: it changes no shared state, and the model names those relay steps.
 */
export const CLUSTER_SCRIPTS = {
  /** A nickname gets at most one key at a time: a second key only once the first one's binding expired (§7.1, §7.5). */
  'bind-nickname-if-free-or-same-key': 'binds a free or expired nickname or confirms the same key; never a second live key',
  /** A bound nickname moves to another key only with the code its commitment was made from (§7.5). */
  'move-nickname-with-recovery-code': 'moves a nickname to a new key only when the code matches its commitment',
  /** Only the key a nickname is bound to registers its recovery commitment (§7.5). */
  'set-recovery-if-same-key': 'registers a recovery commitment only for the key the nickname is bound to',
  /** A room never holds more than its limit, a nickname at most once; PEER_JOINED published in the same step. */
  'join-if-room-has-space': 'adds a member only below the limit and only if the nickname is absent',
  /** A member is removed once and the rest get PEER_LEFT in the same step. */
  'leave-and-announce': 'removes a member and publishes PEER_LEFT to the rest',
  /** A relay's presence key is refreshed only while it still exists (a reaped relay learns it was reaped). */
  'refresh-relay-presence': 'extends the presence key of a relay that is still registered',
  /** A relay whose presence key expired loses every member it held, with PEER_LEFT to the rest. */
  'reap-dead-relays': 'removes the members of every relay whose presence key has expired',
} as const;

export type ClusterScript = keyof typeof CLUSTER_SCRIPTS;

export const CLUSTER_TIMINGS = {
  /** A relay refreshes its presence key this often. */
  HEARTBEAT_MS: 1000,
  /** Lifetime of a presence key: a relay silent this long is dead (three missed heartbeats). */
  PRESENCE_TTL_MS: 3000,
  /** Every relay looks for expired relays this often. */
  REAP_INTERVAL_MS: 1000,
  /**
   * PEER_LEFT for a member of a relay killed without warning reaches the other members within this
   * bound: the presence key outlives the last heartbeat by at most PRESENCE_TTL_MS, the next reap runs
   * within REAP_INTERVAL_MS, and pub/sub plus the relay's write take the rest.
   */
  PEER_LEFT_BOUND_MS: 5000,
} as const;
