//! The per-connection roster floor: a late roster event already contained in the snapshot a
//! connection was sent is not delivered to it (docs/design/cluster-plan.md §3.5).
//!
//! Owns: for one connection, per server it was sent a roster, the highest roster version it
//! has seen (its `server_users` snapshot's, then each event's). Pure: no I/O, no clock. The
//! hub's cluster glue keeps one per connection.
//!
//! Never: drops an event newer than what the connection saw, or keeps a server the
//! connection left ([`RosterFloor::forget`]).

/// One connection's roster versions, per server (a connection joins few servers: a vector).
#[derive(Debug, Default, Clone)]
pub struct RosterFloor {
    servers: Vec<(String, u64)>,
}

impl RosterFloor {
    /// The connection was sent `server`'s roster at `version` (`server_users`).
    pub fn sent_snapshot(&mut self, server: &str, version: u64) {
        match self.servers.iter_mut().find(|(s, _)| s == server) {
            Some((_, floor)) => *floor = version,
            None => self.servers.push((server.to_owned(), version)),
        }
    }

    /// Whether an event of `server` at `version` is news to the connection; when it is, the
    /// floor rises to it. A server the connection was never sent a roster of admits nothing.
    pub fn admit(&mut self, server: &str, version: u64) -> bool {
        match self.servers.iter_mut().find(|(s, _)| s == server) {
            Some((_, floor)) if version > *floor => {
                *floor = version;
                true
            }
            _ => false,
        }
    }

    /// The connection left `server`.
    pub fn forget(&mut self, server: &str) {
        self.servers.retain(|(s, _)| s != server);
    }

    /// The floor of `server`, when the connection has one.
    pub fn floor(&self, server: &str) -> Option<u64> {
        self.servers
            .iter()
            .find(|(s, _)| s == server)
            .map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_contained_in_the_snapshot_is_not_delivered() {
        let mut f = RosterFloor::default();
        f.sent_snapshot("S", 7);
        assert!(!f.admit("S", 6));
        assert!(!f.admit("S", 7));
        assert!(f.admit("S", 8));
        assert!(!f.admit("S", 8), "the floor rose");
        assert_eq!(f.floor("S"), Some(8));
    }

    #[test]
    fn a_fresh_snapshot_resets_the_floor_and_forget_drops_it() {
        let mut f = RosterFloor::default();
        f.sent_snapshot("S", 40);
        f.sent_snapshot("S", 2); // Redis lost its data: versions start again
        assert!(f.admit("S", 3));
        assert!(!f.admit("T", 1), "no roster of T was sent");
        f.forget("S");
        assert_eq!(f.floor("S"), None);
    }
}
