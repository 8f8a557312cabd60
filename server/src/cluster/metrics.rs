//! The backplane's numbers, for the hub to export later (`/metrics`, `/admin/stats`).
//!
//! Owns: [`Metrics`], a plain struct of atomics the node's tasks bump, and
//! [`MetricsSnapshot`], the values read at one moment together with the gauges computed from
//! live structures (publish queue depth, pending relays).
//!
//! Never: formats, exports or names metrics for Prometheus (the hub's telemetry does), or
//! takes a lock on a hot path (relaxed atomics only).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters and flags of one node's backplane.
#[derive(Debug)]
pub struct Metrics {
    /// Whether the publisher's last pipeline reached Redis.
    pub redis_up: AtomicBool,
    /// Operations refused because the publish queue was full.
    pub publish_queue_full: AtomicU64,
    /// Pushes dropped because the subscriber's input queue was full (each marks a resync).
    pub pushes_dropped: AtomicU64,
    /// Messages on this node's channels that did not decode (foreign or newer publishers).
    pub undecodable: AtomicU64,
    /// Roster snapshots fetched after a gap, an overflow or a failed version check.
    pub roster_refetches: AtomicU64,
    /// Relayed SSE requests that got no answer in time.
    pub relay_timeouts: AtomicU64,
    /// Relayed SSE requests refused because the pending-relay table was full.
    pub relays_refused: AtomicU64,
    /// Resyncs run (epoch change, reaped, subscriber reconnect).
    pub resyncs: AtomicU64,
    /// Dead nodes this node reaped.
    pub reaped: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            redis_up: AtomicBool::new(true),
            publish_queue_full: AtomicU64::new(0),
            pushes_dropped: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
            roster_refetches: AtomicU64::new(0),
            relay_timeouts: AtomicU64::new(0),
            relays_refused: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            reaped: AtomicU64::new(0),
        }
    }
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The backplane's numbers at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Whether the publisher's last pipeline reached Redis.
    pub redis_up: bool,
    /// Operations waiting in the publish queue.
    pub publish_queue_depth: usize,
    /// The publish queue's bound (`cluster.publishQueue`).
    pub publish_queue_limit: usize,
    /// Operations refused because the publish queue was full.
    pub publish_queue_full: u64,
    /// Pushes dropped because the subscriber's input queue was full.
    pub pushes_dropped: u64,
    /// Undecodable messages.
    pub undecodable: u64,
    /// Roster snapshots fetched to close a gap.
    pub roster_refetches: u64,
    /// Relayed SSE requests waiting for an answer.
    pub pending_relays: usize,
    /// The pending-relay bound.
    pub pending_relays_limit: usize,
    /// Relays that timed out.
    pub relay_timeouts: u64,
    /// Relays refused at the bound.
    pub relays_refused: u64,
    /// Resyncs run.
    pub resyncs: u64,
    /// Dead nodes reaped.
    pub reaped: u64,
}

impl Metrics {
    /// Reads every counter; the gauges come from the live structures.
    pub fn snapshot(
        &self,
        publish_queue: (usize, usize),
        pending_relays: (usize, usize),
    ) -> MetricsSnapshot {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            redis_up: self.redis_up.load(Ordering::Relaxed),
            publish_queue_depth: publish_queue.0,
            publish_queue_limit: publish_queue.1,
            publish_queue_full: read(&self.publish_queue_full),
            pushes_dropped: read(&self.pushes_dropped),
            undecodable: read(&self.undecodable),
            roster_refetches: read(&self.roster_refetches),
            pending_relays: pending_relays.0,
            pending_relays_limit: pending_relays.1,
            relay_timeouts: read(&self.relay_timeouts),
            relays_refused: read(&self.relays_refused),
            resyncs: read(&self.resyncs),
            reaped: read(&self.reaped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_counters_and_gauges() {
        let m = Metrics::default();
        bump(&m.resyncs);
        bump(&m.resyncs);
        bump(&m.relay_timeouts);
        m.redis_up.store(false, Ordering::Relaxed);
        let s = m.snapshot((3, 64), (1, 8));
        assert_eq!(s.resyncs, 2);
        assert_eq!(s.relay_timeouts, 1);
        assert!(!s.redis_up);
        assert_eq!((s.publish_queue_depth, s.publish_queue_limit), (3, 64));
        assert_eq!((s.pending_relays, s.pending_relays_limit), (1, 8));
        assert_eq!(s.reaped, 0);
    }
}
