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
use crate::models::{AuditStore, AuthorizationCodeStore, Ending, SessionStore};

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

/// Proof that the write transaction it was made in holds the user's session lock
/// ([`SessionStore::lock_user_for_session`]), so that concurrent logins of one user on
/// PostgreSQL count its live sessions one after the other, and that it raised the account's
/// `session_bound` for the session it is about to start. A transaction that already took the
/// lock for its own reasons (the code exchange) passes it on instead of updating the user's row
/// twice. Made only by [`lock_for_new_session`] and [`lock_code_owner_sessions`]; valid only
/// inside that transaction, which must insert at most one session under it.
#[derive(Debug, Clone, Copy)]
pub struct SessionsLocked {
    user: Id,
    /// The account's `session_bound` with the session about to start counted.
    bound: i64,
}

impl SessionsLocked {
    /// The user whose sessions are locked.
    pub fn user(&self) -> Id {
        self.user
    }
}

/// Takes the session lock of the user the code of `code_hash` was issued for, in the running
/// write transaction; `None` when there is no such code.
pub async fn lock_code_owner_sessions<C: AuthorizationCodeStore>(
    c: &mut C,
    code_hash: &str,
) -> QueryResult<Option<SessionsLocked>> {
    Ok(c.lock_code_owner(code_hash).await?.map(|(user, bound)| SessionsLocked { user, bound }))
}

/// Takes `user`'s session lock in the running write transaction, for a session about to start.
/// An account that is gone gets the largest bound: the cap then counts (none) as before.
pub async fn lock_for_new_session<C: SessionStore>(c: &mut C, user: Id) -> QueryResult<SessionsLocked> {
    let bound = c.lock_user_for_session(user).await?.unwrap_or(i64::MAX);
    Ok(SessionsLocked { user, bound })
}

impl SessionCap<'_> {
    /// Ends as many of the user's least recently used live sessions as it takes for one more
    /// to fit, and returns their ids. Runs inside the login's write transaction, which holds
    /// the user's session lock (`locked`).
    pub async fn make_room<C: SessionStore + AuditStore>(
        &self,
        c: &mut C,
        locked: SessionsLocked,
    ) -> QueryResult<Vec<Id>> {
        let user = locked.user;
        // The bound never falls below the live sessions (raised before every session starts,
        // set to the exact count below; sessions only leave the live set otherwise): within the
        // cap, nothing to count. Counting costs a row per live session (bench/README.md,
        // "Reading the code-flow figures").
        if usize::try_from(locked.bound).is_ok_and(|bound| bound <= self.max) {
            return Ok(Vec::new());
        }
        // Counted, and only the sessions to end listed. The lock held makes the count and the
        // list agree.
        let live = c.count_live_sessions(user, self.ending.now, self.refresh_ttl).await?;
        let excess = (live as usize + 1).saturating_sub(self.max);
        if excess == 0 {
            c.set_session_bound(user, live + 1).await?;
            return Ok(Vec::new());
        }
        let oldest = c.live_sessions_lru(user, self.ending.now, self.refresh_ttl, excess as i64).await?;
        let mut evicted = Vec::with_capacity(excess);
        for &session in &oldest {
            if c.end_session(session, self.ending).await? {
                let detail = json!({"session_id": session, "reason": "max_sessions_per_user"});
                c.insert_audit(&audit_event("session_evicted", self.ending.now, Some(user), self.client, detail))
                    .await?;
                evicted.push(session);
            }
        }
        // Listed sessions that another path ended meanwhile stay counted: still a bound.
        c.set_session_bound(user, live + 1 - evicted.len() as i64).await?;
        Ok(evicted)
    }
}
