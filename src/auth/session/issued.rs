//! What a session's token issue hands back: the domain side of the contract's token response.
//! The routes turn it into the JSON body (`routes::views::TokenResponse`); `auth` knows nothing
//! of serialization or the OpenAPI document.

use crate::db::Id;

/// A fresh access token and refresh token of one session. `Debug` leaves both tokens out.
#[derive(Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    pub session_id: Id,
    /// The access token's scope, in a down-scoped session.
    pub scope: Option<String>,
    /// Whose session, of which client, and how and when the user signed in (`auth_time` only
    /// for sessions an authorization code started): what an ID token says.
    pub user_id: Id,
    pub client_id: String,
    pub amr: String,
    pub auth_time: Option<i64>,
    /// The ID token answered beside them (OpenID Connect Core §3.1.3.3), when the scope has
    /// `openid` and a code started the session (`auth::oidc::code_grant`).
    pub id_token: Option<String>,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens").field("session_id", &self.session_id).finish_non_exhaustive()
    }
}
