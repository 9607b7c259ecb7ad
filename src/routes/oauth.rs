//! OAuth 2.0 interoperability: the token endpoint (RFC 6749 §4.3 password, §6 refresh and §4.4
//! client-credentials grants), revocation (RFC 7009) and introspection (RFC 7662). What clients
//! discover these by is `discovery.rs`.
//!
//! The grants run the same code as `/auth/login` and `/auth/refresh`; only the error mapping
//! differs: RFC 6749 §5.2 answers failed grants with 400 `invalid_grant`.

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::{Json, Value};
use rocket::{post, State};
use rocket_db_pools::Connection;

use super::body::FormBody;
use super::metrics::{counted_login, counted_refresh};
use super::responses::{ErrorObject, LoginForbidden, OAuthError, PayloadTooLarge, TooManyRequests, Unavailable};
use super::views::{ClientTokenResponse, TokenResponse};
use super::NoStore;
use crate::auth::client_auth::{basic_credentials, PresentedClient};
use crate::auth::guards::RequestOrigin;
use crate::auth::permissions::{Permission, TokensIntrospect};
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult, ErrorCode};

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

fn required<'a>(form: &'a FormBody, name: &str) -> ApiResult<&'a str> {
    form.get(name).ok_or_else(|| ApiError::bad_request(format!("The parameter '{name}' is required.")))
}

// The forms of the OAuth endpoints, for the OpenAPI document only: the handlers read a `FormBody`.

/// The raw `Authorization` header, for client authentication with HTTP Basic.
struct Authorization(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Authorization {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(Authorization(req.headers().get_one("Authorization").map(str::to_owned)))
    }
}

/// The client credentials of a request (Basic or form fields); 401 `invalid_client` without.
fn presented_client(authorization: &Authorization, form: &FormBody) -> ApiResult<PresentedClient> {
    let presented =
        PresentedClient::from_request(authorization.0.as_deref(), form.get("client_id"), form.get("client_secret"))?;
    presented.ok_or_else(|| ApiError::invalid_client(authorization.0.is_none()))
}

/// Client credentials included with a user's grant, checked when they name one of Portcullis's
/// clients ([`Auth::check_included_client`]). Only a secret (Basic, or `client_secret`) makes
/// them credentials: a `client_id` alone is a public client's.
async fn check_included_client(
    auth: &Auth,
    conn: &mut crate::db::DbConn,
    client: &RequestOrigin,
    authorization: &Authorization,
    form: &FormBody,
) -> ApiResult<Option<crate::models::Client>> {
    if basic_credentials(authorization.0.as_deref()).is_none() && form.get("client_secret").is_none() {
        return Ok(None);
    }
    let presented =
        PresentedClient::from_request(authorization.0.as_deref(), form.get("client_id"), form.get("client_secret"))?;
    match presented {
        Some(presented) => auth.check_included_client(conn, &presented, client).await,
        None => Ok(None),
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

/// The form of `POST /oauth/token`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct TokenRequest {
    /// `password` (RFC 6749 §4.3; unless turned off by `auth.password_grant`), `refresh_token` (§6)
    /// or `client_credentials` (§4.4, with client authentication).
    #[schema(example = "password")]
    grant_type: String,
    /// For `grant_type=client_credentials`: space-separated permissions, a subset of the client's
    /// (all of them when absent). For the password and refresh-token grants: down-scopes the
    /// session as `scope` does at `/auth/login` and `/auth/refresh` (400 `invalid_scope` for a
    /// permission the user does not hold, or beyond what the session was granted).
    #[schema(example = "users:read")]
    scope: Option<String>,
    /// For `client_secret_post` (or use HTTP Basic: `client_secret_basic`).
    client_id: Option<String>,
    /// For `client_secret_post`.
    client_secret: Option<String>,
    /// The email, for `grant_type=password`.
    #[schema(example = "alice@example.com")]
    username: Option<String>,
    /// For `grant_type=password`.
    #[schema(example = "correct horse battery")]
    password: Option<String>,
    /// For `grant_type=refresh_token`.
    refresh_token: Option<String>,
    /// Any grant: the resource server (one of `auth.resources`, RFC 8707) the access token is
    /// for; its `aud` is then this alone. Another is 400 `invalid_target`.
    #[schema(example = "https://reports.example")]
    resource: Option<String>,
}

/// The form of `POST /oauth/revoke`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct RevokeRequest {
    /// An access or refresh token.
    token: String,
    /// `access_token` or `refresh_token`; optional, and not needed.
    token_type_hint: Option<String>,
}

/// The token endpoint: password and refresh-token grants, with the rotation rules of
/// `/auth/refresh`, and the client-credentials grant (an access token only).
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
    client: RequestOrigin,
    authorization: Authorization,
    form: FormBody,
) -> ApiResult<Granted> {
    let resource = form.get("resource");
    let tokens = match required(&form, "grant_type")? {
        "client_credentials" => {
            let presented = presented_client(&authorization, &form)?;
            auth.check_resource(resource)?;
            let mut conn = db.conn().await?;
            let found = auth.authenticate_client(&mut conn, &presented, &client).await?;
            auth.learn_client_cutoff(&mut conn, found.client_id).await?;
            let granted = auth.client_token(&found, form.get("scope"), resource)?;
            return Ok(Granted::Client(NoStore::new(Json(granted.into()))));
        }
        "password" if auth.config.password_grant => {
            let (username, password) = (required(&form, "username")?, required(&form, "password")?);
            auth.check_resource(resource)?;
            check_included_client(auth, &mut db.conn().await?, &client, &authorization, &form).await?;
            let scope = form.get("scope");
            super::auth::login_answer(counted_login(auth.login(db, username, password, resource, scope, &client).await))
        }
        "refresh_token" => {
            let presented = required(&form, "refresh_token")?;
            auth.check_resource(resource)?;
            check_included_client(auth, &mut db.conn().await?, &client, &authorization, &form).await?;
            let scope = form.get("scope");
            counted_refresh(auth.refresh(&mut db.conn().await?, presented, resource, scope, &client).await)
                .map(TokenResponse::from)
        }
        _ => {
            return Err(ApiError::new(
                Status::BadRequest,
                ErrorCode::UnsupportedGrantType,
                "Supported grant types: password, refresh_token, client_credentials.",
            ))
        }
    };
    Ok(Granted::User(NoStore::new(Json(tokens.map_err(as_oauth_error)?))))
}

/// Token revocation (RFC 7009): ends the session of the token; 200 for unknown tokens too.
/// Credentials naming one of our clients are authenticated first (401 `invalid_client` when
/// wrong); a client's access token is revoked only by that client, authenticated.
#[utoipa::path(tag = "oauth", request_body(content = RevokeRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The token's session, if any, has ended."), OAuthError,
        (status = 401, description = "`invalid_client`: credentials naming a client were wrong.", body = ErrorObject),
        PayloadTooLarge, Unavailable))]
#[post("/oauth/revoke", data = "<form>")]
async fn revoke(
    auth: &State<Auth>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    authorization: Authorization,
    form: FormBody,
) -> ApiResult<Status> {
    let token = required(&form, "token")?;
    if let Some(revoker) = check_included_client(auth, &mut db, &client, &authorization, &form).await? {
        if auth.revoke_client_token(&mut db, revoker.client_id, token).await? {
            return Ok(Status::Ok);
        }
    }
    auth.revoke_token(&mut db, token, &client).await?;
    Ok(Status::Ok)
}

/// The form of `POST /oauth/introspect`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct IntrospectRequest {
    /// An access or refresh token.
    token: String,
    /// `access_token` or `refresh_token`; optional.
    token_type_hint: Option<String>,
    /// For `client_secret_post` (or use HTTP Basic: `client_secret_basic`).
    client_id: Option<String>,
    /// For `client_secret_post`.
    client_secret: Option<String>,
}

/// Token introspection (RFC 7662) for service clients holding `tokens:introspect` (others: 403
/// `insufficient_permissions` once authenticated): `{"active": true, ...}` for a live access or
/// refresh token, `{"active": false}` for anything else.
#[utoipa::path(tag = "oauth", security(("client_basic" = [])), request_body(content = IntrospectRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The token's state.", body = serde_json::Value,
        example = json!({"active": true, "token_type": "Bearer", "token_use": "access_token",
            "sub": "0192f0c4-5b1e-7cc2-9a52-3b0d0f4f8c11", "exp": 1764500000, "iat": 1764499100,
            "iss": "https://auth.example.com", "aud": "portcullis",
            "sid": "0192f0c4-5b1e-7cc2-9a52-3b0d0f4f8c12", "roles": ["user"]})), OAuthError,
        (status = 401, description = "`invalid_client`: client authentication failed.", body = ErrorObject),
        (status = 403, description = "`insufficient_permissions`: the client lacks `tokens:introspect`.", body = ErrorObject),
        PayloadTooLarge, TooManyRequests, Unavailable))]
#[post("/oauth/introspect", data = "<form>")]
async fn introspect(
    auth: &State<Auth>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    authorization: Authorization,
    form: FormBody,
) -> ApiResult<NoStore<Json<Value>>> {
    let presented = presented_client(&authorization, &form)?;
    let asker = auth.authenticate_client(&mut db, &presented, &client).await?;
    if !asker.permissions.contains(TokensIntrospect::NAME) {
        return Err(ApiError::forbidden("Introspection needs the tokens:introspect permission."));
    }
    let answer = auth.introspect(&mut db, required(&form, "token")?, form.get("token_type_hint")).await?;
    Ok(NoStore::new(Json(answer)))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![token, revoke, introspect]
}
