//! Per-address token buckets of the REST routes: each client address has one bucket per
//! [`RouteClass`] (`security.restRateLimits`: auth tight, reads loose, writes between); a
//! request finding its bucket empty is answered `429 RATE_LIMITED` with `Retry-After`.
//!
//! Owns the buckets and their bound: at most `security.restRateLimitTrackedAddresses`
//! addresses are remembered; past it, full buckets (idle addresses, which lose nothing by being
//! forgotten) are dropped, then the longest-unused one. Never sees a path beyond its class, a
//! token or a body, and never sleeps: callers pass the instant.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::RestRateLimits;
use crate::transport::rate_limit::TokenBucket;

/// Which bucket a REST request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// `/api/auth/...`: challenges, guest tokens, verification.
    Auth,
    /// Any other `GET`.
    Read,
    /// Any other method.
    Write,
}

impl RouteClass {
    /// The class of `method` on `path` (the path as requested, `/api/...`).
    pub fn of(method: &warp::http::Method, path: &str) -> Self {
        if path.starts_with("/api/auth/") {
            Self::Auth
        } else if method == warp::http::Method::GET || method == warp::http::Method::HEAD {
            Self::Read
        } else {
            Self::Write
        }
    }
}

/// The buckets of every tracked address.
#[derive(Debug)]
pub struct AddressLimits {
    limits: RestRateLimits,
    max_tracked: usize,
    buckets: Mutex<HashMap<(IpAddr, RouteClass), (TokenBucket, Instant)>>,
}

impl AddressLimits {
    /// Buckets as `limits` says, for at most `max_tracked` (address, class) pairs.
    pub fn new(limits: RestRateLimits, max_tracked: usize) -> Self {
        Self {
            limits,
            max_tracked: max_tracked.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `ip`'s `class` bucket, or says how long to wait. A request
    /// without a known address is not limited (the listener always knows it on TCP).
    pub fn check(
        &self,
        ip: Option<IpAddr>,
        class: RouteClass,
        now: Instant,
    ) -> Result<(), Duration> {
        let Some(ip) = ip else { return Ok(()) };
        let limit = match class {
            RouteClass::Auth => self.limits.auth,
            RouteClass::Read => self.limits.reads,
            RouteClass::Write => self.limits.writes,
        }
        .rate_limit();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (ip, class);
        if !buckets.contains_key(&key) && buckets.len() >= self.max_tracked {
            buckets.retain(|_, (bucket, _)| !bucket.is_full_at(now));
            if buckets.len() >= self.max_tracked
                && let Some(oldest) = buckets
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(key, _)| *key)
            {
                buckets.remove(&oldest);
            }
        }
        let (bucket, used) = buckets
            .entry(key)
            .or_insert_with(|| (TokenBucket::new(limit, now), now));
        *used = now;
        bucket.take_or_wait(now)
    }

    /// Addresses-and-classes tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Bucket;

    fn limits() -> RestRateLimits {
        RestRateLimits {
            auth: Bucket {
                burst: 2,
                refill_per_sec: 1,
            },
            reads: Bucket {
                burst: 5,
                refill_per_sec: 10,
            },
            writes: Bucket {
                burst: 3,
                refill_per_sec: 1,
            },
        }
    }

    #[test]
    fn each_class_has_its_own_bucket_per_address_and_says_how_long_to_wait() {
        let gate = AddressLimits::new(limits(), 100);
        let (a, b) = (
            Some(IpAddr::from([192, 0, 2, 1])),
            Some(IpAddr::from([192, 0, 2, 2])),
        );
        let now = Instant::now();
        assert!(gate.check(a, RouteClass::Auth, now).is_ok());
        assert!(gate.check(a, RouteClass::Auth, now).is_ok());
        let wait = gate
            .check(a, RouteClass::Auth, now)
            .expect_err("over the burst");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            gate.check(b, RouteClass::Auth, now).is_ok(),
            "another address"
        );
        assert!(
            gate.check(a, RouteClass::Read, now).is_ok(),
            "another class"
        );
        assert!(
            gate.check(a, RouteClass::Auth, now + wait).is_ok(),
            "refilled"
        );
        assert!(gate.check(None, RouteClass::Auth, now).is_ok());
    }

    #[test]
    fn tracked_addresses_are_bounded() {
        let gate = AddressLimits::new(limits(), 8);
        let now = Instant::now();
        for last in 0..=255u8 {
            let _ = gate.check(Some(IpAddr::from([10, 0, 0, last])), RouteClass::Write, now);
        }
        assert!(gate.tracked() <= 8, "{}", gate.tracked());
    }

    #[test]
    fn classes_follow_path_and_method() {
        use warp::http::Method;
        assert_eq!(
            RouteClass::of(&Method::POST, "/api/auth/guest"),
            RouteClass::Auth
        );
        assert_eq!(
            RouteClass::of(&Method::GET, "/api/servers"),
            RouteClass::Read
        );
        assert_eq!(
            RouteClass::of(&Method::PUT, "/api/servers/x"),
            RouteClass::Write
        );
    }
}
