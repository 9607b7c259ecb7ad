//! Finding the browser session a cookie names: the token's digest, then the `sessions` row, which
//! must still live (not ended, not past its expiry or `refresh_ttl` of disuse). Whatever ended the
//! session (logout-all, a password change, disable, ...) so ends what the cookie is worth.

use super::BrowserSession;
use crate::auth::secrets::hash_token;
use crate::auth::Auth;
use crate::db::DbConn;
use crate::error::ApiResult;
use crate::models::{BrowserSessionStore, SessionStore};

/// How stale `last_used_at` may get before a use writes it again: the session list shows it, and
/// `refresh_ttl` of disuse ends a session, but a write per page view buys nothing.
const TOUCH_AFTER: i64 = 60;

impl Auth {
    /// The live browser session whose cookie holds `token`, if any.
    pub async fn browser_session(&self, conn: &mut DbConn, token: &str) -> ApiResult<Option<BrowserSession>> {
        // A 256-bit token is 43 base64url characters; anything else names no session.
        if token.len() != 43 {
            return Ok(None);
        }
        let hash = hash_token(token);
        let found = crate::db::with_conn!(conn, |c| c.find_browser_session(&hash).await)?;
        let now = self.clock.now();
        let Some((row, session)) = found.filter(|(_, s)| s.is_live(now, self.config.refresh_ttl as i64)) else {
            return Ok(None);
        };
        if session.last_used_at + TOUCH_AFTER <= now {
            crate::db::write_one!(conn, |c| c.touch_session(session.id, now).await)?;
        }
        Ok(Some(BrowserSession {
            id: session.id,
            user_id: session.user_id,
            auth_time: row.auth_time,
            amr: session.amr,
        }))
    }
}
