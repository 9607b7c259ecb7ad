//! The pool type behind [`Db`](super::Db): a deadpool of either backend, chosen by the URL.

use std::sync::Arc;
use std::time::Duration;

use deadpool::Runtime;
use diesel::result::DatabaseErrorKind;
use diesel::{ConnectionError, SqliteConnection};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::sync_connection_wrapper::SpawnBlocking;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::future::BoxFuture;
use rocket::figment::Figment;
use serde::Deserialize;
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
type SqliteWriterConn = SyncConnectionWrapper<SqliteConnection, Inline>;

/// Per-connection SQLite settings. WAL lets readers run beside the writer; the busy timeout
/// makes `BEGIN IMMEDIATE` writers queue instead of failing with "database is locked".
pub const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// Which database engine a URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL at this URL.
    Postgres(String),
    /// An SQLite database file at this path.
    Sqlite(String),
}

impl Backend {
    /// `postgres://` and `postgresql://` select PostgreSQL; `sqlite://path`, `sqlite:path` or a
    /// plain path select the embedded SQLite backend.
    pub fn from_url(url: &str) -> Backend {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Backend::Postgres(url.to_owned());
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        Backend::Sqlite(path.to_owned())
    }
}

/// `[databases.main]`: the keys rocket_db_pools documents, with its defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct PoolSettings {
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: u64,
}

fn default_max_connections() -> usize {
    16
}

fn default_connect_timeout() -> u64 {
    5
}

/// A pool of connections to one backend.
#[derive(Clone)]
pub enum DbPool {
    Sqlite(Pool<SqliteConn>, WriterLock),
    Pg(Pool<AsyncPgConnection>),
}

/// Runs a "blocking" task at once on the calling thread. Used only for the SQLite writer
/// connection, whose statements are short and run one transaction at a time under the writer
/// lock: handing each to the blocking pool cost more (a thread hop per statement) than the
/// statement itself.
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
    conn: SqliteWriterConn,
    open: bool,
}

impl Writer {
    /// Runs `body` between `BEGIN IMMEDIATE` and `COMMIT` (`ROLLBACK` when it fails).
    pub async fn immediate<R, E>(
        &mut self,
        body: impl AsyncFnOnce(&mut SqliteWriterConn) -> Result<R, E>,
    ) -> Result<R, E>
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
}

/// The writer, held for one write transaction.
pub type WriterGuard = OwnedMappedMutexGuard<Option<Writer>, Writer>;

fn closed(e: impl std::fmt::Display) -> diesel::result::Error {
    diesel::result::Error::DatabaseError(DatabaseErrorKind::ClosedConnection, Box::new(e.to_string()))
}

impl WriterLock {
    fn new(path: &str) -> Self {
        WriterLock { path: path.into(), writer: Arc::new(Mutex::new(None)) }
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
            let mut conn = SqliteWriterConn::establish(&self.path).await.map_err(closed)?;
            conn.batch_execute(SQLITE_PRAGMAS).await?;
            *slot = Some(Writer { conn, open: false });
        }
        OwnedMutexGuard::try_map(slot, Option::as_mut).map_err(|_| diesel::result::Error::BrokenTransactionManager)
    }
}

async fn open_sqlite(path: &str) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(path).await?;
    conn.batch_execute(SQLITE_PRAGMAS).await.map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// A pooled SQLite connection and the writer of its pool.
pub struct SqliteObject {
    conn: Object<SqliteConn>,
    writer: WriterLock,
}

impl SqliteObject {
    /// Waits for this process's turn to write; see [`WriterLock`].
    pub async fn writer(&self) -> Result<WriterGuard, diesel::result::Error> {
        self.writer.acquire().await
    }
}

impl std::ops::Deref for SqliteObject {
    type Target = SqliteConn;
    fn deref(&self) -> &SqliteConn {
        &self.conn
    }
}

impl std::ops::DerefMut for SqliteObject {
    fn deref_mut(&mut self) -> &mut SqliteConn {
        &mut self.conn
    }
}

/// A pooled connection of either backend; use it through [`with_conn!`](crate::with_conn).
// Not boxed: a `DbConn` lives once per request, and `with_conn!` derefs the pooled object.
#[allow(clippy::large_enum_variant)]
pub enum DbConn {
    Sqlite(SqliteObject),
    Pg(Object<AsyncPgConnection>),
}

/// Why the pool could not be built or could not hand out a connection.
#[derive(Debug)]
pub struct PoolError(pub String);

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PoolError {}

impl DbPool {
    /// Builds the pool; connections are opened lazily, so a database that is down now does not
    /// stop start-up here (migrations will report it).
    pub fn build(settings: &PoolSettings) -> Result<DbPool, PoolError> {
        let timeout = Some(Duration::from_secs(settings.connect_timeout.max(1)));
        macro_rules! build {
            ($variant:expr, $manager:expr) => {
                Pool::builder($manager)
                    .max_size(settings.max_connections.max(1))
                    .wait_timeout(timeout)
                    .create_timeout(timeout)
                    .runtime(Runtime::Tokio1)
                    .build()
                    .map($variant)
                    .map_err(|e| PoolError(format!("databases.main: {e}")))
            };
        }
        match Backend::from_url(&settings.url) {
            Backend::Postgres(url) => {
                let mut config = ManagerConfig::default();
                config.recycling_method = RecyclingMethod::Fast;
                build!(DbPool::Pg, AsyncDieselConnectionManager::new_with_config(url, config))
            }
            Backend::Sqlite(path) => {
                if let Some(parent) = std::path::Path::new(&path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| PoolError(format!("databases.main.url: cannot create {parent:?}: {e}")))?;
                    }
                }
                let mut config = ManagerConfig::<SqliteConn>::default();
                config.recycling_method = RecyclingMethod::Fast;
                config.custom_setup = Box::new(|url| {
                    let url = url.to_owned();
                    Box::pin(async move { open_sqlite(&url).await })
                });
                let writer = WriterLock::new(&path);
                build!(|pool| DbPool::Sqlite(pool, writer), AsyncDieselConnectionManager::new_with_config(path, config))
            }
        }
    }

    /// A connection from the pool; failures become 503 `unavailable` through `ApiError`.
    pub async fn conn(&self) -> Result<DbConn, PoolError> {
        rocket_db_pools::Pool::get(self).await
    }
}

#[rocket::async_trait]
impl rocket_db_pools::Pool for DbPool {
    type Connection = DbConn;
    type Error = PoolError;

    async fn init(figment: &Figment) -> Result<Self, Self::Error> {
        let settings: PoolSettings = figment.extract().map_err(|e| PoolError(format!("databases.main: {e}")))?;
        DbPool::build(&settings)
    }

    async fn get(&self) -> Result<Self::Connection, Self::Error> {
        match self {
            DbPool::Sqlite(pool, writer) => {
                pool.get().await.map(|conn| DbConn::Sqlite(SqliteObject { conn, writer: writer.clone() }))
            }
            DbPool::Pg(pool) => pool.get().await.map(DbConn::Pg),
        }
        .map_err(|e| PoolError(e.to_string()))
    }

    async fn close(&self) {
        match self {
            DbPool::Sqlite(pool, _) => pool.close(),
            DbPool::Pg(pool) => pool.close(),
        }
    }
}
