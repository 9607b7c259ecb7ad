-- Wakes every instance's feed poller at once (LISTEN portcullis_feed) when a feed changes, so
-- an ended session or a role change reaches the other instances without waiting for the poll.
-- The notification carries no data: the poller reads the feed tables as it always does, and the
-- poll keeps running as the fallback that repairs anything a lost notification missed. Another
-- feed table only needs a trigger of its own calling the same function.
CREATE FUNCTION portcullis_feed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_feed', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER revoked_sessions_feed_notify AFTER INSERT ON revoked_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_feed_notify();
-- Role changes bump `roles_version` in settings.
CREATE TRIGGER settings_feed_notify AFTER INSERT OR UPDATE ON settings
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_feed_notify();
