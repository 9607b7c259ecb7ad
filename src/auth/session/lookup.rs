//! Reading refresh tokens without exchanging them, for revocation (RFC 7009) and introspection
//! (RFC 7662): which session a token names, and whether an exchange would accept it now.

use super::rotation::{judge, Verdict};
use crate::auth::secrets::hash_token;
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::ApiResult;
use crate::models::{RefreshTokenStore, Session, SessionFamily, SessionStore, User};

impl Auth {
    /// The session of a refresh token that an exchange would accept now (the current generation,
    /// or a replay within the grace interval), for introspection; `None` otherwise. Reads only:
    /// unlike an exchange, presenting a spent token here ends nothing.
    pub async fn live_refresh_session(&self, conn: &mut DbConn, token: &str) -> ApiResult<Option<Session>> {
        let now_ms = self.clock.now_millis();
        let (now, grace, refresh_ttl) =
            (now_ms.seconds().0, self.config.reuse_grace as i64, self.config.refresh_ttl as i64);
        let live = |s: &Session, user: &User| s.is_live(now, refresh_ttl) && !user.disabled;
        if let Some(token) = self.chain.open(token) {
            let found = crate::db::with_conn!(conn, |c| c.find_session_family(token.session).await)?;
            return Ok(found
                .filter(|SessionFamily { session: s, user, .. }| {
                    live(s, user)
                        && matches!(
                            judge(s, token.generation, now_ms, grace * 1000),
                            Verdict::Exchange(_) | Verdict::Replay
                        )
                })
                .map(|family| family.session));
        }
        let hash = hash_token(token);
        let found = crate::db::with_conn!(conn, |c| c.find_refresh_family(&hash).await)?;
        Ok(found
            .filter(|(t, s, user, _)| {
                live(s, user) && t.expires_at > now && t.spent_at.is_none_or(|at| grace > 0 && now - at <= grace)
            })
            .map(|(_, s, _, _)| s))
    }

    /// The session a presented refresh token (of either format, spent or not) belongs to, for
    /// revocation and introspection; `None` for anything that is not one of ours.
    pub async fn refresh_token_session(&self, conn: &mut DbConn, token: &str) -> ApiResult<Option<Id>> {
        if let Some(token) = self.chain.open(token) {
            return Ok(Some(token.session));
        }
        let hash = hash_token(token);
        Ok(crate::db::with_conn!(conn, |c| c.find_refresh_token(&hash).await)?.map(|t| t.session_id))
    }
}
