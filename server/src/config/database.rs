//! The `database` section of the variables file: how each pooled SQLite connection is tuned,
//! how long a write waits for another writer's lock, and how long an `Idempotency-Key` is
//! remembered.
//!
//! Owns these settings and their bounds only; the pool ([`crate::directory::db`], with the
//! pragmas applied by [`crate::directory::db_metrics::tune`]) and the idempotency store
//! ([`crate::http::idempotency`]) read them.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Default page cache of one pooled connection, in KiB (SQLite's own default, made explicit).
pub const DEFAULT_CACHE_SIZE_KIB: u32 = 2048;
/// Largest page cache accepted per connection, in KiB (1 GiB).
pub const MAX_CACHE_SIZE_KIB: u32 = 1024 * 1024;
/// Default wait for another writer's lock, in milliseconds.
pub const DEFAULT_BUSY_TIMEOUT_MS: u32 = 5_000;
/// Longest lock wait accepted, in milliseconds: a request should not hang for longer.
pub const MAX_BUSY_TIMEOUT_MS: u32 = 60_000;
/// Default lifetime of an `Idempotency-Key` record, in seconds (24 hours).
pub const DEFAULT_IDEMPOTENCY_TTL_SECONDS: u32 = 24 * 3600;
/// Longest lifetime of an `Idempotency-Key` record accepted, in seconds (30 days).
pub const MAX_IDEMPOTENCY_TTL_SECONDS: u32 = 30 * 24 * 3600;

/// SQLite tuning of every pooled connection, its concurrency, and the `Idempotency-Key` store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// Page cache of each pooled connection, in KiB (`PRAGMA cache_size`). The pool holds a few
    /// connections, so resident memory grows by up to this much per connection as the database
    /// grows, then stays flat; `signalbox_db_cache_limit_bytes` reports the total.
    pub cache_size_kib: u32,
    /// How long a write waits (SQLite retrying) for another writer's lock before the request is
    /// answered `503 UNAVAILABLE` with `Retry-After`, in milliseconds (1 to 60000).
    pub busy_timeout_ms: u32,
    /// How long an `Idempotency-Key` is remembered, in seconds (1 to 2592000): a request
    /// repeating a key within this time gets the first answer again; older records are purged
    /// by a background task.
    pub idempotency_ttl_seconds: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            cache_size_kib: DEFAULT_CACHE_SIZE_KIB,
            busy_timeout_ms: DEFAULT_BUSY_TIMEOUT_MS,
            idempotency_ttl_seconds: DEFAULT_IDEMPOTENCY_TTL_SECONDS,
        }
    }
}

impl DatabaseSettings {
    /// The busy timeout as a duration.
    pub fn busy_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.busy_timeout_ms))
    }

    /// The idempotency window in milliseconds.
    pub fn idempotency_ttl_ms(&self) -> i64 {
        i64::from(self.idempotency_ttl_seconds) * 1000
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| {
            Err(ConfigError::Invalid {
                key: format!("database.{key}"),
                message,
            })
        };
        if !(1..=MAX_CACHE_SIZE_KIB).contains(&self.cache_size_kib) {
            return invalid(
                "cacheSizeKib",
                format!("must be between 1 and {MAX_CACHE_SIZE_KIB}"),
            );
        }
        if !(1..=MAX_BUSY_TIMEOUT_MS).contains(&self.busy_timeout_ms) {
            return invalid(
                "busyTimeoutMs",
                format!("must be 1 to {MAX_BUSY_TIMEOUT_MS}"),
            );
        }
        if !(1..=MAX_IDEMPOTENCY_TTL_SECONDS).contains(&self.idempotency_ttl_seconds) {
            return invalid(
                "idempotencyTtlSeconds",
                format!("must be 1 to {MAX_IDEMPOTENCY_TTL_SECONDS}"),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_are_enforced() {
        assert!(DatabaseSettings::default().validate().is_ok());
        let zero = DatabaseSettings {
            busy_timeout_ms: 0,
            ..DatabaseSettings::default()
        };
        assert!(zero.validate().is_err());
        let long = DatabaseSettings {
            idempotency_ttl_seconds: MAX_IDEMPOTENCY_TTL_SECONDS + 1,
            ..DatabaseSettings::default()
        };
        let err = long.validate().expect_err("too long");
        assert!(err.to_string().contains("database.idempotencyTtlSeconds"));
    }

    #[test]
    fn zero_and_huge_caches_are_refused() {
        for kib in [0, MAX_CACHE_SIZE_KIB + 1] {
            let err = DatabaseSettings {
                cache_size_kib: kib,
                ..DatabaseSettings::default()
            }
            .validate()
            .expect_err("refused");
            assert!(err.to_string().contains("database.cacheSizeKib"), "{err}");
        }
    }
}
