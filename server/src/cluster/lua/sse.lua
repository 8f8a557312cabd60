-- sse: ARGV node, op, session, then for 'put': room, token_sha256, principal. 'put' records
-- that this node holds the session's stream (sse:{session}, and its reverse index
-- n:{node}:sse; a previous owner's index drops it: a takeover). 'del' removes the entry
-- only while this node still owns it (after a takeover the new owner's entry stays).
-- Returns 1 when the entry changed, else 0.
local node, op, session = ARGV[2], ARGV[3], ARGV[4]
local key = P .. 'sse:' .. session
local owner = redis.call('HGET', key, 'node')
if op == 'put' then
  stay_reapable(node)
  if owner and owner ~= node then
    redis.call('SREM', P .. 'n:' .. owner .. ':sse', session)
  end
  redis.call('HSET', key, 'node', node, 'room', ARGV[5], 'token_sha256', ARGV[6],
    'principal', ARGV[7])
  redis.call('SADD', P .. 'n:' .. node .. ':sse', session)
  return 1
end
redis.call('SREM', P .. 'n:' .. node .. ':sse', session)
if owner == node then
  redis.call('DEL', key)
  return 1
end
return 0
