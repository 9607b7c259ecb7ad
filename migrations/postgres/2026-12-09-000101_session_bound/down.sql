ALTER TABLE users DROP COLUMN session_bound;
