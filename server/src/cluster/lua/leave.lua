-- leave: ARGV node, server, user, connections still joined on this node (0: the last one
-- left). When no live node holds the user any more it leaves the roster: version bumped and
-- user_left published, atomically. Returns the roster version.
local node, server, user, remaining = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local s = skey(server)
if remaining > 0 then
  -- Only a share Redis still holds: one purged meanwhile is rebuilt by the resync, never
  -- half-recreated here (a share with no lease and no reverse index would never go).
  if redis.call('HEXISTS', s .. ':n:' .. node, user) == 1 then
    redis.call('HSET', s .. ':n:' .. node, user, remaining)
  end
else
  redis.call('HDEL', s .. ':n:' .. node, user)
  if redis.call('HLEN', s .. ':n:' .. node) == 0 then
    redis.call('ZREM', s .. ':x', node)
    redis.call('SREM', P .. 'n:' .. node .. ':servers', server)
  end
  if not held_elsewhere(s, user, now_ms(), node) then
    announce_left(s, server, user, node)
  end
  settle_version(s)
end
return tonumber(redis.call('GET', s .. ':v') or '0')
