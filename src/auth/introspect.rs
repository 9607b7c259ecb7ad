//! Token introspection (RFC 7662): whether a presented access or refresh token is live, and
//! what it says. Anything else (garbage, expired, ended session, deleted client, spent refresh
//! token) is `{"active": false}` — the caller learns nothing more.
//!
//! `token_use` says which kind a token is. `token_type` is the OAuth token type of RFC 7662 §2.2
//! (RFC 6749 §7.1): `Bearer` for access tokens. A refresh token has no such type; its answer keeps
//! version 2's `token_type: "refresh_token"`, so a client that asks "Bearer?" gets no, and clients
//! written against version 2 keep working (docs/configuration.md, "Upgrading from version 2").

use serde_json::{json, Value};

use crate::auth::keys::tokens::Subject;
use crate::auth::secrets::hash_token;
use crate::auth::Auth;
use crate::db::DbConn;
use crate::error::ApiResult;
use crate::models::{RefreshTokenStore, SessionStore, UserStore};

impl Auth {
    /// The introspection answer for `token`. `hint` (`access_token` / `refresh_token`) only
    /// decides which kind is tried first.
    pub async fn introspect(&self, conn: &mut DbConn, token: &str, hint: Option<&str>) -> ApiResult<Value> {
        if hint != Some("refresh_token") {
            if let Some(answer) = self.introspect_access(token) {
                return Ok(answer);
            }
        }
        if let Some(answer) = self.introspect_refresh(conn, token).await? {
            return Ok(answer);
        }
        Ok(self.introspect_access(token).unwrap_or_else(|| json!({"active": false})))
    }

    /// A live access token: verified as the bearer guard does, against the ended-session set.
    fn introspect_access(&self, token: &str) -> Option<Value> {
        let (claims, until) = self.verify_issued(token).ok()?;
        self.keys.current().check_time(&claims, until, self.clock.now()).ok()?;
        let mut answer = json!({
            "active": true,
            "token_type": "Bearer",
            "token_use": "access_token",
            "sub": claims.sub,
            "exp": claims.exp,
            "iat": claims.iat,
            "iss": claims.iss,
            "aud": claims.aud,
            "jti": claims.jti,
        });
        // Refused as the bearer guard refuses it: the verification core's rule.
        if portcullis_rocket::core::refusal(&claims, self).is_some() {
            return None;
        }
        match claims.subject()? {
            Subject::User { session_id, roles, scope, .. } => {
                answer["sid"] = json!(session_id);
                answer["roles"] = json!(roles);
                // The session's client (RFC 7662 §2.2); tokens from before version 3 name none.
                if let Some(client_id) = &claims.client_id {
                    answer["client_id"] = json!(client_id);
                }
                if let Some(scope) = scope {
                    answer["scope"] = json!(scope);
                }
            }
            Subject::Client { client_id, scope } => {
                answer["client_id"] = json!(client_id);
                answer["scope"] = json!(scope);
            }
        }
        Some(answer)
    }

    /// A live refresh token: the current one of a live session of an enabled account. Tokens of
    /// the MAC'd chain format name their session and generation; older random ones are looked up.
    async fn introspect_refresh(&self, conn: &mut DbConn, token: &str) -> ApiResult<Option<Value>> {
        let now = self.clock.now();
        let refresh_ttl = self.config.refresh_ttl as i64;
        let (session, exp, iat) = match self.chain.open(token) {
            Some(chained) => {
                let Some(session) = crate::db::with_conn!(conn, |c| c.find_session(chained.session).await)? else {
                    return Ok(None);
                };
                if session.generation != chained.generation {
                    return Ok(None);
                }
                let exp = (session.last_used_at + refresh_ttl).min(session.expires_at);
                let iat = session.rotated_at.map_or(session.created_at, |ms| ms.div_euclid(1000));
                (session, exp, iat)
            }
            None => {
                let hash = hash_token(token);
                let Some((refresh, session, _, _)) =
                    crate::db::with_conn!(conn, |c| c.find_refresh_family(&hash).await)?
                else {
                    return Ok(None);
                };
                if refresh.spent_at.is_some() {
                    return Ok(None);
                }
                (session, refresh.expires_at, refresh.created_at)
            }
        };
        let user = crate::db::with_conn!(conn, |c| c.find_user(session.user_id).await)?;
        let live = exp > now
            && user.as_ref().is_some_and(|u| !u.disabled)
            && session.is_live(now, refresh_ttl)
            && !self.revoked.contains(&session.id);
        if !live {
            return Ok(None);
        }
        let mut answer = json!({
            "active": true,
            "token_type": "refresh_token",
            "token_use": "refresh_token",
            "sub": session.user_id,
            "exp": exp,
            "iat": iat,
            "iss": self.config.issuer,
            "aud": self.audience(session.resource.as_deref()),
            "sid": session.id,
            "client_id": session.client_id,
        });
        // A down-scoped session's refresh token: the scope it was granted.
        if let Some(scope) = session.scope {
            answer["scope"] = json!(scope);
        }
        Ok(Some(answer))
    }
}
