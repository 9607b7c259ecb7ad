-- The role-change feed: one row per user whose roles changed within the last access-token
-- lifetime, with the roles held after the change. Every instance keeps it in memory and refuses
-- access tokens naming a role the user no longer holds (contract v2, "Taking power away").
-- No foreign key, so it outlives deleted users, like revoked_sessions.
CREATE TABLE role_changes (
    user_id UUID PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL,
    changed_at BIGINT NOT NULL,
    roles TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX role_changes_changed_idx ON role_changes (changed_at);
CREATE INDEX role_changes_expires_idx ON role_changes (expires_at);
