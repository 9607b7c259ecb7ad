ALTER TABLE sessions DROP COLUMN resource;
