//! SQLite specifics: statements run inline, and the settings of every connection. The writer is
//! in [`writer`](super::writer), the background checkpointer in [`checkpoint`](super::checkpoint).

use diesel::{ConnectionError, SqliteConnection};
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use futures_util::future::BoxFuture;

/// Every SQLite connection, pooled readers and the writer alike, runs its statements inline.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, Inline>;

/// Per-connection SQLite settings. WAL lets readers run beside the writer; the busy timeout
/// makes `BEGIN IMMEDIATE` writers queue instead of failing with "database is locked".
/// `busy_timeout` comes first: switching a fresh file to WAL needs it to itself, and another
/// instance starting at the same moment may hold it.
pub const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// The writer's own automatic checkpoint, in WAL pages: only a backstop for when the background
/// checkpointer falls behind. SQLite's default (1000 pages, about 200 refresh exchanges) made
/// the writer stop for a checkpoint and its `fsync` several times a second under load, on a
/// worker thread, with every other writer queued behind it.
pub(super) const WRITER_PRAGMAS: &str = "PRAGMA wal_autocheckpoint = 20000;";

/// Runs a "blocking" task at once on the calling thread; every SQLite connection uses it.
///
/// SQLite statements here are key lookups and short writes on a local file, a few microseconds
/// each: handing each to the blocking pool cost more (a thread hop and several context switches
/// per statement) than the statement itself. In WAL mode readers never wait for the writer, and
/// writers queue on the async [`WriterLock`](super::WriterLock) rather than in SQLite's busy handler, so nothing
/// here sleeps on a worker thread except when another process holds the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inline;

impl SpawnBlocking for Inline {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        Box::pin(std::future::ready(Ok(task())))
    }

    fn get_runtime() -> Self {
        Inline
    }
}

pub async fn open_sqlite(path: &str) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(path).await?;
    conn.batch_execute(SQLITE_PRAGMAS).await.map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}
