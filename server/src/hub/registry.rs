//! The hub's state: connections, identities, and the fan-out primitive every route uses.
//!
//! Owns: [`State`] (every index of the hub, behind the hub's one `RwLock`), connection records
//! (`ConnKey` to outbox and identity), user records (`UserId` to its connections, profile,
//! status and scope counts), identify and disconnect. Server scopes live in `scopes.rs`,
//! presence in `presence.rs`, icon versions in `icons.rs`; all are `impl State` blocks over the
//! same indexes so one critical section can update them together.
//!
//! Invariants (checked by the tests' leak assertions):
//! - a connection is in `users[u].conns` iff its record says `user == Some(u)`;
//! - a user record exists iff it has at least one connection;
//! - `users[u].scopes[s]` counts exactly the connections of `u` joined to / viewing `s`, and is
//!   removed at zero; `servers[s]` mirrors the same memberships and is removed when empty.

use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use signalbox_protocol::{ConnectionId, ServerEnvelope, ServerId, UserId, UserStatus};

use super::hashing::{HashMap, HashSet};
use super::icons::IconBook;
use super::metrics::HubMetrics;
use super::outbound::{Frame, Outbox, SendOutcome};
use super::presence::{Profile, summary_json};
use super::scopes::ServerRecord;
use super::{HubConfig, HubError};

/// The hub's handle on one connection: a small number, cheap to hash and copy. The wire id
/// (`connectionId`, a UUID) is separate: see [`super::ConnectionHandle::connection_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey(pub(super) u64);

impl std::fmt::Display for ConnKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Who is left out of a fan-out, relative to the connection that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclude {
    /// Only the sending connection: the sender's other devices receive the envelope (device
    /// sync: a message typed on the phone shows on the laptop).
    SenderConnection,
    /// Every connection of the sending user (Toju's behaviour: it dedupes by `oderId`).
    SenderUser,
}

/// What a fan-out achieved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fanout {
    /// Connections the frame was queued for.
    pub delivered: usize,
    /// Connections this fan-out closed as slow consumers (4008).
    pub slow_consumers: usize,
    /// Connections already closing, skipped.
    pub dropped: usize,
}

impl Fanout {
    fn record(&mut self, outcome: SendOutcome) {
        match outcome {
            SendOutcome::Queued => self.delivered += 1,
            SendOutcome::SlowConsumer => self.slow_consumers += 1,
            SendOutcome::Closed => self.dropped += 1,
        }
    }

    /// Connections the fan-out addressed.
    pub fn attempted(&self) -> usize {
        self.delivered + self.slow_consumers + self.dropped
    }
}

/// A recipient as the fan-out indexes store it: its queue and its user's tag (so "every
/// connection of the sender" is excluded with an integer compare).
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub(super) outbox: Outbox,
    pub(super) user_tag: u64,
    /// Cluster mode: this joined connection's roster (`server_users`, `user_joined`,
    /// `user_left`) comes from the cluster glue, never from the local hub (`remote.rs`).
    pub(super) remote_roster: bool,
}

/// The connection that caused a fan-out, and its user's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Origin {
    pub(super) key: ConnKey,
    pub(super) user_tag: u64,
}

impl Origin {
    /// Whether the recipient `key` (a connection of the user tagged `member.user_tag`) is left
    /// out of a fan-out from this origin.
    pub(super) fn excludes(self, key: ConnKey, member: &Member, exclude: Exclude) -> bool {
        match exclude {
            Exclude::SenderConnection => key == self.key,
            Exclude::SenderUser => member.user_tag == self.user_tag,
        }
    }
}

/// Everything the hub knows about one connection.
#[derive(Debug)]
pub(super) struct ConnRecord {
    pub(super) id: ConnectionId,
    pub(super) outbox: Outbox,
    pub(super) user: Option<UserId>,
    /// Servers joined (at most `HubConfig::max_joined_servers_per_connection`).
    pub(super) joined: HashSet<ServerId>,
    /// Servers viewed (at most `HubConfig::max_viewed_servers_per_connection`).
    pub(super) viewing: HashSet<ServerId>,
}

/// How many connections of one user are joined to / viewing one server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ScopeCount {
    pub(super) joined: u32,
    pub(super) viewing: u32,
}

impl ScopeCount {
    pub(super) fn is_empty(self) -> bool {
        self.joined == 0 && self.viewing == 0
    }
}

/// One identity (`oderId`) with at least one identified connection.
#[derive(Debug)]
pub(super) struct UserRecord {
    pub(super) tag: u64,
    pub(super) profile: Profile,
    pub(super) status: UserStatus,
    /// `profile` and `status` as a serialized `UserSummary`, refreshed on every change, so a
    /// roster of 5,000 users is assembled by concatenation rather than serialized per join.
    pub(super) summary_json: Arc<str>,
    pub(super) conns: Vec<(ConnKey, Outbox)>,
    pub(super) scopes: HashMap<ServerId, ScopeCount>,
    pub(super) icon_servers: Vec<ServerId>,
}

/// What the other parts of the hub need besides the state: counters and settings.
#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub(super) metrics: &'a HubMetrics,
    pub(super) config: &'a HubConfig,
}

impl Ctx<'_> {
    /// Serializes an envelope once, counting it.
    pub(super) fn frame(&self, envelope: &ServerEnvelope) -> Result<Frame, HubError> {
        self.metrics
            .envelopes_serialized
            .fetch_add(1, Ordering::Relaxed);
        Frame::from_envelope(envelope).map_err(|e| HubError::Serialize(e.to_string()))
    }

    /// Queues `frame` for every outbox of `recipients` and records the deliveries.
    pub(super) fn deliver<'o>(
        &self,
        wire_type: &'static str,
        frame: &Frame,
        recipients: impl IntoIterator<Item = &'o Outbox>,
    ) -> Fanout {
        let mut fanout = Fanout::default();
        for outbox in recipients {
            fanout.record(outbox.try_send(frame));
        }
        self.metrics.record_deliveries(wire_type, fanout.delivered);
        if fanout.dropped > 0 {
            self.metrics
                .dropped_closed
                .fetch_add(fanout.dropped as u64, Ordering::Relaxed);
        }
        fanout
    }

    /// Serializes `envelope` and queues it for one connection.
    pub(super) fn send_one(
        &self,
        outbox: &Outbox,
        envelope: &ServerEnvelope,
    ) -> Result<SendOutcome, HubError> {
        let frame = self.frame(envelope)?;
        let fanout = self.deliver(envelope.wire_type(), &frame, [outbox]);
        Ok(if fanout.delivered == 1 {
            SendOutcome::Queued
        } else if fanout.slow_consumers == 1 {
            SendOutcome::SlowConsumer
        } else {
            SendOutcome::Closed
        })
    }
}

/// Every index of the hub. Guarded by one `RwLock` in [`super::Hub`]; see the module docs of
/// `hub` for why one lock.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) conns: HashMap<ConnKey, ConnRecord>,
    pub(super) users: HashMap<UserId, UserRecord>,
    pub(super) servers: HashMap<ServerId, ServerRecord>,
    pub(super) icons: IconBook,
    next_user_tag: u64,
    /// The last roster version handed out: versions grow over the hub's whole life, so a
    /// version names one roster of one server even after the server record was dropped and
    /// created again.
    pub(super) roster_versions: u64,
}

/// What `identify` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    /// The identity the connection now has.
    pub user_id: UserId,
    /// Whether this is the user's only connection (it was offline before).
    pub first_connection: bool,
    /// The identity the connection had before, when `identify` switched it to another user
    /// (the connection left every server first, with `user_left` where due).
    pub replaced_user: Option<UserId>,
}

/// What closing a connection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnected {
    /// The connection's identity, if it had identified.
    pub user_id: Option<UserId>,
    /// Whether that user has no connection left.
    pub user_offline: bool,
    /// Servers where this close produced a `user_left` (the user's last connection there).
    pub user_left: Vec<ServerId>,
}

impl State {
    /// Registers a new, unidentified connection.
    pub(super) fn insert_conn(
        &mut self,
        ctx: Ctx<'_>,
        key: ConnKey,
        id: ConnectionId,
        outbox: Outbox,
    ) {
        self.conns.insert(
            key,
            ConnRecord {
                id,
                outbox,
                user: None,
                joined: HashSet::default(),
                viewing: HashSet::default(),
            },
        );
        ctx.metrics.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    /// The identity of an identified connection.
    pub(super) fn user_of(&self, key: ConnKey) -> Result<&UserId, HubError> {
        self.conns
            .get(&key)
            .ok_or(HubError::UnknownConnection)?
            .user
            .as_ref()
            .ok_or(HubError::NotIdentified)
    }

    /// Binds a connection to `user_id` (or updates the profile when it already is).
    pub(super) fn identify(
        &mut self,
        ctx: Ctx<'_>,
        key: ConnKey,
        user_id: UserId,
        profile: Profile,
    ) -> Result<Identified, HubError> {
        let current = self
            .conns
            .get(&key)
            .ok_or(HubError::UnknownConnection)?
            .user
            .clone();
        let replaced_user = match current {
            Some(current) if current == user_id => {
                if let Some(user) = self.users.get_mut(&user_id) {
                    user.summary_json = summary_json(&user_id, &profile, user.status)?;
                    user.profile = profile;
                }
                return Ok(Identified {
                    user_id,
                    first_connection: false,
                    replaced_user: None,
                });
            }
            Some(current) => {
                self.detach_user(ctx, key);
                Some(current)
            }
            None => None,
        };
        let status = self
            .users
            .get(&user_id)
            .map_or(UserStatus::Online, |u| u.status);
        let summary = summary_json(&user_id, &profile, status)?;
        let conn = self
            .conns
            .get_mut(&key)
            .ok_or(HubError::UnknownConnection)?;
        conn.user = Some(user_id.clone());
        let outbox = conn.outbox.clone();
        let first_connection = match self.users.entry(user_id.clone()) {
            Entry::Occupied(mut entry) => {
                let user = entry.get_mut();
                user.profile = profile;
                user.summary_json = summary;
                user.conns.push((key, outbox));
                false
            }
            Entry::Vacant(entry) => {
                self.next_user_tag += 1;
                entry.insert(UserRecord {
                    tag: self.next_user_tag,
                    profile,
                    status,
                    summary_json: summary,
                    conns: vec![(key, outbox)],
                    scopes: HashMap::default(),
                    icon_servers: Vec::new(),
                });
                ctx.metrics.users_online.fetch_add(1, Ordering::Relaxed);
                true
            }
        };
        Ok(Identified {
            user_id,
            first_connection,
            replaced_user,
        })
    }

    /// Takes a connection out of every server and off its user; drops the user when it was its
    /// last connection. The connection record itself stays.
    fn detach_user(&mut self, ctx: Ctx<'_>, key: ConnKey) -> Disconnected {
        let Some(conn) = self.conns.get(&key) else {
            return Disconnected {
                user_id: None,
                user_offline: false,
                user_left: Vec::new(),
            };
        };
        let servers: Vec<ServerId> = conn.joined.union(&conn.viewing).cloned().collect();
        let mut user_left = Vec::new();
        for server in servers {
            if let Ok(outcome) = self.leave(ctx, key, &server)
                && outcome.user_left
            {
                user_left.push(server);
            }
        }
        let Some(user_id) = self.conns.get_mut(&key).and_then(|c| c.user.take()) else {
            return Disconnected {
                user_id: None,
                user_offline: false,
                user_left,
            };
        };
        let mut user_offline = false;
        if let Some(user) = self.users.get_mut(&user_id) {
            user.conns.retain(|(k, _)| *k != key);
            if user.conns.is_empty() {
                let icon_servers = std::mem::take(&mut user.icon_servers);
                self.icons.forget_user(&user_id, &icon_servers);
                self.users.remove(&user_id);
                ctx.metrics.users_online.fetch_sub(1, Ordering::Relaxed);
                user_offline = true;
            }
        }
        Disconnected {
            user_id: Some(user_id),
            user_offline,
            user_left,
        }
    }

    /// Removes a connection from every index. `None` when it was already gone.
    pub(super) fn disconnect(&mut self, ctx: Ctx<'_>, key: ConnKey) -> Option<Disconnected> {
        if !self.conns.contains_key(&key) {
            return None;
        }
        let outcome = self.detach_user(ctx, key);
        self.conns.remove(&key);
        ctx.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
        Some(outcome)
    }
}
