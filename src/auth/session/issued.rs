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
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens").field("session_id", &self.session_id).finish_non_exhaustive()
    }
}
