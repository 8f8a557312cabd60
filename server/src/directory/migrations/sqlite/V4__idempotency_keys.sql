-- Idempotency-Key records keep a SHA-256 of the canonical request instead of its body (a body
-- may carry a secret), are unique per caller + route + key, and are written in the same
-- transaction as the change they record. Old records held bodies: they are dropped, not moved.
DROP TABLE idempotency_records;

CREATE TABLE idempotency_records (
    user_id      TEXT NOT NULL,
    route        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, route, key)
);

CREATE INDEX idempotency_records_created_at ON idempotency_records (created_at);
