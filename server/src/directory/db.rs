//! The SQLite connection pool: opening (WAL, foreign keys on, busy timeout), migrating, and
//! running closures off the async executor.
//!
//! Owns connections and threads. Every call runs on tokio's blocking pool with one pooled
//! connection, so a query never blocks a socket task. Never holds business rules (see
//! `commands`, `queries`, `access`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use thiserror::Error;
use tokio::sync::Semaphore;

mod embedded {
    refinery::embed_migrations!("src/directory/migrations");
}

/// A database failure.
#[derive(Debug, Error)]
pub enum DbError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migration(#[from] refinery::Error),
    /// The database directory could not be created.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The blocking task panicked or the pool was closed.
    #[error("database worker failed: {0}")]
    Worker(String),
}

/// Opens a connection with the pragmas every connection needs.
pub fn open(path: &Path) -> Result<Connection, DbError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DbError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let conn = Connection::open(path)?;
    configure(&conn)?;
    Ok(conn)
}

/// An in-memory database with every migration applied (tests).
pub fn open_in_memory() -> Result<Connection, DbError> {
    let mut conn = Connection::open_in_memory()?;
    configure(&conn)?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<(), DbError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Applies every pending migration; returns how many were applied.
pub fn migrate(conn: &mut Connection) -> Result<usize, DbError> {
    let report = embedded::migrations::runner().run(conn)?;
    Ok(report.applied_migrations().len())
}

/// Applies migrations up to and including `version` (tests of upgrades).
pub fn migrate_to(conn: &mut Connection, version: i32) -> Result<usize, DbError> {
    let report = embedded::migrations::runner()
        .set_target(refinery::Target::Version(version))
        .run(conn)?;
    Ok(report.applied_migrations().len())
}

/// The version of the newest embedded migration.
pub fn latest_version() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// Opens the file at `path` and applies pending migrations (`signalbox migrate`).
pub fn migrate_file(path: &Path) -> Result<usize, DbError> {
    let mut conn = open(path)?;
    migrate(&mut conn)
}

/// A small pool of connections used from async code.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Opens `size` connections to `path`, migrating first.
    pub fn open(path: &Path, size: usize) -> Result<Self, DbError> {
        let mut first = open(path)?;
        migrate(&mut first)?;
        let mut conns = vec![first];
        for _ in 1..size.max(1) {
            conns.push(open(path)?);
        }
        let permits = Semaphore::new(conns.len());
        Ok(Self {
            inner: Arc::new(Inner {
                idle: Mutex::new(conns),
                permits,
            }),
        })
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|e| DbError::Worker(e.to_string()))?;
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || {
            let conn = inner
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some(mut conn) = conn else {
                return Err(E::from(DbError::Worker("no idle connection".into())));
            };
            let result = f(&mut conn);
            inner
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            result
        })
        .await;
        drop(permit);
        joined.map_err(|e| E::from(DbError::Worker(e.to_string())))?
    }

    /// Whether the database answers (`GET /api/ready`).
    pub async fn ping(&self) -> bool {
        self.call(|conn| {
            conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                .map_err(DbError::from)
        })
        .await
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .expect("prepare");
        stmt.query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn all_migrations_apply_to_an_empty_database() {
        let mut conn = Connection::open_in_memory().expect("open");
        let applied = migrate(&mut conn).expect("migrate");
        assert_eq!(
            applied,
            usize::try_from(latest_version()).expect("positive")
        );
        let tables = tables(&conn);
        for table in ["users", "servers", "members", "bans", "invites", "games"] {
            assert!(tables.contains(&table.to_owned()), "{table} in {tables:?}");
        }
        assert_eq!(migrate(&mut conn).expect("again"), 0, "idempotent");
    }

    #[test]
    fn migrations_apply_to_the_previous_version() {
        let mut conn = Connection::open_in_memory().expect("open");
        let latest = latest_version();
        assert!(latest >= 2);
        migrate_to(&mut conn, 1).expect("first version");
        assert!(!tables(&conn).contains(&"auth_challenges".to_owned()));
        let later = usize::try_from(latest - 1).expect("positive");
        assert_eq!(migrate(&mut conn).expect("upgrade"), later);
        assert!(tables(&conn).contains(&"auth_challenges".to_owned()));
    }

    #[tokio::test]
    async fn pool_runs_off_the_executor_with_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("t.db"), 2).expect("open");
        assert!(db.ping().await);
        let mode: String = db
            .call(|c| {
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .map_err(DbError::from)
            })
            .await
            .expect("pragma");
        assert_eq!(mode, "wal");
    }
}
