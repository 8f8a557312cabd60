//! Which PostgreSQL failures mean "the database is unreachable right now" (answered 503 with
//! Retry-After, and recovered from without a restart) and which are retried inside a transaction.
//!
//! Owns the SQLSTATE classification only; never retries or sleeps itself.

use tokio_postgres::error::SqlState;

use crate::directory::{DbError, DirectoryError};

/// Whether a transaction that failed with `error` should run again from the start: a
/// serialization failure (40001) or a deadlock (40P01) under SERIALIZABLE isolation.
pub fn is_retryable(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Whether `error` means the server cannot be reached, is going away or cannot take more work
/// now: a closed connection, an I/O error, SQLSTATE class 08 (connection exception), class 53
/// (insufficient resources: too many connections, disk full, out of memory) or 57P01-57P03
/// (admin shutdown, crash shutdown, cannot connect now).
pub fn is_unreachable(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(code, "57P01" | "57P02" | "57P03")
        }
        // No SQLSTATE: the failure happened below the protocol (socket, timeout, TLS).
        None => error.as_db_error().is_none() && source_is_io(error),
    }
}

fn source_is_io(error: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    // tokio-postgres reports a connect timeout and an unexpected end of stream without an
    // io::Error source; its message names them.
    let text = error.to_string();
    text.contains("timeout") || text.contains("closed") || text.contains("connection")
}

/// Whether `error` is a statement cut by the session's bounds: `statement_timeout` (57014,
/// query canceled) or `lock_timeout` (55P03, lock not available). The session itself is fine.
pub fn is_timeout(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(c) if *c == SqlState::QUERY_CANCELED || *c == SqlState::LOCK_NOT_AVAILABLE
    )
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Backend {
            backend: "postgres",
            unavailable: is_unreachable(&error) || is_retryable(&error) || is_timeout(&error),
            source: Box::new(error),
        }
    }
}

impl From<tokio_postgres::Error> for DirectoryError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(error.into())
    }
}

/// A pool failure (no connection in time, pool closed): always unavailable.
pub fn pool_failure(message: String) -> DbError {
    DbError::Backend {
        backend: "postgres",
        unavailable: true,
        source: message.into(),
    }
}

/// Whether a directory call failed because its connection's session is gone (see
/// [`is_unreachable`]).
pub fn is_unreachable_failure(error: &DirectoryError) -> bool {
    match error {
        DirectoryError::Db(DbError::Backend { source, .. }) => source
            .downcast_ref::<tokio_postgres::Error>()
            .is_some_and(is_unreachable),
        _ => false,
    }
}

/// Whether a directory call failed with a retryable PostgreSQL error (see [`is_retryable`]).
pub fn is_retryable_failure(error: &DirectoryError) -> bool {
    match error {
        DirectoryError::Db(DbError::Backend { source, .. }) => source
            .downcast_ref::<tokio_postgres::Error>()
            .is_some_and(is_retryable),
        _ => false,
    }
}
