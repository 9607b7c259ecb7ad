//! Storage failures as API errors: an unreachable database is 503 `unavailable` (with
//! `Retry-After`), a NUL byte PostgreSQL cannot store is the request's fault (422), anything
//! else is a 500 whose cause is logged, never shown.

use super::ApiError;

/// Whether a database error message says the database cannot be reached right now: SQLite's
/// busy lock, a lost connection, or PgBouncer failing to reach its server (its own errors:
/// `server_login_retry`, `query_wait_timeout`, "pgbouncer cannot connect to server", "server conn
/// crashed?"). diesel reports these with an unknown kind, so the message is all there is.
fn means_unavailable(message: &str) -> bool {
    const SIGNS: [&str; 6] =
        ["locked", "connection", "server_login_retry", "query_wait_timeout", "cannot connect", "server conn crashed"];
    SIGNS.iter().any(|sign| message.contains(sign))
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            // The connection is gone (server restarted, database dropped, network cut): the
            // database is unavailable, not the request at fault.
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _)
            | Error::BrokenTransactionManager => ApiError::unavailable(e),
            Error::DatabaseError(DatabaseErrorKind::Unknown, ref info) if means_unavailable(info.message()) => {
                ApiError::unavailable(e)
            }
            // PostgreSQL cannot store a NUL character in text (SQLSTATE 22021); the request is at
            // fault. Inputs are validated before storage where they are known; this is the backstop.
            Error::DatabaseError(_, ref info) if info.message().contains("0x00") => {
                ApiError::invalid_field("A value contains a NUL character, which is not accepted.")
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::db::PoolError> for ApiError {
    fn from(e: crate::db::PoolError) -> Self {
        ApiError::unavailable(e)
    }
}
