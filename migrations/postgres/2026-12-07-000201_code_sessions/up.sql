-- Sessions started by the authorization-code grant (docs/browser-sign-in.md): the browser
-- session whose code started them (RP-initiated logout ends those with it), and when the user
-- authenticated there (OpenID Connect Core §2 `auth_time`, repeated in the ID token of every
-- refresh, §12.2). NULL for sessions started any other way.
ALTER TABLE sessions ADD COLUMN browser_session_id UUID;
ALTER TABLE sessions ADD COLUMN auth_time BIGINT;
-- Logout of a browser session finds the sessions it started.
CREATE INDEX sessions_browser_session_idx ON sessions (browser_session_id) WHERE browser_session_id IS NOT NULL;
