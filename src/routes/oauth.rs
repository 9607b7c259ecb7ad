//! OAuth 2.0 interoperability: the token endpoint (RFC 6749 §4.1.3 authorization-code grant in
//! `oauth_code.rs`, §4.3 password, §6 refresh and §4.4 client-credentials grants); revocation and introspection are `oauth_tokens.rs`, the forms
//! and client credentials `oauth_forms.rs`, and what clients discover these by `discovery.rs`.
//!
//! The grants run the same code as `/auth/login` and `/auth/refresh`; only the error mapping
//! differs: RFC 6749 §5.2 answers failed grants with 400 `invalid_grant`. Before any grant, the
//! client is identified (`auth::token_client`) and must be allowed the grant.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{post, State};

use super::body::FormBody;
use super::metrics::{counted_login, counted_refresh};
use super::oauth_code::for_client;
use super::oauth_forms::{required, Authorization, TokenRequest};
use super::responses::{ErrorObject, LoginForbidden, OAuthError, PayloadTooLarge, TooManyRequests, Unavailable};
use super::views::{ClientTokenResponse, TokenResponse};
use super::NoStore;
use crate::auth::client_auth::PresentedClient;
use crate::auth::guards::RequestOrigin;
use crate::auth::session::binding::Refresher;
use crate::auth::token_client::TokenClient;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::models::GrantType;

/// Maps the JSON endpoints' errors to RFC 6749 §5.2: every failed grant is 400 `invalid_grant`.
/// The contract keeps 403 `mfa_required` (with its `mfa_token`) for the password grant.
fn as_oauth_error(e: ApiError) -> ApiError {
    match (e.status.code, e.code) {
        (401, _) | (403, ErrorCode::AccountDisabled) => {
            ApiError::new(Status::BadRequest, ErrorCode::InvalidGrant, e.into_description())
        }
        (422, _) => ApiError::bad_request(e.into_description()),
        _ => e,
    }
}

/// The token endpoint's 200 body, for the OpenAPI document: a user's grants answer the token
/// pair, the client-credentials grant an access token with its `scope`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum GrantedBody {
    User(TokenResponse),
    Client(ClientTokenResponse),
}

/// What the token endpoint answers: a user's token pair or a client's access token.
#[derive(rocket::Responder)]
enum Granted {
    User(NoStore<Json<TokenResponse>>),
    Client(NoStore<Json<ClientTokenResponse>>),
}

fn unsupported_grant() -> ApiError {
    ApiError::new(
        Status::BadRequest,
        ErrorCode::UnsupportedGrantType,
        "Supported grant types: authorization_code, password, refresh_token, client_credentials.",
    )
}

/// The client-credentials grant: a confidential client's own access token. A public client
/// (its `client_id` alone) is 400 `unauthorized_client`; anything else without a right secret
/// 401 `invalid_client`.
async fn client_credentials(
    auth: &Auth,
    db: &Db,
    origin: &RequestOrigin,
    (presented, challenge): (Option<PresentedClient>, bool),
    form: &TokenRequest,
) -> ApiResult<Granted> {
    // Without credentials, the `Basic` challenge invites them (unless another scheme was used).
    let Some(presented) = presented else { return Err(ApiError::invalid_client(challenge)) };
    let resource = form.resource.as_deref();
    auth.check_resource(resource)?;
    let mut conn = db.conn().await?;
    if presented.secret.is_none() {
        let who = auth.identify_client(&mut conn, Some(&presented), origin).await?;
        if let TokenClient::Public(_) = who {
            who.check_grant(GrantType::ClientCredentials)?;
        }
        return Err(ApiError::invalid_client(presented.basic));
    }
    let found = auth.authenticate_client(&mut conn, &presented, origin).await?;
    TokenClient::Confidential(found.clone()).check_grant(GrantType::ClientCredentials)?;
    auth.learn_client_cutoff(&mut conn, found.client_id).await?;
    let granted = auth.client_token(&found, form.scope.as_deref(), resource)?;
    Ok(Granted::Client(NoStore::new(Json(granted.into()))))
}

/// The token endpoint: password and refresh-token grants, with the rotation rules of
/// `/auth/refresh` and the session bound to its client, and the client-credentials grant (an
/// access token only).
#[utoipa::path(tag = "oauth", request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Tokens: the token pair for a user, an access token and its `scope` \
        for a client.", body = GrantedBody), OAuthError, LoginForbidden,
        (status = 401, description = "`invalid_client`: client authentication failed (with `WWW-Authenticate: \
        Basic` when HTTP Basic was used).", body = ErrorObject),
        PayloadTooLarge, TooManyRequests, Unavailable))]
#[post("/oauth/token", data = "<form>")]
async fn token(
    auth: &State<Auth>,
    db: &State<Db>,
    origin: RequestOrigin,
    authorization: Authorization,
    form: FormBody<TokenRequest>,
) -> ApiResult<Granted> {
    let form = form.0;
    let presented = authorization.presented(&form.client_id, &form.client_secret)?;
    let resource = form.resource.as_deref();
    let tokens = match GrantType::parse(&form.grant_type) {
        Some(GrantType::ClientCredentials) => {
            let credentials = (presented, authorization.0.is_none());
            return client_credentials(auth, db, &origin, credentials, &form).await;
        }
        Some(GrantType::AuthorizationCode) => {
            let credentials = (presented, authorization.0.is_none());
            let answer = super::oauth_code::authorization_code(auth, db, &origin, credentials, &form).await;
            return Ok(Granted::User(NoStore::new(Json(answer?))));
        }
        Some(GrantType::Password) if auth.config.password_grant => {
            let (username, password) = (required(&form.username, "username")?, required(&form.password, "password")?);
            auth.check_resource(resource)?;
            let who = auth.identify_client(&mut db.conn().await?, presented.as_ref(), &origin).await?;
            who.check_grant(GrantType::Password)?;
            let session_client = who.session_client_id();
            let scope = form.scope.as_deref();
            let outcome = auth.login(db, username, password, resource, scope, &session_client, &origin).await;
            super::auth::login_answer(counted_login(outcome)).map(|answer| for_client(&who, answer))
        }
        Some(GrantType::RefreshToken) => {
            let refresh_token = required(&form.refresh_token, "refresh_token")?;
            auth.check_resource(resource)?;
            let mut conn = db.conn().await?;
            let who = auth.identify_client(&mut conn, presented.as_ref(), &origin).await?;
            who.check_grant(GrantType::RefreshToken)?;
            let session_client = who.session_client_id();
            let refresher = Refresher::Client(&session_client);
            let scope = form.scope.as_deref();
            match counted_refresh(auth.refresh(&mut conn, refresh_token, resource, scope, refresher, &origin).await) {
                Ok(mut tokens) => {
                    // A session a code started answers a new ID token (OpenID Connect Core §12.2).
                    auth.add_refreshed_id_token(&mut conn, &mut tokens).await?;
                    Ok(for_client(&who, tokens.into()))
                }
                Err(e) => Err(e),
            }
        }
        _ => return Err(unsupported_grant()),
    };
    Ok(Granted::User(NoStore::new(Json(tokens.map_err(as_oauth_error)?))))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![token]
}
