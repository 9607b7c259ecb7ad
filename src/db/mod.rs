//! Storage: the `main` database behind rocket_db_pools, for both backends.
//!
//! Queries are written once against diesel's DSL and compiled for each backend by the
//! [`with_conn!`] and [`write_tx!`] macros, which match on [`DbConn`] and run the same body with
//! the concrete connection type. Callers name them `crate::db::with_conn!`: `#[macro_export]`
//! also places them at the crate root, hidden there, since storage is no business of `lib.rs`.

mod checkpoint;
mod id;
mod migrate;
pub mod notify;
mod pg;
mod pool;
pub mod schema;
mod schema_v3;
mod sqlite;
mod statement_cache;
mod writer;

#[doc(inline)]
pub use crate::{with_conn, write_one, write_tx};
pub use id::{DbUuid, Id};
pub use migrate::{migrations_fairing, run_migrations, run_migrations_for};
pub use pg::{PgConn, PoolMode};
pub use pool::{Backend, DbConn, DbPool, PoolError, PoolSettings, SqliteObject};
pub use sqlite::{Inline, SqliteConn, SQLITE_PRAGMAS};
pub use statement_cache::StatementCache;
pub use writer::{observe_batches, WriterLock};

use rocket_db_pools::Database;

/// The one database of the service, `[default.databases.main]` in `Rocket.toml`.
#[derive(Database)]
#[database("main")]
pub struct Db(DbPool);

/// Runs `$body` with `$c` bound to the concrete `&mut` connection of either backend.
#[doc(hidden)]
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite(ref mut __obj) => {
                let $c: &mut ::diesel_async::sync_connection_wrapper::SyncConnectionWrapper<
                    ::diesel::SqliteConnection,
                    $crate::db::Inline,
                > = &mut *__obj;
                $body
            }
            $crate::db::DbConn::Pg(ref mut __obj) => {
                let $c: &mut $crate::db::PgConn = &mut *__obj;
                $body
            }
        }
    };
}

/// Runs `$body` inside a write transaction: on SQLite on the process's single writer connection
/// ([`WriterLock`]), in a savepoint of a group-committed `BEGIN IMMEDIATE` batch; on PostgreSQL
/// as a plain transaction on `$conn`, where conditional updates and row locks decide races.
/// Every write goes through here, and returns once its transaction is committed.
///
/// The body is an expression evaluating to `Result<T, E>` with `E: From<diesel::result::Error>`;
/// `$c` is the transaction's connection.
#[doc(hidden)]
#[macro_export]
macro_rules! write_tx {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite(ref mut __obj) => __obj.writer().run(async |$c| $body).await,
            $crate::db::DbConn::Pg(ref mut __obj) => {
                let __w: &mut $crate::db::PgConn = &mut *__obj;
                ::diesel_async::AsyncConnection::transaction(__w, async |$c| $body).await
            }
        }
    };
}

/// [`write_tx!`] for a body that is one statement: on SQLite the same (the single writer); on
/// PostgreSQL the statement alone, a transaction of its own, instead of `BEGIN`, the statement
/// and `COMMIT` (three round trips; bench/README.md, "Reading the code-flow figures"). Never
/// give it a body of more than one statement: they would not be atomic on PostgreSQL.
#[doc(hidden)]
#[macro_export]
macro_rules! write_one {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite(ref mut __obj) => __obj.writer().run(async |$c| $body).await,
            $crate::db::DbConn::Pg(ref mut __obj) => {
                let $c: &mut $crate::db::PgConn = &mut *__obj;
                $body
            }
        }
    };
}
