-- Trust boundary (issue 10): server search by name prefix uses an index (no full-table LIKE),
-- and the purge of unused ephemeral identities finds them without a scan of members/servers.

CREATE INDEX servers_name_nocase ON servers (name COLLATE NOCASE);
CREATE INDEX servers_owner ON servers (owner_id);
CREATE INDEX members_user ON members (user_id);
CREATE INDEX auth_challenges_expiry ON auth_challenges (expires_at);
