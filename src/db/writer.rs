//! The SQLite writer: one connection per process, behind an async mutex, with group commit.
//!
//! SQLite allows one writer at a time; a second `BEGIN IMMEDIATE` waits in SQLite's busy
//! handler, which sleeps in millisecond steps. Queuing writers on an async mutex instead hands
//! the turn over as soon as it is free, and a single writer connection keeps its page cache warm.
//!
//! **Group commit.** Each write transaction's body runs in a savepoint of a batch transaction.
//! When a body ends and other writers are queued, the batch stays open and the next writer's
//! body joins it; the last body of a batch (no one queued, or [`MAX_BATCH`] bodies) commits it.
//! A body that joined a batch waits for that commit, after handing the writer on, before its
//! request answers: nothing is reported done before it is committed, and a failed commit fails
//! every body in the batch. A failing body rolls back to its savepoint only. Under load this
//! shares one `BEGIN`/`COMMIT` and one write of each hot page among many transactions.
//!
//! `BEGIN IMMEDIATE` and the busy timeout still guard against other processes writing the file.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Told the number of bodies of every committed batch. Storage reports through this hook, which
/// `ops` installs at start-up ([`observe_batches`]), so `db` never imports the layer above it.
static BATCH_OBSERVER: std::sync::OnceLock<fn(usize)> = std::sync::OnceLock::new();

/// Installs the observer of committed batches (the first call wins).
pub fn observe_batches(observer: fn(usize)) {
    let _ = BATCH_OBSERVER.set(observer);
}

use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use tokio::sync::{watch, Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use super::sqlite::{SqliteConn, SQLITE_PRAGMAS, WRITER_PRAGMAS};

/// The most bodies one batch holds.
const MAX_BATCH: usize = 32;
/// How long a body waits for its batch's commit before committing it itself: only reached when
/// the writer queued after it went away without taking its turn.
const BATCH_WAIT: Duration = Duration::from_millis(10);

/// The outcome of a batch's commit, for the bodies waiting on it.
type Outcome = Option<Result<(), String>>;

/// An open batch transaction.
struct Batch {
    id: u64,
    bodies: usize,
    done: watch::Sender<Outcome>,
}

/// The writer connection and its open batch.
pub struct Writer {
    conn: SqliteConn,
    /// A body's savepoint may be open (its future dropped half-way).
    in_body: bool,
    batch: Option<Batch>,
    /// Set on every commit; the checkpointer clears it.
    dirty: Arc<AtomicBool>,
}

fn failed(e: impl std::fmt::Display) -> Error {
    Error::DatabaseError(DatabaseErrorKind::ClosedConnection, Box::new(e.to_string()))
}

impl Writer {
    /// Opens a batch unless one is open, numbered from `ids`.
    async fn begin(&mut self, ids: &AtomicU64) -> Result<(), Error> {
        if self.batch.is_none() {
            self.conn.batch_execute("BEGIN IMMEDIATE").await?;
            let id = ids.fetch_add(1, Ordering::Relaxed);
            self.batch = Some(Batch { id, bodies: 0, done: watch::channel(None).0 });
        }
        Ok(())
    }

    /// Commits the open batch (rolls it back when the commit fails) and tells its bodies.
    async fn commit(&mut self) -> Result<(), Error> {
        let Some(batch) = self.batch.take() else { return Ok(()) };
        let result = match self.conn.batch_execute("COMMIT").await {
            Ok(()) => {
                self.dirty.store(true, Ordering::Relaxed);
                if let Some(observe) = BATCH_OBSERVER.get() {
                    observe(batch.bodies);
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.conn.batch_execute("ROLLBACK").await;
                Err(e)
            }
        };
        batch.done.send_replace(Some(result.as_ref().map(|_| ()).map_err(|e| e.to_string())));
        result
    }

    /// Rolls back the whole batch after a failed savepoint statement.
    async fn abort(&mut self, cause: &Error) {
        if let Some(batch) = self.batch.take() {
            let _ = self.conn.batch_execute("ROLLBACK").await;
            batch.done.send_replace(Some(Err(cause.to_string())));
        }
        self.in_body = false;
    }
}

/// This process's one SQLite writer connection; see the module docs.
#[derive(Clone)]
pub struct WriterLock {
    path: Arc<str>,
    writer: Arc<Mutex<Option<Writer>>>,
    /// Writers waiting for the mutex: while there are any, a finished body leaves its batch open.
    queued: Arc<AtomicUsize>,
    batch_ids: Arc<AtomicU64>,
    dirty: Arc<AtomicBool>,
    checkpointer: Arc<AtomicBool>,
}

/// The writer, held for one body.
type WriterGuard = OwnedMappedMutexGuard<Option<Writer>, Writer>;

/// Decrements the queue count when the waiting writer gets its turn or goes away.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WriterLock {
    /// The database file this writer writes.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn new(path: &str) -> Self {
        WriterLock {
            path: path.into(),
            writer: Arc::new(Mutex::new(None)),
            queued: Arc::new(AtomicUsize::new(0)),
            batch_ids: Arc::new(AtomicU64::new(0)),
            dirty: Arc::new(AtomicBool::new(false)),
            checkpointer: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs `body` as one write transaction and returns once it is committed (or failed).
    pub async fn run<R, E>(&self, body: impl AsyncFnOnce(&mut SqliteConn) -> Result<R, E>) -> Result<R, E>
    where
        E: From<Error>,
    {
        let mut writer = self.acquire().await?;
        writer.begin(&self.batch_ids).await?;
        writer.in_body = true;
        if let Err(e) = writer.conn.batch_execute("SAVEPOINT body").await {
            writer.abort(&e).await;
            return Err(e.into());
        }
        let result = body(&mut writer.conn).await;
        let end = if result.is_ok() { "RELEASE body" } else { "ROLLBACK TO body; RELEASE body" };
        if let Err(e) = writer.conn.batch_execute(end).await {
            writer.abort(&e).await;
            return Err(e.into());
        }
        writer.in_body = false;
        let Some(batch) = writer.batch.as_mut() else { return Err(Error::BrokenTransactionManager.into()) };
        batch.bodies += 1;
        if self.queued.load(Ordering::SeqCst) == 0 || batch.bodies >= MAX_BATCH {
            let committed = writer.commit().await;
            drop(writer);
            return match committed {
                Err(e) if result.is_ok() => Err(e.into()),
                _ => result,
            };
        }
        // A failed body was rolled back to its savepoint: nothing of it waits for the commit.
        let Ok(value) = result else { return result };
        let (id, done) = (batch.id, batch.done.subscribe());
        drop(writer);
        self.wait(id, done).await?;
        Ok(value)
    }

    /// Waits for batch `id` to be committed by a later body, or commits it.
    async fn wait(&self, id: u64, mut done: watch::Receiver<Outcome>) -> Result<(), Error> {
        loop {
            let waited = tokio::time::timeout(BATCH_WAIT, done.wait_for(Option::is_some))
                .await
                .map(|outcome| outcome.map(|outcome| outcome.clone()));
            match waited {
                Ok(Ok(outcome)) => return outcome.unwrap_or(Ok(())).map_err(failed),
                Ok(Err(_)) => return Err(failed("the write batch was abandoned")),
                Err(_) => {
                    let mut writer = self.acquire().await?;
                    if writer.batch.as_ref().is_some_and(|b| b.id == id) {
                        let _ = writer.commit().await;
                    }
                }
            }
        }
    }

    /// Waits for this process's turn to write and returns the writer, opening its connection
    /// when there is none and undoing a body a dropped request left half-way.
    async fn acquire(&self) -> Result<WriterGuard, Error> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let queued = Queued(&self.queued);
        let mut slot = self.writer.clone().lock_owned().await;
        drop(queued);
        if let Some(writer) = slot.as_mut().filter(|w| w.in_body) {
            if let Err(e) = writer.conn.batch_execute("ROLLBACK TO body; RELEASE body").await {
                writer.abort(&e).await;
            }
            writer.in_body = false;
        }
        if slot.is_none() {
            let mut conn = SqliteConn::establish(&self.path).await.map_err(failed)?;
            conn.batch_execute(SQLITE_PRAGMAS).await?;
            conn.batch_execute(WRITER_PRAGMAS).await?;
            *slot = Some(Writer { conn, in_body: false, batch: None, dirty: self.dirty.clone() });
            if !self.checkpointer.swap(true, Ordering::Relaxed) {
                let writer = Arc::downgrade(&self.writer);
                let writers_turn = move || writer.upgrade().map(between_batches);
                super::checkpoint::spawn(self.path.clone(), Arc::downgrade(&self.dirty), writers_turn);
            }
        }
        OwnedMutexGuard::try_map(slot, Option::as_mut).map_err(|_| Error::BrokenTransactionManager)
    }
}

impl WriterLock {
    /// Waits until the pages committed so far have been copied from the WAL back into the
    /// database file: a passive checkpoint off the writer, while other writers go on. For a
    /// caller that has just rewritten many pages and should not write more before they are back
    /// (housekeeping): left to the background checkpointer, they would be copied back under the
    /// writer's turn when the WAL next restarts, a stall for every writer.
    pub async fn settle(&self) {
        super::checkpoint::catch_up(self.path.clone()).await;
    }

    /// At shutdown, after the last request: undoes a body an abandoned request left half-way,
    /// commits the open batch (bodies that finished but whose commit nobody had run yet) and
    /// closes the writer connection.
    pub async fn close(&self) {
        let mut slot = self.writer.clone().lock_owned().await;
        if let Some(writer) = slot.as_mut() {
            if writer.in_body {
                if let Err(e) = writer.conn.batch_execute("ROLLBACK TO body; RELEASE body").await {
                    writer.abort(&e).await;
                }
                writer.in_body = false;
            }
            if let Err(e) = writer.commit().await {
                rocket::warn!("the last SQLite write batch failed to commit at shutdown: {e}");
            }
        }
        *slot = None;
    }
}

/// Takes the writer's turn and commits its open batch: for a checkpoint that must run between
/// two write transactions.
async fn between_batches(writer: Arc<Mutex<Option<Writer>>>) -> OwnedMutexGuard<Option<Writer>> {
    let mut slot = writer.lock_owned().await;
    if let Some(writer) = slot.as_mut().filter(|w| !w.in_body) {
        let _ = writer.commit().await;
    }
    slot
}
