//! The `database` section of the variables file: how long a write waits for another writer's
//! lock, and how long an `Idempotency-Key` is remembered.
//!
//! Owns these settings and their bounds only; the pool ([`crate::directory::db`]) and the
//! idempotency store ([`crate::http::idempotency`]) read them.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Default wait for another writer's lock, in milliseconds.
pub const DEFAULT_BUSY_TIMEOUT_MS: u32 = 5_000;
/// Longest lock wait accepted, in milliseconds: a request should not hang for longer.
pub const MAX_BUSY_TIMEOUT_MS: u32 = 60_000;
/// Default lifetime of an `Idempotency-Key` record, in seconds (24 hours).
pub const DEFAULT_IDEMPOTENCY_TTL_SECONDS: u32 = 24 * 3600;
/// Longest lifetime of an `Idempotency-Key` record accepted, in seconds (30 days).
pub const MAX_IDEMPOTENCY_TTL_SECONDS: u32 = 30 * 24 * 3600;

/// The SQLite directory's concurrency and the `Idempotency-Key` store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DatabaseSettings {
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
}
