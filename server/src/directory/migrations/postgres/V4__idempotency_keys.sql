-- Idempotency-Key records keep a SHA-256 of the canonical request instead of its body (a body
-- may carry a secret), are unique per caller + route + key, and are written in the same
-- transaction as the change they record. Old records held bodies: they are dropped, not moved.
DROP TABLE idempotency_records;

CREATE TABLE idempotency_records (
    user_id      TEXT COLLATE "C" NOT NULL,
    route        TEXT COLLATE "C" NOT NULL,
    key          TEXT COLLATE "C" NOT NULL,
    request_hash BYTEA NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, route, key)
);

CREATE INDEX idempotency_records_created_at ON idempotency_records (created_at);
