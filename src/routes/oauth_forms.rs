//! The forms of the OAuth endpoints, as the handlers parse them ([`FormBody`]) and the OpenAPI
//! document shows them: one type each, so the document and the parser cannot drift apart. Also
//! how a request presents its client: HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1) or the
//! form's `client_id` and `client_secret` (`client_secret_post`), a public client its
//! `client_id` alone (`none`, §3.2.1).
//!
//! [`FormBody`]: super::body::FormBody

use rocket::request::{FromRequest, Outcome, Request};
use serde::Deserialize;

use crate::auth::client_auth::PresentedClient;
use crate::error::{ApiError, ApiResult};

/// The raw `Authorization` header, for client authentication with HTTP Basic.
pub struct Authorization(pub Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Authorization {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(Authorization(req.headers().get_one("Authorization").map(str::to_owned)))
    }
}

impl Authorization {
    /// The client credentials of a request: Basic, or the form's fields; `None` without either.
    pub fn presented(&self, client_id: &Option<String>, secret: &Option<String>) -> ApiResult<Option<PresentedClient>> {
        PresentedClient::from_request(self.0.as_deref(), client_id.as_deref(), secret.as_deref())
    }
}

/// A parameter one grant needs and the form type cannot require of every grant.
pub fn required<'a>(value: &'a Option<String>, name: &str) -> ApiResult<&'a str> {
    value.as_deref().ok_or_else(|| ApiError::bad_request(format!("The parameter '{name}' is required.")))
}

/// The form of `POST /oauth/token`. No `Debug`: it holds a password and a client secret.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    /// `authorization_code` (RFC 6749 §4.1.3, with PKCE), `password` (§4.3; unless turned off by
    /// `auth.password_grant`), `refresh_token` (§6)
    /// or `client_credentials` (§4.4, with client authentication). A registered client may use
    /// only the grants of its `grant_types` (400 `unauthorized_client`).
    #[schema(example = "password")]
    pub grant_type: String,
    /// For `grant_type=client_credentials`: space-separated permissions, a subset of the client's
    /// (all of them when absent). For the password and refresh-token grants: down-scopes the
    /// session as `scope` does at `/auth/login` and `/auth/refresh` (400 `invalid_scope` for a
    /// permission the user does not hold, or beyond what the session was granted).
    #[schema(example = "users:read")]
    pub scope: Option<String>,
    /// A registered client's id: with `client_secret` (`client_secret_post`; or use HTTP Basic,
    /// `client_secret_basic`) for a confidential client, alone for a public one.
    pub client_id: Option<String>,
    /// For `client_secret_post`.
    pub client_secret: Option<String>,
    /// The email, for `grant_type=password`.
    #[schema(example = "alice@example.com")]
    pub username: Option<String>,
    /// For `grant_type=password`.
    #[schema(example = "correct horse battery")]
    pub password: Option<String>,
    /// For `grant_type=refresh_token`: exchanged only by the client whose session it is.
    pub refresh_token: Option<String>,
    /// For `grant_type=authorization_code`: the code of the authorization response.
    pub code: Option<String>,
    /// For `grant_type=authorization_code`: the `redirect_uri` of the authorization request,
    /// byte for byte.
    pub redirect_uri: Option<String>,
    /// For `grant_type=authorization_code`: the PKCE verifier (RFC 7636 §4.5).
    pub code_verifier: Option<String>,
    /// Any grant: the resource server (one of `auth.resources`, RFC 8707) the access token is
    /// for; its `aud` is then this alone. Another is 400 `invalid_target`.
    #[schema(example = "https://reports.example")]
    pub resource: Option<String>,
}

/// The form of `POST /oauth/revoke`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RevokeRequest {
    /// An access or refresh token.
    pub token: String,
    /// `access_token` or `refresh_token`; optional, and not needed.
    pub token_type_hint: Option<String>,
    /// A registered client's id (with `client_secret` for a confidential client, or HTTP Basic):
    /// needed to revoke a token issued to a confidential client.
    pub client_id: Option<String>,
    /// For `client_secret_post`.
    pub client_secret: Option<String>,
}

/// The form of `POST /oauth/introspect`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct IntrospectRequest {
    /// An access or refresh token.
    pub token: String,
    /// `access_token` or `refresh_token`; optional.
    pub token_type_hint: Option<String>,
    /// For `client_secret_post` (or use HTTP Basic: `client_secret_basic`).
    pub client_id: Option<String>,
    /// For `client_secret_post`.
    pub client_secret: Option<String>,
}
