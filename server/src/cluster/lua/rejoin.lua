-- rejoin: ARGV node, server, lease ms, then triples (user, connections, roster entry): the
-- whole share of this node in the server (none: it holds nobody there any more). Replaces
-- this node's share, publishes user_joined for users new to the roster and user_left for
-- users it no longer holds that no other live node holds, atomically (what a resync does
-- instead of replaying joins). Returns the roster snapshot {version, user, entry, ...}.
local node, server, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local s = skey(server)
local share = s .. ':n:' .. node
local now = now_ms()
purge_dead(s, server, now, node)
local before = redis.call('HKEYS', share)
redis.call('DEL', share)
local keep = {}
for i = 5, #ARGV - 2, 3 do
  local user, count, entry = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  keep[user] = true
  redis.call('HSET', share, user, count)
  if redis.call('HEXISTS', s .. ':m', user) == 0 then
    redis.call('PERSIST', s .. ':v')
    redis.call('HSET', s .. ':m', user, entry)
    local v = redis.call('INCR', s .. ':v')
    redis.call('PUBLISH', s, encode(KIND_JOINED, v, node, server, user, entry))
  end
end
for _, user in ipairs(before) do
  if not keep[user] and not held_elsewhere(s, user, now, node) then
    announce_left(s, server, user, node)
  end
end
if next(keep) then
  stay_reapable(node)
  redis.call('ZADD', s .. ':x', now + ttl, node)
  redis.call('SADD', P .. 'n:' .. node .. ':servers', server)
else
  redis.call('ZREM', s .. ':x', node)
  redis.call('SREM', P .. 'n:' .. node .. ':servers', server)
  settle_version(s)
end
return roster(s)
