//! `Idempotency-Key` on writes: the same key and body from the same user within 24 h gets the
//! first answer again instead of acting twice; the same key with another body gets 422.
//!
//! Owns the replay decision only; records live in the database (see
//! [`crate::directory::credentials`]). Only successful answers are recorded, so a failed write
//! may be retried with the same key.

use signalbox_protocol::TimestampMs;
use signalbox_protocol::http::ApiErrorCode;

use super::ApiFailure;
use crate::directory::credentials::IdempotencyRecord;

/// How long a key is remembered, in milliseconds.
pub const WINDOW_MS: i64 = 24 * 3600 * 1000;

/// The longest key accepted.
pub const MAX_KEY_BYTES: usize = 255;

/// The cut-off for records still valid at `now`.
pub fn since(now: TimestampMs) -> TimestampMs {
    TimestampMs(now.0 - WINDOW_MS)
}

/// What to do with a request whose key has `previous` on record.
pub fn replay(
    previous: &IdempotencyRecord,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, String), ApiFailure> {
    if previous.method == method && previous.path == path && previous.body == body {
        Ok((previous.status, previous.response.clone()))
    } else {
        Err(ApiFailure::new(
            ApiErrorCode::IdempotencyMismatch,
            "the Idempotency-Key was used with a different request",
        ))
    }
}

/// Checks the key's shape.
pub fn validate_key(key: &str) -> Result<(), ApiFailure> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        Err(ApiFailure::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_BYTES} bytes"
        )))
    } else {
        Ok(())
    }
}
