//! Counters the hub keeps for `/metrics`: plain atomics, read without locking the hub.
//!
//! Owns: counting. Never: formatting (the `/metrics` route renders Prometheus text from
//! [`HubMetrics::snapshot`]) or timing (latency is the transport's to measure, from frame read to
//! [`super::Hub`] call return).
//!
//! Hot paths add once per operation (a fan-out adds its delivery count in one `fetch_add`), never
//! once per recipient, so counting costs nothing measurable at a million deliveries a second.

use std::sync::atomic::{AtomicU64, Ordering};

use signalbox_protocol::ServerEnvelope;

/// Upper bounds (inclusive) of the fan-out size histogram's buckets; a last `+Inf` bucket
/// follows.
pub const FANOUT_BUCKETS: [u64; 9] = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536];

/// The hub's counters. Gauges go up and down; everything else only goes up.
#[derive(Debug)]
pub struct HubMetrics {
    /// Gauge: connections registered (identified or not).
    pub connections_open: AtomicU64,
    /// Gauge: distinct users with at least one identified connection.
    pub users_online: AtomicU64,
    /// Frames queued for a connection, summed over recipients (one broadcast to 5,000 members
    /// adds 5,000).
    pub deliveries: AtomicU64,
    /// Frames dropped because the recipient was already closing.
    pub dropped_closed: AtomicU64,
    /// Connections closed with 4008 because their outbound queue filled up.
    pub slow_consumer_closes: AtomicU64,
    /// Envelopes serialized by the hub (once per broadcast, forward or reply).
    pub envelopes_serialized: AtomicU64,
    /// Forwarded envelopes delivered to at least one connection.
    pub forwards: AtomicU64,
    /// Forwards refused: target offline.
    pub forwards_target_not_found: AtomicU64,
    /// Forwards refused: no shared server.
    pub forwards_forbidden: AtomicU64,
    /// Deliveries by the envelope's wire type, indexed like `ServerEnvelope::WIRE_TYPES`.
    deliveries_by_type: Box<[AtomicU64]>,
    /// Fan-out size histogram: one count per bucket of [`FANOUT_BUCKETS`], then `+Inf`.
    fanout_buckets: [AtomicU64; FANOUT_BUCKETS.len() + 1],
    /// Sum of all fan-out sizes.
    fanout_sum: AtomicU64,
}

impl Default for HubMetrics {
    fn default() -> Self {
        Self {
            connections_open: AtomicU64::new(0),
            users_online: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            dropped_closed: AtomicU64::new(0),
            slow_consumer_closes: AtomicU64::new(0),
            envelopes_serialized: AtomicU64::new(0),
            forwards: AtomicU64::new(0),
            forwards_target_not_found: AtomicU64::new(0),
            forwards_forbidden: AtomicU64::new(0),
            deliveries_by_type: ServerEnvelope::WIRE_TYPES
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
            fanout_buckets: Default::default(),
            fanout_sum: AtomicU64::new(0),
        }
    }
}

/// A fan-out size histogram, cumulative as Prometheus wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutHistogram {
    /// `(upper bound, observations <= bound)` for each of [`FANOUT_BUCKETS`].
    pub buckets: Vec<(u64, u64)>,
    /// All observations (the `+Inf` bucket).
    pub count: u64,
    /// Sum of the observed sizes.
    pub sum: u64,
}

/// A point-in-time copy of every counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// See [`HubMetrics::connections_open`].
    pub connections_open: u64,
    /// See [`HubMetrics::users_online`].
    pub users_online: u64,
    /// See [`HubMetrics::deliveries`].
    pub deliveries: u64,
    /// See [`HubMetrics::dropped_closed`].
    pub dropped_closed: u64,
    /// See [`HubMetrics::slow_consumer_closes`].
    pub slow_consumer_closes: u64,
    /// See [`HubMetrics::envelopes_serialized`].
    pub envelopes_serialized: u64,
    /// See [`HubMetrics::forwards`].
    pub forwards: u64,
    /// See [`HubMetrics::forwards_target_not_found`].
    pub forwards_target_not_found: u64,
    /// See [`HubMetrics::forwards_forbidden`].
    pub forwards_forbidden: u64,
    /// `(wire type, deliveries)` for every server envelope type, zeros included.
    pub deliveries_by_type: Vec<(&'static str, u64)>,
    /// Fan-out sizes.
    pub fanout: FanoutHistogram,
}

impl HubMetrics {
    /// Records `delivered` frames of one envelope type (once per operation, not per recipient).
    pub fn record_deliveries(&self, wire_type: &'static str, delivered: usize) {
        if delivered == 0 {
            return;
        }
        let n = delivered as u64;
        self.deliveries.fetch_add(n, Ordering::Relaxed);
        if let Some(i) = ServerEnvelope::WIRE_TYPES
            .iter()
            .position(|t| *t == wire_type)
            && let Some(counter) = self.deliveries_by_type.get(i)
        {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Records the size of one fan-out (broadcast, status update, roster event).
    pub fn record_fanout(&self, size: usize) {
        let size = size as u64;
        let bucket = FANOUT_BUCKETS
            .iter()
            .position(|bound| size <= *bound)
            .unwrap_or(FANOUT_BUCKETS.len());
        if let Some(counter) = self.fanout_buckets.get(bucket) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.fanout_sum.fetch_add(size, Ordering::Relaxed);
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(FANOUT_BUCKETS.len());
        for (bound, counter) in FANOUT_BUCKETS.iter().zip(&self.fanout_buckets) {
            cumulative += load(counter);
            buckets.push((*bound, cumulative));
        }
        let count = cumulative + self.fanout_buckets.last().map_or(0, load);
        MetricsSnapshot {
            connections_open: load(&self.connections_open),
            users_online: load(&self.users_online),
            deliveries: load(&self.deliveries),
            dropped_closed: load(&self.dropped_closed),
            slow_consumer_closes: load(&self.slow_consumer_closes),
            envelopes_serialized: load(&self.envelopes_serialized),
            forwards: load(&self.forwards),
            forwards_target_not_found: load(&self.forwards_target_not_found),
            forwards_forbidden: load(&self.forwards_forbidden),
            deliveries_by_type: ServerEnvelope::WIRE_TYPES
                .iter()
                .zip(self.deliveries_by_type.iter())
                .map(|(t, c)| (*t, load(c)))
                .collect(),
            fanout: FanoutHistogram {
                buckets,
                count,
                sum: load(&self.fanout_sum),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_with_an_infinite_bucket() {
        let m = HubMetrics::default();
        for size in [1, 3, 5000, 100_000] {
            m.record_fanout(size);
        }
        let h = m.snapshot().fanout;
        assert_eq!(h.buckets[0], (1, 1));
        assert_eq!(h.buckets[1], (4, 2));
        assert_eq!(h.buckets[6], (4096, 2));
        assert_eq!(h.buckets[7], (16384, 3));
        assert_eq!(h.count, 4);
        assert_eq!(h.sum, 105_004);
    }

    #[test]
    fn deliveries_are_counted_by_type() {
        let m = HubMetrics::default();
        m.record_deliveries("chat_message", 5);
        m.record_deliveries("chat_message", 0);
        m.record_deliveries("offer", 1);
        let s = m.snapshot();
        assert_eq!(s.deliveries, 6);
        let by = |t: &str| {
            s.deliveries_by_type
                .iter()
                .find(|(w, _)| *w == t)
                .map(|(_, n)| *n)
        };
        assert_eq!(by("chat_message"), Some(5));
        assert_eq!(by("offer"), Some(1));
        assert_eq!(by("typing"), Some(0));
    }
}
