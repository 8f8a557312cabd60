//! The hub: an in-process, transport-agnostic router of signaling envelopes.
//!
//! Owns: the connection registry (who is connected, with which outbound queue), identities
//! (`oderId` to its connections: one user, several devices), server scopes (joined and
//! viewing), presence (profile and status), icon-version bookkeeping, and routing: broadcast
//! within a server, status fan-out, forwarding to every connection of one user.
//!
//! Never: does I/O on sockets (it only queues pre-serialized [`Frame`]s; the transport's writer
//! task drains an [`OutboundReceiver`]), touches the database (access rules are checked by the
//! caller before [`Hub::join_server`]), parses client JSON (callers hand it protocol types), or
//! blocks (no `.await`, no unbounded wait: every queue is bounded and written with `try_send`).
//!
//! # How a transport uses it
//! [`Hub::connect`] registers a connection and returns its [`ConnectionHandle`] (which
//! disconnects on drop) and the [`OutboundReceiver`] its writer task drains. The reader task
//! calls [`Hub::identify`], [`Hub::join_server`], [`Hub::view_server`], [`Hub::leave_server`],
//! [`Hub::set_status`], [`Hub::broadcast`], [`Hub::forward`], [`Hub::icon_available`] and
//! [`Hub::icon_peers`] with the connection's [`ConnKey`]; a [`HubError`] maps to the `error`
//! code to answer with ([`HubError::error_code`]). Direct replies go through
//! [`ConnectionHandle::send`], into the same queue, so they stay ordered with fan-out traffic.
//! The SSE transport plugs in the same way, one `connect` per session.
//!
//! # Concurrency: one `RwLock`, short critical sections, shared frames
//! All indexes live in one `State` (see `registry.rs`) behind a `std::sync::RwLock`.
//! - Hot paths take the read lock: a broadcast checks membership, serializes its envelope
//!   once *outside* the lock (frames go up to 256 KiB; a forward likewise takes its
//!   recipients' queues out of the lock first), then, under the read lock again, `try_send`s
//!   the same shared frame to every member's queue (one uncontended
//!   per-connection mutex, a refcount increment and, on an empty queue, one task wake-up). At a
//!   few tens of nanoseconds per recipient, a 5,000-member fan-out holds the read lock for well
//!   under a millisecond, and concurrent broadcasts and forwards proceed in parallel.
//! - Joins, leaves, identifies, disconnects and status changes take the write lock; they are
//!   rare next to deliveries and do O(members of the server) work at most (the roster).
//! - Nothing awaits while a lock is held; the only locks taken inside are the per-connection
//!   queue mutexes (always after the state lock, never the other way round), so there is no
//!   lock-order cycle.
//!
//! Sharding the state per server was considered and rejected for now: forwarding's
//! `shares_server`, status fan-out and disconnect all span servers, so shards would have to be
//! locked together on exactly the paths that change state, and on 2 cores one reader-heavy lock
//! does not bottleneck (the per-recipient socket write in the transport costs far more than
//! the hub's enqueue). Queuing to the recipient inside the critical section is what keeps
//! `server_users` ordered before every later `user_joined`/`user_left` of the same server.
//!
//! # Multi-node boundary
//! [`Hub`] is the whole public surface: methods take ids and protocol types and return
//! outcomes; no map escapes. A Redis-backed version keeps this local hub for the sockets it
//! owns and adds a backplane: local fan-outs also publish the frame (from a background task fed
//! by a bounded channel, so the API stays synchronous and non-blocking), remote frames are
//! injected into the same local fan-out, and presence/scopes are mirrored from the other nodes.
//! In cluster mode that seam is the [`Remote`] hook (`remote.rs`: why a hook object and not a
//! `Bus` trait); standalone mode sets none.
//!
//! # Decisions
//! - Broadcast exclusion is the caller's choice per envelope ([`Exclude`]): either only the
//!   sending connection (its other devices receive a copy: device sync) or every connection of
//!   the sending user (Toju's behaviour). Either way each recipient connection gets one copy.
//! - Forwarding reaches every connection of the target user except the sending connection; a
//!   user may always reach its own other devices. Target offline: `TARGET_NOT_FOUND`; no shared
//!   joined server (viewing does not count): `FORBIDDEN` unless [`ForwardingPolicy::Open`].
//! - A slow consumer is closed with 4008 by its own queue ([`outbound`]); the hub keeps routing
//!   to everyone else and forgets the connection when the transport calls
//!   [`Hub::disconnect`] (or drops the handle).

pub mod metrics;
pub mod outbound;

mod hashing;
mod icons;
mod presence;
mod registry;
mod remote;
mod scopes;
pub mod sse_remote;
pub mod withdraw_remote;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use signalbox_protocol::ws::ServerIconSyncPeers;
use signalbox_protocol::{
    AccessDeniedReason, ClientEnvelope, CloseCode, ConnectionId, ErrorCode, RequestId,
    ServerEnvelope, ServerId, TimestampMs, UserId, UserStatus,
};

pub use metrics::{HubMetrics, MetricsSnapshot};
pub use outbound::{Frame, Outbound, OutboundConfig, OutboundReceiver, Outbox, SendOutcome};
pub use presence::Profile;
pub use registry::{ConnKey, Disconnected, Exclude, Fanout, Identified};
pub use remote::{ForwardFrame, Membership, Remote, RemoteForward, RemoteFuture};
pub use scopes::{Joined, Left};

use registry::{Ctx, State};

use crate::config::{Realtime, Security};

pub use crate::config::ForwardingPolicy;

/// Settings of the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubConfig {
    /// Bounds of every connection's outbound queue.
    pub outbound: OutboundConfig,
    /// The forwarding rule.
    pub forwarding: ForwardingPolicy,
    /// Icon records one user may hold (default 1,024).
    pub max_icon_records_per_user: usize,
    /// Peers listed in one `server_icon_sync_peers` (default 32, newest first).
    pub max_icon_peers: usize,
    /// Servers one connection may have joined at once (`security.maxJoinedServersPerConnection`).
    pub max_joined_servers_per_connection: usize,
    /// Servers one connection may view at once (`security.maxViewedServersPerConnection`).
    pub max_viewed_servers_per_connection: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            outbound: OutboundConfig::default(),
            forwarding: ForwardingPolicy::default(),
            max_icon_records_per_user: 1024,
            max_icon_peers: 32,
            max_joined_servers_per_connection: Security::DEFAULT_MAX_JOINED,
            max_viewed_servers_per_connection: Security::DEFAULT_MAX_VIEWED,
        }
    }
}

impl HubConfig {
    /// The hub's settings from the `realtime` and `security` sections of the variables file.
    pub fn from_settings(realtime: &Realtime, security: &Security) -> Self {
        Self {
            outbound: OutboundConfig {
                capacity: realtime.outbound_queue_envelopes,
                max_bytes: realtime.outbound_queue_bytes,
            },
            forwarding: realtime.forwarding,
            max_joined_servers_per_connection: security.max_joined_servers_per_connection,
            max_viewed_servers_per_connection: security.max_viewed_servers_per_connection,
            ..Self::default()
        }
    }
}

/// Why a hub operation was refused. A refusal changes nothing (except `Serialize`, which
/// cannot happen with the protocol types and is reported after the state change it followed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// The connection is not registered (already disconnected).
    #[error("connection is not registered")]
    UnknownConnection,
    /// The connection has not sent `identify` yet.
    #[error("send identify first")]
    NotIdentified,
    /// The connection has not joined the server it addresses.
    #[error("not joined to server `{0}`")]
    NotJoined(ServerId),
    /// The target of a forwarded envelope has no other open connection.
    #[error("user `{target}` is not connected")]
    TargetNotFound {
        /// The target user.
        target: UserId,
        /// The RPC request that failed, if it was one.
        request_id: Option<RequestId>,
    },
    /// The sender shares no joined server with the target.
    #[error("user `{target}` shares no server with you")]
    Forbidden {
        /// The target user.
        target: UserId,
        /// The RPC request that failed, if it was one.
        request_id: Option<RequestId>,
    },
    /// [`Hub::forward`] was given an envelope that is not forwarded (a caller bug).
    #[error("`{0}` is not a forwarded envelope")]
    NotForwardable(&'static str),
    /// The user announced icons for too many servers.
    #[error("too many server icons announced")]
    IconLimit,
    /// The connection has joined (or views) as many servers as it may.
    #[error("this connection may {} at most {limit} servers at once; leave one first", if *viewing { "view" } else { "join" })]
    TooManyServers {
        /// Whether the limit is on viewed servers (else joined ones).
        viewing: bool,
        /// The limit.
        limit: usize,
    },
    /// An envelope failed to serialize (a bug).
    #[error("could not serialize envelope: {0}")]
    Serialize(String),
}

impl HubError {
    /// The `error` code a transport answers with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::NotIdentified => ErrorCode::NotIdentified,
            Self::NotJoined(_) | Self::Forbidden { .. } => ErrorCode::Forbidden,
            Self::TargetNotFound { .. } => ErrorCode::TargetNotFound,
            Self::IconLimit => ErrorCode::InvalidMessage,
            Self::TooManyServers { .. } => ErrorCode::LimitExceeded,
            Self::UnknownConnection | Self::NotForwardable(_) | Self::Serialize(_) => {
                ErrorCode::InternalError
            }
        }
    }

    /// The `requestId` to echo in the `error`, for a failed `rpc_request`/`rpc_response`.
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            Self::TargetNotFound { request_id, .. } | Self::Forbidden { request_id, .. } => {
                request_id.as_ref()
            }
            _ => None,
        }
    }
}

/// The sender of a broadcast, as the hub knows it (for the envelope's server-set fields).
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    /// The sending connection.
    pub connection: ConnKey,
    /// The sender's `oderId`.
    pub user_id: &'a UserId,
    /// The sender's current display name.
    pub display_name: &'a str,
}

/// Sizes of the hub's indexes; all zero once every connection closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Registered connections.
    pub connections: usize,
    /// Users with at least one identified connection.
    pub users: usize,
    /// Servers with at least one joined or viewing connection.
    pub servers: usize,
    /// Joined connections, summed over servers.
    pub memberships: usize,
    /// Viewing connections, summed over servers.
    pub viewers: usize,
    /// `(user, server)` scope counters, summed over users.
    pub user_scopes: usize,
    /// Icon version records.
    pub icon_records: usize,
    /// Servers joined by the connection that has joined the most.
    pub most_joined_per_connection: usize,
    /// Servers viewed by the connection that views the most.
    pub most_viewed_per_connection: usize,
}

struct Inner {
    state: RwLock<State>,
    config: HubConfig,
    metrics: Arc<HubMetrics>,
    next_key: AtomicU64,
    /// The hook to other nodes; unset in standalone mode.
    remote: std::sync::OnceLock<Arc<dyn Remote>>,
}

/// The hub handle: cheap to clone, shared by every transport task.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(HubConfig::default())
    }
}

impl Hub {
    /// An empty hub.
    pub fn new(config: HubConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: RwLock::new(State::default()),
                config,
                metrics: Arc::new(HubMetrics::default()),
                next_key: AtomicU64::new(1),
                remote: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The hub's settings.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// The hub's counters, for `/metrics`.
    pub fn metrics(&self) -> &HubMetrics {
        &self.inner.metrics
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            metrics: &self.inner.metrics,
            config: &self.inner.config,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // State changes are applied so that a panic midway (there is no panicking path) would
        // leave indexes at worst with an entry too many, never a dangling one; keep serving.
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection with a fresh `connectionId`. The transport sends `connected`
    /// through the handle, drains the receiver in its writer task, and drops the handle (or
    /// calls [`Hub::disconnect`]) when the socket is gone.
    pub fn connect(&self) -> (ConnectionHandle, OutboundReceiver) {
        let key = ConnKey(self.inner.next_key.fetch_add(1, Ordering::Relaxed));
        let id = ConnectionId(uuid::Uuid::new_v4().to_string());
        let (outbox, receiver) =
            outbound::channel(self.inner.config.outbound, Arc::clone(&self.inner.metrics));
        self.write()
            .insert_conn(self.ctx(), key, id.clone(), outbox.clone());
        let handle = ConnectionHandle {
            key,
            id,
            outbox,
            hub: self.clone(),
        };
        (handle, receiver)
    }

    /// Binds the connection to `user_id` with `profile`. Again with the same id: updates the
    /// profile. With another id: the connection first leaves everything as the old user.
    pub fn identify(
        &self,
        conn: ConnKey,
        user_id: UserId,
        profile: Profile,
    ) -> Result<Identified, HubError> {
        let mut state = self.write();
        let identified = state.identify(self.ctx(), conn, user_id, profile)?;
        self.tell_identified(&state, &identified);
        Ok(identified)
    }

    /// The identity of a connection, once identified.
    pub fn user_of(&self, conn: ConnKey) -> Option<UserId> {
        self.read().user_of(conn).ok().cloned()
    }

    /// The wire `connectionId` of a connection.
    pub fn connection_id(&self, conn: ConnKey) -> Option<ConnectionId> {
        self.read().conns.get(&conn).map(|c| c.id.clone())
    }

    /// Joins a server (after the caller checked the access rules): queues `server_users` for
    /// the connection, and `user_joined` for the server when this is the user's first
    /// connection there. Joining again only re-sends the roster.
    pub fn join_server(&self, conn: ConnKey, server: &ServerId) -> Result<Joined, HubError> {
        let mut state = self.write();
        let joined = state.join(self.ctx(), conn, server)?;
        if joined.user_joined
            && let Some(user) = state.conns.get(&conn).and_then(|c| c.user.clone())
        {
            self.tell_joined(&state, server, &user);
        }
        Ok(joined)
    }

    /// Views a server without joining: queues `server_users` for the connection; no
    /// `user_joined`.
    pub fn view_server(&self, conn: ConnKey, server: &ServerId) -> Result<(), HubError> {
        self.write().view(self.ctx(), conn, server)
    }

    /// Leaves a joined or viewed server; `user_left` goes out when it was the user's last
    /// joined connection there. Leaving a server never joined is not an error.
    pub fn leave_server(&self, conn: ConnKey, server: &ServerId) -> Result<Left, HubError> {
        let mut state = self.write();
        let user = state.conns.get(&conn).and_then(|c| c.user.clone());
        let left = state.leave(self.ctx(), conn, server)?;
        if let Some(user) = user {
            self.tell_left(server, &user, &left);
        }
        Ok(left)
    }

    /// Sets the user's status and queues `status_update` once per connection sharing a joined
    /// server with it.
    pub fn set_status(
        &self,
        conn: ConnKey,
        status: UserStatus,
        exclude: Exclude,
    ) -> Result<Fanout, HubError> {
        let mut state = self.write();
        let fanout = state.set_status(self.ctx(), conn, status, exclude)?;
        self.tell_status(&state, conn);
        Ok(fanout)
    }

    /// Broadcasts to every joined connection of `server` but the excluded ones. `build` makes
    /// the envelope from the sender's identity (for `senderId`, `senderName`, ...); it runs once,
    /// outside the hub's lock, as does the envelope's one serialization (a frame may be 256 KiB:
    /// joins and leaves are not held up behind it). The fan-out then takes the read lock again
    /// and goes to the members of that moment. Refused with [`HubError::NotJoined`] unless the
    /// sender joined `server` (checked before building, and again before the fan-out).
    pub fn broadcast<F>(
        &self,
        conn: ConnKey,
        server: &ServerId,
        exclude: Exclude,
        build: F,
    ) -> Result<Fanout, HubError>
    where
        F: FnOnce(&Sender<'_>) -> ServerEnvelope,
    {
        let ctx = self.ctx();
        let (user_id, display_name, user_tag) = {
            let state = self.read();
            let record = state.conns.get(&conn).ok_or(HubError::UnknownConnection)?;
            let user_id = record.user.as_ref().ok_or(HubError::NotIdentified)?;
            if !record.joined.contains(server) {
                return Err(HubError::NotJoined(server.clone()));
            }
            let user = state.users.get(user_id).ok_or(HubError::NotIdentified)?;
            (user_id.clone(), user.profile.display_name.clone(), user.tag)
        };
        let envelope = build(&Sender {
            connection: conn,
            user_id: &user_id,
            display_name: &display_name,
        });
        let frame = ctx.frame(&envelope)?;
        let state = self.read();
        // Left (or was evicted) meanwhile: the message is not delivered.
        if !state
            .conns
            .get(&conn)
            .is_some_and(|record| record.joined.contains(server))
        {
            return Err(HubError::NotJoined(server.clone()));
        }
        let origin = registry::Origin {
            key: conn,
            user_tag,
        };
        let fanout =
            state.server_fanout(ctx, origin, server, exclude, envelope.wire_type(), &frame);
        drop(state);
        if let Some(remote) = self.remote() {
            remote.broadcast(server, &user_id, &frame);
        }
        Ok(fanout)
    }

    /// Forwards an `offer`, `answer`, `ice_candidate`, `direct-*`, `server_icon_peer_*` or
    /// `rpc_*` envelope to every connection of its target but the sender's, with `fromUserId`
    /// stamped from the sender's identity. Refused with `TARGET_NOT_FOUND` when the target has no
    /// other connection, `FORBIDDEN` when the two share no server (unless forwarding is open or
    /// the target is the sender's own user). The checks run under the read lock, which is
    /// released before the delivery (up to 256 KiB) is serialized and queued for the
    /// recipients found.
    pub fn forward(&self, conn: ConnKey, envelope: ClientEnvelope) -> Result<Fanout, HubError> {
        let ctx = self.ctx();
        let state = self.read();
        let from = state.user_of(conn)?.clone();
        let forwarded = envelope
            .into_forwarded(from.clone())
            .map_err(|e| HubError::NotForwardable(e.wire_type()))?;
        let recipients = self.forward_recipients(
            &state,
            conn,
            &from,
            &forwarded.target_user_id,
            &forwarded.request_id,
        )?;
        drop(state);
        let frame = ctx.frame(&forwarded.delivery)?;
        let fanout = ctx.deliver(forwarded.delivery.wire_type(), &frame, &recipients);
        ctx.metrics.forwards.fetch_add(1, Ordering::Relaxed);
        Ok(fanout)
    }

    /// [`Hub::forward`] of a delivery already serialized by [`Hub::forward_frame`] (cluster
    /// mode: the same frame goes to this node's connections and to Redis, serialized once).
    pub fn forward_built(&self, conn: ConnKey, out: &ForwardFrame) -> Result<Fanout, HubError> {
        let ctx = self.ctx();
        let state = self.read();
        let recipients =
            self.forward_recipients(&state, conn, &out.from, &out.target, &out.request_id)?;
        drop(state);
        let fanout = ctx.deliver(out.wire_type, &out.frame, &recipients);
        ctx.metrics.forwards.fetch_add(1, Ordering::Relaxed);
        Ok(fanout)
    }

    /// The forwarding rules: the target's other connections, or why there are none here
    /// (`TARGET_NOT_FOUND`; `FORBIDDEN` when the two share no server under that policy).
    fn forward_recipients(
        &self,
        state: &State,
        conn: ConnKey,
        from: &UserId,
        target: &UserId,
        request_id: &Option<signalbox_protocol::RequestId>,
    ) -> Result<Vec<Outbox>, HubError> {
        let ctx = self.ctx();
        let refused = |found: bool| {
            let target = target.clone();
            let request_id = request_id.clone();
            if found {
                ctx.metrics
                    .forwards_forbidden
                    .fetch_add(1, Ordering::Relaxed);
                HubError::Forbidden { target, request_id }
            } else {
                ctx.metrics
                    .forwards_target_not_found
                    .fetch_add(1, Ordering::Relaxed);
                HubError::TargetNotFound { target, request_id }
            }
        };
        let Some(target_user) = state.users.get(target) else {
            return Err(refused(false));
        };
        if !target_user.conns.iter().any(|(k, _)| *k != conn) {
            return Err(refused(false));
        }
        if ctx.config.forwarding == ForwardingPolicy::SharedServer
            && target != from
            && !state.shares_server(from, target)
        {
            return Err(refused(true));
        }
        Ok(target_user
            .conns
            .iter()
            .filter(|(k, _)| *k != conn)
            .map(|(_, outbox)| outbox.clone())
            .collect())
    }

    /// Removes connections from `server` (joined or viewing), as if each had sent
    /// `leave_server`, and tells each one why with `access_denied`: every connection of `user`,
    /// or everyone when `user` is `None`. Used when the directory takes access away (a ban, a
    /// deleted server) so nobody keeps receiving the server's traffic until a reconnect.
    /// Returns how many connections were removed.
    pub fn evict(
        &self,
        server: &ServerId,
        user: Option<&UserId>,
        reason: AccessDeniedReason,
    ) -> usize {
        let ctx = self.ctx();
        let mut state = self.write();
        let keys: Vec<ConnKey> = match user {
            Some(user) => state
                .users
                .get(user)
                .map(|record| {
                    record
                        .conns
                        .iter()
                        .map(|(key, _)| *key)
                        .filter(|key| {
                            state.conns.get(key).is_some_and(|c| {
                                c.joined.contains(server) || c.viewing.contains(server)
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            None => state
                .servers
                .get(server)
                .map(|record| {
                    record
                        .members
                        .keys()
                        .chain(record.viewers.keys())
                        .copied()
                        .collect()
                })
                .unwrap_or_default(),
        };
        let denied = ServerEnvelope::AccessDenied(signalbox_protocol::ws::AccessDenied {
            server_id: server.clone(),
            reason,
        });
        let frame = ctx.frame(&denied).ok();
        for key in &keys {
            let user = state.conns.get(key).and_then(|c| c.user.clone());
            if let (Ok(left), Some(user)) = (state.leave(ctx, *key, server), user) {
                self.tell_left(server, &user, &left);
            }
            if let (Some(frame), Some(conn)) = (&frame, state.conns.get(key)) {
                conn.outbox.try_send(frame);
            }
        }
        keys.len()
    }

    /// Whether the connection has joined `server` (checked before work that only members may
    /// cause, such as validating a plugin event).
    pub fn is_joined(&self, conn: ConnKey, server: &ServerId) -> bool {
        self.read()
            .conns
            .get(&conn)
            .is_some_and(|record| record.joined.contains(server))
    }

    /// The servers the connection has joined or views, joined first, each once (for envelopes
    /// whose `serverId` may be left out when exactly one is meant).
    pub fn servers_in_scope(&self, conn: ConnKey) -> Vec<ServerId> {
        let state = self.read();
        let Some(record) = state.conns.get(&conn) else {
            return Vec::new();
        };
        let mut servers: Vec<ServerId> = record.joined.iter().cloned().collect();
        servers.extend(
            record
                .viewing
                .iter()
                .filter(|server| !record.joined.contains(*server))
                .cloned(),
        );
        servers
    }

    /// Whether the connection could join (or, with `viewing`, view) one more server now: a
    /// handler asks before the directory records a membership, so a refusal at the per-connection
    /// cap writes nothing. (A connection's envelopes are handled one at a time, so the answer
    /// holds until its own join.)
    pub fn has_room_for(
        &self,
        conn: ConnKey,
        server: &ServerId,
        viewing: bool,
    ) -> Result<(), HubError> {
        let config = &self.inner.config;
        let state = self.read();
        let record = state.conns.get(&conn).ok_or(HubError::UnknownConnection)?;
        let (set, limit) = if viewing {
            (&record.viewing, config.max_viewed_servers_per_connection)
        } else {
            (&record.joined, config.max_joined_servers_per_connection)
        };
        if set.contains(server) || set.len() < limit {
            Ok(())
        } else {
            Err(HubError::TooManyServers { viewing, limit })
        }
    }

    /// Whether any connection has joined or is viewing `server` (a live room: an SSE ad-hoc
    /// room, or a directory server with someone in it).
    pub fn is_live(&self, server: &ServerId) -> bool {
        self.read().servers.contains_key(server)
    }

    /// The users with a connection joined to or viewing `server`, and whether each has a joined
    /// one (withdrawal re-checks each of them).
    pub fn users_in(&self, server: &ServerId) -> Vec<(UserId, bool)> {
        let state = self.read();
        let Some(record) = state.servers.get(server) else {
            return Vec::new();
        };
        let mut users: std::collections::HashMap<UserId, bool> = record
            .joined_users
            .keys()
            .map(|u| (u.clone(), true))
            .collect();
        for key in record.viewers.keys() {
            if let Some(user) = state.conns.get(key).and_then(|c| c.user.clone()) {
                users.entry(user).or_insert(false);
            }
        }
        users.into_iter().collect()
    }

    /// A number that changes whenever a connection joins or leaves `server` (never reused, even
    /// after the server emptied), or `None` when nobody has joined or views it. A transport that
    /// shows the roster in its own form (SSE's `roster`) serializes it once per version and
    /// shares that text between the server's sessions, instead of once per session per change.
    pub fn roster_version(&self, server: &ServerId) -> Option<u64> {
        self.read().roster_version(server)
    }

    /// The users with a joined connection to `server` (the users `server_users` lists, in no
    /// particular order) and the [`Hub::roster_version`] they are current for.
    pub fn roster(&self, server: &ServerId) -> Option<(u64, Vec<UserId>)> {
        self.read().roster(server)
    }

    /// Whether two users have both joined a shared server (the forwarding rule).
    pub fn shares_server(&self, a: &UserId, b: &UserId) -> bool {
        self.read().shares_server(a, b)
    }

    /// Records that the connection's user holds `server`'s icon at `version`
    /// (`server_icon_available`).
    pub fn icon_available(
        &self,
        conn: ConnKey,
        server: &ServerId,
        version: TimestampMs,
    ) -> Result<(), HubError> {
        self.write()
            .icon_available(self.ctx(), conn, server, version)
    }

    /// The answer to `server_icon_sync_request`: peers holding a newer icon, newest first.
    pub fn icon_peers(
        &self,
        conn: ConnKey,
        server: &ServerId,
        version: TimestampMs,
    ) -> Result<ServerIconSyncPeers, HubError> {
        self.read().icon_peers(self.ctx(), conn, server, version)
    }

    /// Serializes `envelope` and queues it for one connection.
    pub fn send(&self, conn: ConnKey, envelope: &ServerEnvelope) -> Result<SendOutcome, HubError> {
        let outbox = self
            .read()
            .conns
            .get(&conn)
            .map(|c| c.outbox.clone())
            .ok_or(HubError::UnknownConnection)?;
        self.ctx().send_one(&outbox, envelope)
    }

    /// Forgets a connection: leaves every server (`user_left` where it was the user's last
    /// connection), drops the user when it was its last connection. `None` when already gone.
    pub fn disconnect(&self, conn: ConnKey) -> Option<Disconnected> {
        let mut state = self.write();
        let gone = state.disconnect(self.ctx(), conn)?;
        self.tell_disconnected(&gone);
        drop(state);
        self.tell_closed(conn);
        Some(gone)
    }

    /// Asks every connection's transport to close with `code` after its queued frames (1001 on
    /// graceful shutdown). Connections leave the hub when their transports disconnect them.
    pub fn close_all(&self, code: CloseCode) {
        for conn in self.read().conns.values() {
            conn.outbox.close(code);
        }
    }

    /// The fullest outbound queue: `(frames, bytes)`, each the largest over every connection
    /// (for gauges; one pass over the connections under the read lock).
    pub fn queue_peaks(&self) -> (usize, usize) {
        self.read()
            .conns
            .values()
            .map(|c| c.outbox.backlog())
            .fold((0, 0), |(f, b), (cf, cb)| (f.max(cf), b.max(cb)))
    }

    /// Sizes of every index (for tests and gauges).
    pub fn stats(&self) -> HubStats {
        let state = self.read();
        HubStats {
            connections: state.conns.len(),
            users: state.users.len(),
            servers: state.servers.len(),
            memberships: state.servers.values().map(|s| s.members.len()).sum(),
            viewers: state.servers.values().map(|s| s.viewers.len()).sum(),
            user_scopes: state.users.values().map(|u| u.scopes.len()).sum(),
            icon_records: state.icons.len(),
            most_joined_per_connection: state
                .conns
                .values()
                .map(|c| c.joined.len())
                .max()
                .unwrap_or(0),
            most_viewed_per_connection: state
                .conns
                .values()
                .map(|c| c.viewing.len())
                .max()
                .unwrap_or(0),
        }
    }

    /// The `limit` servers with the most joined connections, most first (ties by id), for the
    /// operator dashboard.
    pub fn largest_servers(&self, limit: usize) -> Vec<(ServerId, usize)> {
        let state = self.read();
        let mut all: Vec<(&ServerId, usize)> = state
            .servers
            .iter()
            .map(|(id, server)| (id, server.members.len()))
            .filter(|(_, members)| *members > 0)
            .collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.into_iter()
            .take(limit)
            .map(|(id, members)| (id.clone(), members))
            .collect()
    }
}

/// One registered connection, as its transport holds it. Dropping it disconnects the
/// connection from the hub.
#[derive(Debug)]
pub struct ConnectionHandle {
    key: ConnKey,
    id: ConnectionId,
    outbox: Outbox,
    hub: Hub,
}

impl ConnectionHandle {
    /// The key to pass to every [`Hub`] call about this connection.
    pub fn key(&self) -> ConnKey {
        self.key
    }

    /// The wire `connectionId` (for `connected`).
    pub fn connection_id(&self) -> &ConnectionId {
        &self.id
    }

    /// The hub this connection is registered with.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Serializes `envelope` and queues it for this connection (replies, errors, `connected`).
    pub fn send(&self, envelope: &ServerEnvelope) -> Result<SendOutcome, HubError> {
        self.hub.ctx().send_one(&self.outbox, envelope)
    }

    /// Asks this connection's writer to close with `code` after the queued frames.
    pub fn close(&self, code: CloseCode) {
        self.outbox.close(code);
    }

    /// The close code requested so far (4008 once it was found to be a slow consumer).
    pub fn close_code(&self) -> Option<CloseCode> {
        self.outbox.close_code()
    }

    /// Disconnects now and reports what that did (dropping the handle does the same silently).
    pub fn disconnect(self) -> Option<Disconnected> {
        self.hub.disconnect(self.key)
    }
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        self.hub.disconnect(self.key);
    }
}
