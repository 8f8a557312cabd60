//! The `database` section of the variables file: how each pooled SQLite connection is tuned.
//!
//! Owns the settings and their validation; the pragmas are applied by
//! [`crate::directory::db_metrics::tune`] when a pooled connection opens.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Default page cache of one pooled connection, in KiB (SQLite's own default, made explicit).
pub const DEFAULT_CACHE_SIZE_KIB: u32 = 2048;
/// Largest page cache accepted per connection, in KiB (1 GiB).
pub const MAX_CACHE_SIZE_KIB: u32 = 1024 * 1024;

/// SQLite tuning of every pooled connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// Page cache of each pooled connection, in KiB (`PRAGMA cache_size`). The pool holds a few
    /// connections, so resident memory grows by up to this much per connection as the database
    /// grows, then stays flat; `signalbox_db_cache_limit_bytes` reports the total.
    pub cache_size_kib: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            cache_size_kib: DEFAULT_CACHE_SIZE_KIB,
        }
    }
}

impl DatabaseSettings {
    /// Refuses a zero or oversized cache.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cache_size_kib == 0 || self.cache_size_kib > MAX_CACHE_SIZE_KIB {
            return Err(ConfigError::Invalid {
                key: "database.cacheSizeKib".into(),
                message: format!("must be between 1 and {MAX_CACHE_SIZE_KIB}"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_huge_caches_are_refused() {
        DatabaseSettings::default().validate().expect("default");
        for kib in [0, MAX_CACHE_SIZE_KIB + 1] {
            let err = DatabaseSettings {
                cache_size_kib: kib,
            }
            .validate()
            .expect_err("refused");
            assert!(err.to_string().contains("database.cacheSizeKib"), "{err}");
        }
    }
}
