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

/// A stored response to an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    /// The method of the first request.
    pub method: String,
    /// The path of the first request.
    pub path: String,
    /// The body of the first request.
    pub body: Vec<u8>,
    /// The status answered.
    pub status: u16,
    /// The JSON answered.
    pub response: String,
}

/// The record of `key` for `user` made after `since`, if any.
pub fn idempotency_record(
    conn: &Connection,
    user: &str,
    key: &str,
    since: TimestampMs,
) -> Result<Option<IdempotencyRecord>, DirectoryError> {
    Ok(conn
        .query_row(
            "SELECT method, path, body, status, response FROM idempotency_records \
             WHERE user_id = ?1 AND key = ?2 AND created_at > ?3",
            params![user, key, since.0],
            |row| {
                Ok(IdempotencyRecord {
                    method: row.get(0)?,
                    path: row.get(1)?,
                    body: row.get(2)?,
                    status: row.get(3)?,
                    response: row.get(4)?,
                })
            },
        )
        .optional()?)
}

/// Stores (or replaces an expired) record of `key` for `user`.
pub fn store_idempotency_record(
    conn: &Connection,
    user: &str,
    key: &str,
    record: &IdempotencyRecord,
    now: TimestampMs,
) -> Result<(), DirectoryError> {
    conn.execute(
        "INSERT OR REPLACE INTO idempotency_records \
         (user_id, key, method, path, body, status, response, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            user,
            key,
            record.method,
            record.path,
            record.body,
            record.status,
            record.response,
            now.0
        ],
    )?;
    Ok(())
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
    fn idempotency_records_expire() {
        let conn = open_in_memory().expect("db");
        let record = IdempotencyRecord {
            method: "POST".into(),
            path: "/api/servers".into(),
            body: b"{}".to_vec(),
            status: 200,
            response: "{}".into(),
        };
        store_idempotency_record(&conn, "u", "k", &record, TimestampMs(10)).expect("store");
        assert_eq!(
            idempotency_record(&conn, "u", "k", TimestampMs(5)).expect("read"),
            Some(record)
        );
        assert_eq!(
            idempotency_record(&conn, "u", "k", TimestampMs(10)).expect("read"),
            None
        );
        assert_eq!(
            idempotency_record(&conn, "other", "k", TimestampMs(5)).expect("read"),
            None
        );
    }
}
