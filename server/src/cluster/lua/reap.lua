-- reap: ARGV reaping node, dead node, server, node TTL ms. Drops the dead node's share of
-- one server (user_left for its users on no live node). Returns -1 (and does nothing) when
-- the node heartbeated again meanwhile.
local self, dead, server, ttl = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local now = now_ms()
if not is_dead(dead, now, ttl) then
  return -1
end
drop_node(skey(server), server, dead, now, self)
return 1
