-- Auth: the token signing key, single-use challenges, and Idempotency-Key records (the same
-- tables as migrations/sqlite/V2__auth.sql; V4 replaces idempotency_records, mirrored here so
-- the version numbers match).

CREATE TABLE signing_keys (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    secret     BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE auth_challenges (
    id         TEXT COLLATE "C" PRIMARY KEY,
    public_key TEXT NOT NULL,
    challenge  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE idempotency_records (
    user_id    TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    method     TEXT NOT NULL,
    path       TEXT NOT NULL,
    body       BYTEA NOT NULL,
    status     INTEGER NOT NULL,
    response   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
