//! One node's backplane: the explicit interface the hub's cluster glue will call.
//!
//! Owns: the two Redis connections of a node (publisher and subscriber, both RESP3
//! `ConnectionManager`s), the mirror of what this node registered in Redis (identified
//! users and joined members with their connection counts: what a resync replays), the
//! server-channel subscriptions (subscribed, and acknowledged, before the first local join;
//! dropped after the last local leave), and the tasks ([`super::publisher`],
//! [`super::subscriber`], [`super::heartbeat`]).
//!
//! Never: delivers to local connections itself (the [`Sink`] does), blocks on a full queue,
//! logs the Redis URL. Dropping a [`Backplane`] stops its tasks without deregistering (what a
//! crash leaves behind: the other nodes reap it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::keys::Keys;
use super::publisher::Publisher;
use super::scripts::{Beat, RosterSnapshot, Scripts, parse_beat, parse_int, parse_roster};
use super::settings::ClusterSettings;
use super::subscriber::{self, Health, Input, Refetcher};
use super::wire::{Kind, Message};
use super::{ClusterError, Sink};

/// Bound of the subscriber's input queue (pushes waiting to be decoded).
pub const SUBSCRIBER_QUEUE: usize = 65_536;
/// How long a connection attempt or a reply may take before Redis counts as unreachable.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Mirror {
    /// user → identified connections on this node.
    users: HashMap<String, u32>,
    /// server → user → (joined connections on this node, roster entry).
    servers: HashMap<String, HashMap<String, (u32, Bytes)>>,
}

/// Shared by the node's tasks.
pub struct Inner {
    pub(super) settings: ClusterSettings,
    pub(super) keys: Keys,
    pub(super) scripts: Arc<Scripts>,
    pub(super) publisher: Publisher,
    pub(super) health: Arc<Health>,
    pub(super) epoch: Mutex<Option<String>>,
    pub(super) resyncs: AtomicU64,
    pub(super) reaped: AtomicU64,
    subscriber: ConnectionManager,
    input: mpsc::Sender<Input>,
    mirror: Mutex<Mirror>,
    /// Serializes joins, leaves and resyncs (subscription bookkeeping).
    membership: tokio::sync::Mutex<()>,
}

/// What became of a forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardOutcome {
    /// Published to this many other nodes' subscribers.
    Delivered(u32),
    /// No other node holds the target (`TARGET_NOT_FOUND` when it is not local either).
    TargetNotFound,
    /// The forwarding policy refuses it (`FORBIDDEN`).
    Forbidden,
    /// Redis is unreachable (`UNAVAILABLE`).
    Unavailable,
}

/// A queued forward; await [`ForwardReceipt::outcome`] for the result.
pub struct ForwardReceipt(oneshot::Receiver<Result<redis::Value, ClusterError>>);

impl ForwardReceipt {
    /// The result, once the publisher ran the forward.
    pub async fn outcome(self) -> ForwardOutcome {
        match self.0.await {
            Ok(Ok(value)) => match parse_int(&value) {
                Ok(n) if n < 0 => ForwardOutcome::Forbidden,
                Ok(0) => ForwardOutcome::TargetNotFound,
                Ok(n) => ForwardOutcome::Delivered(u32::try_from(n).unwrap_or(u32::MAX)),
                Err(_) => ForwardOutcome::Unavailable,
            },
            _ => ForwardOutcome::Unavailable,
        }
    }
}

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

fn client(settings: &ClusterSettings) -> Result<redis::Client, ClusterError> {
    let url = settings.redis_url.expose();
    let sep = if url.contains('?') { '&' } else { '?' };
    redis::Client::open(format!("{url}{sep}protocol=resp3")).map_err(ClusterError::Connect)
}

fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
}

impl Backplane {
    /// Connects both connections, subscribes to this node's channel, runs a first heartbeat
    /// (registering the node and learning the epoch) and starts the tasks.
    pub async fn start(
        settings: ClusterSettings,
        sink: Arc<dyn Sink>,
    ) -> Result<Self, ClusterError> {
        settings.validate()?;
        let keys = Keys::new(settings.key_prefix.clone());
        let scripts = Arc::new(Scripts::new());
        let health = Arc::new(Health::default());
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

        let (publisher, publisher_task) =
            Publisher::spawn(publisher_conn, scripts.clone(), settings.publish_queue);
        let refetcher = Arc::new(Refetcher {
            publisher: publisher.clone(),
            scripts: scripts.clone(),
            keys: keys.clone(),
            node: settings.node_id.clone(),
            input: input.clone(),
        });
        let subscriber_task = tokio::spawn(subscriber::run(
            settings.node_id.clone(),
            input_rx,
            sink,
            health.clone(),
            refetcher,
        ));
        let inner = Arc::new(Inner {
            settings,
            keys,
            scripts,
            publisher,
            health,
            epoch: Mutex::new(None),
            resyncs: AtomicU64::new(0),
            reaped: AtomicU64::new(0),
            subscriber: subscriber_conn,
            input,
            mirror: Mutex::new(Mirror::default()),
            membership: tokio::sync::Mutex::new(()),
        });
        let first = inner.heartbeat().await?;
        *inner.epoch.lock().unwrap_or_else(|p| p.into_inner()) = Some(first.epoch);
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
        self.inner.resyncs.load(Ordering::Relaxed)
    }

    /// Dead nodes this node reaped so far.
    pub fn reaped(&self) -> u64 {
        self.inner.reaped.load(Ordering::Relaxed)
    }

    /// Records that `user` has `connections` identified connections here (0: none left).
    pub async fn identify(&self, user: &str, connections: u32) -> Result<(), ClusterError> {
        {
            let mut mirror = self.inner.lock_mirror();
            if connections == 0 {
                mirror.users.remove(user);
            } else {
                mirror.users.insert(user.to_owned(), connections);
            }
        }
        self.inner.identify(user, connections).await
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
        let first = {
            let mut mirror = self.inner.lock_mirror();
            let first = !mirror.servers.contains_key(server);
            mirror
                .servers
                .entry(server.to_owned())
                .or_default()
                .insert(user.to_owned(), (connections.max(1), entry.clone()));
            first
        };
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
        let last = {
            let mut mirror = self.inner.lock_mirror();
            let Some(members) = mirror.servers.get_mut(server) else {
                return Ok(());
            };
            if remaining == 0 {
                members.remove(user);
            } else if let Some(member) = members.get_mut(user) {
                member.0 = remaining;
            }
            let last = members.is_empty();
            if last {
                mirror.servers.remove(server);
            }
            last
        };
        let mut cmd = self.inner.scripts.leave.call(self.inner.keys.prefix());
        cmd.arg(self.node_id()).arg(server).arg(user).arg(remaining);
        let result = self.inner.publisher.call(cmd).await;
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
    /// order with everything else this node sends; the receipt tells the outcome.
    pub fn forward(
        &self,
        sender: &str,
        target: &str,
        frame: &[u8],
        shared_servers: Option<&[String]>,
    ) -> Result<ForwardReceipt, ClusterError> {
        let mut cmd = self.inner.scripts.forward.call(self.inner.keys.prefix());
        cmd.arg(self.node_id())
            .arg(sender)
            .arg(target)
            .arg(frame)
            .arg(if shared_servers.is_some() { "1" } else { "0" });
        for server in shared_servers.unwrap_or_default() {
            cmd.arg(server);
        }
        self.inner.publisher.request(cmd).map(ForwardReceipt)
    }

    /// The roster as Redis holds it now (dead nodes' shares purged first).
    pub async fn snapshot(&self, server: &str) -> Result<RosterSnapshot, ClusterError> {
        let mut cmd = self.inner.scripts.snapshot.call(self.inner.keys.prefix());
        cmd.arg(self.node_id()).arg(server);
        parse_roster(server, self.inner.publisher.call(cmd).await?)
    }
}

impl Inner {
    fn lock_mirror(&self) -> std::sync::MutexGuard<'_, Mirror> {
        self.mirror.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn identify(&self, user: &str, connections: u32) -> Result<(), ClusterError> {
        let mut cmd = self.scripts.identify.call(self.keys.prefix());
        cmd.arg(&self.settings.node_id).arg(user).arg(connections);
        self.publisher.call(cmd).await.map(|_| ())
    }

    async fn join(
        &self,
        server: &str,
        user: &str,
        connections: u32,
        entry: &[u8],
    ) -> Result<RosterSnapshot, ClusterError> {
        let mut cmd = self.scripts.join.call(self.keys.prefix());
        cmd.arg(&self.settings.node_id)
            .arg(server)
            .arg(user)
            .arg(connections)
            .arg(entry)
            .arg(self.settings.node_ttl_ms);
        parse_roster(server, self.publisher.call(cmd).await?)
    }

    pub(super) async fn heartbeat(&self) -> Result<Beat, ClusterError> {
        let mut cmd = self.scripts.heartbeat.call(self.keys.prefix());
        cmd.arg(&self.settings.node_id)
            .arg(self.settings.node_ttl_ms)
            .arg(uuid::Uuid::new_v4().simple().to_string());
        parse_beat(self.publisher.call(cmd).await?)
    }

    /// `PING` on the subscribing connection: after an outage this is what makes its manager
    /// reconnect (and resubscribe) even when nothing else is sent on it.
    pub(super) async fn ping_subscriber(&self) -> Result<(), ClusterError> {
        let mut sub = self.subscriber.clone();
        sub.send_packed_command(&redis::cmd("PING"))
            .await
            .map(|_| ())
            .map_err(|_| ClusterError::Unavailable)
    }

    pub(super) async fn take_reaper_lock(&self) -> Result<bool, ClusterError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.reaper())
            .arg(&self.settings.node_id)
            .arg("NX")
            .arg("PX")
            .arg(self.settings.node_ttl_ms);
        Ok(matches!(
            self.publisher.call(cmd).await?,
            redis::Value::Okay | redis::Value::SimpleString(_)
        ))
    }

    pub(super) async fn servers_of(&self, node: &str) -> Result<Vec<String>, ClusterError> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.keys.node_servers(node));
        self.strings(cmd).await
    }

    /// A reply that is a list of names (SMEMBERS, HKEYS).
    async fn strings(&self, cmd: redis::Cmd) -> Result<Vec<String>, ClusterError> {
        match self.publisher.call(cmd).await? {
            redis::Value::Array(items) | redis::Value::Set(items) => Ok(items
                .into_iter()
                .filter_map(|v| match v {
                    redis::Value::BulkString(b) => String::from_utf8(b).ok(),
                    _ => None,
                })
                .collect()),
            _ => Err(ClusterError::Reply("list of names")),
        }
    }

    /// What Redis says this node holds but the node no longer does (a leave or a disconnect
    /// lost during an outage) is taken back: identify 0, leave 0 (announcing `user_left`).
    async fn take_back_stale(
        &self,
        users: &HashMap<String, u32>,
        servers: &HashMap<String, HashMap<String, (u32, Bytes)>>,
    ) -> Result<(), ClusterError> {
        let node = &self.settings.node_id;
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.keys.node_users(node));
        for user in self.strings(cmd).await? {
            if !users.contains_key(&user) {
                self.identify(&user, 0).await?;
            }
        }
        for server in self.servers_of(node).await? {
            let mut cmd = redis::cmd("HKEYS");
            cmd.arg(self.keys.server_node(&server, node));
            let local = servers.get(&server);
            for user in self.strings(cmd).await? {
                if local.is_none_or(|members| !members.contains_key(&user)) {
                    let mut leave = self.scripts.leave.call(self.keys.prefix());
                    leave.arg(node).arg(&server).arg(&user).arg(0);
                    self.publisher.call(leave).await?;
                }
            }
        }
        Ok(())
    }

    /// Re-registers everything this node holds: the node channel and server channels, takes
    /// back what Redis still holds for it but it no longer does, registers every identified
    /// user and every joined member again; then hands fresh rosters to the sink.
    pub(super) async fn resync(&self) -> Result<(), ClusterError> {
        let _serial = self.membership.lock().await;
        let (users, servers) = {
            let mirror = self.lock_mirror();
            (mirror.users.clone(), mirror.servers.clone())
        };
        let mut sub = self.subscriber.clone();
        sub.subscribe(self.keys.node_channel(&self.settings.node_id))
            .await
            .map_err(|_| ClusterError::Unavailable)?;
        self.take_back_stale(&users, &servers).await?;
        for (user, connections) in &users {
            self.identify(user, *connections).await?;
        }
        for (server, members) in &servers {
            sub.subscribe(self.keys.server_channel(server))
                .await
                .map_err(|_| ClusterError::Unavailable)?;
            self.input
                .send(Input::Restart(server.clone()))
                .await
                .map_err(|_| ClusterError::Stopped)?;
            let mut last = None;
            for (user, (connections, entry)) in members {
                last = Some(self.join(server, user, *connections, entry).await?);
            }
            if let Some(snap) = last {
                self.input
                    .send(Input::Snapshot(snap, true))
                    .await
                    .map_err(|_| ClusterError::Stopped)?;
            }
        }
        Ok(())
    }
}
