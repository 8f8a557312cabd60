-- join: ARGV node, server, user, connections (absolute, >= 1), roster entry, lease ms.
-- Purges dead nodes' shares, records this node's share, and when the user is new to the
-- roster adds it, bumps the version and publishes user_joined with that version, atomically.
-- Returns the roster snapshot {version, user, entry, user, entry, ...}.
local node, server, user, count, entry, ttl =
  ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local s = skey(server)
local now = now_ms()
purge_dead(s, server, now, node)
stay_reapable(node)
redis.call('HSET', s .. ':n:' .. node, user, count)
redis.call('ZADD', s .. ':x', now + ttl, node)
redis.call('SADD', P .. 'n:' .. node .. ':servers', server)
redis.call('PERSIST', s .. ':v')
if redis.call('HEXISTS', s .. ':m', user) == 0 then
  redis.call('HSET', s .. ':m', user, entry)
  local v = redis.call('INCR', s .. ':v')
  redis.call('PUBLISH', s, encode(KIND_JOINED, v, node, server, user, entry))
end
return roster(s)
