//! The UserInfo endpoint's answer (OpenID Connect Core §5.3): who the access token's user is, as
//! far as its scope allows.

use super::scope::scope_has;
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::UserStore;

/// The claims about the user (`sub`, and with `email` in scope `email` and `email_verified`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub sub: Id,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}

impl Auth {
    /// What `/oauth/userinfo` says about `user` to a token of `scope`. The token must have been
    /// granted `openid` (OpenID Connect Core §5.3.3: otherwise 403 with `insufficient_scope`).
    pub async fn userinfo(&self, conn: &mut DbConn, user: Id, scope: Option<&str>) -> ApiResult<UserInfo> {
        if !scope.is_some_and(|scope| scope_has(scope, "openid")) {
            return Err(ApiError::forbidden("This access token was not granted the openid scope."));
        }
        let account = crate::db::with_conn!(conn, |c| c.find_user(user).await)?
            .ok_or_else(|| ApiError::invalid_token("The account of this access token no longer exists."))?;
        let email = scope.is_some_and(|scope| scope_has(scope, "email"));
        Ok(UserInfo {
            sub: account.id,
            email: email.then(|| account.email.clone()),
            // Proven by a mail link, or an account made by an operator (docs/mail.md).
            email_verified: email.then_some(account.email_verified),
        })
    }
}
