//! Ending one browser session on purpose (RP-initiated logout builds on this): the `sessions` row
//! ends like any session (revocation feed, its pending authorization codes voided in the same
//! transaction, `SessionStore::end_session`), audited as `logout`.

use serde_json::json;

use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::ApiResult;
use crate::models::{AuditStore, SessionStore};

impl Auth {
    /// Ends the browser session `id` of `user_id` for `reason`; whether this call ended it.
    pub async fn end_browser_session(
        &self,
        conn: &mut DbConn,
        id: Id,
        user_id: Id,
        reason: &str,
        client: &RequestOrigin,
    ) -> ApiResult<bool> {
        let ending = self.ending(reason);
        let event =
            audit_event("logout", ending.now, Some(user_id), client, json!({"session_id": id, "browser": true}));
        let ended = crate::db::write_tx!(conn, |c| {
            let ended = c.end_session(id, ending).await?;
            if ended {
                c.insert_audit(&event).await?;
            }
            Ok::<_, diesel::result::Error>(ended)
        })?;
        if ended {
            self.revoke_locally(&[id], &ending);
        }
        Ok(ended)
    }
}
