-- Prepended to every backplane script (scripts.rs). ARGV[1] is the key prefix; names follow
-- keys.rs, messages follow wire.rs. Time is Redis's own clock (TIME), so node clocks never
-- disagree about leases. Standalone Redis only: names are built from data.
local P = ARGV[1]
local KIND_FORWARD, KIND_JOINED, KIND_LEFT, KIND_STATUS, KIND_DEVICES = 2, 3, 4, 5, 6

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function u64(n)
  local out = {}
  for i = 8, 1, -1 do
    out[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(out)
end

local function u16(n)
  return string.char(math.floor(n / 256) % 256, n % 256)
end

-- wire.rs Message::encode; `change` is the change id as 8 raw bytes (absent: 0). Lua numbers
-- are doubles, so a 64-bit id travels as bytes, never as a number.
local function encode(kind, version, origin, server, user, payload, change)
  return string.char(0x53, 1, kind) .. u64(version) .. (change or u64(0))
    .. string.char(#origin) .. origin .. u16(#server) .. server .. u16(#user) .. user .. payload
end

local function skey(server)
  return P .. 's:' .. server
end

-- Whether a node other than `except` with a running lease holds `user` in server `s`.
local function held_elsewhere(s, user, now, except)
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', s .. ':x', now, '+inf')) do
    if node ~= except and redis.call('HEXISTS', s .. ':n:' .. node, user) == 1 then
      return true
    end
  end
  return false
end

-- Removes `user` from the roster and announces it with the next version; the payload is its
-- last roster entry (user_left carries the display name).
local function announce_left(s, server, user, origin)
  local entry = redis.call('HGET', s .. ':m', user)
  if entry then
    redis.call('HDEL', s .. ':m', user)
    local v = redis.call('INCR', s .. ':v')
    redis.call('PUBLISH', s, encode(KIND_LEFT, v, origin, server, user, entry))
  end
end

-- An empty roster's version lives one more day (a late joiner keeps counting up), then goes.
local function settle_version(s)
  if redis.call('HLEN', s .. ':m') == 0 then
    redis.call('PEXPIRE', s .. ':v', 86400000)
  end
end

-- Removes `node`'s share of a server; its users on no other live node leave the roster.
local function drop_node(s, server, node, now, origin)
  local users = redis.call('HKEYS', s .. ':n:' .. node)
  redis.call('DEL', s .. ':n:' .. node)
  redis.call('ZREM', s .. ':x', node)
  redis.call('SREM', P .. 'n:' .. node .. ':servers', server)
  for _, user in ipairs(users) do
    if not held_elsewhere(s, user, now, node) then
      announce_left(s, server, user, origin)
    end
  end
  settle_version(s)
end

-- Purge on read: nodes whose lease on this server ran out are dropped before any answer.
local function purge_dead(s, server, now, self)
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', s .. ':x', '-inf', '(' .. now)) do
    if node ~= self then
      drop_node(s, server, node, now, self)
    end
  end
end

local function roster(s)
  return { tonumber(redis.call('GET', s .. ':v') or '0'), redis.call('HGETALL', s .. ':m') }
end

-- Every script that writes a key naming `node` calls this first. A node reaped while alive (a
-- pause longer than the TTL) that writes before its next heartbeat is not in the node list,
-- so no reaper would ever find those keys if it then died: it goes back in as dead (score 0)
-- until that heartbeat, which finds it lost and resyncs. A listed node is left as it is.
local function stay_reapable(node)
  redis.call('ZADD', P .. 'nodes', 'NX', 0, node)
end

-- Whether `node` missed its heartbeats for longer than `ttl` (or was never seen / reaped).
local function is_dead(node, now, ttl)
  local seen = redis.call('ZSCORE', P .. 'nodes', node)
  return (not seen) or tonumber(seen) < now - ttl
end

