//! The in-memory set of ended sessions (and deleted clients, by their id) that bearer checks
//! consult without touching the database: the verification core's [`Revoked`] set, the one a
//! resource server keeps from the change feed.
//!
//! Sessions ended on this instance are added at once (`Auth::revoke_locally`); those ended on
//! other instances arrive through the poller ([`super::poller`]), which reads the
//! `revoked_sessions` table every `revocation_poll_ms` and at once when woken ([`load_since`]). An
//! entry is dropped once every access token of its session has expired, so the set holds at most
//! the sessions ended within one access-token lifetime.

use portcullis_rocket::core::Revoked;
use rocket_db_pools::Pool;

use crate::db::{DbPool, Id};
use crate::models::RevocationStore;

/// Ended sessions whose access tokens may still be unexpired, with the time they can be forgotten.
pub type RevokedSessions = Revoked<Id>;

/// Reads into `set` the revocations made since `since`; returns how many rows it read.
pub async fn load_since(set: &RevokedSessions, pool: &DbPool, since: i64) -> Result<usize, String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let rows = crate::db::with_conn!(conn, |c| c.revocations_since(since).await).map_err(|e| e.to_string())?;
    for (session, until) in &rows {
        set.insert(*session, *until);
    }
    Ok(rows.len())
}
