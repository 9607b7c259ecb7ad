//! The live-session cap (`auth.max_sessions_per_user`): a login beyond `max_sessions_per_user` ends the user's
//! least recently used sessions, in the login's write transaction and through the same ending
//! as logout (revocation feed row, audit event `session_evicted`; the caller revokes locally
//! after the commit).

use diesel::result::QueryResult;
use serde_json::json;

use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::db::Id;
use crate::models::{AuditStore, Ending, SessionStore};

/// What a login needs to keep a user within the cap.
#[derive(Debug, Clone, Copy)]
pub struct SessionCap<'a> {
    pub ending: Ending<'a>,
    max: usize,
    refresh_ttl: i64,
    client: &'a RequestOrigin,
}

impl Auth {
    /// The cap for a login from `client` now.
    pub(crate) fn session_cap<'a>(&self, client: &'a RequestOrigin) -> SessionCap<'a> {
        SessionCap {
            ending: self.ending("session_evicted"),
            max: self.config.max_sessions_per_user as usize,
            refresh_ttl: self.config.refresh_ttl as i64,
            client,
        }
    }
}

impl SessionCap<'_> {
    /// Ends as many of the user's least recently used live sessions as it takes for one more
    /// to fit, and returns their ids. Runs inside the login's write transaction.
    pub async fn make_room<C: SessionStore + AuditStore>(&self, c: &mut C, user: Id) -> QueryResult<Vec<Id>> {
        // Concurrent logins of one user on PostgreSQL count one after the other.
        c.lock_user_sessions(user).await?;
        let live = c.live_sessions_lru(user, self.ending.now, self.refresh_ttl).await?;
        let excess = (live.len() + 1).saturating_sub(self.max);
        let mut evicted = Vec::with_capacity(excess);
        for &session in live.iter().take(excess) {
            if c.end_session(session, self.ending).await? {
                let detail = json!({"session_id": session, "reason": "max_sessions_per_user"});
                c.insert_audit(&audit_event("session_evicted", self.ending.now, Some(user), self.client, detail))
                    .await?;
                evicted.push(session);
            }
        }
        Ok(evicted)
    }
}
