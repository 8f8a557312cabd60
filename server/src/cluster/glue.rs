//! The hub's cluster glue: the [`Sink`] that hands other nodes' traffic to the local hub, and
//! the [`Remote`] hook through which the hub tells the backplane what happened here.
//!
//! Owns: [`HubSink`] (inbound: broadcasts, forwards, roster changes, status changes and fresh
//! rosters into local outboxes), [`ClusterRemote`] (outbound: broadcasts, membership and
//! status changes in the order the hub made them, each joining connection's `server_users`,
//! forwards) and its one membership task, and the roster bookkeeping they share
//! ([`rosters`]), with the envelopes built from Redis's entries ([`frames`]).
//!
//! How a cluster-mode member's roster stays exact: its `server_users` is the roster Redis holds
//! (one per join, fetched after the join reached Redis), and its `user_joined` / `user_left`
//! are Redis's versioned roster events, its own node's included; the local hub sends such a
//! connection none of its own ([`Hub::join_server_with_remote_roster`]). Each connection's
//! [`RosterFloor`](super::floor::RosterFloor) drops the events its `server_users` already
//! contains; a fresh roster after a gap or a resync resets every member's floor. Status
//! changes stay immediate on their own node (the hub fans them out) and come from Redis on
//! the others, once per connection however many servers it shares with the user.
//!
//! Never: blocks the hub (membership changes go through a bounded queue drained by one task,
//! so the backplane's joins and leaves are awaited there, in order, off the hub's lock), takes
//! the roster lock while holding the hub's, or writes an envelope by hand.
//!
//! Not here: SSE across nodes (`Relay`, `Takeover`, `RawSignal` are taken by
//! `cluster::sse_glue::SseSink`, which wraps this sink); the roster of a viewing (not joined)
//! connection is this node's only.

pub mod frames;
pub mod rosters;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use signalbox_protocol::{ServerId, UserId};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use self::rosters::Rosters;
use super::{Backplane, Change, ForwardOutcome, Inbound, RosterEvent, RosterSnapshot, Sink};
use crate::hub::{ConnKey, Frame, Hub, Membership, Remote, RemoteForward, RemoteFuture};

/// Snapshots fetched for one joining connection before its roster is sent as it is (each
/// retry means roster events went past it meanwhile).
pub const ROSTER_ATTEMPTS: usize = 3;

/// The roster bookkeeping, shared by the sink and the hook.
type Shared = Arc<Mutex<Rosters>>;

fn lock(rosters: &Mutex<Rosters>) -> MutexGuard<'_, Rosters> {
    rosters.lock().unwrap_or_else(|p| p.into_inner())
}

/// Inbound traffic of other nodes, into the local hub.
pub struct HubSink {
    hub: Hub,
    node_id: String,
    rosters: Shared,
}

impl HubSink {
    /// A sink delivering into `hub` for node `node_id`, with its own roster bookkeeping.
    pub fn new(hub: Hub, node_id: impl Into<String>) -> Self {
        Self::sharing(hub, node_id.into(), Shared::default())
    }

    fn sharing(hub: Hub, node_id: String, rosters: Shared) -> Self {
        Self {
            hub,
            node_id,
            rosters,
        }
    }

    /// A roster change, in version order: to every joined connection here whose roster
    /// comes from the glue and does not contain it yet.
    fn roster_event(&self, event: RosterEvent) {
        let RosterEvent {
            server,
            version,
            change,
        } = event;
        let server_id = ServerId::from(server.as_str());
        let mut rosters = lock(&self.rosters);
        rosters.handed_out(&server, version);
        match change {
            Change::Joined { user, entry } => {
                let Some(frame) = frames::user_joined(&server_id, &entry) else {
                    return;
                };
                let user = UserId::from(user);
                self.hub.deliver_cluster(
                    &server_id,
                    Some(&user),
                    "user_joined",
                    &frame,
                    |k, remote| remote && rosters.admit(k, &server, version),
                );
            }
            Change::Left { user, entry } => {
                let user = UserId::from(user);
                let Some(frame) = frames::user_left(&server_id, &user, &entry) else {
                    return;
                };
                self.hub.deliver_cluster(
                    &server_id,
                    Some(&user),
                    "user_left",
                    &frame,
                    |k, remote| remote && rosters.admit(k, &server, version),
                );
            }
            Change::Status {
                entry,
                change_id,
                origin,
                ..
            } => {
                // The node where it happened told its own connections already.
                let told_there = origin == self.node_id;
                let Some(frame) = frames::status_update(&entry) else {
                    return;
                };
                self.hub
                    .deliver_cluster(&server_id, None, "status_update", &frame, |k, remote| {
                        let news = !remote || rosters.admit(k, &server, version);
                        news && !told_there && rosters.first_status(change_id, k)
                    });
            }
        }
    }

    /// A fresh roster (after a gap or a resync): `server_users` to every joined connection
    /// here whose roster comes from the glue, each one's floor set to its version.
    fn snapshot(&self, snap: RosterSnapshot) {
        let server_id = ServerId::from(snap.server.as_str());
        let Some(frame) =
            frames::server_users(&server_id, snap.members.iter().map(|(_, e)| e.as_ref()))
        else {
            return;
        };
        let mut rosters = lock(&self.rosters);
        rosters.handed_out(&snap.server, snap.version);
        self.hub
            .deliver_cluster(&server_id, None, "server_users", &frame, |k, remote| {
                if remote {
                    rosters.sent_snapshot(k, &snap.server, snap.version);
                }
                remote
            });
    }
}

fn frame_of(bytes: Bytes) -> Option<Frame> {
    let text = String::from_utf8(bytes.to_vec()).ok()?;
    Some(Frame::from_text(text))
}

impl Sink for HubSink {
    fn deliver(&self, event: Inbound) {
        match event {
            Inbound::Broadcast {
                server,
                sender,
                frame,
            } => {
                if let Some(frame) = frame_of(frame) {
                    self.hub
                        .deliver_server(&ServerId::from(server), &UserId::from(sender), &frame);
                }
            }
            Inbound::Forward { target, frame } => {
                if let Some(frame) = frame_of(frame) {
                    self.hub.deliver_user(&UserId::from(target), &frame);
                }
            }
            Inbound::Roster(event) => self.roster_event(event),
            Inbound::Snapshot(snap) => self.snapshot(snap),
            Inbound::Withdraw { .. } => {
                // `WithdrawSink` takes these first; reaching here means nobody attached.
                tracing::debug!("a withdrawal reached the hub's sink: dropped");
            }
            Inbound::Relay { .. } | Inbound::Takeover { .. } | Inbound::RawSignal { .. } => {
                // `SseSink` takes these before this sink; reaching here means no SSE transport.
                tracing::debug!("an SSE relay reached the hub's sink: dropped");
            }
        }
    }
}

/// What the membership task does, in the order the hub asked.
enum Task {
    /// A membership or status change to carry to Redis.
    Change(Membership),
    /// A joining connection's `server_users`; `done` when it is queued.
    Roster {
        conn: ConnKey,
        server: ServerId,
        done: oneshot::Sender<()>,
    },
}

/// The hub's hook into the backplane.
pub struct ClusterRemote {
    backplane: Arc<OnceLock<Arc<Backplane>>>,
    tasks: mpsc::Sender<Task>,
    hub: Hub,
    rosters: Shared,
}

/// The membership task's side: what it needs to run each [`Task`].
struct Worker {
    backplane: Arc<OnceLock<Arc<Backplane>>>,
    hub: Hub,
    rosters: Shared,
    /// The SSE transport, told when a join of this node reached Redis.
    sse: super::sse_glue::SseInboundSlot,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Task>) {
        while let Some(task) = rx.recv().await {
            match task {
                Task::Change(change) => self.change(change).await,
                Task::Roster { conn, server, done } => {
                    self.roster(conn, &server).await;
                    let _ = done.send(());
                }
            }
        }
    }

    async fn change(&self, change: Membership) {
        let Some(backplane) = self.backplane.get() else {
            return;
        };
        // A failure needs no retry: the backplane's mirror holds the change and the next
        // heartbeat resyncs Redis from it (the glue contract).
        let result = match change {
            Membership::Identified { user, connected } => {
                backplane
                    .identify(user.as_str(), u32::from(connected))
                    .await
            }
            Membership::Joined {
                server,
                user,
                entry,
            } => {
                let joined = backplane
                    .join(
                        server.as_str(),
                        user.as_str(),
                        1,
                        Bytes::copy_from_slice(entry.as_bytes()),
                    )
                    .await
                    .map(|_| ());
                if joined.is_ok() {
                    self.sse.joined(server.as_str());
                }
                joined
            }
            Membership::Left { server, user } => {
                let left = backplane.leave(server.as_str(), user.as_str(), 0).await;
                if self.hub.roster(&server).is_none() {
                    lock(&self.rosters).forget_server(server.as_str());
                }
                left
            }
            Membership::Status { user, entry } => {
                backplane.set_status(user.as_str(), Bytes::copy_from_slice(entry.as_bytes()))
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cluster membership change not in Redis yet");
        }
    }

    /// Sends `conn` the roster of `server` over every node; this node's own when Redis
    /// cannot be reached (the resync after it returns sends every member a fresh one).
    async fn roster(&self, conn: ConnKey, server: &ServerId) {
        if let Some(backplane) = self.backplane.get() {
            for attempt in 1..=ROSTER_ATTEMPTS {
                let Ok(snap) = backplane.snapshot(server.as_str()).await else {
                    break;
                };
                let mut rosters = lock(&self.rosters);
                if attempt < ROSTER_ATTEMPTS && !rosters.is_current(&snap.server, snap.version) {
                    continue;
                }
                let Some(frame) =
                    frames::server_users(server, snap.members.iter().map(|(_, e)| e.as_ref()))
                else {
                    break;
                };
                if self.hub.send_remote_roster(conn, server, &frame) {
                    rosters.sent_snapshot(conn, &snap.server, snap.version);
                }
                return;
            }
        }
        if let Err(error) = self.hub.send_local_roster(conn, server) {
            tracing::debug!(%error, "cluster: no roster for a connection gone meanwhile");
        }
    }
}

impl ClusterRemote {
    /// The hook into `hub` and its membership task; [`ClusterRemote::attach`] the started
    /// backplane before any connection. `queue`: the bound of changes waiting
    /// (`cluster.publishQueue`); `sse`: where the SSE transport is told that a join of this
    /// node reached Redis.
    pub fn new(
        hub: &Hub,
        queue: usize,
        sse: super::sse_glue::SseInboundSlot,
    ) -> (Arc<Self>, JoinHandle<()>) {
        let (tasks, rx) = mpsc::channel::<Task>(queue.max(1));
        let backplane: Arc<OnceLock<Arc<Backplane>>> = Arc::new(OnceLock::new());
        let rosters = Shared::default();
        let worker = Worker {
            backplane: Arc::clone(&backplane),
            hub: hub.clone(),
            rosters: Arc::clone(&rosters),
            sse,
        };
        let task = tokio::spawn(worker.run(rx));
        let remote = Self {
            backplane,
            tasks,
            hub: hub.clone(),
            rosters,
        };
        (Arc::new(remote), task)
    }

    /// The sink for the backplane of node `node_id`, sharing this hook's roster bookkeeping.
    pub fn sink(&self, node_id: &str) -> HubSink {
        HubSink::sharing(
            self.hub.clone(),
            node_id.to_owned(),
            Arc::clone(&self.rosters),
        )
    }

    /// Attaches the started backplane.
    pub fn attach(&self, backplane: Arc<Backplane>) {
        let _ = self.backplane.set(backplane);
    }
}

impl Remote for ClusterRemote {
    fn is_up(&self) -> bool {
        self.backplane.get().is_some_and(|b| b.is_up())
    }

    fn broadcast(&self, server: &ServerId, sender: &UserId, frame: &Frame) {
        let Some(backplane) = self.backplane.get() else {
            return;
        };
        let bytes = Bytes::copy_from_slice(frame.as_str().as_bytes());
        if let Err(e) = backplane.broadcast(server.as_str(), sender.as_str(), bytes) {
            tracing::debug!(error = %e, "broadcast not carried to other nodes");
        }
    }

    fn membership(&self, change: Membership) {
        if self.tasks.try_send(Task::Change(change)).is_err() {
            tracing::warn!("cluster membership queue full: the next resync carries the change");
        }
    }

    fn send_roster(&self, conn: ConnKey, server: &ServerId) -> RemoteFuture<()> {
        let (done, wait) = oneshot::channel();
        let task = Task::Roster {
            conn,
            server: server.clone(),
            done,
        };
        if self.tasks.try_send(task).is_err() {
            tracing::warn!(
                "cluster membership queue full: a joining connection gets this node's roster"
            );
            if let Err(error) = self.hub.send_local_roster(conn, server) {
                tracing::debug!(%error, "cluster: no roster for a connection gone meanwhile");
            }
        }
        Box::pin(async move {
            let _ = wait.await;
        })
    }

    fn closed(&self, conn: ConnKey) {
        lock(&self.rosters).closed(conn);
    }

    fn roster(&self, server: &ServerId) -> RemoteFuture<Option<Vec<(UserId, String)>>> {
        let backplane = self.backplane.get().cloned();
        let server = server.clone();
        Box::pin(async move {
            let snapshot = backplane?.snapshot(server.as_str()).await.ok()?;
            Some(
                snapshot
                    .members
                    .into_iter()
                    .filter_map(|(user, entry)| {
                        Some((UserId::from(user), String::from_utf8(entry.to_vec()).ok()?))
                    })
                    .collect(),
            )
        })
    }

    fn forward(
        &self,
        sender: &UserId,
        target: &UserId,
        frame: &Frame,
        shared: Option<Vec<ServerId>>,
    ) -> RemoteFuture<RemoteForward> {
        let Some(backplane) = self.backplane.get() else {
            return Box::pin(async { RemoteForward::Unavailable });
        };
        let shared: Option<Vec<String>> =
            shared.map(|s| s.iter().map(|s| s.as_str().to_owned()).collect());
        let receipt = backplane.forward(
            sender.as_str(),
            target.as_str(),
            frame.as_str().as_bytes(),
            shared.as_deref(),
        );
        Box::pin(async move {
            match receipt {
                Err(_) => RemoteForward::Unavailable,
                Ok(receipt) => match receipt.outcome().await {
                    ForwardOutcome::Delivered(_) => RemoteForward::Delivered,
                    ForwardOutcome::LocalOnly => RemoteForward::LocalOnly,
                    ForwardOutcome::TargetNotFound => RemoteForward::TargetNotFound,
                    ForwardOutcome::Forbidden => RemoteForward::Forbidden,
                    ForwardOutcome::Unavailable => RemoteForward::Unavailable,
                },
            }
        })
    }
}

/// The running cluster side of one process: the backplane, the hub's hook into it and the
/// hook's membership task. `app` starts it before the listener and stops it last.
pub struct ClusterNode {
    backplane: Arc<Backplane>,
    remote: Arc<ClusterRemote>,
    task: JoinHandle<()>,
    sse: super::sse_glue::SseInboundSlot,
    withdraw: super::withdraw::WithdrawSlot,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("node_id", &self.backplane.node_id())
            .finish_non_exhaustive()
    }
}

/// Longest [`ClusterNode::stop`] waits for the membership changes of the closing connections.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl ClusterNode {
    /// Starts the backplane with a sink into `hub` and plugs the hub's hook in (before any
    /// connection exists).
    pub async fn start(
        settings: super::ClusterSettings,
        hub: &Hub,
    ) -> Result<Self, super::ClusterError> {
        let sse = super::sse_glue::SseInboundSlot::default();
        let (remote, task) = ClusterRemote::new(hub, settings.publish_queue, sse.clone());
        let sink = Arc::new(remote.sink(&settings.node_id));
        let sink = Arc::new(super::sse_glue::SseSink::new(sink, sse.clone()));
        let withdraw = super::withdraw::WithdrawSlot::default();
        let sink = Arc::new(super::withdraw::WithdrawSink::new(sink, withdraw.clone()));
        let backplane = match Backplane::start(settings, sink).await {
            Ok(backplane) => Arc::new(backplane),
            Err(e) => {
                task.abort();
                return Err(e);
            }
        };
        remote.attach(Arc::clone(&backplane));
        hub.set_remote(remote.clone());
        tracing::info!(node = backplane.node_id(), "cluster backplane started");
        Ok(Self {
            backplane,
            remote,
            task,
            sse,
            withdraw,
        })
    }

    /// The withdrawal service's hook for announcing to the other nodes (`app` attaches it).
    pub fn withdraw_remote(&self) -> Arc<dyn crate::hub::withdraw_remote::WithdrawRemote> {
        Arc::new(super::withdraw::WithdrawGlue::new(Arc::clone(
            &self.backplane,
        )))
    }

    /// Attaches the withdrawal service: other nodes' withdrawals are applied here from now on.
    pub fn attach_withdraw(&self, inbound: Arc<dyn crate::hub::withdraw_remote::WithdrawInbound>) {
        self.withdraw.attach(inbound);
    }

    /// The SSE transport's hook into the backplane (`app` hands it to the transport).
    pub fn sse_remote(&self) -> Arc<dyn crate::hub::sse_remote::SseRemote> {
        Arc::new(super::sse_glue::SseGlue::new(Arc::clone(&self.backplane)))
    }

    /// Attaches the SSE transport's side: other nodes' relays and raw signals, and roster
    /// changes, reach it from now on.
    pub fn attach_sse(&self, inbound: Arc<dyn crate::hub::sse_remote::SseInbound>) {
        self.sse.attach(inbound);
    }

    /// The backplane (for `/metrics` and `/api/ready`).
    pub fn backplane(&self) -> &Backplane {
        &self.backplane
    }

    /// Lets the leaves of the connections closed by the shutdown reach Redis (at most
    /// [`STOP_GRACE`]), then stops the tasks. The node's heartbeat key expires by itself; the
    /// other nodes reap what is left after the node TTL.
    pub async fn stop(&self) {
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while self.remote.tasks.capacity() < self.remote.tasks.max_capacity()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.task.abort();
    }
}
