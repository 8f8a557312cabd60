-- status: ARGV node, user, change id (8 raw bytes), roster entry, then the servers the user
-- joined. In every listed server whose roster holds the user the entry is replaced, the
-- version bumped and a status event published with that version and the one change id (a
-- node holding several of the servers fans the change out once). Returns the servers changed.
local node, user, change, entry = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local changed = 0
for i = 6, #ARGV do
  local server = ARGV[i]
  local s = skey(server)
  if redis.call('HEXISTS', s .. ':m', user) == 1 then
    redis.call('HSET', s .. ':m', user, entry)
    local v = redis.call('INCR', s .. ':v')
    redis.call('PUBLISH', s, encode(KIND_STATUS, v, node, server, user, entry, change))
    changed = changed + 1
  end
end
return changed
