-- SQLite has no notifications: other processes on the file see role changes at their next poll.
SELECT 1;
