//! The PostgreSQL connection pool: deadpool-postgres over tokio-postgres (no TLS: the server is
//! reached on loopback or a private network), with bounded waits so an unreachable server turns
//! into a prompt error instead of a hung request.
//!
//! Owns connection settings and checkout; never runs directory statements itself. Connections
//! are recycled with [`RecyclingMethod::Fast`]: a connection found closed is dropped and a new
//! one opened, so a restarted server is picked up without restarting signalbox.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::NoTls;

use super::failure::pool_failure;
use crate::directory::DbError;

/// How long a checkout waits for a free connection, and how long opening one may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Default bound on one statement and on one lock wait (see [`PoolSettings::statement_timeout`]).
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a silent connection waits before TCP keepalive probes start, and between probes:
/// a peer that vanished (host down, cable cut) is noticed in about a minute, not hours.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// The pause between keepalive probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// What the pool is built from.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Connections kept open at most.
    pub size: usize,
    /// Bound on waiting for a free connection and on opening one.
    pub timeout: Duration,
    /// Each pooled session's `statement_timeout` and `lock_timeout`: a statement that runs or
    /// waits for a lock longer fails with SQLSTATE 57014 or 55P03 (answered unavailable).
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            size: 8,
            timeout: DEFAULT_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
        }
    }
}

/// Parses a `postgres://` URL (or `key=value` string). The error never repeats the URL.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, DbError> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(DbError::from)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("signalbox");
    }
    config
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(3);
    Ok(config)
}

/// Adds `statement_timeout` and `lock_timeout` to the session options of `config` (after any
/// the URL carries, such as `search_path`). Only pooled sessions get them: the migration run
/// waits for its advisory lock as long as another node migrates.
fn bound_statements(config: &mut tokio_postgres::Config, timeout: Duration) {
    let ms = timeout.as_millis().max(1);
    let bounds = format!("-c statement_timeout={ms} -c lock_timeout={ms}");
    let options = match config.get_options() {
        Some(existing) if !existing.trim().is_empty() => format!("{existing} {bounds}"),
        _ => bounds,
    };
    config.options(options);
}

/// A pool of PostgreSQL connections.
#[derive(Clone)]
pub struct PgPool {
    pool: Pool,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgPool")
            .field("size", &status.size)
            .field("available", &status.available)
            .finish()
    }
}

impl PgPool {
    /// Builds the pool; connects lazily (the first checkout opens the first connection).
    pub fn new(url: &str, settings: &PoolSettings) -> Result<Self, DbError> {
        let mut config = parse_url(url)?;
        bound_statements(&mut config, settings.statement_timeout);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.size.max(1))
            .wait_timeout(Some(settings.timeout))
            .create_timeout(Some(settings.timeout))
            .recycle_timeout(Some(settings.timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| pool_failure(e.to_string()))?;
        Ok(Self { pool })
    }

    /// Checks out a connection, waiting at most the configured timeout.
    pub async fn get(&self) -> Result<Object, DbError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => DbError::from(e),
            other => pool_failure(other.to_string()),
        })
    }

    /// Connections open now and how many of them are idle.
    pub fn status(&self) -> (usize, usize) {
        let status = self.pool.status();
        (status.size, status.available)
    }

    /// The most connections the pool opens.
    pub fn max_size(&self) -> usize {
        self.pool.status().max_size
    }
}

/// Opens one connection outside the pool (the migration run holds a session-level lock on it)
/// and drives it on a task of its own until the client is dropped.
pub async fn connect_one(url: &str) -> Result<tokio_postgres::Client, DbError> {
    let config = parse_url(url)?;
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    Ok(client)
}
