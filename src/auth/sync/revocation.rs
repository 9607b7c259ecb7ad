//! The in-memory set of ended sessions that bearer checks consult without touching the database.
//!
//! Sessions ended on this instance are added at once ([`RevokedSessions::insert`]); those ended
//! on other instances arrive through the poller ([`super::poller`]), which reads the
//! `revoked_sessions` table every `revocation_poll_ms` and at once when woken. An entry is dropped
//! once every access token of its session has expired, so the set holds at most the sessions
//! ended within one access-token lifetime.

use std::collections::HashMap;
use std::sync::RwLock;

use rocket_db_pools::Pool;

use crate::db::{DbPool, Id};
use crate::models::RevocationStore;

/// Ended sessions whose access tokens may still be unexpired, with the time they can be forgotten.
#[derive(Debug, Default)]
pub struct RevokedSessions {
    entries: RwLock<HashMap<Id, i64>>,
}

impl RevokedSessions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether access tokens of this session must be rejected.
    pub fn contains(&self, session: Id) -> bool {
        self.entries.read().map(|e| e.contains_key(&session)).unwrap_or(true)
    }

    /// Records that `session` ended; tokens of it expire by `until`.
    pub fn insert(&self, session: Id, until: i64) {
        if let Ok(mut entries) = self.entries.write() {
            let slot = entries.entry(session).or_insert(until);
            *slot = (*slot).max(until);
        }
    }

    /// Forgets sessions whose access tokens have all expired.
    pub fn prune(&self, now: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, until| *until >= now);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads revocations made since `since` from the feed; returns how many rows it read.
    pub async fn load_since(&self, pool: &DbPool, since: i64) -> Result<usize, String> {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        let rows = crate::db::with_conn!(conn, |c| c.revocations_since(since).await).map_err(|e| e.to_string())?;
        for (session, until) in &rows {
            self.insert(*session, *until);
        }
        Ok(rows.len())
    }
}
