//! Ending sessions on a user's or an admin's request: logout, logout everywhere, and RFC 7009
//! revocation. Each ends the rows, audits it in the same transaction, and then marks the sessions
//! ended in memory so their access tokens are refused at once (`revoke_locally`).

use serde_json::json;

use crate::auth::audit::{audit_by, audit_event};
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::session::binding;
use crate::auth::token_client::TokenClient;
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::ApiResult;
use crate::models::{AuditStore, SessionStore};

impl Auth {
    /// Ends one session of the caller (`reason` recorded) and audits it as `event`.
    pub async fn end_own_session(
        &self,
        conn: &mut DbConn,
        principal: &guards::User,
        session: Id,
        event: &str,
        client: &RequestOrigin,
    ) -> ApiResult<bool> {
        let ending = self.ending(event);
        let audit = audit_event(event, ending.now, Some(principal.user_id), client, json!({"session_id": session}));
        let ended = crate::db::write_tx!(conn, |c| {
            match c.find_session(session).await? {
                Some(s) if s.user_id == principal.user_id => {}
                _ => return Ok(None),
            }
            // A session that has already ended answers as found, and records nothing new.
            let ended = c.end_session(session, ending).await?;
            if ended {
                c.insert_audit(&audit).await?;
            }
            Ok::<_, diesel::result::Error>(Some(ended))
        })?;
        match ended {
            Some(ended) => {
                if ended {
                    self.revoke_locally(&[session], &ending);
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Ends every session of `user` (on behalf of `actor`); audits `event` with the count.
    pub async fn end_all_sessions(
        &self,
        conn: &mut DbConn,
        user: Id,
        actor: Id,
        event: &str,
        client: &RequestOrigin,
    ) -> ApiResult<Vec<Id>> {
        let ending = self.ending(event);
        let ended = crate::db::write_tx!(conn, |c| {
            let ended = c.end_user_sessions(user, None, ending).await?;
            let audit = audit_by(event, ending.now, Some(user), Some(actor), client, json!({"sessions": ended.len()}));
            c.insert_audit(&audit).await?;
            Ok::<_, diesel::result::Error>(ended)
        })?;
        self.revoke_locally(&ended, &ending);
        Ok(ended)
    }

    /// RFC 7009: ends the session of a presented access or refresh token, when `revoker` may
    /// ([`binding::may_revoke`]: a confidential client's session only by that client). Unknown,
    /// malformed, foreign and not-yours tokens are not an error: the caller learns nothing.
    pub async fn revoke_token(
        &self,
        conn: &mut DbConn,
        token: &str,
        revoker: &TokenClient,
        client: &RequestOrigin,
    ) -> ApiResult<()> {
        let session = match self.verify_issued(token) {
            // A client's token has no session: clients end with their deletion.
            Ok((claims, _)) => claims.sid,
            Err(_) => self.refresh_token_session(conn, token).await?,
        };
        let Some(session) = session else { return Ok(()) };
        let ending = self.ending("logout");
        let ended = crate::db::write_tx!(conn, |c| {
            let Some(found) = c.find_session(session).await? else { return Ok(false) };
            if !binding::may_revoke(c, &found.client_id, revoker).await? {
                return Ok(false);
            }
            let ended = c.end_session(session, ending).await?;
            if ended {
                let audit = audit_event(
                    "logout",
                    ending.now,
                    Some(found.user_id),
                    client,
                    json!({"session_id": session, "via": "oauth_revoke"}),
                );
                c.insert_audit(&audit).await?;
            }
            Ok::<_, diesel::result::Error>(ended)
        })?;
        if ended {
            self.revoke_locally(&[session], &ending);
        }
        Ok(())
    }
}
