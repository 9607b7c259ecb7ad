-- An upper bound of the account's live sessions, so that a sign-in under the live-session cap
-- need not count them (src/auth/session/cap.rs): raised by one by every sign-in as it takes the
-- account's session lock, before it inserts its session, and set to the exact count whenever
-- the cap counts. Sessions only leave the live set otherwise (ended, expired), so it never falls
-- below their number. Sessions not yet ended are a bound of the live ones to start from.
ALTER TABLE users ADD COLUMN session_bound BIGINT NOT NULL DEFAULT 0;
UPDATE users SET session_bound = (
    SELECT COUNT(*) FROM sessions WHERE sessions.user_id = users.id AND sessions.ended_at IS NULL
);
