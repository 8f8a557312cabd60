//! How [`super::PgDirectory`] runs a call on PostgreSQL: one pooled connection per call, writes in
//! SERIALIZABLE transactions retried on serialization failures and deadlocks, multi-query reads
//! in REPEATABLE READ READ ONLY snapshots, and a session-level advisory lock per idempotency scope
//! taken before `BEGIN` (so a concurrent duplicate's snapshot is taken after the first
//! committed: it replays without a retry).
//!
//! Owns the retry policy and the scope lock's lifetime. Never lets a connection that may still
//! hold a scope lock go back to the pool: [`ScopeLock`] closes it instead (the lock dies with
//! the session), whether the call failed or its future was dropped.

use std::time::Duration;

use deadpool_postgres::Object;

use crate::directory::DirectoryError;
use crate::directory::idempotency::IdempotencyScope;

use super::failure::{is_retryable_failure, is_unreachable_failure};

/// Attempts of one write before a serialization failure is answered as unavailable (503).
pub const MAX_ATTEMPTS: u32 = 5;

/// Whether a failed attempt runs again (after [`backoff`]).
pub fn should_retry(error: &DirectoryError, attempt: u32) -> bool {
    attempt < MAX_ATTEMPTS && is_retryable_failure(error)
}

/// A random pause of 5-50 ms before the next attempt, so colliding writers spread out.
pub async fn backoff() {
    let ms = rand::random_range(5..=50);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Gives `conn` back to the pool, unless `result` says its session is gone (the server closed
/// it or went away): then it is detached and dropped, so the next call opens a fresh one
/// instead of meeting the same dead session.
pub fn recycle<T>(conn: Object, result: &Result<T, DirectoryError>) {
    if matches!(result, Err(e) if is_unreachable_failure(e)) {
        drop(Object::take(conn));
    }
}

/// A pooled connection that may hold the advisory lock of one idempotency scope.
pub struct ScopeLock {
    conn: Option<Object>,
    locked: bool,
}

impl ScopeLock {
    /// Wraps a checked-out connection (no lock held yet).
    pub fn new(conn: Object) -> Self {
        Self {
            conn: Some(conn),
            locked: false,
        }
    }

    /// The connection.
    pub fn conn(&mut self) -> &mut Object {
        // Only `Drop` takes it out.
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }

    /// Waits for the lock of `scope` (concurrent holders are writes with the same key).
    pub async fn lock(&mut self, scope: &IdempotencyScope) -> Result<(), DirectoryError> {
        let key = format!("{}\u{1f}{}\u{1f}{}", scope.user, scope.route, scope.key);
        self.locked = true;
        self.conn()
            .execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", &[&key])
            .await?;
        Ok(())
    }

    /// Releases the lock; if that fails, or `result` says the session is gone, the connection
    /// is closed on drop instead of going back to the pool.
    pub async fn release<T>(&mut self, result: &Result<T, DirectoryError>) {
        if matches!(result, Err(e) if is_unreachable_failure(e)) {
            self.locked = true;
            return;
        }
        if !self.locked {
            return;
        }
        if self
            .conn()
            .execute("SELECT pg_advisory_unlock_all()", &[])
            .await
            .is_ok()
        {
            self.locked = false;
        }
    }
}

impl Drop for ScopeLock {
    fn drop(&mut self) {
        if self.locked
            && let Some(conn) = self.conn.take()
        {
            // Detached from the pool and dropped: the session ends and its lock with it.
            drop(Object::take(conn));
        }
    }
}
