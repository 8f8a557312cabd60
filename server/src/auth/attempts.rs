//! Throttling of password guesses: at most [`MAX_FAILURES`] wrong server passwords per client
//! address in each [`WINDOW`]; past that, guesses are refused without checking them.
//!
//! Why per address: in `auth: open` a client chooses its `oderId` freely, so a per-user count
//! would cost an attacker nothing. Why at all: every check is an Argon2 verification (tens of
//! milliseconds of CPU on a database worker), so unthrottled guesses are both an online
//! password-guessing oracle and a way to starve the database pool.
//!
//! Never stores passwords or anything derived from them; only counts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Wrong passwords one address may send per window.
pub const MAX_FAILURES: u32 = 10;
/// The counting window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; beyond it, expired windows are swept, then the oldest dropped.
pub const MAX_TRACKED: usize = 65_536;

/// Failure counts per client address.
#[derive(Debug, Default)]
pub struct PasswordAttempts {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl PasswordAttempts {
    /// `Err(wait)` when `ip` used up its failures: guesses are refused for `wait`.
    pub fn check(&self, ip: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let Some(ip) = ip else { return Ok(()) };
        let windows = self.lock();
        match windows.get(&ip) {
            Some((start, failures))
                if *failures >= MAX_FAILURES && now.duration_since(*start) < WINDOW =>
            {
                Err(WINDOW - now.duration_since(*start))
            }
            _ => Ok(()),
        }
    }

    /// Counts one wrong password from `ip`.
    pub fn record_failure(&self, ip: Option<IpAddr>, now: Instant) {
        let Some(ip) = ip else { return };
        let mut windows = self.lock();
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&ip) {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if windows.len() >= MAX_TRACKED
                && let Some(oldest) = windows
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(ip, _)| *ip)
            {
                windows.remove(&oldest);
            }
        }
        let entry = windows.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Addresses tracked now, at most [`MAX_TRACKED`] (for gauges).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        // Counts stay consistent under any panic: a poisoned lock is still usable.
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_throttled_after_its_failures_until_the_window_ends() {
        let attempts = PasswordAttempts::default();
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        let other = Some(IpAddr::from([192, 0, 2, 2]));
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(attempts.check(ip, start).is_ok());
            attempts.record_failure(ip, start);
        }
        let wait = attempts.check(ip, start).expect_err("throttled");
        assert!(wait <= WINDOW);
        assert!(attempts.check(other, start).is_ok());
        assert!(attempts.check(ip, start + WINDOW).is_ok());
        attempts.record_failure(ip, start + WINDOW);
        assert!(
            attempts.check(ip, start + WINDOW).is_ok(),
            "a new window starts at zero"
        );
        assert!(attempts.check(None, start).is_ok());
    }
}
