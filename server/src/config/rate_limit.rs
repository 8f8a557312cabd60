//! The settings of one token bucket (a burst and a refill rate), shared by the `realtime`, `sse`
//! and `security` sections.
//!
//! Owns the two numbers only; the bucket itself (its arithmetic over time) is
//! `crate::transport::rate_limit::TokenBucket`. Defaults come from `signalbox_protocol::limits`
//! (`RATE_LIMIT_BURST`, `RATE_LIMIT_REFILL_PER_SEC`).

/// Capacity and refill rate of a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Most tokens a bucket holds (the burst).
    pub burst: u32,
    /// Tokens added per second.
    pub refill_per_sec: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            burst: signalbox_protocol::limits::RATE_LIMIT_BURST,
            refill_per_sec: signalbox_protocol::limits::RATE_LIMIT_REFILL_PER_SEC,
        }
    }
}
