//! Ending one browser session on purpose (RP-initiated logout, `super::logout`): the `sessions`
//! row ends like any session, and so does every session its authorization codes started
//! (`sessions.browser_session_id`), each through the one revocation path
//! (`SessionStore::end_session`: the revocation feed, its pending codes voided in the same
//! transaction), audited as one `logout`.

use serde_json::json;

use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::ApiResult;
use crate::models::{AuditStore, SessionStore};

impl Auth {
    /// Ends the browser session `id` of `user_id` for `reason`, and the sessions its codes
    /// started; the ids this call ended (the browser session's first, when it was still live).
    ///
    /// The user's session lock is taken first, as the code grant takes it before redeeming its code and checking that
    /// the browser session stands (`Auth::exchange_code`): an exchange racing the logout
    /// either commits its session before this transaction lists them (and it is ended here) or
    /// finds the browser session ended (and is refused). Without the lock, on PostgreSQL an
    /// exchange could read the browser session live, then insert its session after the list.
    pub async fn end_browser_session(
        &self,
        conn: &mut DbConn,
        id: Id,
        user_id: Id,
        reason: &str,
        client: &RequestOrigin,
    ) -> ApiResult<Vec<Id>> {
        let ending = self.ending(reason);
        let ended = crate::db::write_tx!(conn, |c| {
            c.lock_user_sessions(user_id).await?;
            let mut ended = vec![];
            if c.end_session(id, ending).await? {
                ended.push(id);
            }
            for started in c.sessions_started_by(id).await? {
                if c.end_session(started, ending).await? {
                    ended.push(started);
                }
            }
            if !ended.is_empty() {
                let detail = json!({"session_id": id, "browser": true, "sessions": ended.len()});
                c.insert_audit(&audit_event("logout", ending.now, Some(user_id), client, detail)).await?;
            }
            Ok::<_, diesel::result::Error>(ended)
        })?;
        self.revoke_locally(&ended, &ending);
        Ok(ended)
    }
}
