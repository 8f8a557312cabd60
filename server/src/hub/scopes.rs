//! Server scopes: which connections have joined or are viewing which chat server, the rosters,
//! and the `user_joined` / `user_left` deduplication across devices.
//!
//! Owns: [`ServerRecord`] and the join / view / leave transitions, server-wide fan-out and
//! `shares_server`. Never: decides whether a join is allowed (the access rules of the directory
//! do that before the hub is called).
//!
//! Rules:
//! - `user_joined` goes out when a user's first connection joins a server, `user_left` when its
//!   last joined connection there leaves or closes; a second device joining or leaving is silent.
//! - Roster events (`user_joined`, `user_left`) reach the server's joined connections and its
//!   viewers (so a viewer's roster stays true), never the user's own connections. Every other
//!   server broadcast (chat, typing, voice, plugins, status) reaches joined connections only: a
//!   viewer sees the roster, not the conversation.
//! - A join or view queues `server_users` for the connection inside the same critical section
//!   that adds it, so no `user_joined` / `user_left` of that server can overtake the roster it
//!   refers to. The roster lists every user with a joined connection, the recipient included,
//!   in no particular order.

use std::sync::atomic::Ordering;

use signalbox_protocol::ServerEnvelope;
use signalbox_protocol::ServerId;
use signalbox_protocol::UserId;
use signalbox_protocol::ws::{UserJoined, UserLeft};

use super::HubError;
use super::hashing::HashMap;
use super::outbound::Frame;
use super::registry::{ConnKey, Ctx, Exclude, Fanout, Member, Origin, State};

/// One chat server with at least one joined or viewing connection.
#[derive(Debug, Default)]
pub(super) struct ServerRecord {
    /// Joined connections: every broadcast of the server goes to them.
    pub(super) members: HashMap<ConnKey, Member>,
    /// Joined connections per user: the `user_joined`/`user_left` dedupe and the roster.
    pub(super) joined_users: HashMap<UserId, u32>,
    /// Viewing connections: they get the roster and roster events only.
    pub(super) viewers: HashMap<ConnKey, Member>,
    /// Changes whenever a connection joins or leaves (see `State::roster_versions`), so
    /// a transport can keep one serialized roster per server and tell when it is stale.
    pub(super) roster_version: u64,
}

impl ServerRecord {
    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.viewers.is_empty() && self.joined_users.is_empty()
    }
}

/// What a `join_server` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    /// The connection had already joined; only the roster was sent again.
    pub already_joined: bool,
    /// This was the user's first connection in the server: `user_joined` went out.
    pub user_joined: bool,
}

/// What a `leave_server` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Left {
    /// The connection had joined the server.
    pub was_joined: bool,
    /// The connection was viewing the server.
    pub was_viewing: bool,
    /// This was the user's last joined connection there: `user_left` went out.
    pub user_left: bool,
}

impl State {
    /// Adds `key` to the joined connections of `server` and queues its roster.
    pub(super) fn join(
        &mut self,
        ctx: Ctx<'_>,
        key: ConnKey,
        server: &ServerId,
    ) -> Result<Joined, HubError> {
        self.join_as(ctx, key, server, false)
    }

    /// [`State::join`]; with `remote_roster` (cluster mode) the connection's roster comes from
    /// the cluster glue: no `server_users` is queued here, and no roster event of this hub
    /// reaches it later.
    pub(super) fn join_as(
        &mut self,
        ctx: Ctx<'_>,
        key: ConnKey,
        server: &ServerId,
        remote_roster: bool,
    ) -> Result<Joined, HubError> {
        let conn = self
            .conns
            .get_mut(&key)
            .ok_or(HubError::UnknownConnection)?;
        let user_id = conn.user.clone().ok_or(HubError::NotIdentified)?;
        let user = self
            .users
            .get_mut(&user_id)
            .ok_or(HubError::NotIdentified)?;
        let already_joined = conn.joined.contains(server);
        let mut user_joined = false;
        let limit = ctx.config.max_joined_servers_per_connection;
        if !already_joined && conn.joined.len() >= limit {
            return Err(HubError::TooManyServers {
                viewing: false,
                limit,
            });
        }
        if !already_joined {
            conn.joined.insert(server.clone());
            user.scopes.entry(server.clone()).or_default().joined += 1;
            let record = self.servers.entry(server.clone()).or_default();
            self.roster_versions += 1;
            record.roster_version = self.roster_versions;
            record.members.insert(
                key,
                Member {
                    outbox: conn.outbox.clone(),
                    user_tag: user.tag,
                    remote_roster,
                },
            );
            let count = record.joined_users.entry(user_id.clone()).or_insert(0);
            *count += 1;
            user_joined = *count == 1;
        }
        if user_joined && let Some(user) = self.users.get(&user_id) {
            let envelope = ServerEnvelope::UserJoined(UserJoined {
                server_id: server.clone(),
                user: user.profile.summary(&user_id, user.status),
            });
            let origin = Origin {
                key,
                user_tag: user.tag,
            };
            self.roster_event(ctx, origin, server, &envelope)?;
        }
        if !remote_roster {
            self.send_roster(ctx, key, server)?;
        }
        Ok(Joined {
            already_joined,
            user_joined,
        })
    }

    /// Adds `key` to the viewers of `server` and queues its roster. Idempotent.
    pub(super) fn view(
        &mut self,
        ctx: Ctx<'_>,
        key: ConnKey,
        server: &ServerId,
    ) -> Result<(), HubError> {
        let conn = self
            .conns
            .get_mut(&key)
            .ok_or(HubError::UnknownConnection)?;
        let user_id = conn.user.clone().ok_or(HubError::NotIdentified)?;
        let user = self
            .users
            .get_mut(&user_id)
            .ok_or(HubError::NotIdentified)?;
        let limit = ctx.config.max_viewed_servers_per_connection;
        if !conn.viewing.contains(server) && conn.viewing.len() >= limit {
            return Err(HubError::TooManyServers {
                viewing: true,
                limit,
            });
        }
        if !conn.viewing.contains(server) {
            conn.viewing.insert(server.clone());
            user.scopes.entry(server.clone()).or_default().viewing += 1;
            let record = self.servers.entry(server.clone()).or_default();
            if record.roster_version == 0 {
                self.roster_versions += 1;
                record.roster_version = self.roster_versions;
            }
            record.viewers.insert(
                key,
                Member {
                    outbox: conn.outbox.clone(),
                    user_tag: user.tag,
                    remote_roster: false,
                },
            );
        }
        self.send_roster(ctx, key, server)
    }

    /// Takes `key` out of `server` (joined and viewing); sends `user_left` when it was the
    /// user's last joined connection there.
    pub(super) fn leave(
        &mut self,
        ctx: Ctx<'_>,
        key: ConnKey,
        server: &ServerId,
    ) -> Result<Left, HubError> {
        let conn = self
            .conns
            .get_mut(&key)
            .ok_or(HubError::UnknownConnection)?;
        let user_id = conn.user.clone().ok_or(HubError::NotIdentified)?;
        let was_joined = conn.joined.remove(server);
        let was_viewing = conn.viewing.remove(server);
        if !was_joined && !was_viewing {
            return Ok(Left::default());
        }
        let mut user_left = false;
        if let Some(record) = self.servers.get_mut(server) {
            if was_joined {
                self.roster_versions += 1;
                record.roster_version = self.roster_versions;
                record.members.remove(&key);
                if let Some(count) = record.joined_users.get_mut(&user_id) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        record.joined_users.remove(&user_id);
                        user_left = true;
                    }
                }
            }
            if was_viewing {
                record.viewers.remove(&key);
            }
        }
        let mut tag = 0;
        let mut display_name = None;
        if let Some(user) = self.users.get_mut(&user_id) {
            tag = user.tag;
            display_name = Some(user.profile.display_name.clone());
            if let Some(scope) = user.scopes.get_mut(server) {
                if was_joined {
                    scope.joined = scope.joined.saturating_sub(1);
                }
                if was_viewing {
                    scope.viewing = scope.viewing.saturating_sub(1);
                }
                if scope.is_empty() {
                    user.scopes.remove(server);
                }
            }
        }
        let sent = if user_left {
            let envelope = ServerEnvelope::UserLeft(UserLeft {
                server_id: server.clone(),
                oder_id: user_id,
                display_name,
            });
            self.roster_event(ctx, Origin { key, user_tag: tag }, server, &envelope)
        } else {
            Ok(Fanout::default())
        };
        if self.servers.get(server).is_some_and(ServerRecord::is_empty) {
            self.servers.remove(server);
        }
        sent?;
        Ok(Left {
            was_joined,
            was_viewing,
            user_left,
        })
    }

    /// Queues a roster event for the server's members and viewers, except the user's own
    /// connections, one delivery per connection.
    fn roster_event(
        &self,
        ctx: Ctx<'_>,
        origin: Origin,
        server: &ServerId,
        envelope: &ServerEnvelope,
    ) -> Result<Fanout, HubError> {
        let Some(record) = self.servers.get(server) else {
            return Ok(Fanout::default());
        };
        let frame = ctx.frame(envelope)?;
        let members = record.members.iter();
        let viewers = record
            .viewers
            .iter()
            .filter(|(k, _)| !record.members.contains_key(k));
        let recipients = members
            .chain(viewers)
            .filter(|(k, m)| !m.remote_roster && !origin.excludes(**k, m, Exclude::SenderUser))
            .map(|(_, m)| &m.outbox);
        let fanout = ctx.deliver(envelope.wire_type(), &frame, recipients);
        ctx.metrics.record_fanout(fanout.attempted());
        Ok(fanout)
    }

    /// Queues `server_users` for one connection. The text is assembled from the users' cached
    /// summaries: the same JSON serde would write for `ServerEnvelope::ServerUsers` (the tests
    /// parse it back), at the cost of a copy per user instead of a serialization.
    pub(super) fn send_roster(
        &self,
        ctx: Ctx<'_>,
        key: ConnKey,
        server: &ServerId,
    ) -> Result<(), HubError> {
        let conn = self.conns.get(&key).ok_or(HubError::UnknownConnection)?;
        let server_json =
            serde_json::to_string(server).map_err(|e| HubError::Serialize(e.to_string()))?;
        let summaries: Vec<&str> = self
            .servers
            .get(server)
            .into_iter()
            .flat_map(|record| record.joined_users.keys())
            .filter_map(|id| self.users.get(id).map(|u| &*u.summary_json))
            .collect();
        let body: usize = summaries.iter().map(|s| s.len() + 1).sum();
        let mut text = String::with_capacity(64 + server_json.len() + body);
        text.push_str(r#"{"type":"server_users","serverId":"#);
        text.push_str(&server_json);
        text.push_str(r#","users":["#);
        for (i, summary) in summaries.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(summary);
        }
        text.push_str("]}");
        ctx.metrics
            .envelopes_serialized
            .fetch_add(1, Ordering::Relaxed);
        ctx.deliver("server_users", &Frame::from_text(text), [&conn.outbox]);
        Ok(())
    }

    /// Queues `frame` for every joined connection of `server` but the excluded ones.
    pub(super) fn server_fanout(
        &self,
        ctx: Ctx<'_>,
        origin: Origin,
        server: &ServerId,
        exclude: Exclude,
        wire_type: &'static str,
        frame: &Frame,
    ) -> Fanout {
        let Some(record) = self.servers.get(server) else {
            return Fanout::default();
        };
        let recipients = record
            .members
            .iter()
            .filter(|(k, m)| !origin.excludes(**k, m, exclude))
            .map(|(_, m)| &m.outbox);
        let fanout = ctx.deliver(wire_type, frame, recipients);
        ctx.metrics.record_fanout(fanout.attempted());
        fanout
    }

    /// The roster version of `server` (see [`ServerRecord::roster_version`]); `None` when
    /// nobody has joined or views it.
    pub(super) fn roster_version(&self, server: &ServerId) -> Option<u64> {
        self.servers.get(server).map(|record| record.roster_version)
    }

    /// The users with a joined connection to `server` (the roster `server_users` lists), with
    /// the roster version they are current for.
    pub(super) fn roster(&self, server: &ServerId) -> Option<(u64, Vec<UserId>)> {
        let record = self.servers.get(server)?;
        let users = record.joined_users.keys().cloned().collect();
        Some((record.roster_version, users))
    }

    /// Whether two users have a *joined* server in common (a user always shares with itself
    /// while online). Viewing grants nothing here: a viewer sees a roster, and seeing someone is
    /// not being allowed to signal them.
    pub(super) fn shares_server(&self, a: &UserId, b: &UserId) -> bool {
        let (Some(ua), Some(ub)) = (self.users.get(a), self.users.get(b)) else {
            return false;
        };
        if a == b {
            return true;
        }
        let (small, large) = if ua.scopes.len() <= ub.scopes.len() {
            (ua, ub)
        } else {
            (ub, ua)
        };
        small.scopes.iter().any(|(server, count)| {
            count.joined > 0 && large.scopes.get(server).is_some_and(|c| c.joined > 0)
        })
    }
}
