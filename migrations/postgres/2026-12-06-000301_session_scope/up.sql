-- The scope a down-scoped session was granted (space-separated permission names and OpenID
-- Connect values, RFC 6749 §3.3); NULL for sessions the user's roles alone decide. It never
-- changes: a refresh may ask for less, measured against it (RFC 6749 §6).
ALTER TABLE sessions ADD COLUMN scope TEXT;
-- The scope asked for at the password step of a login, carried to its second step.
ALTER TABLE mfa_challenges ADD COLUMN scope TEXT;
