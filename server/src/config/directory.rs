//! The `directory` section of the variables file: which backend holds the directory (the
//! embedded SQLite file, the default, or a PostgreSQL database shared by several nodes) and how
//! signalbox reaches PostgreSQL.
//!
//! Owns these settings and their bounds only; `app` opens the chosen backend
//! ([`crate::directory::SqliteDirectory`] or [`crate::directory::postgres::PgDirectory`]).
//! Never prints the URL (a [`Secret`]: it may carry a password).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use signalbox_protocol::Secret;

use super::ConfigError;

/// Default number of pooled PostgreSQL connections per node.
pub const DEFAULT_POSTGRES_POOL_SIZE: u32 = 8;
/// Most pooled PostgreSQL connections per node accepted (PostgreSQL's own default
/// `max_connections` is 100, shared by every node).
pub const MAX_POSTGRES_POOL_SIZE: u32 = 256;

/// Default bound, in milliseconds, on one PostgreSQL statement and on one lock wait.
pub const DEFAULT_POSTGRES_STATEMENT_TIMEOUT_MS: u32 = 5_000;
/// The accepted range of `directory.postgresStatementTimeoutMs`.
pub const POSTGRES_STATEMENT_TIMEOUT_MS: std::ops::RangeInclusive<u32> = 100..=600_000;

/// Where the directory lives.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryBackend {
    /// The embedded SQLite file (`<data-dir>/signalbox.db`): one node, nothing else to run.
    #[default]
    Sqlite,
    /// A PostgreSQL database (`directory.postgresUrl`), shared by every node of a cluster.
    Postgres,
}

/// The directory backend and its connection settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DirectorySettings {
    /// `sqlite` (default) or `postgres`. Environment: `SIGNALBOX_DIRECTORY_BACKEND`.
    pub backend: DirectoryBackend,
    /// The PostgreSQL connection URL (`postgres://user:password@host:port/database`), required
    /// with the `postgres` backend; migrations run at start under an advisory lock, so nodes
    /// may start together. Environment: `SIGNALBOX_POSTGRES_URL`.
    pub postgres_url: Option<Secret>,
    /// PostgreSQL connections each node keeps at most (1 to 256); a request waits at most 2 s
    /// for one, then is answered `503 UNAVAILABLE` with `Retry-After`.
    pub postgres_pool_size: u32,
    /// Longest a PostgreSQL statement may run, and longest it may wait for a lock, in
    /// milliseconds (100 to 600000; each session's `statement_timeout` and `lock_timeout`). A
    /// call cut by it is answered `503 UNAVAILABLE` with `Retry-After` instead of hanging.
    pub postgres_statement_timeout_ms: u32,
}

impl Default for DirectorySettings {
    fn default() -> Self {
        Self {
            backend: DirectoryBackend::Sqlite,
            postgres_url: None,
            postgres_pool_size: DEFAULT_POSTGRES_POOL_SIZE,
            postgres_statement_timeout_ms: DEFAULT_POSTGRES_STATEMENT_TIMEOUT_MS,
        }
    }
}

impl DirectorySettings {
    /// Checks the ranges and that the `postgres` backend has a URL.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| {
            Err(ConfigError::Invalid {
                key: format!("directory.{key}"),
                message,
            })
        };
        if !(1..=MAX_POSTGRES_POOL_SIZE).contains(&self.postgres_pool_size) {
            return invalid(
                "postgresPoolSize",
                format!("must be 1 to {MAX_POSTGRES_POOL_SIZE}"),
            );
        }
        if !POSTGRES_STATEMENT_TIMEOUT_MS.contains(&self.postgres_statement_timeout_ms) {
            return invalid(
                "postgresStatementTimeoutMs",
                format!(
                    "must be {} to {}",
                    POSTGRES_STATEMENT_TIMEOUT_MS.start(),
                    POSTGRES_STATEMENT_TIMEOUT_MS.end()
                ),
            );
        }
        if self.backend == DirectoryBackend::Postgres
            && self
                .postgres_url
                .as_ref()
                .is_none_or(|url| url.expose().trim().is_empty())
        {
            return invalid(
                "postgresUrl",
                "is required with directory.backend \"postgres\"".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sqlite_and_valid() {
        let settings = DirectorySettings::default();
        assert_eq!(settings.backend, DirectoryBackend::Sqlite);
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn statement_timeout_bounds_hold() {
        let (low, high) = (
            *POSTGRES_STATEMENT_TIMEOUT_MS.start(),
            *POSTGRES_STATEMENT_TIMEOUT_MS.end(),
        );
        for ms in [low - 1, high + 1] {
            let err = DirectorySettings {
                postgres_statement_timeout_ms: ms,
                ..DirectorySettings::default()
            }
            .validate()
            .expect_err("out of range");
            assert!(
                err.to_string()
                    .contains("directory.postgresStatementTimeoutMs"),
                "{err}"
            );
        }
        let settings: DirectorySettings =
            serde_json::from_str(r#"{"postgresStatementTimeoutMs":250}"#).expect("parses");
        assert_eq!(settings.postgres_statement_timeout_ms, 250);
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn postgres_needs_a_url_and_pool_bounds_hold() {
        let without_url = DirectorySettings {
            backend: DirectoryBackend::Postgres,
            ..DirectorySettings::default()
        };
        let err = without_url.validate().expect_err("no url");
        assert!(err.to_string().contains("directory.postgresUrl"), "{err}");
        for size in [0, MAX_POSTGRES_POOL_SIZE + 1] {
            let err = DirectorySettings {
                postgres_pool_size: size,
                ..DirectorySettings::default()
            }
            .validate()
            .expect_err("out of range");
            assert!(
                err.to_string().contains("directory.postgresPoolSize"),
                "{err}"
            );
        }
    }

    #[test]
    fn parses_from_camel_case_and_never_prints_the_url() {
        let settings: DirectorySettings = serde_json::from_str(
            r#"{"backend":"postgres","postgresUrl":"postgres://u:hunter2@h/db","postgresPoolSize":4}"#,
        )
        .expect("parse");
        assert!(settings.validate().is_ok());
        assert_eq!(settings.postgres_pool_size, 4);
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
