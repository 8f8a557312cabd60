//! Per-server roster version tracking: which roster events a node applies, drops or must
//! refetch around (docs/design/cluster-plan.md §3.5).
//!
//! Owns: for every server with a local member, the last version applied, or the events held
//! back while a snapshot is pending. Pure logic: no I/O, no clock, no Redis.
//!
//! Never: grows without bound (a pending server buffers at most `buffer_bound` events, then
//! asks for another snapshot), applies an event twice or out of order.

use std::collections::HashMap;

use bytes::Bytes;

/// What changed in a roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The user joined; its roster entry (`UserSummary` JSON).
    Joined {
        /// The member.
        user: String,
        /// Its roster entry.
        entry: Bytes,
    },
    /// The user left.
    Left {
        /// The member.
        user: String,
        /// Its last roster entry (empty when the script found none).
        entry: Bytes,
    },
    /// The member's roster entry changed (a status change).
    Status {
        /// The member.
        user: String,
        /// Its new roster entry.
        entry: Bytes,
        /// The change id shared by the copies of this change in the user's other servers.
        change_id: u64,
        /// True for the first copy of the change id this node applies: fan the
        /// `status_update` out (to the local members of every server the user shares); false:
        /// only update this server's roster.
        fan_out: bool,
        /// The node where the change happened (its own members were told there).
        origin: String,
    },
}

/// One roster event, as announced by a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEvent {
    /// The server.
    pub server: String,
    /// The roster version after this change.
    pub version: u64,
    /// The change.
    pub change: Change,
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hand this event to local members.
    Apply(RosterEvent),
    /// Fetch a fresh snapshot of this server (a gap, or the buffer overflowed).
    Refetch(String),
}

#[derive(Debug)]
enum Tracked {
    Pending {
        buffered: Vec<RosterEvent>,
        overflowed: bool,
        /// Snapshots already taken for this gap.
        retried: bool,
    },
    Live {
        last: u64,
    },
}

/// The tracker of every server this node has local members in.
#[derive(Debug)]
pub struct Versions {
    servers: HashMap<String, Tracked>,
    buffer_bound: usize,
}

impl Versions {
    /// A tracker holding at most `buffer_bound` events per pending server.
    pub fn new(buffer_bound: usize) -> Self {
        Self {
            servers: HashMap::new(),
            buffer_bound,
        }
    }

    /// The first local join of `server` is about to run: buffer its events until the
    /// snapshot arrives. A server already tracked stays as it is.
    pub fn expect_snapshot(&mut self, server: &str) {
        self.servers
            .entry(server.to_owned())
            .or_insert(Tracked::Pending {
                buffered: Vec::new(),
                overflowed: false,
                retried: false,
            });
    }

    /// Forces a fresh start (resync): the next snapshot sets the version, whatever came before.
    pub fn restart(&mut self, server: &str) {
        self.servers.insert(
            server.to_owned(),
            Tracked::Pending {
                buffered: Vec::new(),
                overflowed: false,
                retried: false,
            },
        );
    }

    /// The last local member left: stop tracking.
    pub fn forget(&mut self, server: &str) {
        self.servers.remove(server);
    }

    /// Whether `server` is tracked.
    pub fn tracks(&self, server: &str) -> bool {
        self.servers.contains_key(server)
    }

    /// The last version applied, when live.
    pub fn last(&self, server: &str) -> Option<u64> {
        match self.servers.get(server) {
            Some(Tracked::Live { last }) => Some(*last),
            _ => None,
        }
    }

    /// An event arrived from the server's channel.
    pub fn on_event(&mut self, event: RosterEvent) -> Vec<Action> {
        let bound = self.buffer_bound;
        let Some(tracked) = self.servers.get_mut(&event.server) else {
            return Vec::new();
        };
        match tracked {
            Tracked::Pending {
                buffered,
                overflowed,
                ..
            } => {
                if buffered.len() < bound {
                    buffered.push(event);
                } else {
                    *overflowed = true;
                }
                Vec::new()
            }
            Tracked::Live { last } => {
                if event.version <= *last {
                    Vec::new()
                } else if event.version == *last + 1 {
                    *last = event.version;
                    vec![Action::Apply(event)]
                } else {
                    let server = event.server.clone();
                    *tracked = Tracked::Pending {
                        buffered: vec![event],
                        overflowed: false,
                        retried: false,
                    };
                    vec![Action::Refetch(server)]
                }
            }
        }
    }

    /// The periodic check read `version` for `server` from Redis (on the subscribing
    /// connection, so every event published before it was already handed to this tracker).
    /// A live server behind it lost events silently: refetch.
    pub fn on_check(&mut self, server: &str, version: u64) -> Vec<Action> {
        let Some(tracked) = self.servers.get_mut(server) else {
            return Vec::new();
        };
        if !matches!(tracked, Tracked::Live { last } if version > *last) {
            return Vec::new();
        }
        *tracked = Tracked::Pending {
            buffered: Vec::new(),
            overflowed: false,
            retried: false,
        };
        vec![Action::Refetch(server.to_owned())]
    }

    /// A snapshot at `version` arrived. A live server ignores it (the events up to it are on
    /// their way and apply in order); a pending one goes live at it and replays its buffer.
    pub fn on_snapshot(&mut self, server: &str, version: u64) -> Vec<Action> {
        let Some(tracked) = self.servers.get_mut(server) else {
            return Vec::new();
        };
        let Tracked::Pending {
            buffered,
            overflowed,
            retried,
        } = tracked
        else {
            return Vec::new();
        };
        let retried = *retried;
        if *overflowed {
            *tracked = Tracked::Pending {
                buffered: Vec::new(),
                overflowed: false,
                retried: false,
            };
            return vec![Action::Refetch(server.to_owned())];
        }
        let mut pending = std::mem::take(buffered);
        pending.sort_by_key(|e| e.version);
        let mut last = version;
        let mut actions = Vec::new();
        let mut rest = pending.into_iter();
        for event in rest.by_ref() {
            if event.version <= last {
                continue;
            }
            if event.version == last + 1 {
                last = event.version;
                actions.push(Action::Apply(event));
            } else if !retried {
                // Events missing between the snapshot and the buffer: one more snapshot.
                let mut held = vec![event];
                held.extend(rest);
                *tracked = Tracked::Pending {
                    buffered: held,
                    overflowed: false,
                    retried: true,
                };
                actions.push(Action::Refetch(server.to_owned()));
                return actions;
            } else {
                // Still a gap after a second snapshot: these versions are not Redis's (a
                // foreign publisher, or from before Redis lost its data). Drop them rather
                // than ask forever; a real later change gaps again and refetches.
                break;
            }
        }
        *tracked = Tracked::Live { last };
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(v: u64, user: &str) -> RosterEvent {
        RosterEvent {
            server: "S".into(),
            version: v,
            change: Change::Joined {
                user: user.into(),
                entry: Bytes::from_static(b"{}"),
            },
        }
    }

    fn applied(actions: &[Action]) -> Vec<u64> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Apply(e) => Some(e.version),
                Action::Refetch(_) => None,
            })
            .collect()
    }

    fn live_at(v: u64) -> Versions {
        let mut t = Versions::new(8);
        t.expect_snapshot("S");
        assert!(t.on_snapshot("S", v).is_empty());
        t
    }

    #[test]
    fn events_of_untracked_servers_are_ignored() {
        let mut t = Versions::new(8);
        assert!(t.on_event(joined(1, "a")).is_empty());
    }

    #[test]
    fn at_or_below_last_is_dropped_next_is_applied() {
        let mut t = live_at(5);
        assert!(t.on_event(joined(4, "a")).is_empty());
        assert!(t.on_event(joined(5, "a")).is_empty());
        assert_eq!(applied(&t.on_event(joined(6, "a"))), vec![6]);
        assert_eq!(t.last("S"), Some(6));
    }

    #[test]
    fn a_gap_asks_for_a_snapshot_and_resumes_after_it() {
        let mut t = live_at(5);
        assert_eq!(
            t.on_event(joined(8, "c")),
            vec![Action::Refetch("S".into())]
        );
        assert!(t.on_event(joined(9, "d")).is_empty());
        // The snapshot contains 8; 9 is applied after it.
        assert_eq!(applied(&t.on_snapshot("S", 8)), vec![9]);
        assert_eq!(t.last("S"), Some(9));
    }

    #[test]
    fn events_before_the_first_snapshot_are_buffered_then_filtered() {
        let mut t = Versions::new(8);
        t.expect_snapshot("S");
        for v in [3, 4, 5, 6] {
            assert!(t.on_event(joined(v, "x")).is_empty());
        }
        assert_eq!(applied(&t.on_snapshot("S", 4)), vec![5, 6]);
    }

    #[test]
    fn a_gap_inside_the_buffer_asks_again() {
        let mut t = Versions::new(8);
        t.expect_snapshot("S");
        t.on_event(joined(7, "x"));
        let actions = t.on_snapshot("S", 4);
        assert_eq!(actions, vec![Action::Refetch("S".into())]);
        assert_eq!(applied(&t.on_snapshot("S", 6)), vec![7]);
    }

    #[test]
    fn a_gap_that_a_second_snapshot_does_not_close_is_dropped_not_refetched_forever() {
        let mut t = Versions::new(8);
        t.expect_snapshot("S");
        t.on_event(joined(9, "ghost"));
        assert_eq!(t.on_snapshot("S", 1), vec![Action::Refetch("S".into())]);
        assert!(t.on_snapshot("S", 1).is_empty());
        assert_eq!(t.last("S"), Some(1));
        assert_eq!(applied(&t.on_event(joined(2, "a"))), vec![2]);
    }

    #[test]
    fn an_overflowing_buffer_asks_again_instead_of_growing() {
        let mut t = Versions::new(2);
        t.expect_snapshot("S");
        for v in 1..=5 {
            t.on_event(joined(v, "x"));
        }
        assert_eq!(t.on_snapshot("S", 0), vec![Action::Refetch("S".into())]);
        assert!(t.on_snapshot("S", 5).is_empty());
        assert_eq!(t.last("S"), Some(5));
    }

    #[test]
    fn a_snapshot_for_a_live_server_changes_nothing() {
        let mut t = live_at(2);
        assert!(t.on_snapshot("S", 9).is_empty());
        assert_eq!(applied(&t.on_event(joined(3, "a"))), vec![3]);
    }

    #[test]
    fn a_check_ahead_of_the_last_version_refetches_and_one_behind_does_nothing() {
        let mut t = live_at(5);
        assert!(t.on_check("S", 5).is_empty());
        assert!(
            t.on_check("S", 3).is_empty(),
            "Redis lost data: the epoch handles it"
        );
        assert!(t.on_check("T", 9).is_empty(), "untracked");
        assert_eq!(t.on_check("S", 6), vec![Action::Refetch("S".into())]);
        assert!(
            t.on_event(joined(6, "a")).is_empty(),
            "buffered while pending"
        );
        assert_eq!(applied(&t.on_snapshot("S", 6)), Vec::<u64>::new());
        assert_eq!(t.last("S"), Some(6));
    }

    #[test]
    fn restart_resets_whatever_came_before() {
        let mut t = live_at(40);
        t.restart("S");
        assert!(t.on_snapshot("S", 1).is_empty());
        assert_eq!(applied(&t.on_event(joined(2, "a"))), vec![2]);
        t.forget("S");
        assert!(!t.tracks("S"));
    }
}
