-- The resource server (RFC 8707 `resource`) a session was started for; NULL for sessions whose
-- tokens are for Portcullis itself. Every access token of the session carries it as `aud`.
ALTER TABLE sessions ADD COLUMN resource TEXT;
