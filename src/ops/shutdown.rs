//! Graceful shutdown: SIGTERM or Ctrl-C stops the listener, requests in flight finish, the
//! database is closed cleanly, and the process exits 0.
//!
//! Rocket does the first part (its `shutdown` configuration: `ctrlc`, `signals` (SIGTERM by
//! default), `grace` 2 s for requests in flight, `mercy` 3 s for their connections), and tells
//! the background tasks (revocation poller, housekeeping), which end on its shutdown future.
//! What is left is the database: every write a response acknowledged was committed before that
//! response (a write body returns only after its batch commits), so closing commits only what
//! no one was told about, and nothing acknowledged can be lost.

use rocket::error::ErrorKind;
use rocket::{Build, Rocket};
use rocket_db_pools::Database;

use crate::db::Db;

/// Launches `rocket`, and after its shutdown closes the database. A shutdown that outlived
/// grace and mercy (a request still running) is a warning, not a failure: the listener is
/// closed and what was acknowledged is committed either way.
pub async fn serve(rocket: Rocket<Build>) -> Result<(), String> {
    match rocket.launch().await {
        Ok(rocket) => close(Db::fetch(&rocket)).await,
        Err(e) => match e.kind() {
            ErrorKind::Shutdown(rocket, _) => {
                rocket::warn!("shutdown: a request outlived the grace period; closing anyway");
                close(Db::fetch(rocket)).await
            }
            _ => Err(e.to_string()),
        },
    }
}

async fn close(db: Option<&Db>) -> Result<(), String> {
    if let Some(db) = db {
        db.shutdown().await;
    }
    Ok(())
}
