//! The one error shape of the HTTP API.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Error codes of the HTTP API, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApiErrorCode {
    /// 400: the body or query is malformed or a field is missing or invalid (the message names
    /// the field by its JSON path and the expected type). Display text follows one rule on every
    /// transport: names, ids and tags refuse control characters (Unicode `Cc`); multi-line text
    /// (descriptions, messages, reasons) allows only line feed, carriage return and tab among
    /// them.
    BadRequest,
    /// 400: the body is JSON of the wrong shape (an array or a scalar where the route takes an
    /// object); the message names the expected shape.
    InvalidBody,
    /// 401: no token, or a forged or malformed one.
    Unauthorized,
    /// 401: the token has expired.
    TokenExpired,
    /// 403: the caller may not do this.
    Forbidden,
    /// 404: no such resource.
    NotFound,
    /// 409: the request conflicts with the current state (a duplicate, a reused key).
    Conflict,
    /// 410: the resource existed but is gone (an expired invite or challenge).
    Gone,
    /// 413: the body exceeds the size limit.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: the `Idempotency-Key` was used before with a different body.
    IdempotencyMismatch,
    /// 429: too many requests.
    RateLimited,
    /// 500: the server failed; the request may be retried.
    Internal,
    /// 503: the server is not ready (draining, or the database is unreachable), or a feature is
    /// switched off by the operator.
    Unavailable,
    /// 403: the outbound guard refused the URL of a fetch the server was asked to make (a
    /// scheme other than http/https, user information, or an address in a forbidden range such
    /// as loopback, private or link-local); the message names the reason and the range.
    OutboundRefused,
    /// 502: an upstream the server fetched from failed (unreachable, an error status, too many
    /// redirects, a wrong content type, a body or headers over the limit); the message says which.
    UpstreamFailed,
    /// 504: an upstream the server fetched from did not answer within the time limit.
    UpstreamTimeout,
}

impl ApiErrorCode {
    /// The HTTP status this code is sent with.
    pub const fn status(self) -> u16 {
        match self {
            Self::BadRequest | Self::InvalidBody => 400,
            Self::Unauthorized | Self::TokenExpired => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::Gone => 410,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::IdempotencyMismatch => 422,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
            Self::OutboundRefused => 403,
            Self::UpstreamFailed => 502,
            Self::UpstreamTimeout => 504,
        }
    }
}

/// The body of every HTTP API error: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
pub struct ApiError {
    /// What went wrong.
    pub error: ApiErrorDetail,
}

/// The inside of [`ApiError`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
pub struct ApiErrorDetail {
    /// What went wrong, for programs.
    pub code: ApiErrorCode,
    /// What went wrong, for people (names the field or limit at fault; never a secret).
    pub message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ApiErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ApiErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}
