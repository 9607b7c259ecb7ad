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
-- No index on last_used_at: every refresh writes it, and an index on it would make each refresh
-- rewrite an index entry (on PostgreSQL: a non-HOT update, new entries in every index).
-- Housekeeping finds idle sessions by their absolute expiry instead; the live-session cap reads
-- a user's sessions through sessions_user_idx and sorts them.
-- Only ended sessions need finding by ended_at: live ones (most of the table) stay out of it,
-- which makes every session row cheaper to store and to delete.
DROP INDEX sessions_ended_idx;
CREATE INDEX sessions_ended_idx ON sessions (ended_at) WHERE ended_at IS NOT NULL;
