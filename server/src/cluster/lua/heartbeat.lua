-- heartbeat: ARGV node, node TTL ms, epoch candidate. Records the beat, renews this node's
-- leases on its servers (only those it still holds: XX), sets the epoch if Redis lost it.
-- Returns {lost, epoch, dead nodes}: lost = 1 when this node had been missing for longer
-- than the TTL (never seen, reaped, or purged on read): it must resync.
local node, ttl, candidate = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local now = now_ms()
local lost = is_dead(node, now, ttl) and 1 or 0
redis.call('ZADD', P .. 'nodes', now, node)
local epoch = redis.call('GET', P .. 'epoch')
if not epoch then
  redis.call('SET', P .. 'epoch', candidate)
  epoch = candidate
end
for _, server in ipairs(redis.call('SMEMBERS', P .. 'n:' .. node .. ':servers')) do
  redis.call('ZADD', skey(server) .. ':x', 'XX', now + ttl, node)
end
local dead = {}
for _, other in ipairs(redis.call('ZRANGEBYSCORE', P .. 'nodes', '-inf', '(' .. (now - ttl))) do
  if other ~= node then
    table.insert(dead, other)
  end
end
return { lost, epoch, dead }
