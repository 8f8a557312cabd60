//! The node's own record of what it registered in Redis: what a resync replays.
//!
//! Owns: identified users with their connection counts on this node, per server the joined
//! members with their connection counts and roster entries, and the SSE sessions it holds. Pure bookkeeping: no
//! I/O, no Redis, no clock.
//!
//! Never: holds anything another node registered, or a server without a local member (the
//! last leave removes the server).

use std::collections::HashMap;

use bytes::Bytes;

use super::sse::SseSession;

/// One local member of a server: joined connections here and its roster entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Joined connections of the user to the server on this node (>= 1).
    pub connections: u32,
    /// Its roster entry (`UserSummary` JSON).
    pub entry: Bytes,
}

/// Everything this node holds.
#[derive(Debug, Default, Clone)]
pub struct Mirror {
    /// user → identified connections on this node.
    pub users: HashMap<String, u32>,
    /// server → user → local member.
    pub servers: HashMap<String, HashMap<String, Member>>,
    /// SSE session → its registry entry, for the sessions whose stream this node holds.
    pub sse: HashMap<String, SseSession>,
}

impl Mirror {
    /// Records `connections` identified connections of `user` (0 removes it).
    pub fn identify(&mut self, user: &str, connections: u32) {
        if connections == 0 {
            self.users.remove(user);
        } else {
            self.users.insert(user.to_owned(), connections);
        }
    }

    /// Records a join; true when it is the first local member of `server`.
    pub fn join(&mut self, server: &str, user: &str, connections: u32, entry: Bytes) -> bool {
        let first = !self.servers.contains_key(server);
        self.servers.entry(server.to_owned()).or_default().insert(
            user.to_owned(),
            Member {
                connections: connections.max(1),
                entry,
            },
        );
        first
    }

    /// Records that `user` has `remaining` joined connections to `server`; `None` when the
    /// server had no local member, else whether this was its last local member.
    pub fn leave(&mut self, server: &str, user: &str, remaining: u32) -> Option<bool> {
        let members = self.servers.get_mut(server)?;
        if remaining == 0 {
            members.remove(user);
        } else if let Some(member) = members.get_mut(user) {
            member.connections = remaining;
        }
        let last = members.is_empty();
        if last {
            self.servers.remove(server);
        }
        Some(last)
    }

    /// Replaces the roster entry of `user` in every server it joined here; the servers.
    pub fn set_entry(&mut self, user: &str, entry: &Bytes) -> Vec<String> {
        let mut servers = Vec::new();
        for (server, members) in &mut self.servers {
            if let Some(member) = members.get_mut(user) {
                member.entry = entry.clone();
                servers.push(server.clone());
            }
        }
        servers.sort_unstable();
        servers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_join_and_the_last_leave_are_reported() {
        let mut m = Mirror::default();
        assert!(m.join("S", "a", 1, Bytes::new()));
        assert!(!m.join("S", "b", 2, Bytes::new()));
        assert_eq!(m.leave("S", "b", 1), Some(false));
        assert_eq!(m.servers["S"]["b"].connections, 1);
        assert_eq!(m.leave("S", "b", 0), Some(false));
        assert_eq!(m.leave("S", "a", 0), Some(true));
        assert!(m.servers.is_empty());
        assert_eq!(m.leave("S", "a", 0), None);
    }

    #[test]
    fn identify_zero_forgets_the_user() {
        let mut m = Mirror::default();
        m.identify("a", 2);
        assert_eq!(m.users.get("a"), Some(&2));
        m.identify("a", 0);
        assert!(m.users.is_empty());
    }

    #[test]
    fn a_new_entry_reaches_every_server_of_the_user() {
        let mut m = Mirror::default();
        m.join("T", "a", 1, Bytes::from_static(b"old"));
        m.join("S", "a", 1, Bytes::from_static(b"old"));
        m.join("S", "b", 1, Bytes::from_static(b"b"));
        let new = Bytes::from_static(b"new");
        assert_eq!(m.set_entry("a", &new), ["S", "T"]);
        assert_eq!(m.servers["S"]["a"].entry, new);
        assert_eq!(m.servers["S"]["b"].entry, Bytes::from_static(b"b"));
        assert!(m.set_entry("nobody", &new).is_empty());
    }
}
