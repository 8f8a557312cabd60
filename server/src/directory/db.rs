//! The SQLite connection pool: opening (WAL, foreign keys on, busy timeout), migrating, and
//! running closures off the async executor.
//!
//! Owns connections and threads. Every call runs on tokio's blocking pool with one pooled
//! connection, so a query never blocks a socket task. Never holds business rules (see
//! `commands`, `queries`, `access`).
//!
//! Concurrency rules:
//! - Every write transaction begins `IMMEDIATE` ([`Db::write`], and the default behaviour of
//!   `Connection::transaction` on pooled connections): it takes the write lock before its first
//!   read, so SQLite can make a second writer wait (the busy timeout, a bounded wait with
//!   retries) instead of refusing a deferred lock upgrade at once. A `SQLITE_BUSY` that still
//!   escapes is [`DbError::is_busy`]; routes answer it with 503 and `Retry-After`.
//! - A pool slot cannot leak: the semaphore permit and the connection's [`Lease`] both move into
//!   the blocking closure, so a cancelled caller frees its slot only once the closure is done,
//!   and a panicking closure still gives the connection back (rolled back to autocommit).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use thiserror::Error;
use tokio::sync::Semaphore;

mod embedded {
    refinery::embed_migrations!("src/directory/migrations/sqlite");
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
    /// Another backend (PostgreSQL, its pool) failed; `unavailable` when retrying later can
    /// succeed (connection lost, server shutting down, pool timeout, serialization retries
    /// exhausted).
    #[error("{backend}: {source}")]
    Backend {
        /// The backend's name (`postgres`).
        backend: &'static str,
        /// Whether the failure is transient (answered 503 with `Retry-After`).
        unavailable: bool,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DbError {
    /// Whether SQLite gave up waiting for a lock (`SQLITE_BUSY`/`SQLITE_LOCKED` after the busy
    /// timeout): the request may be retried as it is.
    pub fn is_busy(&self) -> bool {
        matches!(
            self.sqlite_code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        )
    }

    /// Whether the failure is transient and the request may be retried later as it is: SQLite
    /// busy or its disk full, or an unavailable other backend. Answered 503 with `Retry-After`.
    pub fn is_unavailable(&self) -> bool {
        self.is_busy()
            || self.is_disk_full()
            || matches!(
                self,
                Self::Backend {
                    unavailable: true,
                    ..
                }
            )
    }

    /// Whether the disk (or the database's size limit) is full: writes fail until space returns,
    /// reads still work.
    pub fn is_disk_full(&self) -> bool {
        self.sqlite_code() == Some(ErrorCode::DiskFull)
    }

    fn sqlite_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Sqlite(e) => e.sqlite_error_code(),
            _ => None,
        }
    }
}

/// How long a connection waits for another writer's lock before `SQLITE_BUSY` (tests and
/// `signalbox migrate`; the server uses `database.busyTimeoutMs`).
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection with the pragmas every connection needs.
pub fn open(path: &Path) -> Result<Connection, DbError> {
    open_with(path, DEFAULT_BUSY_TIMEOUT)
}

/// [`open`] with a busy timeout of `busy_timeout`.
pub fn open_with(path: &Path, busy_timeout: Duration) -> Result<Connection, DbError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DbError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let mut conn = Connection::open(path)?;
    configure(&mut conn, busy_timeout)?;
    Ok(conn)
}

/// An in-memory database with every migration applied (tests).
pub fn open_in_memory() -> Result<Connection, DbError> {
    let mut conn = Connection::open_in_memory()?;
    configure(&mut conn, DEFAULT_BUSY_TIMEOUT)?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn configure(conn: &mut Connection, busy_timeout: Duration) -> Result<(), DbError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(busy_timeout)?;
    // A transaction that reads before it writes must hold the write lock from its start.
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
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

/// How many migrations are embedded (what an empty database gets).
pub fn migration_count() -> usize {
    embedded::migrations::runner().get_migrations().len()
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
    permits: Arc<Semaphore>,
    metrics: super::db_metrics::DbMetrics,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

/// A connection taken from the pool; it goes back when the lease drops, also while a panic
/// unwinds. A transaction the closure left open is rolled back first.
struct Lease<'a> {
    pool: &'a Inner,
    conn: Option<Connection>,
}

impl<'a> Lease<'a> {
    fn take(pool: &'a Inner) -> Option<Self> {
        let conn = pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()?;
        Some(Self {
            pool,
            conn: Some(conn),
        })
    }

    fn conn(&mut self) -> Option<&mut Connection> {
        self.conn.as_mut()
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        self.pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }
}

impl Db {
    /// Opens `size` connections to `path`, migrating first, each tuned with `settings` (page
    /// cache, busy timeout).
    pub fn open(
        path: &Path,
        size: usize,
        settings: &crate::config::database::DatabaseSettings,
    ) -> Result<Self, DbError> {
        let busy_timeout = settings.busy_timeout();
        let mut first = open_with(path, busy_timeout)?;
        migrate(&mut first)?;
        let mut conns = vec![first];
        for _ in 1..size.max(1) {
            conns.push(open_with(path, busy_timeout)?);
        }
        for conn in &conns {
            super::db_metrics::tune(conn, settings)?;
        }
        let permits = Arc::new(Semaphore::new(conns.len()));
        Ok(Self {
            inner: Arc::new(Inner {
                metrics: super::db_metrics::DbMetrics::new(conns.len()),
                idle: Mutex::new(conns),
                permits,
            }),
        })
    }

    /// The pool's gauges and query latencies.
    pub fn metrics(&self) -> &super::db_metrics::DbMetrics {
        &self.inner.metrics
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    ///
    /// The permit and the connection stay with the blocking task: if the caller's future is
    /// dropped mid-call, the slot frees only when `f` has returned and the connection is back.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let operation = super::db_metrics::operation(std::any::type_name::<F>());
        self.call_as(operation, f).await
    }

    /// [`Db::call`], timed under `operation` (the latency histogram's label).
    pub async fn call_as<T, E, F>(&self, operation: &'static str, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let waiting = self.inner.metrics.start(operation);
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|e| DbError::Worker(e.to_string()))?;
        // Counted as waiting until here; from now on the blocking task counts it as in use.
        drop(waiting);
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || {
            // Dropped in reverse order: the connection goes back, then the call is recorded,
            // then the permit frees.
            let _permit = permit;
            let mut timer = inner.metrics.start(operation);
            timer.acquired();
            let mut lease = Lease::take(&inner);
            let Some(conn) = lease.as_mut().and_then(Lease::conn) else {
                return Err(E::from(DbError::Worker("no idle connection".into())));
            };
            f(conn)
        })
        .await;
        joined.map_err(|e| E::from(DbError::Worker(e.to_string())))?
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction, committed when `f` succeeds and rolled
    /// back when it fails. Every write of the directory goes through here.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let operation = super::db_metrics::operation(std::any::type_name::<F>());
        self.call_as(operation, move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(DbError::from)?;
            let value = f(&tx)?;
            tx.commit().map_err(DbError::from)?;
            Ok(value)
        })
        .await
    }

    /// [`Db::write`], timed under `operation` (the latency histogram's label).
    pub async fn write_as<T, E, F>(&self, operation: &'static str, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.call_as(operation, move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(DbError::from)?;
            let value = f(&tx)?;
            tx.commit().map_err(DbError::from)?;
            Ok(value)
        })
        .await
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

    /// Connections currently idle in the pool (tests of the pool's bookkeeping).
    #[cfg(test)]
    fn idle_connections(&self) -> usize {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
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
        assert_eq!(applied, migration_count());
        let tables = tables(&conn);
        for table in ["users", "servers", "members", "bans", "invites", "games"] {
            assert!(tables.contains(&table.to_owned()), "{table} in {tables:?}");
        }
        assert_eq!(migrate(&mut conn).expect("again"), 0, "idempotent");
    }

    fn columns(conn: &Connection, table: &str) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .expect("prepare");
        stmt.query_map([table], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn migrations_upgrade_a_version_2_database() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate_to(&mut conn, 2).expect("version 2");
        assert!(columns(&conn, "idempotency_records").contains(&"body".to_owned()));
        let newer = embedded::migrations::runner()
            .get_migrations()
            .iter()
            .filter(|m| m.version() > 2)
            .count();
        assert_eq!(migrate(&mut conn).expect("upgrade"), newer);
        let columns = columns(&conn, "idempotency_records");
        assert!(columns.contains(&"request_hash".to_owned()), "{columns:?}");
        assert!(!columns.contains(&"body".to_owned()), "bodies are not kept");
    }

    #[test]
    fn migrations_apply_from_the_first_version() {
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
        let db = Db::open(&dir.path().join("t.db"), 2, &Default::default()).expect("open");
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_callers_and_panics_never_lose_a_connection() {
        const SIZE: usize = 4;
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("t.db"), SIZE, &Default::default()).expect("open");
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (n INTEGER)")
                .map_err(DbError::from)
        })
        .await
        .expect("table");
        // 100 callers dropped while their closure holds a connection.
        for _ in 0..100 {
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            let pool = db.clone();
            let caller = tokio::spawn(async move {
                pool.call(move |c| {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                    c.execute("INSERT INTO t (n) VALUES (1)", [])
                        .map_err(DbError::from)
                })
                .await
            });
            started_rx.await.expect("the closure started");
            caller.abort();
            assert!(caller.await.expect_err("cancelled").is_cancelled());
            release_tx.send(()).expect("release the closure");
        }
        // 20 closures that panic halfway through a transaction.
        for _ in 0..20 {
            let result: Result<(), DbError> = db
                .call(|c| {
                    let tx = c.transaction()?;
                    tx.execute("INSERT INTO t (n) VALUES (2)", [])?;
                    panic!("a bug inside a closure");
                })
                .await;
            assert!(matches!(result, Err(DbError::Worker(_))), "{result:?}");
        }
        // Once every slot is free again, every connection is back, in autocommit mode.
        let all = db
            .inner
            .permits
            .acquire_many(u32::try_from(SIZE).expect("small"))
            .await
            .expect("permits");
        assert_eq!(db.idle_connections(), SIZE);
        drop(all);
        // ...and every one of them serves, all at the same time.
        let together = Arc::new(std::sync::Barrier::new(SIZE));
        let reads = futures_util::future::join_all((0..SIZE).map(|_| {
            let together = Arc::clone(&together);
            db.call(move |c| {
                together.wait();
                let autocommit = c.is_autocommit();
                c.query_row("SELECT count(*), coalesce(sum(n), 0) FROM t", [], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, autocommit))
                })
                .map_err(DbError::from)
            })
        }))
        .await;
        for read in reads {
            // The 100 cancelled inserts committed; the 20 panicked ones rolled back.
            assert_eq!(read.expect("served"), (100, 100, true));
        }
    }

    #[tokio::test]
    async fn writes_begin_immediate_and_roll_back_on_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("t.db"), 2, &Default::default()).expect("open");
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (n INTEGER)")
                .map_err(DbError::from)
        })
        .await
        .expect("table");
        let failed: Result<(), DbError> = db
            .write(|c| {
                c.execute("INSERT INTO t (n) VALUES (1)", [])?;
                Err(DbError::Worker("refused".into()))
            })
            .await;
        assert!(failed.is_err());
        let count: i64 = db
            .call(|c| {
                c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(DbError::from)
            })
            .await
            .expect("count");
        assert_eq!(count, 0, "the failed write was rolled back");
    }

    #[test]
    fn busy_and_full_are_recognised() {
        let busy = DbError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        ));
        assert!(busy.is_busy());
        let full = DbError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        ));
        assert!(full.is_disk_full() && !full.is_busy());
        assert!(!DbError::Worker("x".into()).is_busy());
    }
}
