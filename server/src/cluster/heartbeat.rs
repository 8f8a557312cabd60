//! Heartbeat, epoch, dead-node detection and the reaper (docs/design/cluster-plan.md §3.6).
//!
//! Owns: the per-node task that every `heartbeat_ms` runs `heartbeat.lua`, pings the
//! subscribing connection (which makes it reconnect after an outage), decides when the node
//! must resync (an epoch change: Redis lost its data; "lost": this node was reaped or purged;
//! a subscriber disconnection), and reaps dead nodes under the `SET NX PX` reaper lock.
//!
//! Never: reaps without the lock, reaps a node that heartbeated again (the scripts re-check),
//! or stops on a Redis error (it tries again on the next tick).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::ClusterError;
use super::node::Inner;
use super::scripts::{Beat, parse_int};

/// Runs until aborted.
pub async fn run(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(inner.settings.heartbeat_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let _ = inner.ping_subscriber().await;
        if let Err(error) = beat_once(&inner).await {
            tracing::debug!(%error, "cluster heartbeat failed");
            inner.health.needs_resync.store(true, Ordering::Relaxed);
        }
    }
}

/// One heartbeat: record it, resync when needed, reap dead nodes.
pub async fn beat_once(inner: &Inner) -> Result<Beat, ClusterError> {
    let beat = inner.heartbeat().await?;
    let epoch_changed = {
        let mut known = inner.epoch.lock().unwrap_or_else(|p| p.into_inner());
        let changed = known.as_deref().is_some_and(|e| e != beat.epoch);
        *known = Some(beat.epoch.clone());
        changed
    };
    let disconnected = inner.health.needs_resync.swap(false, Ordering::Relaxed);
    if epoch_changed || beat.lost || disconnected {
        tracing::info!(
            epoch_changed,
            lost = beat.lost,
            disconnected,
            "cluster: resyncing this node"
        );
        inner.resyncs.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = inner.resync().await {
            inner.health.needs_resync.store(true, Ordering::Relaxed);
            return Err(error);
        }
    }
    if !beat.dead.is_empty() && inner.take_reaper_lock().await? {
        for dead in &beat.dead {
            reap(inner, dead).await?;
        }
    }
    Ok(beat)
}

async fn reap(inner: &Inner, dead: &str) -> Result<(), ClusterError> {
    for server in inner.servers_of(dead).await? {
        let mut cmd = inner.scripts.reap.call(inner.keys.prefix());
        cmd.arg(&inner.settings.node_id)
            .arg(dead)
            .arg(&server)
            .arg(inner.settings.node_ttl_ms);
        if parse_int(&inner.publisher.call(cmd).await?)? < 0 {
            return Ok(()); // it came back
        }
    }
    let mut cmd = inner.scripts.reap_node.call(inner.keys.prefix());
    cmd.arg(&inner.settings.node_id)
        .arg(dead)
        .arg(inner.settings.node_ttl_ms);
    if parse_int(&inner.publisher.call(cmd).await?)? > 0 {
        tracing::info!(node = dead, "cluster: reaped a dead node");
        inner.reaped.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
