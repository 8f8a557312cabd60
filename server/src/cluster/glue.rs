//! The hub's cluster glue: the [`Sink`] that hands other nodes' traffic to the local hub, and
//! the [`Remote`] hook through which the hub tells the backplane what happened here.
//!
//! Owns: [`HubSink`] (inbound: broadcasts, forwards and roster changes of other nodes into
//! local outboxes), [`ClusterRemote`] (outbound: broadcasts, membership changes in the order
//! the hub made them, roster fetches, forwards) and its one membership task.
//!
//! Never: blocks the hub (membership changes go through a bounded queue drained by one task,
//! so the backplane's joins and leaves are awaited there, in order, off the hub's lock), or
//! announces a roster change twice: a change of a user joined here was announced by the local
//! hub already and is dropped.
//!
//! Not yet (issue 13 follow-ups): roster floors per connection (a `server_users` fetched from
//! Redis may be followed by an event it already contains), status changes across nodes, SSE
//! across nodes (`Relay`, `Takeover`, `RawSignal` are dropped and logged).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use signalbox_protocol::{ServerId, UserId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Backplane, Change, ForwardOutcome, Inbound, Sink};
use crate::hub::{Frame, Hub, Membership, Remote, RemoteForward, RemoteFuture};

/// Inbound traffic of other nodes, into the local hub.
pub struct HubSink {
    hub: Hub,
}

impl HubSink {
    /// A sink delivering into `hub`.
    pub fn new(hub: Hub) -> Self {
        Self { hub }
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
            Inbound::Roster(event) => {
                let server = ServerId::from(event.server);
                let (user, text) = match &event.change {
                    Change::Joined { user, entry } => {
                        let Ok(entry) = std::str::from_utf8(entry) else {
                            return;
                        };
                        let Ok(server_json) = serde_json::to_string(&server) else {
                            return;
                        };
                        (
                            user,
                            format!(
                                r#"{{"type":"user_joined","serverId":{server_json},"user":{entry}}}"#
                            ),
                        )
                    }
                    Change::Left { user } => {
                        let envelope = signalbox_protocol::ServerEnvelope::UserLeft(
                            signalbox_protocol::ws::UserLeft {
                                server_id: server.clone(),
                                oder_id: UserId::from(user.clone()),
                                display_name: None,
                            },
                        );
                        let Ok(text) = serde_json::to_string(&envelope) else {
                            return;
                        };
                        (user, text)
                    }
                    Change::Status { .. } => return,
                };
                let user = UserId::from(user.clone());
                if self.hub.is_user_joined(&user, &server) {
                    return;
                }
                self.hub
                    .deliver_roster_change(&server, &Frame::from_text(text));
            }
            Inbound::Snapshot(_) => {}
            Inbound::Relay { .. } | Inbound::Takeover { .. } | Inbound::RawSignal { .. } => {
                tracing::debug!("SSE across nodes is not wired yet: a relayed request dropped");
            }
        }
    }
}

/// The hub's hook into the backplane.
pub struct ClusterRemote {
    backplane: Arc<OnceLock<Arc<Backplane>>>,
    changes: mpsc::Sender<Membership>,
}

impl ClusterRemote {
    /// The hook and its membership task; [`ClusterRemote::attach`] the started backplane
    /// before any connection. `queue`: the bound of membership changes waiting
    /// (`cluster.publishQueue`).
    pub fn new(queue: usize) -> (Arc<Self>, JoinHandle<()>) {
        let (changes, mut rx) = mpsc::channel::<Membership>(queue.max(1));
        let backplane: Arc<OnceLock<Arc<Backplane>>> = Arc::new(OnceLock::new());
        let task_backplane = Arc::clone(&backplane);
        let task = tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                let Some(backplane) = task_backplane.get() else {
                    continue;
                };
                // A failure needs no retry: the backplane's mirror holds the change and the
                // next heartbeat resyncs Redis from it (the glue contract).
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
                    } => backplane
                        .join(
                            server.as_str(),
                            user.as_str(),
                            1,
                            Bytes::copy_from_slice(entry.as_bytes()),
                        )
                        .await
                        .map(|_| ()),
                    Membership::Left { server, user } => {
                        backplane.leave(server.as_str(), user.as_str(), 0).await
                    }
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "cluster membership change not in Redis yet");
                }
            }
        });
        (Arc::new(Self { backplane, changes }), task)
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
        if self.changes.try_send(change).is_err() {
            tracing::warn!("cluster membership queue full: the next resync carries the change");
        }
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
        let (remote, task) = ClusterRemote::new(settings.publish_queue);
        let sink = Arc::new(HubSink::new(hub.clone()));
        let sse = super::sse_glue::SseInboundSlot::default();
        let sink = Arc::new(super::sse_glue::SseSink::new(sink, sse.clone()));
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
        })
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
        while self.remote.changes.capacity() < self.remote.changes.max_capacity()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.task.abort();
    }
}
