-- identify: ARGV node, user, connections (absolute; 0 removes). The routing registry
-- u:{user} says on which nodes a user has identified connections; n:{node}:users is its
-- reverse index for the reaper. Absolute counts make a resync a replay. Every other node
-- holding the user is told (a devices hint on its node channel, payload '1' present or '0'
-- gone), so each node knows whether a local user is also elsewhere. Returns those nodes.
local node, user, count = ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = P .. 'u:' .. user
local had = redis.call('HEXISTS', key, node) == 1
if count > 0 then
  stay_reapable(node)
  redis.call('HSET', key, node, count)
  redis.call('SADD', P .. 'n:' .. node .. ':users', user)
else
  redis.call('HDEL', key, node)
  redis.call('SREM', P .. 'n:' .. node .. ':users', user)
end
local others = {}
local changed = had ~= (count > 0)
for _, other in ipairs(redis.call('HKEYS', key)) do
  if other ~= node then
    table.insert(others, other)
    if changed then
      redis.call('PUBLISH', P .. 'n:' .. other,
        encode(KIND_DEVICES, 0, node, '', user, count > 0 and '1' or '0'))
    end
  end
end
return others
