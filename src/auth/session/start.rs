//! Starting a session, in three steps every sign-in shares: [`Auth::starting`] builds the row,
//! its first refresh token and the audit event; [`Starting::record`] writes them inside the
//! caller's write transaction (after making room under the live-session cap,
//! `auth::session::cap`); [`Auth::started`] issues the first token pair once it committed.
//! `Auth::start_session` (every password, second-factor and passkey sign-in) runs the three
//! steps alone; the authorization-code grant (`auth::oidc::code_grant`) runs the write inside the
//! transaction that redeems the code, so a racing replay of the code always finds the session.

use diesel::result::QueryResult;
use serde_json::json;

use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::session::cap::{lock_for_new_session, SessionCap, SessionsLocked};
use crate::auth::session::issued::IssuedTokens;
use crate::auth::session::login::Started;
use crate::auth::session::scope::Scope;
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::ApiResult;
use crate::models::{AuditStore, CodeSessionOrigin, NewAuditEvent, NewSession, Session, SessionStore, UserStore};

/// A session about to start: its row, its first refresh token, and what its write does beside
/// inserting it. `Debug` is left out: it holds the refresh token.
pub(crate) struct Starting<'a> {
    pub session: Session,
    refresh: String,
    refresh_expires: i64,
    event: NewAuditEvent<'a>,
    cap: SessionCap<'a>,
}

impl Auth {
    /// The session `id` of `user_id` as `started` says, at `now`; `origin` when an authorization
    /// code starts it (its browser session and `auth_time`).
    pub(crate) fn starting<'a>(
        &self,
        id: Id,
        user_id: Id,
        started: &Started<'_>,
        origin: Option<CodeSessionOrigin>,
        client: &'a RequestOrigin,
        now: i64,
    ) -> Starting<'a> {
        let session = Session {
            id,
            user_id,
            created_at: now,
            last_used_at: now,
            expires_at: now + self.config.session_max_age as i64,
            ended_at: None,
            end_reason: None,
            user_agent: client.user_agent.clone(),
            ip: client.ip.clone(),
            amr: started.amr.to_owned(),
            generation: 0,
            rotated_at: None,
            burst_generation: 0,
            burst_at: None,
            resource: started.resource.map(str::to_owned),
            client_id: started.client_id.to_owned(),
            scope: started.scope.map(Scope::to_claim),
            browser_session_id: origin.map(|o| o.browser_session_id),
            auth_time: origin.map(|o| o.auth_time),
        };
        let detail = json!({"session_id": id, "amr": started.amr, "client_id": started.client_id});
        Starting {
            refresh: self.chain.mint(session.id, session.generation),
            refresh_expires: (now + self.config.refresh_ttl as i64).min(session.expires_at),
            event: audit_event("login_succeeded", now, Some(user_id), client, detail),
            cap: self.session_cap(client),
            session,
        }
    }

    /// The first token pair of a session [`Starting::record`] wrote; `evicted` are the sessions
    /// that write ended to make room, revoked here at once.
    pub(crate) async fn started(
        &self,
        conn: &mut DbConn,
        starting: Starting<'_>,
        evicted: &[Id],
    ) -> ApiResult<IssuedTokens> {
        self.revoke_locally(evicted, &starting.cap.ending);
        let user_id = starting.session.user_id;
        let roles = crate::db::with_conn!(conn, |c| c.user_role_names(user_id).await)?;
        self.first_tokens(starting, roles)
    }

    /// [`started`](Self::started) with the user's `roles` already read (in the transaction
    /// that recorded the session).
    pub(crate) fn started_with_roles(
        &self,
        starting: Starting<'_>,
        evicted: &[Id],
        roles: Vec<String>,
    ) -> ApiResult<IssuedTokens> {
        self.revoke_locally(evicted, &starting.cap.ending);
        self.first_tokens(starting, roles)
    }

    fn first_tokens(&self, starting: Starting<'_>, roles: Vec<String>) -> ApiResult<IssuedTokens> {
        let Starting { session, refresh, refresh_expires, .. } = starting;
        self.token_response(&session, session.user_id, roles, refresh, refresh_expires, session.created_at)
    }
}

impl Starting<'_> {
    /// Inside the caller's write transaction: ends the user's least recently used sessions
    /// beyond the cap, inserts the session and audits the sign-in; returns the ended sessions.
    /// `held`: the user's session lock when the transaction already took it (taken here
    /// otherwise, and when it is another user's).
    pub(crate) async fn record<C: SessionStore + AuditStore>(
        &self,
        c: &mut C,
        held: Option<SessionsLocked>,
    ) -> QueryResult<Vec<Id>> {
        let s = &self.session;
        let locked = match held.filter(|locked| locked.user() == s.user_id) {
            Some(locked) => locked,
            None => lock_for_new_session(c, s.user_id).await?,
        };
        let evicted = self.cap.make_room(c, locked).await?;
        let new_session = NewSession {
            id: s.id,
            user_id: s.user_id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            user_agent: s.user_agent.as_deref(),
            ip: s.ip.as_deref(),
            amr: &s.amr,
            resource: s.resource.as_deref(),
            client_id: &s.client_id,
            scope: s.scope.as_deref(),
        };
        match (s.browser_session_id, s.auth_time) {
            (Some(browser_session_id), Some(auth_time)) => {
                c.insert_code_session(&new_session, CodeSessionOrigin { browser_session_id, auth_time }).await?
            }
            _ => c.insert_session(&new_session).await?,
        }
        c.insert_audit(&self.event).await?;
        Ok(evicted)
    }
}
