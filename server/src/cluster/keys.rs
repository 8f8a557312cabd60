//! The Redis key and channel schema of the backplane (docs/design/cluster-plan.md §3.2).
//!
//! Owns: every key and channel name the Rust side builds. The Lua scripts build the same
//! names from the same prefix (`lua/common.lua`); `tests/cluster_backplane.rs` checks both
//! agree against a real Redis.
//!
//! Never: parses a key back into ids (ids go in verbatim; nothing ever needs to read them out).
//! Names are built from data inside scripts, so this schema is for standalone Redis, not
//! Redis Cluster (keys of one script are not in one hash slot).

/// Builds key and channel names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Names under `prefix` (for example `sb:`).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix, as handed to every script as `ARGV[1]`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// HASH user → roster entry (`UserSummary` JSON): the server's roster.
    pub fn roster(&self, server: &str) -> String {
        format!("{}s:{server}:m", self.prefix)
    }

    /// HASH user → joined connections of that user on `node`.
    pub fn server_node(&self, server: &str, node: &str) -> String {
        format!("{}s:{server}:n:{node}", self.prefix)
    }

    /// ZSET node → lease expiry (ms) of nodes contributing members.
    pub fn server_leases(&self, server: &str) -> String {
        format!("{}s:{server}:x", self.prefix)
    }

    /// STRING: the roster version, incremented on every roster change.
    pub fn roster_version(&self, server: &str) -> String {
        format!("{}s:{server}:v", self.prefix)
    }

    /// HASH node → identified connections of `user` there (the routing registry).
    pub fn user(&self, user: &str) -> String {
        format!("{}u:{user}", self.prefix)
    }

    /// SET of users identified on `node` (for the reaper and resync).
    pub fn node_users(&self, node: &str) -> String {
        format!("{}n:{node}:users", self.prefix)
    }

    /// SET of servers with members on `node` (for the reaper and resync).
    pub fn node_servers(&self, node: &str) -> String {
        format!("{}n:{node}:servers", self.prefix)
    }

    /// SET of SSE sessions whose stream `node` holds (for the reaper and resync).
    pub fn node_sse(&self, node: &str) -> String {
        format!("{}n:{node}:sse", self.prefix)
    }

    /// HASH `node, room, token_sha256, principal`: where an SSE session's stream lives.
    pub fn sse(&self, session: &str) -> String {
        format!("{}sse:{session}", self.prefix)
    }

    /// ZSET node → last heartbeat (ms).
    pub fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    /// STRING: a random id set once; gone means Redis lost its data.
    pub fn epoch(&self) -> String {
        format!("{}epoch", self.prefix)
    }

    /// STRING: the reaper lock (`SET NX PX`).
    pub fn reaper(&self) -> String {
        format!("{}reaper", self.prefix)
    }

    /// Channel of one node: forwards addressed to its users.
    pub fn node_channel(&self, node: &str) -> String {
        format!("{}n:{node}", self.prefix)
    }

    /// Channel of one server: broadcasts and roster events.
    pub fn server_channel(&self, server: &str) -> String {
        format!("{}s:{server}", self.prefix)
    }

    /// Channel every node subscribes to: withdrawals of access (rare; a node with only a
    /// viewer of a server is on no server channel, so these go to all).
    pub fn withdraw_channel(&self) -> String {
        format!("{}withdraw", self.prefix)
    }

    /// `SCAN` pattern matching every key and channel of this prefix.
    pub fn everything(&self) -> String {
        format!("{}*", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_plan() {
        let k = Keys::new("sb:");
        assert_eq!(k.roster("S"), "sb:s:S:m");
        assert_eq!(k.server_node("S", "n1"), "sb:s:S:n:n1");
        assert_eq!(k.server_leases("S"), "sb:s:S:x");
        assert_eq!(k.roster_version("S"), "sb:s:S:v");
        assert_eq!(k.user("u"), "sb:u:u");
        assert_eq!(k.node_users("n1"), "sb:n:n1:users");
        assert_eq!(k.node_servers("n1"), "sb:n:n1:servers");
        assert_eq!(k.node_sse("n1"), "sb:n:n1:sse");
        assert_eq!(k.sse("x"), "sb:sse:x");
        assert_eq!(k.nodes(), "sb:nodes");
        assert_eq!(k.epoch(), "sb:epoch");
        assert_eq!(k.reaper(), "sb:reaper");
        assert_eq!(k.node_channel("n1"), "sb:n:n1");
        assert_eq!(k.server_channel("S"), "sb:s:S");
        assert_eq!(k.withdraw_channel(), "sb:withdraw");
    }

    #[test]
    fn a_node_channel_is_no_key_of_its_sets() {
        let k = Keys::new("p:");
        assert_ne!(k.node_channel("a"), k.node_users("a"));
        assert!(k.node_users("a").starts_with(&k.node_channel("a")));
    }
}
