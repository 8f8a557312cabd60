//! The hub's seam to other nodes (cluster mode, issue 13): what the hub hands out after a local
//! delivery, and the local deliveries other nodes' traffic asks of it.
//!
//! Owns: the [`Remote`] trait and the hub methods inbound traffic uses
//! ([`super::Hub::deliver_server`], [`super::Hub::deliver_user`]).
//!
//! Why a narrow hook object and not the plan's `Bus`/`Presence` pair: the hub stays the one
//! owner of local delivery and of its indexes in both modes, so what changes in cluster mode is
//! only "also tell the other nodes". A trait with one call per such fact is what the backplane
//! needs; a `Bus` trait the local hub also implemented would put an indirection on every
//! standalone delivery for nothing. Standalone mode sets no [`Remote`]: each hook point is one
//! `OnceLock` read that finds nothing (no Redis client, no extra hop).
//!
//! Never: awaits or blocks (an implementation queues: `try_send` into the backplane's bounded
//! publisher), imports the backplane (`crate::cluster` implements this trait, not the reverse).

use std::sync::Arc;

use super::registry::{ConnKey, State};
use super::{Disconnected, Fanout, Frame, HubError, Identified, Joined, Left};
use signalbox_protocol::{ServerId, UserId};

/// A change of who is on this node, told in the order it happened here (the hub tells it
/// under its write lock). Transitions only: a user's second connection to a server changes
/// nothing other nodes see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// `user` now has identified connections here (`true`) or none left (`false`).
    Identified {
        /// The user.
        user: UserId,
        /// Whether it has any.
        connected: bool,
    },
    /// `user`'s first connection here joined `server`; `entry` is its `UserSummary` JSON.
    Joined {
        /// The server.
        server: ServerId,
        /// The user.
        user: UserId,
        /// Its roster entry.
        entry: Arc<str>,
    },
    /// `user`'s last connection here left `server`.
    Left {
        /// The server.
        server: ServerId,
        /// The user.
        user: UserId,
    },
    /// `user` set its status here; `entry` is its new `UserSummary` JSON (the local members
    /// were told already).
    Status {
        /// The user.
        user: UserId,
        /// Its new roster entry.
        entry: Arc<str>,
    },
}

/// What the hub tells the other nodes. Implemented by the cluster glue.
pub trait Remote: Send + Sync + 'static {
    /// `frame` was broadcast to the local members of `server` by `sender`: carry it to the
    /// server's members on other nodes (not to `sender`'s connections there).
    fn broadcast(&self, server: &ServerId, sender: &UserId, frame: &Frame);

    /// Who is on this node changed. Must queue, never wait: called under the hub's lock.
    fn membership(&self, change: Membership);

    /// Whether the other nodes are reachable now (`/api/ready` reports `degraded` otherwise).
    fn is_up(&self) -> bool;

    /// The roster of `server` over every node: `(user, UserSummary JSON)` (`None`:
    /// unreachable), as Redis holds it now.
    fn roster(&self, server: &ServerId) -> RemoteFuture<Option<Vec<(UserId, String)>>>;

    /// Queues for `conn`, which just joined `server` through
    /// [`super::Hub::join_server_with_remote_roster`], the one `server_users` of the join: the
    /// roster over every node, taken after the membership changes told before it (this
    /// node's local roster when the other nodes are unreachable). Roster events of the server
    /// reach the connection from then on.
    fn send_roster(&self, conn: ConnKey, server: &ServerId) -> RemoteFuture<()>;

    /// `conn` closed: whatever the hook keeps per connection can go. Called without the hub's
    /// lock held.
    fn closed(&self, conn: ConnKey);

    /// Carries a forwarded envelope's delivery `frame` to `target`'s connections on other
    /// nodes, in order with everything else this node sent. `shared`: the sender's joined
    /// servers when the shared-server rule applies (the target must be in one).
    fn forward(
        &self,
        sender: &UserId,
        target: &UserId,
        frame: &Frame,
        shared: Option<Vec<ServerId>>,
    ) -> RemoteFuture<RemoteForward>;
}

/// What a remote call answers, later (awaited in the connection's task, never under a lock).
pub type RemoteFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// What became of a forward to other nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteForward {
    /// At least one other node took it.
    Delivered,
    /// No other node holds the target.
    TargetNotFound,
    /// The target shares no server with the sender anywhere.
    Forbidden,
    /// The target is on this node only: the local delivery's outcome stands.
    LocalOnly,
    /// The backplane cannot reach Redis, or its queue is full.
    Unavailable,
}

/// A forwarded envelope, ready for other nodes ([`super::Hub::forward_frame`]).
#[derive(Debug, Clone)]
pub struct ForwardFrame {
    /// The sender.
    pub from: UserId,
    /// The target.
    pub target: UserId,
    /// The delivery, `fromUserId` stamped.
    pub frame: Frame,
    /// The delivery's wire type (for the delivery counters).
    pub wire_type: &'static str,
    /// The sender's joined servers when the shared-server rule applies.
    pub shared: Option<Vec<ServerId>>,
    /// The RPC request it belongs to, for the `error` of a failed one.
    pub request_id: Option<signalbox_protocol::RequestId>,
}

impl ConnKey {
    /// A key for tests of code outside the hub that keeps state per connection.
    #[cfg(test)]
    pub fn for_tests(n: u64) -> Self {
        Self(n)
    }
}

impl super::Hub {
    /// Sets the hook to other nodes (once, at start, before any connection; a second call is
    /// ignored and answers false).
    pub fn set_remote(&self, remote: std::sync::Arc<dyn Remote>) -> bool {
        self.inner.remote.set(remote).is_ok()
    }

    /// The hook to other nodes, in cluster mode.
    pub fn remote(&self) -> Option<&dyn Remote> {
        self.inner.remote.get().map(|r| &**r)
    }

    /// The delivery frame of a forwarded envelope, for other nodes (the local checks are
    /// [`super::Hub::forward`]'s).
    pub fn forward_frame(
        &self,
        conn: super::ConnKey,
        envelope: signalbox_protocol::ClientEnvelope,
    ) -> Result<ForwardFrame, super::HubError> {
        let (from, shared) = {
            let state = self.read();
            let from = state.user_of(conn)?.clone();
            let shared = (self.inner.config.forwarding == super::ForwardingPolicy::SharedServer)
                .then(|| {
                    state
                        .conns
                        .get(&conn)
                        .map(|c| c.joined.iter().cloned().collect())
                        .unwrap_or_default()
                });
            (from, shared)
        };
        let forwarded = envelope
            .into_forwarded(from.clone())
            .map_err(|e| super::HubError::NotForwardable(e.wire_type()))?;
        let frame = self.ctx().frame(&forwarded.delivery)?;
        Ok(ForwardFrame {
            from,
            target: forwarded.target_user_id,
            frame,
            wire_type: forwarded.delivery.wire_type(),
            shared,
            request_id: forwarded.request_id,
        })
    }

    /// Tells the remote hook an identify (under the caller's write lock).
    pub(super) fn tell_identified(&self, state: &State, identified: &Identified) {
        let Some(remote) = self.remote() else { return };
        if let Some(old) = &identified.replaced_user
            && !state.users.contains_key(old)
        {
            remote.membership(Membership::Identified {
                user: old.clone(),
                connected: false,
            });
        }
        if identified.first_connection {
            remote.membership(Membership::Identified {
                user: identified.user_id.clone(),
                connected: true,
            });
        }
    }

    /// Tells the remote hook a join that made `user` a member here.
    pub(super) fn tell_joined(&self, state: &State, server: &ServerId, user: &UserId) {
        let Some(remote) = self.remote() else { return };
        if let Some(record) = state.users.get(user) {
            remote.membership(Membership::Joined {
                server: server.clone(),
                user: user.clone(),
                entry: Arc::clone(&record.summary_json),
            });
        }
    }

    /// Tells the remote hook a leave.
    pub(super) fn tell_left(&self, server: &ServerId, user: &UserId, left: &Left) {
        let Some(remote) = self.remote() else { return };
        if left.user_left {
            remote.membership(Membership::Left {
                server: server.clone(),
                user: user.clone(),
            });
        }
    }

    /// Tells the remote hook a status change of `conn`'s user (under the caller's write lock).
    pub(super) fn tell_status(&self, state: &State, conn: ConnKey) {
        let Some(remote) = self.remote() else { return };
        let Some(user) = state.conns.get(&conn).and_then(|c| c.user.as_ref()) else {
            return;
        };
        if let Some(record) = state.users.get(user) {
            remote.membership(Membership::Status {
                user: user.clone(),
                entry: Arc::clone(&record.summary_json),
            });
        }
    }

    /// Tells the remote hook a connection is gone (after the hub's lock is released: the hook
    /// takes its own lock, which is never taken inside the hub's).
    pub(super) fn tell_closed(&self, conn: ConnKey) {
        if let Some(remote) = self.remote() {
            remote.closed(conn);
        }
    }

    /// Tells the remote hook what a disconnect did.
    pub(super) fn tell_disconnected(&self, gone: &Disconnected) {
        let Some(remote) = self.remote() else { return };
        let Some(user) = &gone.user_id else { return };
        // Unreachable first, then announced as gone: a member told `user_left` and
        // forwarding to the user at once gets `TARGET_NOT_FOUND`, as in standalone mode.
        if gone.user_offline {
            remote.membership(Membership::Identified {
                user: user.clone(),
                connected: false,
            });
        }
        for server in &gone.user_left {
            remote.membership(Membership::Left {
                server: server.clone(),
                user: user.clone(),
            });
        }
    }

    /// A frame another node broadcast in `server`: queued for every local joined connection of
    /// the server but `sender`'s (its own node delivered to those).
    pub fn deliver_server(&self, server: &ServerId, sender: &UserId, frame: &Frame) -> Fanout {
        let ctx = self.ctx();
        let state = self.read();
        let Some(record) = state.servers.get(server) else {
            return Fanout::default();
        };
        let sender_tag = state.users.get(sender).map(|u| u.tag);
        let recipients = record
            .members
            .values()
            .filter(|m| Some(m.user_tag) != sender_tag)
            .map(|m| &m.outbox);
        let fanout = ctx.deliver("remote_broadcast", frame, recipients);
        ctx.metrics.record_fanout(fanout.attempted());
        fanout
    }

    /// Cluster mode's `join_server`: [`super::Hub::join_server`] without the local
    /// `server_users`, and the connection gets no roster event of this hub for `server` (the
    /// cluster glue sends it the roster over every node and that roster's events).
    pub fn join_server_with_remote_roster(
        &self,
        conn: ConnKey,
        server: &ServerId,
    ) -> Result<Joined, HubError> {
        let mut state = self.write();
        let joined = state.join_as(self.ctx(), conn, server, true)?;
        if joined.user_joined
            && let Some(user) = state.conns.get(&conn).and_then(|c| c.user.clone())
        {
            self.tell_joined(&state, server, &user);
        }
        Ok(joined)
    }

    /// Queues this node's own roster of `server` (`server_users`) for `conn`.
    pub fn send_local_roster(&self, conn: ConnKey, server: &ServerId) -> Result<(), HubError> {
        self.read().send_roster(self.ctx(), conn, server)
    }

    /// Queues `frame` for `conn` when it is a joined connection of `server` whose roster comes
    /// from the cluster glue; false otherwise.
    pub fn send_remote_roster(&self, conn: ConnKey, server: &ServerId, frame: &Frame) -> bool {
        let ctx = self.ctx();
        let state = self.read();
        let Some(member) = state
            .servers
            .get(server)
            .and_then(|record| record.members.get(&conn))
            .filter(|member| member.remote_roster)
        else {
            return false;
        };
        ctx.deliver("server_users", frame, [&member.outbox]);
        true
    }

    /// Queues `frame` (of type `wire_type`, from another node or from Redis) for the joined
    /// connections of `server` that `pick(connection, remote_roster)` chooses, never for
    /// `exclude_user`'s connections.
    pub fn deliver_cluster(
        &self,
        server: &ServerId,
        exclude_user: Option<&UserId>,
        wire_type: &'static str,
        frame: &Frame,
        mut pick: impl FnMut(ConnKey, bool) -> bool,
    ) -> Fanout {
        let ctx = self.ctx();
        let state = self.read();
        let Some(record) = state.servers.get(server) else {
            return Fanout::default();
        };
        let excluded = exclude_user.and_then(|u| state.users.get(u)).map(|u| u.tag);
        let recipients = record
            .members
            .iter()
            .filter(|(_, m)| Some(m.user_tag) != excluded)
            .filter(|(k, m)| pick(**k, m.remote_roster))
            .map(|(_, m)| &m.outbox);
        let fanout = ctx.deliver(wire_type, frame, recipients);
        ctx.metrics.record_fanout(fanout.attempted());
        fanout
    }

    /// A frame another node forwarded to `target`: queued for every local connection of it.
    pub fn deliver_user(&self, target: &UserId, frame: &Frame) -> Fanout {
        let ctx = self.ctx();
        let state = self.read();
        let Some(user) = state.users.get(target) else {
            return Fanout::default();
        };
        ctx.deliver("remote_forward", frame, user.conns.iter().map(|(_, o)| o))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use signalbox_protocol::{ServerId, UserId};

    use crate::hub::{
        Exclude, Frame, Hub, Membership, Outbound, OutboundReceiver, Profile, Remote,
    };

    #[derive(Default)]
    struct Recorded(Mutex<Vec<(String, String, String)>>);

    impl Remote for Recorded {
        fn is_up(&self) -> bool {
            true
        }

        fn roster(
            &self,
            _server: &ServerId,
        ) -> crate::hub::RemoteFuture<Option<Vec<(UserId, String)>>> {
            Box::pin(async { None })
        }

        fn send_roster(
            &self,
            _conn: crate::hub::ConnKey,
            _server: &ServerId,
        ) -> crate::hub::RemoteFuture<()> {
            Box::pin(async {})
        }

        fn closed(&self, _conn: crate::hub::ConnKey) {}

        fn forward(
            &self,
            _sender: &UserId,
            _target: &UserId,
            _frame: &Frame,
            _shared: Option<Vec<ServerId>>,
        ) -> crate::hub::RemoteFuture<crate::hub::RemoteForward> {
            Box::pin(async { crate::hub::RemoteForward::TargetNotFound })
        }

        fn membership(&self, change: Membership) {
            self.0.lock().expect("lock").push((
                "membership".into(),
                String::new(),
                format!("{change:?}"),
            ));
        }

        fn broadcast(&self, server: &ServerId, sender: &UserId, frame: &Frame) {
            self.0.lock().expect("lock").push((
                server.as_str().to_owned(),
                sender.as_str().to_owned(),
                frame.as_str().to_owned(),
            ));
        }
    }

    fn member(
        hub: &Hub,
        user: &str,
        server: &ServerId,
    ) -> (crate::hub::ConnectionHandle, OutboundReceiver) {
        let (conn, mut rx) = hub.connect();
        let profile = Profile {
            display_name: user.to_owned(),
            ..Profile::default()
        };
        hub.identify(conn.key(), UserId::from(user), profile)
            .expect("identify");
        hub.join_server(conn.key(), server).expect("join");
        while rx.try_recv().is_some() {}
        (conn, rx)
    }

    fn texts(rx: &mut OutboundReceiver) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv())
            .filter_map(|o| match o {
                Outbound::Frame(f) => Some(f.as_str().to_owned()),
                Outbound::Close(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_remote_broadcast_reaches_local_members_but_not_the_senders_connections() {
        let hub = Hub::default();
        let server = ServerId::from("s");
        let (_a, mut a) = member(&hub, "alice", &server);
        let (_b, mut b) = member(&hub, "bob", &server);
        texts(&mut a); // bob's user_joined
        let fanout = hub.deliver_server(&server, &UserId::from("alice"), &Frame::from_text("{}"));
        assert_eq!(fanout.attempted(), 1);
        assert!(texts(&mut a).is_empty());
        assert_eq!(texts(&mut b), vec!["{}".to_owned()]);
        let nobody = hub.deliver_server(
            &ServerId::from("t"),
            &UserId::from("x"),
            &Frame::from_text("{}"),
        );
        assert_eq!(nobody.attempted(), 0);
    }

    #[test]
    fn a_remote_forward_reaches_every_local_connection_of_the_target() {
        let hub = Hub::default();
        let server = ServerId::from("s");
        let (_b1, mut b1) = member(&hub, "bob", &server);
        let (_b2, mut b2) = member(&hub, "bob", &server);
        texts(&mut b1);
        hub.deliver_user(&UserId::from("bob"), &Frame::from_text("[1]"));
        assert_eq!(texts(&mut b1), vec!["[1]".to_owned()]);
        assert_eq!(texts(&mut b2), vec!["[1]".to_owned()]);
        assert_eq!(
            hub.deliver_user(&UserId::from("carol"), &Frame::from_text("[1]"))
                .attempted(),
            0
        );
    }

    #[test]
    fn a_local_broadcast_is_handed_to_the_remote_hook_once() {
        let hub = Hub::default();
        let recorded = Arc::new(Recorded::default());
        assert!(hub.set_remote(recorded.clone()));
        let server = ServerId::from("s");
        let (a, _a) = member(&hub, "alice", &server);
        hub.broadcast(a.key(), &server, Exclude::SenderConnection, |_| {
            signalbox_protocol::ServerEnvelope::ChatMessage(
                signalbox_protocol::ws::ChatMessageBroadcast {
                    server_id: ServerId::from("s"),
                    message: Default::default(),
                    sender_id: UserId::from("alice"),
                    sender_name: "alice".into(),
                    timestamp: signalbox_protocol::TimestampMs(1),
                },
            )
        })
        .expect("broadcast");
        let got = recorded.0.lock().expect("lock").clone();
        let broadcasts: Vec<_> = got.iter().filter(|g| g.0 != "membership").collect();
        assert_eq!(broadcasts.len(), 1);
        assert_eq!(
            (broadcasts[0].0.as_str(), broadcasts[0].1.as_str()),
            ("s", "alice")
        );
    }

    #[test]
    fn membership_transitions_are_told_once_each_in_order() {
        let hub = Hub::default();
        let recorded = Arc::new(Recorded::default());
        hub.set_remote(recorded.clone());
        let server = ServerId::from("s");
        let (a1, _r1) = member(&hub, "alice", &server);
        let (a2, _r2) = member(&hub, "alice", &server);
        hub.leave_server(a1.key(), &server).expect("leave");
        drop(a2);
        drop(a1);
        let told: Vec<String> = recorded
            .0
            .lock()
            .expect("lock")
            .iter()
            .map(|g| g.2.split(' ').next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(told, ["Identified", "Joined", "Left", "Identified"]);
        recorded.0.lock().expect("lock").clear();
        let (bob, _rx) = member(&hub, "bob", &server);
        drop(bob);
        let told: Vec<String> = recorded
            .0
            .lock()
            .expect("lock")
            .iter()
            .map(|g| g.2.clone())
            .collect();
        assert_eq!(told.len(), 4, "{told:?}");
        assert!(
            told[2].starts_with("Identified") && told[2].contains("connected: false"),
            "a user whose last connection closed is unreachable before it is announced gone: \
             {told:?}"
        );
        assert!(told[3].starts_with("Left"), "{told:?}");
        let _ = Membership::Left {
            server: server.clone(),
            user: UserId::from("alice"),
        };
    }
}
