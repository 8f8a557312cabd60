-- Auth: the token signing key, single-use challenges, and Idempotency-Key records.

CREATE TABLE signing_keys (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE auth_challenges (
    id         TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    challenge  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

CREATE TABLE idempotency_records (
    user_id    TEXT NOT NULL,
    key        TEXT NOT NULL,
    method     TEXT NOT NULL,
    path       TEXT NOT NULL,
    body       BLOB NOT NULL,
    status     INTEGER NOT NULL,
    response   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);
