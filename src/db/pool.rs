//! The pool type behind [`Db`](super::Db): a deadpool of either backend, chosen by the URL.

use std::time::Duration;

use deadpool::Runtime;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use rocket::figment::Figment;
use serde::Deserialize;

use super::pg::{PgConn, PoolMode};
use super::sqlite::{open_sqlite, SqliteConn};
use super::writer::WriterLock;

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
    /// PostgreSQL only: `transaction` when `url` is a pooler in transaction mode (PgBouncer's
    /// `pool_mode = transaction`); `session` (the default) otherwise. See [`PoolMode`].
    #[serde(default)]
    pub pool_mode: PoolMode,
    /// PostgreSQL only: a direct connection (not through a transaction pooler) for what needs a
    /// session of its own: `LISTEN` for the change feed, and the migration lock.
    #[serde(default)]
    pub direct_url: Option<String>,
}

impl PoolSettings {
    /// The URL for session-level work (`LISTEN`, session locks): `direct_url`, else `url`
    /// unless that is a transaction pooler, where a session does not survive a transaction.
    pub fn session_url(&self) -> Option<&str> {
        match (&self.direct_url, self.pool_mode) {
            (Some(direct), _) => Some(direct),
            (None, PoolMode::Session) => Some(&self.url),
            (None, PoolMode::Transaction) => None,
        }
    }
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
    Pg(Pool<PgConn>),
}

/// A pooled SQLite connection and the writer of its pool.
pub struct SqliteObject {
    conn: Object<SqliteConn>,
    writer: WriterLock,
}

impl SqliteObject {
    /// This process's SQLite writer; see [`WriterLock`].
    pub fn writer(&self) -> &WriterLock {
        &self.writer
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
    Pg(Object<PgConn>),
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
                let mut config = ManagerConfig::<PgConn>::default();
                config.recycling_method = RecyclingMethod::Fast;
                let mode = settings.pool_mode;
                config.custom_setup = Box::new(move |url| {
                    let url = url.to_owned();
                    Box::pin(async move { PgConn::connect(&url, mode).await })
                });
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

    /// The SQLite database file, `None` on PostgreSQL (the generated key-encryption key lives
    /// beside it: `auth::keys::kek_file`).
    pub fn sqlite_path(&self) -> Option<&str> {
        match self {
            DbPool::Sqlite(_, writer) => Some(writer.path()),
            DbPool::Pg(_) => None,
        }
    }

    /// Connections open, idle and awaited, for the metrics.
    pub fn status(&self) -> deadpool::Status {
        match self {
            DbPool::Sqlite(pool, _) => pool.status(),
            DbPool::Pg(pool) => pool.status(),
        }
    }

    /// At shutdown: commits SQLite's open write batch and closes the pool.
    pub async fn shutdown(&self) {
        match self {
            DbPool::Sqlite(pool, writer) => {
                writer.close().await;
                pool.close();
            }
            DbPool::Pg(pool) => pool.close(),
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

    /// Does nothing: rocket_db_pools calls this when shutdown *begins*, while requests in flight
    /// still need connections (they would answer 503). The pool is closed after the server has
    /// stopped, by [`DbPool::shutdown`] (see `ops::shutdown`).
    async fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pool_mode: PoolMode, direct_url: Option<&str>) -> PoolSettings {
        PoolSettings {
            url: "postgres://pooler/db".into(),
            max_connections: 1,
            connect_timeout: 1,
            pool_mode,
            direct_url: direct_url.map(str::to_owned),
        }
    }

    #[test]
    fn session_work_goes_to_the_direct_url_and_never_through_a_transaction_pooler() {
        assert_eq!(settings(PoolMode::Session, None).session_url(), Some("postgres://pooler/db"));
        assert_eq!(settings(PoolMode::Transaction, None).session_url(), None);
        let direct = Some("postgres://server/db");
        assert_eq!(settings(PoolMode::Transaction, direct).session_url(), direct);
        assert_eq!(settings(PoolMode::Session, direct).session_url(), direct);
    }
}
