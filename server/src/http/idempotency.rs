//! `Idempotency-Key` on writes, at the HTTP edge: the key's shape and the purge of expired
//! records. The claim, its record and the replay decision are directory data
//! ([`crate::directory::idempotency`], re-exported here); a write's record is looked up and
//! stored inside the write's own transaction by the [`Directory`] backend, so a concurrent
//! duplicate waits for the first and then replays its answer, and a crash leaves either the
//! change with its record or neither.
//!
//! Never stores a request body (only its hash), and for a secret-bearing route (a password in
//! the body) keeps the status only. Only successful answers are recorded, so a failed write may
//! be retried with the same key.

use std::sync::Arc;
use std::time::Duration;

use signalbox_protocol::TimestampMs;

use super::ApiFailure;
use crate::directory::Directory;
pub use crate::directory::idempotency::{Claim, Replayed, request_hash};

/// The longest key accepted.
pub const MAX_KEY_BYTES: usize = 255;

/// The longest pause between two purges of expired records.
pub const MAX_PURGE_INTERVAL: Duration = Duration::from_secs(3600);

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

/// Deletes expired records now and then, for as long as the server runs.
pub async fn purge_expired(directory: Arc<dyn Directory>, ttl_ms: i64) {
    let every = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)).min(MAX_PURGE_INTERVAL);
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    loop {
        tick.tick().await;
        let cutoff = TimestampMs(TimestampMs::now().0 - ttl_ms);
        match directory
            .purge_idempotency(&crate::op!("purge_expired"), cutoff)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired Idempotency-Key records purged"),
            Err(e) => tracing::warn!(error = %e, "purging Idempotency-Key records failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded() {
        assert!(validate_key("k").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key(&"k".repeat(MAX_KEY_BYTES + 1)).is_err());
    }
}
