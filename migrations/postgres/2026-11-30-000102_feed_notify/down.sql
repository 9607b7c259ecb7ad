DROP TRIGGER settings_feed_notify ON settings;
DROP TRIGGER revoked_sessions_feed_notify ON revoked_sessions;
DROP FUNCTION portcullis_feed_notify();
