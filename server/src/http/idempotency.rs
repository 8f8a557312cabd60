//! `Idempotency-Key` on writes: the same key and request from the same caller on the same route,
//! within `database.idempotencyTtlSeconds`, gets the first answer again instead of acting twice;
//! the same key with another request gets 422 `IDEMPOTENCY_MISMATCH`.
//!
//! Owns the claim a request makes ([`Claim`]: caller + route + key, and the SHA-256 of the
//! canonical request), the replay decision, and the purge of expired records. The record of a
//! write is looked up and stored inside the write's own `BEGIN IMMEDIATE` transaction (see
//! `routes::Req::write`), so a concurrent duplicate waits for the first and then replays its
//! answer, and a crash leaves either the change with its record or neither.
//!
//! Never stores a request body (only its hash), and for a secret-bearing route (a password in
//! the body) keeps the status only. Only successful answers are recorded, so a failed write may
//! be retried with the same key.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use signalbox_protocol::TimestampMs;
use signalbox_protocol::http::{ApiErrorCode, OkResponse};

use super::ApiFailure;
use crate::directory::credentials::{self, IdempotencyRecord, IdempotencyScope};
use crate::directory::{Db, DirectoryError};

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

/// SHA-256 of the canonical request: the method, the path as sent, and the body, a JSON body
/// re-serialized compactly with its object keys sorted (so whitespace and key order do not make
/// two equal requests differ), any other body as sent.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| serde_json::to_vec(&value).ok());
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(canonical.as_deref().unwrap_or(body));
    hasher.finalize().to_vec()
}

/// What an idempotent request claims: its record's scope and what a stored record must match.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Caller, route and key.
    pub scope: IdempotencyScope,
    /// [`request_hash`] of this request.
    pub request_hash: Vec<u8>,
    /// Whether the answer is kept (`false` on secret-bearing routes: status only).
    pub keep_response: bool,
    /// How long records count, in milliseconds.
    pub ttl_ms: i64,
    /// Set once the record was looked up or stored inside the write's transaction.
    handled: Arc<AtomicBool>,
}

/// A stored answer, sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The status first answered.
    pub status: u16,
    /// The JSON first answered.
    pub text: String,
}

impl Claim {
    /// A claim of `key` by `user` on `route` (`METHOD /template`) for the request
    /// `method path body`.
    pub fn new(
        user: &str,
        route: String,
        key: String,
        request: (&str, &str, &[u8]),
        keep_response: bool,
        ttl_ms: i64,
    ) -> Self {
        let (method, path, body) = request;
        Self {
            scope: IdempotencyScope {
                user: user.to_owned(),
                route,
                key,
            },
            request_hash: request_hash(method, path, body),
            keep_response,
            ttl_ms,
            handled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The cut-off for records still valid at `now`.
    pub fn since(&self, now: TimestampMs) -> TimestampMs {
        TimestampMs(now.0 - self.ttl_ms)
    }

    /// The stored answer to send again, or 422 when the key was used with another request.
    pub fn replay(&self, previous: &IdempotencyRecord) -> Result<Replayed, ApiFailure> {
        if previous.request_hash != self.request_hash {
            return Err(ApiFailure::new(
                ApiErrorCode::IdempotencyMismatch,
                "the Idempotency-Key was used with a different request",
            ));
        }
        let text = match &previous.response {
            Some(text) => text.clone(),
            // Secret-bearing routes answer `OkResponse`; only the status was kept.
            None => serde_json::to_string(&OkResponse { ok: true })
                .unwrap_or_else(|_| r#"{"ok":true}"#.to_owned()),
        };
        Ok(Replayed {
            status: previous.status,
            text,
        })
    }

    /// Inside a write's transaction: the stored answer for this claim, if there is one (422 when
    /// the key was used with another request). Marks the claim handled.
    pub fn lookup(&self, conn: &rusqlite::Connection) -> Result<Option<Replayed>, ApiFailure> {
        self.handled.store(true, Ordering::Relaxed);
        let now = TimestampMs::now();
        credentials::idempotency_record(conn, &self.scope, self.since(now))?
            .map(|previous| self.replay(&previous))
            .transpose()
    }

    /// Inside a write's transaction: stores `status` and `response` as this claim's answer.
    pub fn store(
        &self,
        conn: &rusqlite::Connection,
        status: u16,
        response: &str,
    ) -> Result<(), DirectoryError> {
        self.handled.store(true, Ordering::Relaxed);
        let record = IdempotencyRecord {
            request_hash: self.request_hash.clone(),
            status,
            response: self.keep_response.then(|| response.to_owned()),
        };
        credentials::store_idempotency_record(conn, &self.scope, &record, TimestampMs::now())
    }

    /// Whether the route's handler already looked up or stored the record in its transaction.
    pub fn handled(&self) -> bool {
        self.handled.load(Ordering::Relaxed)
    }
}

/// Deletes expired records now and then, for as long as the server runs.
pub async fn purge_expired(db: Db, ttl_ms: i64) {
    let every = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)).min(MAX_PURGE_INTERVAL);
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    loop {
        tick.tick().await;
        let cutoff = TimestampMs(TimestampMs::now().0 - ttl_ms);
        match db
            .write(move |c| credentials::purge_idempotency_records(c, cutoff))
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

    fn claim(body: &[u8], keep: bool) -> Claim {
        Claim::new(
            "u",
            "POST /api/servers".into(),
            "k".into(),
            ("POST", "/api/servers", body),
            keep,
            1000,
        )
    }

    #[test]
    fn equal_json_hashes_equal_and_other_requests_differ() {
        let a = request_hash("POST", "/p", br#"{"a":1,"b":[1,2]}"#);
        assert_eq!(
            a,
            request_hash("POST", "/p", b"{ \"b\": [1, 2],\n \"a\": 1 }")
        );
        assert_eq!(a.len(), 32);
        assert_ne!(a, request_hash("POST", "/p", br#"{"a":2,"b":[1,2]}"#));
        assert_ne!(a, request_hash("PATCH", "/p", br#"{"a":1,"b":[1,2]}"#));
        assert_ne!(a, request_hash("POST", "/q", br#"{"a":1,"b":[1,2]}"#));
        assert_ne!(
            request_hash("POST", "/p", b"not json"),
            request_hash("POST", "/p", b"not  json")
        );
    }

    #[test]
    fn a_record_replays_for_the_same_request_only() {
        let first = claim(br#"{"name":"x"}"#, true);
        let record = IdempotencyRecord {
            request_hash: first.request_hash.clone(),
            status: 201,
            response: Some(r#"{"id":"s"}"#.into()),
        };
        assert_eq!(
            first.replay(&record).expect("same"),
            Replayed {
                status: 201,
                text: r#"{"id":"s"}"#.into()
            }
        );
        let other = claim(br#"{"name":"y"}"#, true);
        assert_eq!(
            other.replay(&record).expect_err("different").code,
            ApiErrorCode::IdempotencyMismatch
        );
    }

    #[test]
    fn secret_routes_keep_the_status_only() {
        let conn = crate::directory::db::open_in_memory().expect("db");
        let secret = claim(br#"{"password":"hunter2"}"#, false);
        secret.store(&conn, 200, r#"{"ok":true}"#).expect("store");
        let stored = credentials::idempotency_record(&conn, &secret.scope, TimestampMs(0))
            .expect("read")
            .expect("stored");
        assert_eq!(stored.response, None);
        let text = format!("{stored:?}");
        assert!(!text.contains("hunter2"), "{text}");
        let replayed = secret.lookup(&conn).expect("lookup").expect("found");
        assert_eq!(replayed.status, 200);
        assert_eq!(replayed.text, r#"{"ok":true}"#);
        assert!(secret.handled());
    }

    #[test]
    fn keys_are_bounded() {
        assert!(validate_key("k").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key(&"k".repeat(MAX_KEY_BYTES + 1)).is_err());
    }
}
