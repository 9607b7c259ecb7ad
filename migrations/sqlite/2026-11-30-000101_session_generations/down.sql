DROP INDEX sessions_ended_idx;
CREATE INDEX sessions_ended_idx ON sessions (ended_at);
ALTER TABLE sessions DROP COLUMN burst_at;
ALTER TABLE sessions DROP COLUMN burst_generation;
ALTER TABLE sessions DROP COLUMN rotated_at;
ALTER TABLE sessions DROP COLUMN generation;
