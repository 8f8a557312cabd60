//! The one error type of the REST routes.

use signalbox_protocol::http::{ApiError, ApiErrorCode};
use thiserror::Error;
use warp::http::StatusCode;
use warp::reply::Reply;

use crate::auth::AuthError;
use crate::directory::DirectoryError;
use crate::outbound::OutboundError;

/// A failed request: the code (which fixes the status) and a message for people.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{code:?}: {message}")]
pub struct ApiFailure {
    /// The code sent.
    pub code: ApiErrorCode,
    /// The message sent (never a secret).
    pub message: String,
}

impl ApiFailure {
    /// A failure with `code` and `message`.
    pub fn new(code: ApiErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// 400 `BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::BadRequest, message)
    }

    /// 404 `NOT_FOUND` for `what`.
    pub fn not_found(what: &str) -> Self {
        Self::new(ApiErrorCode::NotFound, format!("{what} not found"))
    }

    /// 403 `FORBIDDEN`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::Forbidden, message)
    }

    /// 500 `INTERNAL`; the cause is logged, not sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            ApiErrorCode::Internal,
            "internal error; the request may be retried",
        )
    }

    /// The HTTP status of this failure.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The `ApiError` body.
    pub fn body(&self) -> ApiError {
        ApiError::new(self.code, self.message.clone())
    }

    /// The full response. Every 503 carries `Retry-After` (seconds): the condition is
    /// temporary (a busy or full database, a draining server).
    pub fn into_response(self) -> warp::reply::Response {
        crate::telemetry::levels::refusal(self.code, self.status().as_u16());
        let mut response = warp::reply::with_status(warp::reply::json(&self.body()), self.status())
            .into_response();
        if self.code == ApiErrorCode::Unavailable {
            response.headers_mut().insert(
                warp::http::header::RETRY_AFTER,
                warp::http::HeaderValue::from(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// The `Retry-After` of a 503, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 1;

impl From<DirectoryError> for ApiFailure {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::NotFound(what) => Self::not_found(what),
            DirectoryError::Conflict(m) => Self::new(ApiErrorCode::Conflict, m),
            DirectoryError::Gone(m) => Self::new(ApiErrorCode::Gone, m),
            DirectoryError::Forbidden(m) => Self::forbidden(m),
            DirectoryError::IdempotencyMismatch => {
                Self::new(ApiErrorCode::IdempotencyMismatch, e.to_string())
            }
            DirectoryError::Db(e) => Self::from(e),
        }
    }
}

impl From<crate::directory::DbError> for ApiFailure {
    /// A busy database (another writer held the lock past the busy timeout) or a full disk is
    /// 503 `UNAVAILABLE` with `Retry-After`, never 500: retrying later can succeed.
    fn from(e: crate::directory::DbError) -> Self {
        if e.is_busy() {
            tracing::warn!(error = %e, "database busy past the busy timeout");
            Self::new(
                ApiErrorCode::Unavailable,
                "the database is busy; retry after a moment",
            )
        } else if e.is_disk_full() {
            tracing::error!(error = %e, "database write refused: disk full");
            Self::new(
                ApiErrorCode::Unavailable,
                "the server's storage is full; writes are refused until space is freed",
            )
        } else if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            Self::new(
                ApiErrorCode::Unavailable,
                "the database is unavailable; retry after a moment",
            )
        } else {
            Self::internal(&e)
        }
    }
}

impl From<AuthError> for ApiFailure {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Invalid(_) => {
                Self::new(ApiErrorCode::Unauthorized, e.to_string())
            }
            AuthError::Expired => Self::new(ApiErrorCode::TokenExpired, e.to_string()),
        }
    }
}

impl From<OutboundError> for ApiFailure {
    fn from(e: OutboundError) -> Self {
        tracing::debug!(reason = e.reason(), "outbound fetch failed");
        Self::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::DbError;

    fn sqlite(code: i32) -> DbError {
        DbError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    }

    #[test]
    fn a_busy_or_full_database_is_503_with_retry_after_never_500() {
        for code in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_FULL] {
            let failure = ApiFailure::from(DirectoryError::Db(sqlite(code)));
            assert_eq!(failure.code, ApiErrorCode::Unavailable);
            let response = failure.into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                response.headers().get(warp::http::header::RETRY_AFTER),
                Some(&warp::http::HeaderValue::from(RETRY_AFTER_SECONDS))
            );
        }
        let other = ApiFailure::from(sqlite(rusqlite::ffi::SQLITE_CORRUPT));
        assert_eq!(other.code, ApiErrorCode::Internal);
    }

    #[test]
    fn another_backend_unavailable_is_503_and_its_other_failures_500() {
        let backend = |unavailable| DbError::Backend {
            backend: "postgres",
            unavailable,
            source: "connection refused".into(),
        };
        let failure = ApiFailure::from(DirectoryError::Db(backend(true)));
        assert_eq!(failure.code, ApiErrorCode::Unavailable);
        let response = failure.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            response
                .headers()
                .contains_key(warp::http::header::RETRY_AFTER)
        );
        let failure = ApiFailure::from(DirectoryError::Db(backend(false)));
        assert_eq!(failure.code, ApiErrorCode::Internal);
        let mismatch = ApiFailure::from(DirectoryError::IdempotencyMismatch);
        assert_eq!(mismatch.code, ApiErrorCode::IdempotencyMismatch);
    }
}
