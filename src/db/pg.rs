//! The PostgreSQL connection of the pool: diesel-async's connection, made safe behind a pooler
//! in transaction mode (PgBouncer's `pool_mode = transaction`).
//!
//! Such a pooler hands the client a different server connection for each *transaction*; outside
//! an explicit transaction, each statement is a transaction of its own. diesel-async prepares a
//! named statement in one round trip and executes it in the next, so through the pooler the
//! execution can reach a server that never saw the statement, and statements it caches stay
//! behind on servers other clients get (PgBouncer 1.18, Debian 12's, tracks none of this). In
//! [`PoolMode::Transaction`] this connection therefore (1) keeps no prepared statement beyond
//! its query, so each is closed on the server that prepared it, and (2) runs every statement
//! that is not already inside a transaction in a `BEGIN`/`COMMIT` of its own, which pins the
//! prepare, the execution and the close to one server. The cost is two round trips per such
//! statement; transactions the code opens itself cost nothing extra. In
//! [`PoolMode::Session`] (a direct connection, or a pooler in session mode) it is the plain
//! diesel-async connection with its statement cache.

use diesel::connection::{CacheSize, Instrumentation};
use diesel::query_builder::{AsQuery, QueryFragment, QueryId};
use diesel::QueryResult;
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncConnectionCore, AsyncPgConnection, SimpleAsyncConnection,
    TransactionManager,
};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use serde::Deserialize;

/// How the service reaches PostgreSQL: `databases.main.pool_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolMode {
    /// Directly, or through a pooler that gives each client one server for its whole session.
    #[default]
    Session,
    /// Through a pooler that gives each transaction any server (PgBouncer's transaction mode).
    Transaction,
}

/// A pooled PostgreSQL connection; see the module documentation.
pub struct PgConn {
    inner: AsyncPgConnection,
    mode: PoolMode,
}

type Inner = AsyncPgConnection;
type Row = <Inner as AsyncConnectionCore>::Row<'static, 'static>;

impl PgConn {
    /// Connects to `url` for use in `mode`.
    pub async fn connect(url: &str, mode: PoolMode) -> diesel::ConnectionResult<PgConn> {
        let inner = match mode {
            PoolMode::Session => AsyncPgConnection::establish(url).await?,
            PoolMode::Transaction => connect_through_pooler(url).await?,
        };
        Ok(PgConn { inner, mode })
    }

    /// Whether a statement must get a transaction of its own: behind a transaction pooler, when
    /// none is open.
    fn needs_own_transaction(&mut self) -> bool {
        if self.mode == PoolMode::Session {
            return false;
        }
        let status =
            <AnsiTransactionManager as TransactionManager<Inner>>::transaction_manager_status_mut(&mut self.inner);
        !matches!(status.transaction_depth(), Ok(Some(_)))
    }
}

/// diesel-async sets the session's time zone and encoding with prepared statements as it
/// connects, before its statement cache can be turned off: behind a transaction pooler that
/// runs in one transaction too, so those statements are prepared, run and closed on one server.
/// The pooler carries the two settings over to whichever server the connection gets later
/// (it tracks them as parameters). The tokio-postgres connection is driven by a task of its own
/// so the transaction can begin before diesel-async takes the client.
pub(super) async fn connect_through_pooler(url: &str) -> diesel::ConnectionResult<AsyncPgConnection> {
    let failed = |e: tokio_postgres::Error| diesel::ConnectionError::BadConnection(e.to_string());
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(failed)?;
    tokio::spawn(async move {
        // Ends when the client is dropped; a failure reaches the client's queries as an error.
        let _ = connection.await;
    });
    client.batch_execute("BEGIN").await.map_err(failed)?;
    let mut inner = AsyncPgConnection::try_from(client).await?;
    inner.set_prepared_statement_cache_size(CacheSize::Disabled);
    inner.batch_execute("COMMIT").await.map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    Ok(inner)
}

/// Runs `work` (a statement's future on `conn`) between `BEGIN` and `COMMIT` on `conn`, rolling
/// back when it fails. The statement's future is built before the `BEGIN` is sent but sends
/// nothing until polled, so the order on the wire is `BEGIN`, statement, `COMMIT`.
async fn in_own_transaction<T>(conn: &Inner, work: BoxFuture<'_, QueryResult<T>>) -> QueryResult<T> {
    let mut conn = conn;
    conn.batch_execute("BEGIN").await?;
    match work.await {
        Ok(value) => conn.batch_execute("COMMIT").await.map(|()| value),
        Err(e) => {
            // The statement's error is the one to report; a failed rollback leaves the
            // connection broken, which the pool notices.
            let _ = conn.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

impl SimpleAsyncConnection for PgConn {
    async fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        // The simple-query protocol prepares nothing; a pooler passes it through as it is.
        self.inner.batch_execute(query).await
    }
}

impl AsyncConnectionCore for PgConn {
    type LoadFuture<'conn, 'query> = BoxFuture<'conn, QueryResult<Self::Stream<'conn, 'query>>>;
    type ExecuteFuture<'conn, 'query> = BoxFuture<'conn, QueryResult<usize>>;
    type Stream<'conn, 'query> = BoxStream<'static, QueryResult<Row>>;
    type Row<'conn, 'query> = Row;
    type Backend = diesel::pg::Pg;

    fn load<'conn, 'query, T>(&'conn mut self, source: T) -> Self::LoadFuture<'conn, 'query>
    where
        T: AsQuery + 'query,
        T::Query: QueryFragment<Self::Backend> + QueryId + 'query,
    {
        if !self.needs_own_transaction() {
            return self.inner.load(source);
        }
        // The shared-reference connection builds the statement now (binding `source`) and lets
        // `BEGIN` and `COMMIT` go out on the same connection around it.
        let conn: &'conn Inner = &self.inner;
        let load = AsyncConnectionCore::load(&mut { conn }, source);
        let rows = async move { load.await?.try_collect::<Vec<_>>().await }.boxed();
        async move {
            let rows = in_own_transaction(conn, rows).await?;
            Ok(futures_util::stream::iter(rows.into_iter().map(Ok)).boxed())
        }
        .boxed()
    }

    fn execute_returning_count<'conn, 'query, T>(&'conn mut self, source: T) -> Self::ExecuteFuture<'conn, 'query>
    where
        T: QueryFragment<Self::Backend> + QueryId + 'query,
    {
        if !self.needs_own_transaction() {
            return self.inner.execute_returning_count(source);
        }
        let conn: &'conn Inner = &self.inner;
        let execute = AsyncConnectionCore::execute_returning_count(&mut { conn }, source);
        in_own_transaction(conn, execute).boxed()
    }
}

impl AsyncConnection for PgConn {
    type TransactionManager = AnsiTransactionManager;

    async fn establish(url: &str) -> diesel::ConnectionResult<Self> {
        PgConn::connect(url, PoolMode::Session).await
    }

    fn transaction_state(&mut self) -> &mut AnsiTransactionManager {
        self.inner.transaction_state()
    }

    fn instrumentation(&mut self) -> &mut dyn Instrumentation {
        self.inner.instrumentation()
    }

    fn set_instrumentation(&mut self, instrumentation: impl Instrumentation) {
        self.inner.set_instrumentation(instrumentation)
    }

    fn set_prepared_statement_cache_size(&mut self, size: CacheSize) {
        // Behind a transaction pooler a cached statement would outlive its server: keep it off.
        if self.mode == PoolMode::Session {
            self.inner.set_prepared_statement_cache_size(size)
        }
    }
}

impl PoolableConnection for PgConn {
    fn is_broken(&mut self) -> bool {
        self.inner.is_broken()
    }
}
