//! PostgreSQL notifications for the feed poller: one dedicated connection per process runs
//! `LISTEN portcullis_feed` (fired by triggers on the feed tables, see the `feed_notify`
//! migration) and calls `on_notify` for each notification, and once after every (re)connect
//! to catch up on what happened while it was not listening. Notifications carry no data; the
//! poll that reads the feed stays the source of truth and the fallback when this connection is
//! down. The connection reports `application_name = portcullis-listen`.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::StreamExt;

/// The channel the feed triggers notify.
pub const FEED_CHANNEL: &str = "portcullis_feed";
/// How the listening connection names itself in `pg_stat_activity`.
pub const LISTENER_NAME: &str = "portcullis-listen";
/// How long to wait before reconnecting after the connection failed or closed.
const RECONNECT: Duration = Duration::from_secs(1);

/// One connection's life: connect, listen, forward notifications until it fails.
async fn listen_once(url: &str, on_notify: &(impl Fn() + Sync)) -> String {
    let mut conn = match AsyncPgConnection::establish(url).await {
        Ok(conn) => conn,
        Err(e) => return format!("cannot connect: {e}"),
    };
    let setup = format!("SET application_name = '{LISTENER_NAME}'; LISTEN {FEED_CHANNEL}");
    if let Err(e) = conn.batch_execute(&setup).await {
        return format!("cannot listen: {e}");
    }
    on_notify();
    let mut notifications = std::pin::pin!(conn.notifications_stream());
    while let Some(notification) = notifications.next().await {
        if let Err(e) = notification {
            return format!("the listening connection failed: {e}");
        }
        on_notify();
    }
    "the listening connection closed".into()
}

/// Listens on the database at `url` until `shutdown` resolves, reconnecting after failures.
pub async fn listen(url: String, on_notify: impl Fn() + Sync, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            why = listen_once(&url, &on_notify) => rocket::warn!("feed notifications: {why}; polling meanwhile"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(RECONNECT) => {}
        }
    }
}
