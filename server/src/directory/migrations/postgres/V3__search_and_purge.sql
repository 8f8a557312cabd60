-- Trust boundary (issue 10): server search by name prefix uses an index (no full-table LIKE),
-- and the purge of unused ephemeral identities finds them without a scan of members/servers.
-- SQLite's `name COLLATE NOCASE` index becomes an expression index on lower(name COLLATE "C"):
-- under the "C" collation lower() folds ASCII letters only, exactly like NOCASE, and compares
-- bytewise, so the prefix range `>= lower($p) AND < lower($p || U+10FFFF)` uses it.

CREATE INDEX servers_name_lower ON servers ((lower(name COLLATE "C")));
CREATE INDEX servers_owner ON servers (owner_id);
CREATE INDEX members_user ON members (user_id);
CREATE INDEX auth_challenges_expiry ON auth_challenges (expires_at);
