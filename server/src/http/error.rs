//! The one error type of the REST routes.

use signalbox_protocol::http::{ApiError, ApiErrorCode};
use thiserror::Error;
use warp::http::StatusCode;
use warp::reply::Reply;

use crate::auth::AuthError;
use crate::directory::DirectoryError;

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

    /// The full response.
    pub fn into_response(self) -> warp::reply::Response {
        crate::telemetry::levels::refusal(self.code, self.status().as_u16());
        warp::reply::with_status(warp::reply::json(&self.body()), self.status()).into_response()
    }
}

impl From<DirectoryError> for ApiFailure {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::NotFound(what) => Self::not_found(what),
            DirectoryError::Conflict(m) => Self::new(ApiErrorCode::Conflict, m),
            DirectoryError::Gone(m) => Self::new(ApiErrorCode::Gone, m),
            DirectoryError::Forbidden(m) => Self::forbidden(m),
            DirectoryError::Db(e) => Self::internal(&e),
        }
    }
}

impl From<crate::directory::DbError> for ApiFailure {
    fn from(e: crate::directory::DbError) -> Self {
        Self::internal(&e)
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
