//! Audiences (RFC 8707 resource indicators): which `aud` an access token carries.
//!
//! A token request may name a `resource`, one of `auth.resources`; its access token's `aud` is
//! then that resource alone, so the resource server receiving it cannot replay it against
//! Portcullis (whose verification wants `auth.audience`, see `auth::keys::tokens`) or another
//! resource server. A session started for a resource stays bound to it; a session started
//! without one may name one at a refresh, for that access token only.

use crate::auth::keys::tokens::AccessClaims;
use crate::auth::Auth;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::models::SessionStore;

impl Auth {
    /// The `aud` of an access token for `resource`: the resource itself, or Portcullis's own
    /// audience without one.
    pub(crate) fn audience(&self, resource: Option<&str>) -> String {
        resource.unwrap_or(&self.config.audience).to_owned()
    }

    /// 400 `invalid_target` unless `resource` is absent or one of `auth.resources` (RFC 8707 §2).
    /// Sign-in paths check it before anything about the account, its throttling included.
    pub(crate) fn check_resource(&self, resource: Option<&str>) -> ApiResult<()> {
        match resource {
            Some(r) if !self.config.resources.iter().any(|known| known == r) => {
                Err(ApiError::invalid_target(format!("{r:?} is not a resource this server issues tokens for.")))
            }
            _ => Ok(()),
        }
    }

    /// An access token Portcullis issued for its own audience or for one of `auth.resources`,
    /// signature and claims checked but not time (see [`TokenKeys::verify_signed_with`]), with
    /// until when its key verifies. For revocation (RFC 7009) and introspection (RFC 7662),
    /// which answer about every token Portcullis issued; the bearer guards accept only its own.
    ///
    /// [`TokenKeys::verify_signed_with`]: crate::auth::keys::tokens::TokenKeys::verify_signed_with
    pub(crate) fn verify_issued(&self, token: &str) -> Result<(AccessClaims, Option<i64>), &'static str> {
        let keys = self.keys.current();
        // The token's own (unverified) `aud` picks the audience it is checked against, so it is
        // verified once rather than once per listed resource; the check itself stays whole.
        match claimed_audience(token).filter(|aud| self.config.resources.iter().any(|r| r == aud)) {
            Some(resource) => keys.verify_signed_for(token, &resource),
            None => keys.verify_signed_with(token),
        }
    }

    /// 400 `invalid_target` when the session of the refresh token `presented` is bound to a
    /// resource other than `requested`. A session's resource never changes, so reading it before
    /// the exchange's transaction is enough. Tokens that name no session pass: the exchange
    /// refuses them.
    pub(crate) async fn check_binding(
        &self,
        conn: &mut DbConn,
        presented: &str,
        requested: Option<&str>,
    ) -> ApiResult<()> {
        let Some(requested) = requested else { return Ok(()) };
        let Some(id) = self.refresh_token_session(conn, presented).await? else { return Ok(()) };
        let session = crate::db::with_conn!(conn, |c| c.find_session(id).await)?;
        match session.and_then(|s| s.resource) {
            Some(bound) if bound != requested => {
                Err(ApiError::invalid_target("This session's tokens are for another resource."))
            }
            _ => Ok(()),
        }
    }
}

/// The `aud` a JWT's payload claims, read without verifying anything: only to choose which
/// audience the real verification expects.
fn claimed_audience(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("aud")?.as_str().map(str::to_owned)
}
