//! One node's backplane: the explicit interface the hub's cluster glue will call.
//!
//! Owns: [`Backplane`] (start, identify, join, leave, broadcast, forward, snapshot), the
//! server-channel subscriptions (subscribed, and acknowledged, before the first local join;
//! dropped after the last local leave), and the node's tasks ([`super::publisher`],
//! [`super::subscriber`], [`super::heartbeat`]).
//!
//! Never: delivers to local connections itself (the [`Sink`] does), blocks on a full queue,
//! logs the Redis URL. Dropping a [`Backplane`] stops its tasks without deregistering (what a
//! crash leaves behind: the other nodes reap it).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::connect::{client, manager_config};
use super::elsewhere::Elsewhere;
use super::forward::ForwardOutcome;
use super::forward::ForwardReceipt;
use super::inner::Inner;
use super::keys::Keys;
use super::metrics::{Metrics, MetricsSnapshot};
use super::mirror::Mirror;
use super::publisher::Publisher;
use super::relay::Relays;
use super::scripts::{RosterSnapshot, Scripts, parse_roster};
use super::settings::ClusterSettings;
use super::subscriber::{self, Health, Input, Refetcher};
use super::wire::{Kind, Message};
use super::{ClusterError, Sink};

/// Bound of the subscriber's input queue (pushes waiting to be decoded).
pub const SUBSCRIBER_QUEUE: usize = 65_536;
/// One node's backplane.
pub struct Backplane {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Backplane {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Backplane {
    /// Connects both connections, subscribes to this node's channel, runs a first heartbeat
    /// (registering the node and learning the epoch), takes back whatever an earlier process
    /// under the same node id left in Redis, and starts the tasks.
    pub async fn start(
        settings: ClusterSettings,
        sink: Arc<dyn Sink>,
    ) -> Result<Self, ClusterError> {
        settings.validate()?;
        let keys = Keys::new(settings.key_prefix.clone());
        let scripts = Arc::new(Scripts::new());
        let metrics = Arc::new(Metrics::default());
        let health = Arc::new(Health {
            needs_resync: Default::default(),
            metrics: metrics.clone(),
        });
        let relays = Arc::new(Relays::new(settings.max_pending_relays));
        let (input, input_rx) = mpsc::channel(SUBSCRIBER_QUEUE);

        let publisher_conn =
            ConnectionManager::new_with_config(client(&settings)?, manager_config())
                .await
                .map_err(ClusterError::Connect)?;
        let sub_config = manager_config()
            .set_push_sender(subscriber::push_sender(input.clone(), health.clone()))
            .set_automatic_resubscription();
        let mut subscriber_conn =
            ConnectionManager::new_with_config(client(&settings)?, sub_config)
                .await
                .map_err(ClusterError::Connect)?;
        subscriber_conn
            .subscribe(keys.node_channel(&settings.node_id))
            .await
            .map_err(ClusterError::Connect)?;
        subscriber_conn
            .subscribe(keys.withdraw_channel())
            .await
            .map_err(ClusterError::Connect)?;

        let (publisher, publisher_task) = Publisher::spawn(
            publisher_conn,
            scripts.clone(),
            settings.publish_queue,
            health.clone(),
        );
        let refetcher = Arc::new(Refetcher {
            publisher: publisher.clone(),
            scripts: scripts.clone(),
            keys: keys.clone(),
            node: settings.node_id.clone(),
            input: input.clone(),
            metrics: metrics.clone(),
        });
        let elsewhere = Arc::new(Mutex::new(Elsewhere::default()));
        let subscriber_task = tokio::spawn(subscriber::run(
            settings.node_id.clone(),
            input_rx,
            sink,
            health.clone(),
            refetcher,
            elsewhere.clone(),
            relays.clone(),
        ));
        let inner = Arc::new(Inner {
            settings,
            keys,
            scripts,
            publisher,
            health,
            metrics,
            relays,
            epoch: Mutex::new(None),
            subscriber: subscriber_conn,
            input,
            mirror: Mutex::new(Mirror::default()),
            elsewhere,
            membership: tokio::sync::Mutex::new(()),
        });
        let first = inner.heartbeat().await?;
        *inner.epoch.lock().unwrap_or_else(|p| p.into_inner()) = Some(first.epoch);
        // A previous process under this node id (a restart within the node TTL, never
        // reaped) left its users, shares and SSE sessions in Redis; this one holds nothing
        // yet, so a resync from its empty mirror takes all of that back.
        inner.resync().await?;
        let heartbeat_task = tokio::spawn(super::heartbeat::run(inner.clone()));
        Ok(Self {
            inner,
            tasks: vec![publisher_task, subscriber_task, heartbeat_task],
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.settings.node_id
    }

    /// The key and channel names in use.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// Whether the publisher's last pipeline reached Redis (`/api/ready` degraded otherwise).
    pub fn is_up(&self) -> bool {
        self.inner.publisher.is_up()
    }

    /// Resyncs run so far (epoch change, reaped, subscriber reconnect).
    pub fn resyncs(&self) -> u64 {
        self.metrics().resyncs
    }

    /// Dead nodes this node reaped so far.
    pub fn reaped(&self) -> u64 {
        self.metrics().reaped
    }

    /// The backplane's numbers now (for `/metrics` and `/admin/stats`).
    pub fn metrics(&self) -> MetricsSnapshot {
        let relays = &self.inner.relays;
        self.inner
            .metrics
            .snapshot(self.inner.publisher.depth(), (relays.len(), relays.limit()))
    }

    pub(super) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Records that `user` has `connections` identified connections here (0: none left).
    pub async fn identify(&self, user: &str, connections: u32) -> Result<(), ClusterError> {
        self.inner.lock_mirror().identify(user, connections);
        let sent = self.inner.identify(user, connections).await;
        self.inner.resync_unless_sent(sent)
    }

    /// `user` joins `server` with `connections` joined connections here (>= 1) and its
    /// roster entry; returns the roster snapshot to send as `server_users`.
    pub async fn join(
        &self,
        server: &str,
        user: &str,
        connections: u32,
        entry: Bytes,
    ) -> Result<RosterSnapshot, ClusterError> {
        let _serial = self.inner.membership.lock().await;
        let first = self
            .inner
            .lock_mirror()
            .join(server, user, connections, entry.clone());
        let sent = self
            .join_redis(first, server, user, connections, entry)
            .await;
        self.inner.resync_unless_sent(sent)
    }

    /// What [`Self::join`] asks of Redis once the mirror holds the join.
    async fn join_redis(
        &self,
        first: bool,
        server: &str,
        user: &str,
        connections: u32,
        entry: Bytes,
    ) -> Result<RosterSnapshot, ClusterError> {
        if first {
            self.inner
                .input
                .send(Input::Expect(server.to_owned()))
                .await
                .map_err(|_| ClusterError::Stopped)?;
            let mut sub = self.inner.subscriber.clone();
            sub.subscribe(self.inner.keys.server_channel(server))
                .await
                .map_err(|_| ClusterError::Unavailable)?;
        }
        let snap = self
            .inner
            .join(server, user, connections.max(1), &entry)
            .await?;
        if first {
            let _ = self
                .inner
                .input
                .send(Input::Snapshot(snap.clone(), false))
                .await;
        }
        Ok(snap)
    }

    /// `user` now has `remaining` joined connections to `server` here (0: it left from this
    /// node; the roster drops it when no live node holds it).
    pub async fn leave(
        &self,
        server: &str,
        user: &str,
        remaining: u32,
    ) -> Result<(), ClusterError> {
        let _serial = self.inner.membership.lock().await;
        let Some(last) = self.inner.lock_mirror().leave(server, user, remaining) else {
            return Ok(());
        };
        let mut cmd = self.inner.scripts.leave.call(self.inner.keys.prefix());
        cmd.arg(self.node_id()).arg(server).arg(user).arg(remaining);
        let result = self
            .inner
            .resync_unless_sent(self.inner.publisher.call(cmd).await);
        if last {
            let mut sub = self.inner.subscriber.clone();
            let _ = sub
                .unsubscribe(self.inner.keys.server_channel(server))
                .await;
            let _ = self
                .inner
                .input
                .send(Input::Forget(server.to_owned()))
                .await;
        }
        result.map(|_| ())
    }

    /// Publishes `frame` to every other node with a member of `server`; `sender` is excluded
    /// from fan-out. Queued: returns at once.
    pub fn broadcast(&self, server: &str, sender: &str, frame: Bytes) -> Result<(), ClusterError> {
        let message = Message {
            kind: Kind::Broadcast,
            origin: self.node_id().to_owned(),
            roster_version: 0,
            change_id: 0,
            server: server.to_owned(),
            user: sender.to_owned(),
            payload: frame,
        }
        .encode()?;
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.inner.keys.server_channel(server))
            .arg(message.as_ref());
        self.inner.publisher.enqueue(cmd)
    }

    /// Publishes `frame` to every other node where `target` has identified connections.
    /// `shared_servers`: the sender's joined servers when the shared-server policy applies
    /// (the target must be a member of one), `None` when any target is allowed. Queued in
    /// order with everything else this node sends; the receipt tells the outcome. A target
    /// identified here and on no other node (as far as the devices hints tell) is answered
    /// [`ForwardOutcome::LocalOnly`] at once, without touching Redis: the caller delivers
    /// locally and applies the forwarding policy itself (it knows the local memberships).
    pub fn forward(
        &self,
        sender: &str,
        target: &str,
        frame: &[u8],
        shared_servers: Option<&[String]>,
    ) -> Result<ForwardReceipt, ClusterError> {
        if self.is_only_local(target) {
            return Ok(ForwardReceipt::ready(ForwardOutcome::LocalOnly));
        }
        let mut cmd = self.inner.scripts.forward.call(self.inner.keys.prefix());
        cmd.arg(self.node_id())
            .arg(sender)
            .arg(target)
            .arg(frame)
            .arg(if shared_servers.is_some() { "1" } else { "0" });
        for server in shared_servers.unwrap_or_default() {
            cmd.arg(server);
        }
        self.inner
            .publisher
            .request(cmd)
            .map(ForwardReceipt::pending)
    }

    /// Whether `user` is identified on this node and, as far as the devices hints tell, on
    /// no other: a forward to it is a local delivery only.
    pub fn is_only_local(&self, user: &str) -> bool {
        self.inner.lock_mirror().users.contains_key(user)
            && !self.inner.lock_elsewhere().holds_elsewhere(user)
    }

    /// `user`'s roster entry changed (a status change): replaced in every server it joined
    /// on this node, each bumped and announced under one change id, so a node holding several
    /// of these servers fans the `status_update` out once. Queued: returns at once.
    pub fn set_status(&self, user: &str, entry: Bytes) -> Result<(), ClusterError> {
        let servers = self.inner.lock_mirror().set_entry(user, &entry);
        if servers.is_empty() {
            return Ok(());
        }
        let change_id = loop {
            let id = rand::random::<u64>();
            if id != 0 {
                break id;
            }
        };
        let mut cmd = self.inner.scripts.status.call(self.inner.keys.prefix());
        cmd.arg(self.node_id())
            .arg(user)
            .arg(&change_id.to_be_bytes()[..])
            .arg(entry.as_ref());
        for server in &servers {
            cmd.arg(server);
        }
        let sent = self.inner.publisher.enqueue(cmd);
        self.inner.resync_unless_sent(sent)
    }

    /// Publishes a withdrawal of access to `server` (`user`: empty when not one user's;
    /// `order`: encoded by `withdraw.rs`) to every node. Queued: returns at once.
    pub fn withdraw(&self, server: &str, user: &str, order: Bytes) -> Result<(), ClusterError> {
        let message = Message {
            kind: Kind::Withdraw,
            origin: self.node_id().to_owned(),
            roster_version: 0,
            change_id: 0,
            server: server.to_owned(),
            user: user.to_owned(),
            payload: order,
        }
        .encode()?;
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.inner.keys.withdraw_channel())
            .arg(message.as_ref());
        self.inner.publisher.enqueue(cmd)
    }

    /// The roster as Redis holds it now (dead nodes' shares purged first).
    pub async fn snapshot(&self, server: &str) -> Result<RosterSnapshot, ClusterError> {
        let mut cmd = self.inner.scripts.snapshot.call(self.inner.keys.prefix());
        cmd.arg(self.node_id()).arg(server);
        parse_roster(server, self.inner.publisher.call(cmd).await?)
    }
}
