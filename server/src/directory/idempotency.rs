//! The data of `Idempotency-Key` on writes, shared by every directory backend: the claim a
//! request makes ([`Claim`]: caller + route + key, and the SHA-256 of the canonical request),
//! the record a finished write leaves ([`IdempotencyRecord`]) and the replay decision.
//!
//! A backend looks a claim's record up and stores it inside the write's own transaction (see
//! [`super::store::Directory`]), so a concurrent duplicate waits for the first and then replays
//! its answer, and a crash leaves either the change with its record or neither.
//!
//! Never stores a request body (only its hash), and for a secret-bearing route (a password in the
//! body) keeps the status only. Never decides HTTP statuses: a mismatch is
//! [`DirectoryError::IdempotencyMismatch`], which `crate::http` maps to 422.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use signalbox_protocol::TimestampMs;
use signalbox_protocol::http::OkResponse;

use super::DirectoryError;
pub use super::credentials::{IdempotencyRecord, IdempotencyScope};

/// The answer of a command that has nothing else to say (`{"ok":true}`), on every backend.
pub const OK: OkResponse = OkResponse { ok: true };

/// The JSON text an idempotency record keeps of a command's answer, on every backend.
pub fn answer_text<T: serde::Serialize>(value: &T) -> Result<String, super::DbError> {
    Ok(serde_json::to_value(value)
        .map_err(|e| super::DbError::Worker(format!("answer does not serialize: {e}")))?
        .to_string())
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

    /// The cut-off for records still valid at `now`: a record made at or before it is expired.
    pub fn since(&self, now: TimestampMs) -> TimestampMs {
        TimestampMs(now.0 - self.ttl_ms)
    }

    /// The stored answer to send again, or [`DirectoryError::IdempotencyMismatch`] when the key
    /// was used with another request.
    pub fn replay(&self, previous: &IdempotencyRecord) -> Result<Replayed, DirectoryError> {
        if previous.request_hash != self.request_hash {
            return Err(DirectoryError::IdempotencyMismatch);
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

    /// The record that stores `status` and `response` as this claim's answer (the response
    /// dropped on a secret-bearing route).
    pub fn record(&self, status: u16, response: &str) -> IdempotencyRecord {
        IdempotencyRecord {
            request_hash: self.request_hash.clone(),
            status,
            response: self.keep_response.then(|| response.to_owned()),
        }
    }

    /// Notes that a backend looked up or stored this claim's record inside a write's
    /// transaction (so the router does not store it again after the fact).
    pub fn mark_handled(&self) {
        self.handled.store(true, Ordering::Relaxed);
    }

    /// Whether a write's transaction already looked up or stored the record.
    pub fn handled(&self) -> bool {
        self.handled.load(Ordering::Relaxed)
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
        let record = first.record(201, r#"{"id":"s"}"#);
        assert_eq!(
            first.replay(&record).expect("same"),
            Replayed {
                status: 201,
                text: r#"{"id":"s"}"#.into()
            }
        );
        let other = claim(br#"{"name":"y"}"#, true);
        assert!(matches!(
            other.replay(&record),
            Err(DirectoryError::IdempotencyMismatch)
        ));
    }

    #[test]
    fn secret_routes_keep_the_status_only() {
        let secret = claim(br#"{"password":"hunter2"}"#, false);
        let stored = secret.record(200, r#"{"ok":true}"#);
        assert_eq!(stored.response, None);
        let text = format!("{stored:?}");
        assert!(!text.contains("hunter2"), "{text}");
        let replayed = secret.replay(&stored).expect("same");
        assert_eq!(replayed.status, 200);
        assert_eq!(replayed.text, r#"{"ok":true}"#);
    }
}
