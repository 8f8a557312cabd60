-- identify: ARGV node, user, connections (absolute; 0 removes). The routing registry
-- u:{user} says on which nodes a user has identified connections; n:{node}:users is its
-- reverse index for the reaper. Absolute counts make a resync a replay.
local node, user, count = ARGV[2], ARGV[3], tonumber(ARGV[4])
if count > 0 then
  redis.call('HSET', P .. 'u:' .. user, node, count)
  redis.call('SADD', P .. 'n:' .. node .. ':users', user)
else
  redis.call('HDEL', P .. 'u:' .. user, node)
  redis.call('SREM', P .. 'n:' .. node .. ':users', user)
end
return count
