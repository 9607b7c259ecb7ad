//! `grant_type=authorization_code` at the token endpoint (RFC 6749 §4.1.3): the client is
//! identified first — a confidential one by its secret, a public one by its `client_id` — and
//! must be allowed the grant; then `auth::oidc::code_grant` exchanges the code. A request that
//! names no registered client is 401 `invalid_client`: a code is bound to a client, which must
//! say who it is (§4.1.3, "ensure that the authorization code was issued to the authenticated
//! confidential client, or ... to the public client").

use rocket::http::Status;

use super::oauth_forms::{required, TokenRequest};
use super::views::TokenResponse;
use crate::auth::client_auth::PresentedClient;
use crate::auth::guards::RequestOrigin;
use crate::auth::oidc::codes::CodePresentation;
use crate::auth::token_client::TokenClient;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::models::GrantType;

/// The answer to a user's grant for `who`: without a refresh token when the client may not use
/// the `refresh_token` grant (contract, "Scope").
pub(super) fn for_client(who: &TokenClient, response: TokenResponse) -> TokenResponse {
    if who.may(GrantType::RefreshToken) {
        response
    } else {
        response.without_refresh_token()
    }
}

/// The token response of an exchanged code (with `id_token` when the scope has `openid`).
/// `challenge`: whether a `Basic` challenge should invite credentials (no other scheme used).
pub(super) async fn authorization_code(
    auth: &Auth,
    db: &Db,
    origin: &RequestOrigin,
    (presented, challenge): (Option<PresentedClient>, bool),
    form: &TokenRequest,
) -> ApiResult<TokenResponse> {
    let code = required(&form.code, "code")?;
    let redirect_uri = required(&form.redirect_uri, "redirect_uri")?;
    let code_verifier = required(&form.code_verifier, "code_verifier")?;
    let mut conn = db.conn().await?;
    let who = auth.identify_client(&mut conn, presented.as_ref(), origin).await?;
    let Some(client) = who.registered() else {
        return Err(ApiError::invalid_client(presented.map_or(challenge, |p| p.basic)));
    };
    who.check_grant(GrantType::AuthorizationCode)?;
    let presentation = CodePresentation { client_id: client.client_id, redirect_uri, code_verifier };
    let alg = client.settings.id_token_alg;
    match auth.exchange_code(&mut conn, code, &presentation, alg, origin).await? {
        Ok(tokens) => Ok(for_client(&who, tokens.into())),
        // One answer for every refusal (RFC 6749 §5.2): which one it was is in the audit log.
        Err(_) => Err(ApiError::new(
            Status::BadRequest,
            ErrorCode::InvalidGrant,
            "The authorization code is unknown, expired or used, or was issued for another client, \
             redirect_uri or code_verifier.",
        )),
    }
}
