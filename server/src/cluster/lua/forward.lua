-- forward: ARGV origin node, sender, target, frame, check ('1': the shared-server policy),
-- then the sender's joined servers. Publishes the frame to every node but the origin where
-- the target has identified connections. Returns 0 when no other node holds the target
-- (TARGET_NOT_FOUND: checked first, as the local hub does), -1 when the policy forbids it,
-- else the number of subscribers reached.
local origin, sender, target, frame, check = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local nodes, elsewhere = redis.call('HKEYS', P .. 'u:' .. target), false
for _, node in ipairs(nodes) do
  if node ~= origin then
    elsewhere = true
    break
  end
end
if not elsewhere then
  return 0
end
if check == '1' and sender ~= target then
  local shared = false
  for i = 7, #ARGV do
    if redis.call('HEXISTS', skey(ARGV[i]) .. ':m', target) == 1 then
      shared = true
      break
    end
  end
  if not shared then
    return -1
  end
end
local receivers, message = 0, nil
for _, node in ipairs(nodes) do
  if node ~= origin then
    message = message or encode(KIND_FORWARD, 0, origin, '', target, frame)
    receivers = receivers + redis.call('PUBLISH', P .. 'n:' .. node, message)
  end
end
return receivers
