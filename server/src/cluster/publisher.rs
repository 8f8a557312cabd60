//! The publisher: every Redis write and publish of a node, in one order.
//!
//! Owns: one bounded queue and one task draining it. The task takes up to [`MAX_BATCH`]
//! operations at a time and sends them as one pipeline, with one pipeline in flight, so queue
//! order = Redis execution order = delivery order on every subscriber: envelopes from A to B
//! stay FIFO across nodes and a registration precedes the join that follows it. Each
//! operation may carry a reply slot (a forward's receiver count, a join's snapshot).
//!
//! Never: blocks a caller ([`Publisher::enqueue`] is a `try_send`; a full queue is
//! [`ClusterError::QueueFull`]), retries a command that ran (no duplicates: delivery is
//! at-most-once), or lets a pipeline that failed go unnoticed: it marks the node for a resync
//! (its writes may be lost while the next heartbeat, on a fresh connection, succeeds). The one retry is for commands Redis refused unrun with `NOSCRIPT` (its
//! script cache was emptied by a restart): the scripts are loaded and those commands re-sent.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use redis::aio::ConnectionManager;
use redis::{Cmd, ServerErrorKind, Value};
use tokio::sync::{mpsc, oneshot};

use super::ClusterError;
use super::metrics::{Metrics, bump};
use super::scripts::Scripts;
use super::subscriber::Health;

/// Most operations sent as one pipeline.
pub const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<Result<Value, ClusterError>>;

struct Op {
    cmd: Cmd,
    reply: Option<Reply>,
}

/// The sending side of the queue (cheap to clone).
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Op>,
    metrics: Arc<Metrics>,
}

impl Publisher {
    /// Starts the task on `conn`; the queue holds at most `bound` operations.
    pub fn spawn(
        conn: ConnectionManager,
        scripts: Arc<Scripts>,
        bound: usize,
        health: Arc<Health>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(bound.max(1));
        let metrics = health.metrics.clone();
        let task = tokio::spawn(run(conn, scripts, rx, health));
        (Self { tx, metrics }, task)
    }

    /// Queues a command whose answer nobody waits for.
    pub fn enqueue(&self, cmd: Cmd) -> Result<(), ClusterError> {
        self.push(Op { cmd, reply: None })
    }

    /// Queues a command; its answer arrives on the returned receiver.
    pub fn request(
        &self,
        cmd: Cmd,
    ) -> Result<oneshot::Receiver<Result<Value, ClusterError>>, ClusterError> {
        let (reply, rx) = oneshot::channel();
        self.push(Op {
            cmd,
            reply: Some(reply),
        })?;
        Ok(rx)
    }

    /// Queues a command and waits for its answer.
    pub async fn call(&self, cmd: Cmd) -> Result<Value, ClusterError> {
        self.request(cmd)?
            .await
            .map_err(|_| ClusterError::Stopped)?
    }

    /// Whether the last pipeline reached Redis.
    pub fn is_up(&self) -> bool {
        self.metrics.redis_up.load(Ordering::Relaxed)
    }

    /// Operations waiting and the queue's bound.
    pub fn depth(&self) -> (usize, usize) {
        let bound = self.tx.max_capacity();
        (bound - self.tx.capacity(), bound)
    }

    fn push(&self, op: Op) -> Result<(), ClusterError> {
        self.tx.try_send(op).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                bump(&self.metrics.publish_queue_full);
                ClusterError::QueueFull
            }
            mpsc::error::TrySendError::Closed(_) => ClusterError::Stopped,
        })
    }
}

async fn run(
    mut conn: ConnectionManager,
    scripts: Arc<Scripts>,
    mut rx: mpsc::Receiver<Op>,
    health: Arc<Health>,
) {
    let metrics = &health.metrics;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let results = send(&mut conn, &scripts, &batch).await;
        metrics.redis_up.store(results.is_ok(), Ordering::Relaxed);
        match results {
            Ok(values) => {
                for (op, value) in batch.drain(..).zip(values) {
                    if let Some(reply) = op.reply {
                        let _ = reply.send(value);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, ops = batch.len(), "cluster publisher: Redis unreachable");
                health.needs_resync.store(true, Ordering::Relaxed);
                for op in batch.drain(..) {
                    if let Some(reply) = op.reply {
                        let _ = reply.send(Err(ClusterError::Unavailable));
                    }
                }
            }
        }
    }
}

fn is_noscript(value: &Value) -> bool {
    matches!(value, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript))
}

fn to_result(value: Value) -> Result<Value, ClusterError> {
    match value {
        Value::ServerError(e) => Err(ClusterError::Server(e.to_string())),
        other => Ok(other),
    }
}

/// Sends one pipeline; re-sends, after loading the scripts, the commands refused `NOSCRIPT`.
async fn send(
    conn: &mut ConnectionManager,
    scripts: &Scripts,
    batch: &[Op],
) -> Result<Vec<Result<Value, ClusterError>>, redis::RedisError> {
    let mut pipe = redis::pipe();
    for op in batch {
        pipe.add_command(op.cmd.clone());
    }
    let mut values = conn.send_packed_commands(&pipe, 0, batch.len()).await?;
    let refused: Vec<usize> = (0..values.len())
        .filter(|i| is_noscript(&values[*i]))
        .collect();
    if !refused.is_empty() {
        let mut load = redis::pipe();
        for lua in scripts.all() {
            load.add_command(lua.load_cmd());
        }
        conn.send_packed_commands(&load, 0, scripts.all().len())
            .await?;
        let mut again = redis::pipe();
        for i in &refused {
            again.add_command(batch[*i].cmd.clone());
        }
        let retried = conn.send_packed_commands(&again, 0, refused.len()).await?;
        for (i, value) in refused.into_iter().zip(retried) {
            values[i] = value;
        }
    }
    Ok(values.into_iter().map(to_result).collect())
}
