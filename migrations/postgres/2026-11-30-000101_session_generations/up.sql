-- Constant storage per session (contract rule 6): a refresh token names its session and
-- generation under a MAC, so the session row alone decides whether a presented token is the
-- current one, a replay inside the grace interval, or reuse.
--   generation        the generation of the one refresh token that may be exchanged next
--   rotated_at        when generation - 1 was exchanged (NULL: never rotated in this format)
--   burst_generation  the first generation exchanged in the current run of exchanges less than
--   burst_at          reuse_grace apart, and when: replays of older generations of that run
--                     within the grace interval are answered, anything older is reuse.
ALTER TABLE sessions ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN rotated_at BIGINT;
ALTER TABLE sessions ADD COLUMN burst_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN burst_at BIGINT;
-- The live-session cap finds a user's least recently used session.
CREATE INDEX sessions_user_last_used_idx ON sessions (user_id, last_used_at);
-- Housekeeping finds sessions idle past refresh_ttl by range, not by scanning every session.
CREATE INDEX sessions_last_used_idx ON sessions (last_used_at);
