-- A role taken away reaches the other instances' bearer guards through the role-change feed;
-- wake their pollers at once, as for ended sessions.
CREATE TRIGGER role_changes_feed_notify AFTER INSERT OR UPDATE ON role_changes
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_feed_notify();
