//! A token bucket per sender (one WebSocket connection, one SSE session).
//!
//! Owns the arithmetic only: callers pass the current instant, so tests need no clock and the
//! bucket never sleeps or blocks. Its settings ([`RateLimit`]) are defined in
//! [`crate::config::rate_limit`].

use std::time::Instant;

pub use crate::config::RateLimit;

/// One sender's bucket; starts full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket as of `now`.
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            updated: now,
        }
    }

    /// Takes one token, or says how long until one is there.
    pub fn take_or_wait(&mut self, now: Instant) -> Result<(), std::time::Duration> {
        if self.try_take(now) {
            return Ok(());
        }
        let missing = 1.0 - self.tokens;
        let seconds = missing / f64::from(self.limit.refill_per_sec.max(1));
        Err(std::time::Duration::from_secs_f64(seconds.max(0.0)))
    }

    /// Whether the bucket has refilled to its burst by `now` (an idle sender).
    pub fn is_full_at(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * f64::from(self.limit.refill_per_sec) >= f64::from(self.limit.burst)
    }

    /// Takes one token if there is one; `false` means the sender is over its rate.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * f64::from(self.limit.refill_per_sec))
            .min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_bucket_allows_the_burst_then_refuses() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(RateLimit::default(), start);
        let allowed = (0..100).filter(|_| bucket.try_take(start)).count();
        assert_eq!(allowed, 50);
    }

    #[test]
    fn tokens_refill_at_the_configured_rate_up_to_the_burst() {
        let start = Instant::now();
        let limit = RateLimit {
            burst: 5,
            refill_per_sec: 10,
        };
        let mut bucket = TokenBucket::new(limit, start);
        assert_eq!((0..5).filter(|_| bucket.try_take(start)).count(), 5);
        assert!(!bucket.try_take(start));
        let later = start + Duration::from_millis(300);
        assert_eq!((0..10).filter(|_| bucket.try_take(later)).count(), 3);
        let much_later = later + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.try_take(much_later)).count(), 5);
    }
}
