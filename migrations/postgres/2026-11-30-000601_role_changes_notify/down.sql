DROP TRIGGER role_changes_feed_notify ON role_changes;
