DROP INDEX sessions_browser_session_idx;
ALTER TABLE sessions DROP COLUMN auth_time;
ALTER TABLE sessions DROP COLUMN browser_session_id;
