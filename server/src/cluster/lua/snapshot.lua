-- snapshot: ARGV node, server. Purges dead nodes' shares, then returns
-- {version, user, entry, ...} (what a node sends as server_users after a gap or a resync).
local node, server = ARGV[2], ARGV[3]
local s = skey(server)
purge_dead(s, server, now_ms(), node)
return roster(s)
