//! The bodies the token, session, account and MFA endpoints answer with: the token responses,
//! the session list, the user object, a TOTP enrolment and recovery codes. `auth` hands back
//! domain types (`IssuedTokens`, `IssuedClientToken`, `Session`, `Account`, `TotpEnrolment`,
//! `RecoveryCodes`); these are their JSON shapes of the contract, documented in the OpenAPI
//! schema.

use serde::Serialize;

use crate::admin::users::AccountPage;
use crate::auth::accounts::Account;
use crate::auth::client_auth::IssuedClientToken;
use crate::auth::mfa::enrol::{RecoveryCodes, TotpEnrolment};
use crate::auth::session::issued::IssuedTokens;
use crate::clock::rfc3339;
use crate::db::Id;
use crate::models::Session;

/// The token response of the contract. `Debug` leaves the tokens out.
#[derive(Clone, Serialize, utoipa::ToSchema)]
#[schema(description = "The token response of the contract.")]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    #[schema(example = 900)]
    pub expires_in: i64,
    /// Absent only at the token endpoint, for a client without the `refresh_token` grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 1209600)]
    pub refresh_expires_in: Option<i64>,
    pub session_id: Id,
    /// The access token's scope (space-separated), in a down-scoped session only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "users:read openid")]
    pub scope: Option<String>,
    /// The ID token (OpenID Connect Core §3.1.3.3): at the token endpoint, for a session an
    /// authorization code started whose scope has `openid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse").field("session_id", &self.session_id).finish_non_exhaustive()
    }
}

impl From<IssuedTokens> for TokenResponse {
    fn from(t: IssuedTokens) -> Self {
        TokenResponse {
            access_token: t.access_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            refresh_token: Some(t.refresh_token),
            refresh_expires_in: Some(t.refresh_expires_in),
            session_id: t.session_id,
            scope: t.scope,
            id_token: t.id_token,
        }
    }
}

impl TokenResponse {
    /// The response without its refresh token: for a client that may not use the
    /// `refresh_token` grant (contract, "Scope").
    pub fn without_refresh_token(self) -> Self {
        TokenResponse { refresh_token: None, refresh_expires_in: None, ..self }
    }
}

/// The client-credentials token response: no refresh token. `Debug` leaves the token out.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct ClientTokenResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    #[schema(example = 900)]
    pub expires_in: i64,
    /// The granted permissions, space-separated.
    #[schema(example = "users:read")]
    pub scope: String,
}

impl std::fmt::Debug for ClientTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTokenResponse").field("scope", &self.scope).finish_non_exhaustive()
    }
}

impl From<IssuedClientToken> for ClientTokenResponse {
    fn from(t: IssuedClientToken) -> Self {
        ClientTokenResponse {
            access_token: t.access_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            scope: t.scope,
        }
    }
}

/// One entry of `GET /auth/sessions`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub struct SessionView {
    pub id: Id,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub current: bool,
}

impl SessionView {
    pub fn new(session: &Session, current: Option<Id>) -> Self {
        SessionView {
            id: session.id,
            created_at: rfc3339(session.created_at),
            last_used_at: rfc3339(session.last_used_at),
            expires_at: rfc3339(session.expires_at),
            user_agent: session.user_agent.clone(),
            ip: session.ip.clone(),
            current: Some(session.id) == current,
        }
    }
}

/// The body of `GET /auth/sessions` and `GET /admin/users/<id>/sessions`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

impl SessionList {
    /// The list of `sessions`, the one whose id is `current` (the caller's) marked.
    pub fn new(sessions: &[Session], current: Option<Id>) -> Self {
        SessionList { sessions: sessions.iter().map(|s| SessionView::new(s, current)).collect() }
    }
}

/// The user object of the contract; never the password hash.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserView {
    pub id: Id,
    pub email: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    /// Whether the account logs in with a second factor: TOTP or a passkey.
    pub mfa: bool,
    /// Whether the address was proven by a mail link (or the account made by an operator).
    pub email_verified: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<Account> for UserView {
    fn from(a: Account) -> Self {
        UserView {
            id: a.id,
            email: a.email,
            roles: a.roles,
            disabled: a.disabled,
            mfa: a.mfa,
            email_verified: a.email_verified,
            created_at: rfc3339(a.created_at),
        }
    }
}

/// One page of users and how many match in all.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserPage {
    pub users: Vec<UserView>,
    pub total: i64,
}

impl From<AccountPage> for UserPage {
    fn from(page: AccountPage) -> Self {
        UserPage { users: page.users.into_iter().map(UserView::from).collect(), total: page.total }
    }
}

/// The answer of `POST /auth/mfa/totp`: the secret to give an authenticator app, as text and as
/// the URI a QR code encodes. `Debug` leaves both out.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TotpEnrolment)]
pub struct TotpEnrolmentView {
    /// RFC 4648 base32, no padding.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    pub secret: String,
    #[schema(example = "otpauth://totp/auth.example.com:alice@example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\
        &issuer=auth.example.com&algorithm=SHA1&digits=6&period=30")]
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpEnrolmentView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrolment").finish_non_exhaustive()
    }
}

impl From<TotpEnrolment> for TotpEnrolmentView {
    fn from(e: TotpEnrolment) -> Self {
        TotpEnrolmentView { secret: e.secret, otpauth_uri: e.otpauth_uri }
    }
}

/// Ten one-time recovery codes, shown once. `Debug` leaves them out.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RecoveryCodes)]
pub struct RecoveryCodesView {
    #[schema(example = json!(["abcd-efgh-ijkl-mnop"]))]
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for RecoveryCodesView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryCodes").finish_non_exhaustive()
    }
}

impl From<RecoveryCodes> for RecoveryCodesView {
    fn from(c: RecoveryCodes) -> Self {
        RecoveryCodesView { recovery_codes: c.recovery_codes }
    }
}
