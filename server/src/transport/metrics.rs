//! Counters the transports keep for `/metrics`: envelopes received by type, errors sent by code,
//! closes by code, refused upgrades, and the forward latency histogram (frame read to hub
//! enqueue). Plain atomics; the hub keeps its own (deliveries, fan-out sizes).
//!
//! Never formats (see [`crate::routes::metrics`]) and never reads a clock: callers pass
//! durations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use signalbox_protocol::{ClientEnvelope, CloseCode, ErrorCode};

/// Upper bounds of the forward latency histogram's buckets, in microseconds; `+Inf` follows.
pub const LATENCY_BUCKETS_US: [u64; 10] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 250_000,
];

/// Why an upgrade was refused before it became a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRefusal {
    /// The server-wide connection cap was reached.
    ServerFull,
    /// The per-IP connection cap was reached.
    IpFull,
    /// The server is shutting down.
    Draining,
}

/// The transports' counters.
#[derive(Debug)]
pub struct TransportMetrics {
    envelopes_in: Box<[AtomicU64]>,
    errors: [AtomicU64; ErrorCode::ALL.len()],
    closes: [AtomicU64; CloseCode::ALL.len()],
    refused: [AtomicU64; 3],
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    latency_sum_us: AtomicU64,
}

impl Default for TransportMetrics {
    fn default() -> Self {
        Self {
            envelopes_in: ClientEnvelope::WIRE_TYPES
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
            errors: Default::default(),
            closes: Default::default(),
            refused: Default::default(),
            latency_buckets: Default::default(),
            latency_sum_us: AtomicU64::new(0),
        }
    }
}

/// A point-in-time copy of [`TransportMetrics`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportSnapshot {
    /// `(wire type, envelopes received)` for every client envelope type.
    pub envelopes_in: Vec<(&'static str, u64)>,
    /// `(error code, errors sent)`.
    pub errors: Vec<(ErrorCode, u64)>,
    /// `(close code, connections closed with it)`.
    pub closes: Vec<(CloseCode, u64)>,
    /// `(reason label, upgrades refused)`.
    pub refused: Vec<(&'static str, u64)>,
    /// Cumulative `(upper bound in µs, count)` of forward latencies.
    pub latency_buckets: Vec<(u64, u64)>,
    /// Observations.
    pub latency_count: u64,
    /// Sum of observed latencies, in microseconds.
    pub latency_sum_us: u64,
}

impl TransportMetrics {
    /// Counts one envelope received.
    pub fn envelope_in(&self, wire_type: &str) {
        if let Some(i) = ClientEnvelope::WIRE_TYPES
            .iter()
            .position(|t| *t == wire_type)
            && let Some(counter) = self.envelopes_in.get(i)
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one `error` sent.
    pub fn error(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one connection closed by the server with `code`.
    pub fn close(&self, code: CloseCode) {
        if let Some(i) = CloseCode::ALL.iter().position(|c| *c == code) {
            self.closes[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one refused upgrade.
    pub fn refused(&self, why: UpgradeRefusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Records the time from reading a forwarded envelope to its delivery being queued.
    pub fn forward_latency(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> TransportSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut cumulative = 0;
        let mut latency_buckets = Vec::with_capacity(LATENCY_BUCKETS_US.len());
        for (bound, counter) in LATENCY_BUCKETS_US.iter().zip(&self.latency_buckets) {
            cumulative += load(counter);
            latency_buckets.push((*bound, cumulative));
        }
        let latency_count = cumulative + self.latency_buckets.last().map_or(0, load);
        TransportSnapshot {
            envelopes_in: ClientEnvelope::WIRE_TYPES
                .iter()
                .zip(self.envelopes_in.iter())
                .map(|(t, c)| (*t, load(c)))
                .collect(),
            errors: ErrorCode::ALL
                .iter()
                .zip(&self.errors)
                .map(|(c, n)| (*c, load(n)))
                .collect(),
            closes: CloseCode::ALL
                .iter()
                .zip(&self.closes)
                .map(|(c, n)| (*c, load(n)))
                .collect(),
            refused: ["server_full", "ip_full", "draining"]
                .into_iter()
                .zip(&self.refused)
                .map(|(label, n)| (label, load(n)))
                .collect(),
            latency_buckets,
            latency_count,
            latency_sum_us: load(&self.latency_sum_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_slots() {
        let m = TransportMetrics::default();
        m.envelope_in("offer");
        m.envelope_in("offer");
        m.envelope_in("no-such-type");
        m.error(ErrorCode::RateLimited);
        m.close(CloseCode::SlowConsumer);
        m.refused(UpgradeRefusal::IpFull);
        m.forward_latency(Duration::from_micros(70));
        m.forward_latency(Duration::from_secs(1));
        let s = m.snapshot();
        assert!(s.envelopes_in.contains(&("offer", 2)));
        assert!(s.errors.contains(&(ErrorCode::RateLimited, 1)));
        assert!(s.closes.contains(&(CloseCode::SlowConsumer, 1)));
        assert!(s.refused.contains(&("ip_full", 1)));
        assert_eq!(s.latency_buckets[0], (50, 0));
        assert_eq!(s.latency_buckets[1], (100, 1));
        assert_eq!(s.latency_count, 2);
    }
}
