//! SQLite specifics: statements run inline, one writer connection per process, and a background
//! checkpointer that keeps WAL checkpoints (and their `fsync`s) off the writer's path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::result::DatabaseErrorKind;
use diesel::{Connection, ConnectionError, SqliteConnection};
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use futures_util::future::BoxFuture;
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

/// Every SQLite connection, pooled readers and the writer alike, runs its statements inline.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, Inline>;

/// Per-connection SQLite settings. WAL lets readers run beside the writer; the busy timeout
/// makes `BEGIN IMMEDIATE` writers queue instead of failing with "database is locked".
pub const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// The writer's own automatic checkpoint, in WAL pages: only a backstop for when the background
/// checkpointer falls behind. SQLite's default (1000 pages, about 200 refresh exchanges) made
/// the writer stop for a checkpoint and its `fsync` several times a second under load, with
/// every other writer queued behind it.
const WRITER_PRAGMAS: &str = "PRAGMA wal_autocheckpoint = 20000;";

/// How often the checkpointer copies committed WAL pages back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Runs a "blocking" task at once on the calling thread; every SQLite connection uses it.
///
/// SQLite statements here are key lookups and short writes on a local file, a few microseconds
/// each: handing each to the blocking pool cost more (a thread hop and several context switches
/// per statement) than the statement itself. In WAL mode readers never wait for the writer, and
/// writers queue on the async [`WriterLock`] rather than in SQLite's busy handler, so nothing
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

/// The writer connection and whether a transaction may have been left open on it (its future
/// dropped half-way).
pub struct Writer {
    conn: SqliteConn,
    open: bool,
    /// Set on every commit; the checkpointer clears it.
    dirty: Arc<AtomicBool>,
}

impl Writer {
    /// Runs `body` between `BEGIN IMMEDIATE` and `COMMIT` (`ROLLBACK` when it fails).
    pub async fn immediate<R, E>(&mut self, body: impl AsyncFnOnce(&mut SqliteConn) -> Result<R, E>) -> Result<R, E>
    where
        E: From<diesel::result::Error>,
    {
        self.conn.batch_execute("BEGIN IMMEDIATE").await?;
        self.open = true;
        let result = body(&mut self.conn).await;
        let end = if result.is_ok() { self.conn.batch_execute("COMMIT").await } else { Ok(()) };
        if result.is_err() || end.is_err() {
            self.conn.batch_execute("ROLLBACK").await?;
        }
        self.open = false;
        end?;
        if result.is_ok() {
            self.dirty.store(true, Ordering::Relaxed);
        }
        result
    }
}

/// This process's one SQLite writer connection, behind an async mutex.
///
/// SQLite allows one writer at a time; a second `BEGIN IMMEDIATE` waits in SQLite's busy
/// handler, which sleeps in millisecond steps. Queuing writers on an async mutex instead hands
/// the turn over as soon as it is free, and a single writer connection keeps its page cache warm
/// (writes from several connections keep invalidating each other's caches). The pooled
/// connections serve reads. `BEGIN IMMEDIATE` and the busy timeout still guard against other
/// processes writing the same file.
#[derive(Clone)]
pub struct WriterLock {
    path: Arc<str>,
    writer: Arc<Mutex<Option<Writer>>>,
    dirty: Arc<AtomicBool>,
    checkpointer: Arc<AtomicBool>,
}

/// The writer, held for one write transaction.
pub type WriterGuard = OwnedMappedMutexGuard<Option<Writer>, Writer>;

fn closed(e: impl std::fmt::Display) -> diesel::result::Error {
    diesel::result::Error::DatabaseError(DatabaseErrorKind::ClosedConnection, Box::new(e.to_string()))
}

impl WriterLock {
    pub fn new(path: &str) -> Self {
        WriterLock {
            path: path.into(),
            writer: Arc::new(Mutex::new(None)),
            dirty: Arc::new(AtomicBool::new(false)),
            checkpointer: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Waits for this process's turn to write and returns the writer, opening its connection
    /// when there is none and rolling back a transaction a dropped request left open.
    pub async fn acquire(&self) -> Result<WriterGuard, diesel::result::Error> {
        let mut slot = self.writer.clone().lock_owned().await;
        if let Some(writer) = slot.as_mut().filter(|w| w.open) {
            if writer.conn.batch_execute("ROLLBACK").await.is_err() {
                *slot = None;
            } else {
                writer.open = false;
            }
        }
        if slot.is_none() {
            let mut conn = SqliteConn::establish(&self.path).await.map_err(closed)?;
            conn.batch_execute(SQLITE_PRAGMAS).await?;
            conn.batch_execute(WRITER_PRAGMAS).await?;
            *slot = Some(Writer { conn, open: false, dirty: self.dirty.clone() });
            if !self.checkpointer.swap(true, Ordering::Relaxed) {
                spawn_checkpointer(self.path.clone(), Arc::downgrade(&self.dirty));
            }
        }
        OwnedMutexGuard::try_map(slot, Option::as_mut).map_err(|_| diesel::result::Error::BrokenTransactionManager)
    }
}

pub async fn open_sqlite(path: &str) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(path).await?;
    conn.batch_execute(SQLITE_PRAGMAS).await.map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Runs a passive checkpoint every [`CHECKPOINT_EVERY`] after commits, on its own connection in
/// the blocking pool, until the pool's writer is gone. Passive checkpoints wait for nobody:
/// readers and the writer go on meanwhile.
fn spawn_checkpointer(path: Arc<str>, dirty: Weak<AtomicBool>) {
    tokio::spawn(async move {
        let mut conn = None;
        let mut ticker = tokio::time::interval(CHECKPOINT_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match dirty.upgrade() {
                None => break,
                Some(dirty) if !dirty.swap(false, Ordering::Relaxed) => continue,
                Some(_) => {}
            }
            let path = path.clone();
            conn = match tokio::task::spawn_blocking(move || checkpoint(conn, &path)).await {
                Ok(Ok(conn)) => Some(conn),
                Ok(Err(e)) => {
                    rocket::warn!("sqlite checkpoint failed: {e}");
                    None
                }
                Err(_) => None,
            };
        }
    });
}

fn checkpoint(conn: Option<SqliteConnection>, path: &str) -> Result<SqliteConnection, String> {
    use diesel::connection::SimpleConnection;
    let mut conn = match conn {
        Some(conn) => conn,
        None => {
            let mut conn = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
            conn.batch_execute(SQLITE_PRAGMAS).map_err(|e| e.to_string())?;
            conn
        }
    };
    conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)").map_err(|e| e.to_string())?;
    Ok(conn)
}
