-- PostgreSQL only (LISTEN/NOTIFY for the feed poller); SQLite instances share one process's
-- writer per file and keep polling. Kept so both backends have the same migration versions.
SELECT 1;
