-- The directory on PostgreSQL: the same tables as migrations/sqlite/V1__init.sql, in this
-- dialect. Millisecond timestamps and counters are BIGINT (INTEGER is 32-bit here), flags are
-- BOOLEAN, and text keys are COLLATE "C" so cursors (`id > $1 ORDER BY id`) order bytewise like
-- SQLite's BINARY whatever the cluster's locale. User ids are not foreign keys: a Toju client may
-- act under an oderId the directory has not seen before (auth: open).

CREATE TABLE users (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    display_name       TEXT,
    description        TEXT,
    profile_updated_at BIGINT,
    public_key         TEXT COLLATE "C" UNIQUE,
    guest              BOOLEAN NOT NULL DEFAULT FALSE,
    created_at         BIGINT NOT NULL
);

CREATE TABLE servers (
    id            TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT NOT NULL,
    description   TEXT,
    tags          TEXT NOT NULL DEFAULT '[]',
    visibility    TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    owner_id      TEXT COLLATE "C" NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX servers_visibility ON servers (visibility, id);

CREATE TABLE members (
    server_id TEXT COLLATE "C" NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id   TEXT COLLATE "C" NOT NULL,
    role      TEXT NOT NULL CHECK (role IN ('owner', 'moderator', 'member')),
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (server_id, user_id)
);

CREATE TABLE bans (
    server_id  TEXT COLLATE "C" NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL,
    reason     TEXT,
    banned_by  TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (server_id, user_id)
);

CREATE TABLE invites (
    code       TEXT COLLATE "C" PRIMARY KEY,
    server_id  TEXT COLLATE "C" NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    created_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    max_uses   BIGINT,
    uses       BIGINT NOT NULL DEFAULT 0,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX invites_server ON invites (server_id);

CREATE TABLE join_requests (
    id         TEXT COLLATE "C" PRIMARY KEY,
    server_id  TEXT COLLATE "C" NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL,
    message    TEXT,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn')),
    created_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT COLLATE "C"
);
CREATE UNIQUE INDEX join_requests_one_pending ON join_requests (server_id, user_id)
    WHERE status = 'pending';

CREATE TABLE plugin_manifests (
    server_id  TEXT COLLATE "C" NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    plugin_id  TEXT COLLATE "C" NOT NULL,
    manifest   TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (server_id, plugin_id)
);

CREATE TABLE games (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    executables TEXT NOT NULL DEFAULT '[]',
    icon_url    TEXT,
    updated_at  BIGINT NOT NULL
);
