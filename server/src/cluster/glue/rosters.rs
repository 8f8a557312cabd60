//! What the cluster glue keeps to give every local member an exact roster: each connection's
//! [`RosterFloor`], the last roster version handed out per server, and which connections a
//! recent status change reached.
//!
//! Owns: [`Rosters`], behind one mutex in the glue. Its lock is taken before the hub's
//! lock and never the other way round: a roster event, a snapshot or a joining connection's
//! `server_users` is decided and queued inside it, so none of them can overtake another.
//! Pure bookkeeping: no I/O, no hub.
//!
//! Never: grows with closed connections ([`Rosters::closed`]), with servers nobody here
//! holds any more ([`Rosters::forget_server`]), or with status changes (the last
//! [`REMEMBERED_STATUS_CHANGES`] only).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::cluster::floor::RosterFloor;
use crate::hub::ConnKey;

/// Status change ids remembered with the connections they reached (the copies of one change
/// arrive together: one script publishes them all).
pub const REMEMBERED_STATUS_CHANGES: usize = 64;

/// The glue's roster bookkeeping.
#[derive(Debug, Default)]
pub struct Rosters {
    floors: HashMap<ConnKey, RosterFloor>,
    applied: HashMap<String, u64>,
    told: VecDeque<(u64, HashSet<ConnKey>)>,
}

impl Rosters {
    /// A roster event or snapshot of `server` at `version` is being handed out.
    pub fn handed_out(&mut self, server: &str, version: u64) {
        self.applied.insert(server.to_owned(), version);
    }

    /// Whether a snapshot of `server` at `version`, fetched for one connection, is at least as
    /// new as everything already handed out (older: events in between went past the
    /// connection; fetch again).
    pub fn is_current(&self, server: &str, version: u64) -> bool {
        self.applied.get(server).is_none_or(|last| *last <= version)
    }

    /// `conn` was sent `server`'s roster at `version`.
    pub fn sent_snapshot(&mut self, conn: ConnKey, server: &str, version: u64) {
        self.floors
            .entry(conn)
            .or_default()
            .sent_snapshot(server, version);
    }

    /// Whether a roster event of `server` at `version` is news to `conn` (and raises its
    /// floor). A connection never sent that server's roster admits nothing.
    pub fn admit(&mut self, conn: ConnKey, server: &str, version: u64) -> bool {
        self.floors
            .get_mut(&conn)
            .is_some_and(|floor| floor.admit(server, version))
    }

    /// Whether status change `change_id` is news to `conn` (and remembers that it reached it).
    pub fn first_status(&mut self, change_id: u64, conn: ConnKey) -> bool {
        let position = self.told.iter().position(|(id, _)| *id == change_id);
        let told = match position {
            Some(i) => &mut self.told[i].1,
            None => {
                if self.told.len() >= REMEMBERED_STATUS_CHANGES {
                    self.told.pop_front();
                }
                self.told.push_back((change_id, HashSet::new()));
                let last = self.told.len() - 1;
                &mut self.told[last].1
            }
        };
        told.insert(conn)
    }

    /// `conn` closed.
    pub fn closed(&mut self, conn: ConnKey) {
        self.floors.remove(&conn);
    }

    /// Nobody here holds `server` any more.
    pub fn forget_server(&mut self, server: &str) {
        self.applied.remove(server);
    }

    /// Connections with a floor (for tests and metrics).
    pub fn connections(&self) -> usize {
        self.floors.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> ConnKey {
        ConnKey::for_tests(n)
    }

    #[test]
    fn a_snapshot_older_than_what_was_handed_out_is_not_current() {
        let mut r = Rosters::default();
        assert!(r.is_current("S", 0), "nothing handed out yet");
        r.handed_out("S", 5);
        assert!(r.is_current("S", 5));
        assert!(!r.is_current("S", 4));
        r.forget_server("S");
        assert!(r.is_current("S", 1));
    }

    #[test]
    fn events_reach_a_connection_only_after_its_snapshot_and_above_it() {
        let mut r = Rosters::default();
        assert!(!r.admit(key(1), "S", 3), "no roster sent yet");
        r.sent_snapshot(key(1), "S", 3);
        assert!(!r.admit(key(1), "S", 3));
        assert!(r.admit(key(1), "S", 4));
        r.sent_snapshot(key(1), "S", 9);
        assert!(
            !r.admit(key(1), "S", 5),
            "a fresh snapshot raised the floor"
        );
        r.closed(key(1));
        assert_eq!(r.connections(), 0);
    }

    #[test]
    fn a_status_change_reaches_each_connection_once_and_few_are_remembered() {
        let mut r = Rosters::default();
        assert!(r.first_status(7, key(1)));
        assert!(!r.first_status(7, key(1)), "second copy of the change");
        assert!(r.first_status(7, key(2)));
        for id in 100..100 + REMEMBERED_STATUS_CHANGES as u64 {
            r.first_status(id, key(1));
        }
        assert_eq!(r.told.len(), REMEMBERED_STATUS_CHANGES);
        assert!(r.first_status(7, key(1)), "forgotten");
    }
}
