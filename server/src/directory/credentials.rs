//! What auth and the HTTP layer persist: the token signing key, single-use challenges, and
//! `Idempotency-Key` records.
//!
//! Never interprets a key or a signature (see [`crate::auth`]); never logs a stored value.

use rusqlite::{Connection, OptionalExtension, params};
use signalbox_protocol::TimestampMs;

use super::DirectoryError;

/// The stored signing secret, or `fresh` stored as it when there is none yet.
pub fn signing_key_or_insert(
    conn: &Connection,
    fresh: &[u8],
    now: TimestampMs,
) -> Result<Vec<u8>, DirectoryError> {
    conn.execute(
        "INSERT INTO signing_keys (id, secret, created_at) VALUES (1, ?1, ?2) \
         ON CONFLICT (id) DO NOTHING",
        params![fresh, now.0],
    )?;
    Ok(
        conn.query_row("SELECT secret FROM signing_keys WHERE id = 1", [], |row| {
            row.get(0)
        })?,
    )
}

/// Stores a challenge for `public_key`.
pub fn insert_challenge(
    conn: &Connection,
    id: &str,
    public_key: &str,
    challenge: &str,
    expires_at: TimestampMs,
) -> Result<(), DirectoryError> {
    conn.execute(
        "INSERT INTO auth_challenges (id, public_key, challenge, expires_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![id, public_key, challenge, expires_at.0],
    )?;
    Ok(())
}

/// Marks the challenge `id` used and returns its public key and challenge. Fails with
/// `NotFound` if unknown, `Gone` if already used or expired: a challenge works once.
pub fn consume_challenge(
    conn: &Connection,
    id: &str,
    now: TimestampMs,
) -> Result<(String, String), DirectoryError> {
    let row: Option<(String, String, i64, Option<i64>)> = conn
        .query_row(
            "SELECT public_key, challenge, expires_at, used_at FROM auth_challenges WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    let (public_key, challenge, expires_at, used_at) =
        row.ok_or(DirectoryError::NotFound("challenge"))?;
    if used_at.is_some() {
        return Err(DirectoryError::Gone(
            "the challenge was already used".into(),
        ));
    }
    if expires_at <= now.0 {
        return Err(DirectoryError::Gone("the challenge has expired".into()));
    }
    let updated = conn.execute(
        "UPDATE auth_challenges SET used_at = ?2 WHERE id = ?1 AND used_at IS NULL",
        params![id, now.0],
    )?;
    if updated == 0 {
        return Err(DirectoryError::Gone(
            "the challenge was already used".into(),
        ));
    }
    conn.execute(
        "DELETE FROM auth_challenges WHERE expires_at < ?1",
        [now.0 - 24 * 3600 * 1000],
    )?;
    Ok((public_key, challenge))
}

/// Which `Idempotency-Key` a record answers: caller, route (method and path template) and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyScope {
    /// The caller's user id.
    pub user: String,
    /// `METHOD /path/{template}`.
    pub route: String,
    /// The key the client sent.
    pub key: String,
}

/// A stored answer to an `Idempotency-Key`. Never holds the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// SHA-256 of the canonical request (see [`crate::http::idempotency`]).
    pub request_hash: Vec<u8>,
    /// The status answered.
    pub status: u16,
    /// The JSON answered; `None` for a route whose answer is not kept (secret-bearing routes).
    pub response: Option<String>,
}

/// The record of `scope` made after `since`, if any.
pub fn idempotency_record(
    conn: &Connection,
    scope: &IdempotencyScope,
    since: TimestampMs,
) -> Result<Option<IdempotencyRecord>, DirectoryError> {
    Ok(conn
        .query_row(
            "SELECT request_hash, status, response FROM idempotency_records \
             WHERE user_id = ?1 AND route = ?2 AND key = ?3 AND created_at > ?4",
            params![scope.user, scope.route, scope.key, since.0],
            |row| {
                Ok(IdempotencyRecord {
                    request_hash: row.get(0)?,
                    status: row.get(1)?,
                    response: row.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Stores the record of `scope` (replacing an expired one not purged yet). Run it in the
/// transaction of the write it records.
pub fn store_idempotency_record(
    conn: &Connection,
    scope: &IdempotencyScope,
    record: &IdempotencyRecord,
    now: TimestampMs,
) -> Result<(), DirectoryError> {
    conn.execute(
        "INSERT INTO idempotency_records \
         (user_id, route, key, request_hash, status, response, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (user_id, route, key) DO UPDATE SET request_hash = excluded.request_hash, \
           status = excluded.status, response = excluded.response, \
           created_at = excluded.created_at",
        params![
            scope.user,
            scope.route,
            scope.key,
            record.request_hash,
            record.status,
            record.response,
            now.0
        ],
    )?;
    Ok(())
}

/// Deletes the records made at or before `cutoff`; returns how many.
pub fn purge_idempotency_records(
    conn: &Connection,
    cutoff: TimestampMs,
) -> Result<usize, DirectoryError> {
    Ok(conn.execute(
        "DELETE FROM idempotency_records WHERE created_at <= ?1",
        [cutoff.0],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::db::open_in_memory;

    #[test]
    fn signing_key_is_created_once() {
        let conn = open_in_memory().expect("db");
        let first = signing_key_or_insert(&conn, b"one", TimestampMs(1)).expect("key");
        let second = signing_key_or_insert(&conn, b"two", TimestampMs(2)).expect("key");
        assert_eq!(first, b"one");
        assert_eq!(second, b"one");
    }

    #[test]
    fn challenges_are_single_use_and_expire() {
        let conn = open_in_memory().expect("db");
        insert_challenge(&conn, "c1", "pk", "bytes", TimestampMs(100)).expect("insert");
        assert_eq!(
            consume_challenge(&conn, "c1", TimestampMs(50)).expect("first"),
            ("pk".to_owned(), "bytes".to_owned())
        );
        assert!(matches!(
            consume_challenge(&conn, "c1", TimestampMs(60)),
            Err(DirectoryError::Gone(_))
        ));
        insert_challenge(&conn, "c2", "pk", "bytes", TimestampMs(100)).expect("insert");
        assert!(matches!(
            consume_challenge(&conn, "c2", TimestampMs(100)),
            Err(DirectoryError::Gone(_))
        ));
        assert!(matches!(
            consume_challenge(&conn, "c3", TimestampMs(1)),
            Err(DirectoryError::NotFound(_))
        ));
    }

    #[test]
    fn idempotency_records_expire_and_are_purged() {
        let conn = open_in_memory().expect("db");
        let scope = IdempotencyScope {
            user: "u".into(),
            route: "POST /api/servers".into(),
            key: "k".into(),
        };
        let record = IdempotencyRecord {
            request_hash: vec![1; 32],
            status: 201,
            response: Some("{}".into()),
        };
        store_idempotency_record(&conn, &scope, &record, TimestampMs(10)).expect("store");
        assert_eq!(
            idempotency_record(&conn, &scope, TimestampMs(5)).expect("read"),
            Some(record.clone())
        );
        assert_eq!(
            idempotency_record(&conn, &scope, TimestampMs(10)).expect("read"),
            None,
            "expired"
        );
        let other_route = IdempotencyScope {
            route: "PATCH /api/servers/{serverId}".into(),
            ..scope.clone()
        };
        assert_eq!(
            idempotency_record(&conn, &other_route, TimestampMs(5)).expect("read"),
            None
        );
        let renewed = IdempotencyRecord {
            status: 200,
            response: None,
            ..record
        };
        store_idempotency_record(&conn, &scope, &renewed, TimestampMs(20)).expect("replace");
        assert_eq!(
            idempotency_record(&conn, &scope, TimestampMs(15)).expect("read"),
            Some(renewed)
        );
        assert_eq!(
            purge_idempotency_records(&conn, TimestampMs(19)).expect("purge"),
            0
        );
        assert_eq!(
            purge_idempotency_records(&conn, TimestampMs(20)).expect("purge"),
            1
        );
    }
}
