//! Heartbeat, epoch, dead-node detection and the reaper (docs/design/cluster-plan.md §3.6).
//!
//! Owns: the per-node task that every `heartbeat_ms` runs `heartbeat.lua`, pings the
//! subscribing connection (which makes it reconnect after an outage), decides when the node
//! must resync (an epoch change: Redis lost its data; "lost": this node was reaped or purged;
//! a subscriber disconnection), reaps dead nodes under the `SET NX PX` reaper lock, and every
//! [`CHECK_EVERY_BEATS`] beats reads the local servers' roster versions (silent loss).
//!
//! Never: reaps without the lock, reaps a node that heartbeated again (the scripts re-check),
//! or stops on a Redis error (it tries again on the next tick).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::ClusterError;
use super::inner::Inner;
use super::metrics::bump;
use super::scripts::{Beat, parse_int};

/// Every this many heartbeats the node reads its servers' roster versions (`MGET`) to catch
/// events lost without a trace.
pub const CHECK_EVERY_BEATS: u64 = 10;

/// Runs until aborted.
pub async fn run(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(inner.settings.heartbeat_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut beats: u64 = 0;
    loop {
        tick.tick().await;
        let _ = inner.ping_subscriber().await;
        if let Err(error) = beat_once(&inner).await {
            tracing::debug!(%error, "cluster heartbeat failed");
            inner.health.needs_resync.store(true, Ordering::Relaxed);
            continue;
        }
        beats = beats.wrapping_add(1);
        if beats.is_multiple_of(CHECK_EVERY_BEATS)
            && let Err(error) = inner.check_versions().await
        {
            tracing::debug!(%error, "cluster version check failed");
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
        bump(&inner.metrics.resyncs);
        if let Err(error) = inner.resync().await {
            inner.health.needs_resync.store(true, Ordering::Relaxed);
            return Err(error);
        }
    }
    if !beat.dead.is_empty() {
        let mut elsewhere = inner.lock_elsewhere();
        for dead in &beat.dead {
            elsewhere.forget_node(dead);
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
        bump(&inner.metrics.reaped);
    }
    Ok(())
}
