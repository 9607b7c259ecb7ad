DROP INDEX sessions_last_used_idx;
DROP INDEX sessions_user_last_used_idx;
ALTER TABLE sessions DROP COLUMN burst_at;
ALTER TABLE sessions DROP COLUMN burst_generation;
ALTER TABLE sessions DROP COLUMN rotated_at;
ALTER TABLE sessions DROP COLUMN generation;
