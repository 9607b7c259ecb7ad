//! Consent (OpenID Connect Core §3.1.2.4): what a user approved for a third-party client,
//! remembered per user, client and scope until revoked. A request is covered when its scope is a
//! subset of what was approved; an approval widens what is remembered (the union), a denial
//! records nothing.

use serde_json::json;

use super::scope::{scope_covers, scope_union};
use crate::auth::audit::audit_event;
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::ApiResult;
use crate::models::{AuditStore, Consent, ConsentStore, SessionStore};

impl Auth {
    /// Whether `user` has approved every value of `scope` for `client`.
    pub async fn consent_covers(&self, conn: &mut DbConn, user: Id, client: Id, scope: &str) -> ApiResult<bool> {
        let granted = crate::db::with_conn!(conn, |c| c.consent_scope(user, client).await)?;
        Ok(granted.is_some_and(|granted| scope_covers(&granted, scope)))
    }

    /// Records that `user` approved `scope` for `client` (added to what was approved before).
    pub async fn grant_consent(
        &self,
        conn: &mut DbConn,
        user: Id,
        client: Id,
        scope: &str,
        origin: &RequestOrigin,
    ) -> ApiResult<()> {
        let now = self.clock.now();
        let audit =
            audit_event("consent_granted", now, Some(user), origin, json!({"client_id": client, "scope": scope}));
        crate::db::write_tx!(conn, |c| {
            let before = c.consent_scope(user, client).await?.unwrap_or_default();
            c.upsert_consent(user, client, &scope_union(&before, scope), now).await?;
            c.insert_audit(&audit).await
        })?;
        Ok(())
    }

    /// `GET /users/me/consents`: the caller's consents, oldest first.
    pub async fn list_consents(&self, conn: &mut DbConn, principal: &guards::User) -> ApiResult<Vec<Consent>> {
        Ok(crate::db::with_conn!(conn, |c| c.user_consents(principal.user_id).await)?)
    }

    /// `DELETE /users/me/consents/<client_id>`: forgets the consent and ends the client's
    /// sessions of the caller, so what was approved stops working at once, not when a refresh
    /// token expires. Returns whether there was a consent.
    pub async fn revoke_consent(
        &self,
        conn: &mut DbConn,
        principal: &guards::User,
        client: Id,
        origin: &RequestOrigin,
    ) -> ApiResult<bool> {
        let user = principal.user_id;
        let ending = self.ending("consent_revoked");
        let audit = audit_event("consent_revoked", ending.now, Some(user), origin, json!({"client_id": client}));
        let (revoked, ended) = crate::db::write_tx!(conn, |c| {
            if !c.delete_consent(user, client).await? {
                return Ok((false, vec![]));
            }
            // In this transaction: what was approved stops working with the consent.
            let ended = c.end_client_sessions(&client.to_string(), Some(user), ending).await?;
            c.insert_audit(&audit).await?;
            Ok::<_, diesel::result::Error>((true, ended))
        })?;
        self.revoke_locally(&ended, &ending);
        Ok(revoked)
    }
}
