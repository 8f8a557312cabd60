-- reap_node: ARGV reaping node, dead node, node TTL ms. After reap.lua ran for each of its
-- servers: removes the dead node from every routing entry, its SSE sessions, its reverse
-- indexes and the node list, so no key names it any more. Returns -1 (and does nothing) when it came back.
local self, dead, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local now = now_ms()
if not is_dead(dead, now, ttl) then
  return -1
end
for _, server in ipairs(redis.call('SMEMBERS', P .. 'n:' .. dead .. ':servers')) do
  drop_node(skey(server), server, dead, now, self)
end
for _, user in ipairs(redis.call('SMEMBERS', P .. 'n:' .. dead .. ':users')) do
  redis.call('HDEL', P .. 'u:' .. user, dead)
end
for _, session in ipairs(redis.call('SMEMBERS', P .. 'n:' .. dead .. ':sse')) do
  if redis.call('HGET', P .. 'sse:' .. session, 'node') == dead then
    redis.call('DEL', P .. 'sse:' .. session)
  end
end
redis.call('DEL', P .. 'n:' .. dead .. ':users', P .. 'n:' .. dead .. ':servers',
  P .. 'n:' .. dead .. ':sse')
redis.call('ZREM', P .. 'nodes', dead)
return 1
