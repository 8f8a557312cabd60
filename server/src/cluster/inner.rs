//! What a node's tasks share: settings, names, scripts, the publisher, the subscribing
//! connection, the mirror, and the Redis calls more than one task makes.
//!
//! Owns: [`Inner`] and its small Redis helpers (identify, join, heartbeat, reaper lock,
//! lists of names). Every write goes through the publisher, in queue order.
//!
//! Never: delivers to local connections, decides when to resync (`heartbeat.rs`) or what a
//! resync replays (`resync.rs`), holds the mirror's lock across an `.await`.

use std::sync::{Arc, Mutex, MutexGuard};

use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::ClusterError;
use super::elsewhere::Elsewhere;
use super::keys::Keys;
use super::metrics::Metrics;
use super::mirror::Mirror;
use super::publisher::Publisher;
use super::relay::Relays;
use super::scripts::{Beat, RosterSnapshot, Scripts, parse_beat, parse_roster};
use super::settings::ClusterSettings;
use super::subscriber::{Health, Input};

/// Shared by the node's tasks.
pub struct Inner {
    pub(super) settings: ClusterSettings,
    pub(super) keys: Keys,
    pub(super) scripts: Arc<Scripts>,
    pub(super) publisher: Publisher,
    pub(super) health: Arc<Health>,
    pub(super) metrics: Arc<Metrics>,
    /// Relayed SSE requests waiting for their answer (shared with the subscriber).
    pub(super) relays: Arc<Relays>,
    pub(super) epoch: Mutex<Option<String>>,
    pub(super) subscriber: ConnectionManager,
    pub(super) input: mpsc::Sender<Input>,
    pub(super) mirror: Mutex<Mirror>,
    /// Local users also held by other nodes (shared with the subscriber, which applies hints).
    pub(super) elsewhere: Arc<Mutex<Elsewhere>>,
    /// Serializes joins, leaves and resyncs (subscription bookkeeping).
    pub(super) membership: tokio::sync::Mutex<()>,
}

impl Inner {
    pub(super) fn lock_mirror(&self) -> MutexGuard<'_, Mirror> {
        self.mirror.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A write of what this node holds (identify, join, leave, status, SSE session) that may
    /// not have reached Redis leaves Redis and the mirror apart (a ghost member nobody would
    /// ever remove): the next heartbeat resyncs from the mirror, a replay that repeats nothing.
    pub(super) fn resync_unless_sent<T>(
        &self,
        sent: Result<T, ClusterError>,
    ) -> Result<T, ClusterError> {
        if sent.is_err() {
            self.health
                .needs_resync
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        sent
    }

    pub(super) fn node_id(&self) -> &str {
        &self.settings.node_id
    }

    pub(super) fn lock_elsewhere(&self) -> MutexGuard<'_, Elsewhere> {
        self.elsewhere.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `identify.lua`; learns which other nodes hold the user too.
    pub(super) async fn identify(&self, user: &str, connections: u32) -> Result<(), ClusterError> {
        let mut cmd = self.scripts.identify.call(self.keys.prefix());
        cmd.arg(self.node_id()).arg(user).arg(connections);
        let others = self.strings(cmd).await?;
        if connections == 0 {
            self.lock_elsewhere().forget_user(user);
        } else {
            self.lock_elsewhere().learn(user, others);
        }
        Ok(())
    }

    pub(super) async fn join(
        &self,
        server: &str,
        user: &str,
        connections: u32,
        entry: &[u8],
    ) -> Result<RosterSnapshot, ClusterError> {
        let mut cmd = self.scripts.join.call(self.keys.prefix());
        cmd.arg(self.node_id())
            .arg(server)
            .arg(user)
            .arg(connections)
            .arg(entry)
            .arg(self.settings.node_ttl_ms);
        parse_roster(server, self.publisher.call(cmd).await?)
    }

    pub(super) async fn heartbeat(&self) -> Result<Beat, ClusterError> {
        let mut cmd = self.scripts.heartbeat.call(self.keys.prefix());
        cmd.arg(self.node_id())
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

    /// `MGET` of the roster versions of every server with a local member, on the subscribing
    /// connection (RESP3 allows commands there): every event published before the read is
    /// already in the subscriber's queue when the result is queued behind it.
    pub(super) async fn check_versions(&self) -> Result<(), ClusterError> {
        let servers: Vec<String> = self.lock_mirror().servers.keys().cloned().collect();
        if servers.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("MGET");
        for server in &servers {
            cmd.arg(self.keys.roster_version(server));
        }
        let mut sub = self.subscriber.clone();
        let reply: Vec<Option<u64>> = cmd
            .query_async(&mut sub)
            .await
            .map_err(|_| ClusterError::Unavailable)?;
        let read = servers
            .into_iter()
            .zip(reply)
            .filter_map(|(server, version)| Some((server, version?)))
            .collect();
        self.input
            .send(Input::Check(read))
            .await
            .map_err(|_| ClusterError::Stopped)
    }

    pub(super) async fn take_reaper_lock(&self) -> Result<bool, ClusterError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.reaper())
            .arg(self.node_id())
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
    pub(super) async fn strings(&self, cmd: redis::Cmd) -> Result<Vec<String>, ClusterError> {
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
}
