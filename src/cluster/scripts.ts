/**
 * The cluster's Lua scripts (spec/CLUSTER.md), one per invariant of CLUSTER_SCRIPTS and named after it.
 * Each runs atomically in Redis: the check and the change of an invariant are one step, and the pub/sub
 * messages a change causes are published in that same step, so every relay sees changes in one order.
 *
 * Keys: `e2ee:nick:<nick>` (binding, a hash: spki, bound and used in ms, rec the recovery commitment),
 * `e2ee:nick-used` (sorted set: nickname by last use, for expiry, counting and the operator's list),
 * `e2ee:room:<room>` (hash nick -> "<seq> <relay> <token> <spki>"), `e2ee:epoch:<room>` (the room's
 * epoch, changed only by the scripts that change the room's hash, in the same step), `e2ee:seq` (join order),
 * `e2ee:relays` (set of relay ids), `e2ee:relay:<id>:alive` (presence, PX TTL),
 * `e2ee:relay:<id>:members` (set of "<room>\n<nick>"). Channel `e2ee:deliver:<id>` carries
 * "<kind>\n<token>\n<nick>\n<payload>" with kind J (PEER_JOINED, payload "<epoch>\n<joiner's token>\n<key>")
 * or L (PEER_LEFT, payload "<epoch>"), published by these scripts, and W (DELIVER frames), published by
 * the sender's relay with a plain PUBLISH (./redis.ts). Scripts reach keys beyond KEYS: standalone Redis,
 * not Redis Cluster.
 */
import type { ClusterScript } from './tables.js';

/** Helpers shared by the scripts (prepended to each). */
const PRELUDE = `
local function fields(rec)
  local p1 = string.find(rec, ' ', 1, true)
  local p2 = string.find(rec, ' ', p1 + 1, true)
  local p3 = string.find(rec, ' ', p2 + 1, true)
  return string.sub(rec, 1, p1 - 1), string.sub(rec, p1 + 1, p2 - 1), string.sub(rec, p2 + 1, p3 - 1), string.sub(rec, p3 + 1)
end
local function remove_member(rk, room, nick, rec)
  local _, relay, token = fields(rec)
  redis.call('HDEL', rk, nick)
  redis.call('SREM', 'e2ee:relay:' .. relay .. ':members', room .. '\\n' .. nick)
  local rest = redis.call('HGETALL', rk)
  if #rest == 0 then
    redis.call('DEL', 'e2ee:epoch:' .. room)
    return
  end
  local epoch = redis.call('INCR', 'e2ee:epoch:' .. room)
  for i = 1, #rest, 2 do
    local _, r, t = fields(rest[i + 1])
    redis.call('PUBLISH', 'e2ee:deliver:' .. r, 'L\\n' .. t .. '\\n' .. nick .. '\\n' .. epoch)
  end
end
`;

export const SCRIPTS: Record<ClusterScript, { keys: number; lua: string }> = {
  // KEYS: binding hash, last-use sorted set. ARGV: spki, now (ms), expiry (ms), touch (ms). Returns {1}
  // when newly bound (the nickname was free, or expired under another key), else {0, stored key} (compared
  // by the caller in constant time). The same key keeps its binding, also past the expiry, and its use is
  // recorded when the recorded one is older than `touch`.
  'bind-nickname-if-free-or-same-key': {
    keys: 2,
    lua: `
local cur = redis.call('HMGET', KEYS[1], 'spki', 'used')
local now = tonumber(ARGV[2])
if cur[1] and cur[1] == ARGV[1] then
  if tonumber(cur[2]) < now - tonumber(ARGV[4]) then
    redis.call('HSET', KEYS[1], 'used', ARGV[2])
    redis.call('ZADD', KEYS[2], now, string.sub(KEYS[1], 11))
  end
  return {0, cur[1]}
end
if cur[1] and tonumber(cur[2]) >= now - tonumber(ARGV[3]) then return {0, cur[1]} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'spki', ARGV[1], 'bound', ARGV[2], 'used', ARGV[2])
redis.call('ZADD', KEYS[2], now, string.sub(KEYS[1], 11))
return {1}
`,
  },
  // KEYS: binding hash, last-use sorted set. ARGV: proof (the presented code's commitment), spki, new
  // commitment, now, expiry. Returns 1 when the nickname was free (or expired) and is now bound, 2 when its
  // commitment equalled the proof (compared in constant time, byte by byte) and it moved to the key, 0
  // otherwise. Either success registers the new commitment (spec §7.5).
  'move-nickname-with-recovery-code': {
    keys: 2,
    lua: `
local cur = redis.call('HMGET', KEYS[1], 'spki', 'used', 'rec')
local now = tonumber(ARGV[4])
local result = 2
if not cur[1] or tonumber(cur[2]) < now - tonumber(ARGV[5]) then
  result = 1
else
  local rec, proof = cur[3], ARGV[1]
  if not rec or #rec ~= #proof then return 0 end
  local d = 0
  for i = 1, #proof do d = bit.bor(d, bit.bxor(string.byte(rec, i), string.byte(proof, i))) end
  if d ~= 0 then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'spki', ARGV[2], 'bound', ARGV[4], 'used', ARGV[4], 'rec', ARGV[3])
redis.call('ZADD', KEYS[2], now, string.sub(KEYS[1], 11))
return result
`,
  },
  // KEYS: binding hash. ARGV: spki, commitment. Returns 1 when registered, 0 when the nickname is no
  // longer bound to that key.
  'set-recovery-if-same-key': {
    keys: 1,
    lua: `
if redis.call('HGET', KEYS[1], 'spki') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'rec', ARGV[2])
return 1
`,
  },
  // KEYS: room hash, this relay's presence key. ARGV: nick, limit, token, relay id, room name, spki.
  // Returns {'OK', epoch, seq1, nick1, token1, key1, ...}: the room's epoch after the add (PROTOCOL.md
  // §7.1 "Room epoch", incremented in this step) and the members before it with their membership tokens
  // (the joiner's relay addresses its DELIVERs to them by token); or {code}. PEER_JOINED carries the
  // joiner's token the same way.
  'join-if-room-has-space': {
    keys: 2,
    lua: `
if redis.call('EXISTS', KEYS[2]) == 0 then return {'GONE'} end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {'NICK_IN_ROOM'} end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[2]) then return {'ROOM_FULL'} end
local all = redis.call('HGETALL', KEYS[1])
local epoch = 1
if #all == 0 then redis.call('SET', 'e2ee:epoch:' .. ARGV[5], 1) else epoch = redis.call('INCR', 'e2ee:epoch:' .. ARGV[5]) end
local out = {'OK', tostring(epoch)}
for i = 1, #all, 2 do
  local seq, relay, token, key = fields(all[i + 1])
  redis.call('PUBLISH', 'e2ee:deliver:' .. relay, 'J\\n' .. token .. '\\n' .. ARGV[1] .. '\\n' .. epoch .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[6])
  out[#out + 1] = seq
  out[#out + 1] = all[i]
  out[#out + 1] = token
  out[#out + 1] = key
end
local seq = redis.call('INCR', 'e2ee:seq')
redis.call('HSET', KEYS[1], ARGV[1], seq .. ' ' .. ARGV[4] .. ' ' .. ARGV[3] .. ' ' .. ARGV[6])
redis.call('SADD', 'e2ee:relay:' .. ARGV[4] .. ':members', ARGV[5] .. '\\n' .. ARGV[1])
return out
`,
  },
  // KEYS: room hash. ARGV: nick, token, room name. Returns 1 when removed, 0 when not (already) a member.
  'leave-and-announce': {
    keys: 1,
    lua: `
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return 0 end
local _, _, token = fields(rec)
if token ~= ARGV[2] then return 0 end
remove_member(KEYS[1], ARGV[3], ARGV[1], rec)
return 1
`,
  },
  // KEYS: presence key. ARGV: ttl ms. Returns 1, or 0 when the key is gone (this relay was reaped).
  'refresh-relay-presence': {
    keys: 1,
    lua: `
return redis.call('PEXPIRE', KEYS[1], ARGV[1])
`,
  },
  // No KEYS. Returns the number of members removed.
  'reap-dead-relays': {
    keys: 0,
    lua: `
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', 'e2ee:relays')) do
  if redis.call('EXISTS', 'e2ee:relay:' .. id .. ':alive') == 0 then
    local mk = 'e2ee:relay:' .. id .. ':members'
    for _, entry in ipairs(redis.call('SMEMBERS', mk)) do
      local nl = string.find(entry, '\\n', 1, true)
      local room = string.sub(entry, 1, nl - 1)
      local nick = string.sub(entry, nl + 1)
      local rk = 'e2ee:room:' .. room
      local rec = redis.call('HGET', rk, nick)
      if rec then
        local _, relay = fields(rec)
        if relay == id then
          remove_member(rk, room, nick, rec)
          n = n + 1
        end
      end
    end
    redis.call('DEL', mk)
    redis.call('SREM', 'e2ee:relays', id)
  end
end
return n
`,
  },
};

/** The full text of a script as loaded into Redis. */
export function scriptSource(name: ClusterScript): string {
  return PRELUDE + SCRIPTS[name].lua;
}
