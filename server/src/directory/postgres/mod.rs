//! The directory on PostgreSQL (issue 13): the connection pool, the migration run under an
//! advisory lock, and the same commands and queries as the SQLite modules in PostgreSQL's dialect.
//!
//! Owns every PostgreSQL statement of the server. Never logs the connection URL (it may carry a
//! password), never decides HTTP statuses (a failure to reach the server is reported as
//! an unavailable [`DbError::Backend`](super::DbError::Backend), which callers
//! answer with 503), and never holds a session-level advisory lock on a connection it gives
//! back to the pool.

pub mod commands;
pub mod directory;
pub mod failure;
pub mod migrate;
pub mod pool;
pub mod queries;
pub mod transaction;

pub use directory::PgDirectory;
pub use migrate::{MIGRATION_LOCK, migrate};
pub use pool::{PgPool, PoolSettings};
