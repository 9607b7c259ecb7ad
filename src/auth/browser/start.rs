//! Starting a browser session: after the password step (and the second factor), in one write
//! transaction with the cap, the throttle release and the audit event, like any login
//! (`auth::session::login::start_session`), but with no token pair: its proof is the cookie.

use serde_json::json;

use super::{BrowserSession, REPLACED};
use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::secrets::OpaqueToken;
use crate::auth::session::cap::lock_for_new_session;
use crate::auth::throttle::{self, Reservation};
use crate::auth::Auth;
use crate::config::Secret;
use crate::db::{DbConn, Id};
use crate::error::ApiResult;
use crate::models::{AuditStore, BrowserSessionRow, BrowserSessionStore, NewSession, SessionStore, FIRST_PARTY_CLIENT};

/// A browser session just started, and the cookie's token (never stored).
#[derive(Debug)]
pub struct StartedBrowserSession {
    pub session: BrowserSession,
    pub token: Secret,
}

impl Auth {
    /// Starts a browser session of `user_id` signed in with `amr`; releases the password step's
    /// `reservation` when there is one. The browser's previous session (`replacing`, e.g. a
    /// `prompt=login` sign-in) ends with it: one browser, one session.
    pub async fn start_browser_session(
        &self,
        conn: &mut DbConn,
        user_id: Id,
        amr: &str,
        reservation: Option<&Reservation>,
        replacing: Option<Id>,
        client: &RequestOrigin,
    ) -> ApiResult<StartedBrowserSession> {
        let now = self.clock.now();
        let token = OpaqueToken::generate();
        let id = Id::new();
        let session = NewSession {
            id,
            user_id,
            created_at: now,
            last_used_at: now,
            expires_at: now + self.browser_session_ttl(),
            user_agent: client.user_agent.as_deref(),
            ip: client.ip.as_deref(),
            amr,
            resource: None,
            client_id: FIRST_PARTY_CLIENT,
            scope: None,
        };
        let row = BrowserSessionRow { session_id: id, token_hash: token.hash().to_owned(), auth_time: now };
        let detail = json!({"session_id": id, "amr": amr, "client_id": FIRST_PARTY_CLIENT, "browser": true});
        let event = audit_event("login_succeeded", now, Some(user_id), client, detail);
        let cap = self.session_cap(client);
        let replaced = self.ending_at(REPLACED, now);
        let (evicted, ended) = crate::db::write_tx!(conn, |c| {
            if let Some(reservation) = reservation {
                throttle::release(c, reservation).await?;
            }
            let mut ended = vec![];
            if let Some(old) = replacing {
                // Its pending codes are voided with it (`SessionStore::end_session`).
                if c.end_session(old, replaced).await? {
                    ended.push(old);
                }
            }
            let locked = lock_for_new_session(c, user_id).await?;
            let evicted = cap.make_room(c, locked).await?;
            c.insert_session(&session).await?;
            c.insert_browser_session(&row).await?;
            c.insert_audit(&event).await?;
            Ok::<_, diesel::result::Error>((evicted, ended))
        })?;
        self.revoke_locally(&evicted, &cap.ending);
        self.revoke_locally(&ended, &replaced);
        let session = BrowserSession { id, user_id, auth_time: now, amr: amr.to_owned() };
        Ok(StartedBrowserSession { session, token: Secret::new(token.into_plaintext()) })
    }
}
