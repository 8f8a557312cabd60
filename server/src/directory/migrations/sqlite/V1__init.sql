-- The directory: users, servers, roles, bans, invites, join requests, plugin manifests, games.
-- User ids are not foreign keys: a Toju client may act under an oderId the directory has not
-- seen before (auth: open).

CREATE TABLE users (
    id                 TEXT PRIMARY KEY,
    display_name       TEXT,
    description        TEXT,
    profile_updated_at INTEGER,
    public_key         TEXT UNIQUE,
    guest              INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL
);

CREATE TABLE servers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    description   TEXT,
    tags          TEXT NOT NULL DEFAULT '[]',
    visibility    TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    owner_id      TEXT NOT NULL,
    password_hash TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX servers_visibility ON servers (visibility, id);

CREATE TABLE members (
    server_id TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL,
    role      TEXT NOT NULL CHECK (role IN ('owner', 'moderator', 'member')),
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (server_id, user_id)
);

CREATE TABLE bans (
    server_id  TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    reason     TEXT,
    banned_by  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (server_id, user_id)
);

CREATE TABLE invites (
    code       TEXT PRIMARY KEY,
    server_id  TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    max_uses   INTEGER,
    uses       INTEGER NOT NULL DEFAULT 0,
    revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX invites_server ON invites (server_id);

CREATE TABLE join_requests (
    id         TEXT PRIMARY KEY,
    server_id  TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    message    TEXT,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn')),
    created_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT
);
CREATE UNIQUE INDEX join_requests_one_pending ON join_requests (server_id, user_id)
    WHERE status = 'pending';

CREATE TABLE plugin_manifests (
    server_id  TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    plugin_id  TEXT NOT NULL,
    manifest   TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (server_id, plugin_id)
);

CREATE TABLE games (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    executables TEXT NOT NULL DEFAULT '[]',
    icon_url    TEXT,
    updated_at  INTEGER NOT NULL
);
