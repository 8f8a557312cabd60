//! The persistent directory: users, servers, roles, bans, invites, join requests, games, and the
//! credentials auth keeps (signing key, challenges, idempotency records).
//!
//! Everything outside this module reaches the directory through [`store::Directory`] (an
//! `Arc<dyn Directory>`), implemented on SQLite by [`sqlite::SqliteDirectory`]. Owns every SQL
//! statement of the server. [`commands`] writes, [`queries`] reads, both as plain typed
//! functions over a `&rusqlite::Connection` (SQLite's implementation runs them through
//! [`db::Db`]); [`access`] is the one place that decides who may join, view or moderate a
//! server, as pure rules over [`access::AccessFacts`] every backend shares.
//! Never does network I/O, never hashes or checks passwords itself beyond calling
//! [`crate::auth::password`], and never decides HTTP statuses (routes map [`DirectoryError`]).

pub mod access;
pub mod commands;
pub mod credentials;
pub mod db;
pub mod db_metrics;
pub mod idempotency;
pub mod plugin_manifests;
pub mod postgres;
pub mod queries;
pub mod sqlite;
pub mod store;

use thiserror::Error;

pub use db::{Db, DbError};
pub use sqlite::SqliteDirectory;
pub use store::{Cx, Directory, DirectoryStats, Outcome};

/// Why a directory command or query failed.
#[derive(Debug, Error)]
pub enum DirectoryError {
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The write conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The thing existed but can no longer be used (expired, revoked, used up).
    #[error("{0}")]
    Gone(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The `Idempotency-Key` was used before with a different request.
    #[error("the Idempotency-Key was used with a different request")]
    IdempotencyMismatch,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for DirectoryError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(DbError::Sqlite(e))
    }
}

/// One page of a list and the cursor of the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Splits `rows` (fetched with `limit + 1`) into a page, using `key` for the cursor.
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(key)
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}
