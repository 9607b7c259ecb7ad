//! OAuth 2.0 interoperability: the token endpoint (RFC 6749 §4.3 password and §6 refresh
//! grants), revocation (RFC 7009), and the metadata and JWKS documents (RFC 8414, RFC 7517).
//!
//! The grants run the same code as `/auth/login` and `/auth/refresh`; only the error mapping
//! differs: RFC 6749 §5.2 answers failed grants with 400 `invalid_grant`.

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::{json, Json, Value};
use rocket::{get, post, State};
use rocket_db_pools::Connection;

use super::body::FormBody;
use super::docs::{LoginForbidden, OAuthError, PayloadTooLarge, TooManyRequests, Unavailable};
use super::metrics::{counted_login, counted_refresh};
use super::NoStore;
use crate::auth::guards::ClientInfo;
use crate::auth::sessions::TokenResponse;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};

/// Maps the JSON endpoints' errors to RFC 6749 §5.2: every failed grant is 400 `invalid_grant`.
/// The contract keeps 403 `mfa_required` (with its `mfa_token`) for the password grant.
fn as_oauth_error(e: ApiError) -> ApiError {
    match (e.status.code, e.code) {
        (401, _) | (403, "account_disabled") => ApiError::new(Status::BadRequest, "invalid_grant", e.description),
        (422, _) => ApiError::bad_request(e.description),
        _ => e,
    }
}

fn required<'a>(form: &'a FormBody, name: &str) -> ApiResult<&'a str> {
    form.get(name).ok_or_else(|| ApiError::bad_request(format!("The parameter {name:?} is required.")))
}

// The forms of the OAuth endpoints, for the OpenAPI document only: the handlers read a `FormBody`.

/// The form of `POST /oauth/token`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct TokenRequest {
    /// `password` (RFC 6749 §4.3; unless turned off by `auth.password_grant`) or `refresh_token` (§6).
    #[schema(example = "password")]
    grant_type: String,
    /// The email, for `grant_type=password`.
    #[schema(example = "alice@example.com")]
    username: Option<String>,
    /// For `grant_type=password`.
    #[schema(example = "correct horse battery")]
    password: Option<String>,
    /// For `grant_type=refresh_token`.
    refresh_token: Option<String>,
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

/// The token endpoint: password and refresh-token grants, with the rotation rules of `/auth/refresh`.
#[utoipa::path(tag = "oauth", request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Tokens.", body = TokenResponse), OAuthError, LoginForbidden,
        PayloadTooLarge, TooManyRequests, Unavailable))]
#[post("/oauth/token", data = "<form>")]
async fn token(
    auth: &State<Auth>,
    db: &State<Db>,
    client: ClientInfo,
    form: FormBody,
) -> ApiResult<NoStore<Json<TokenResponse>>> {
    let tokens = match required(&form, "grant_type")? {
        "password" if auth.config.password_grant => {
            let (username, password) = (required(&form, "username")?, required(&form, "password")?);
            counted_login(auth.login(db, username, password, &client).await)
        }
        "refresh_token" => {
            let presented = required(&form, "refresh_token")?;
            counted_refresh(auth.refresh(&mut db.conn().await?, presented, &client).await)
        }
        _ => {
            return Err(ApiError::new(
                Status::BadRequest,
                "unsupported_grant_type",
                "Supported grant types: password, refresh_token.",
            ))
        }
    };
    Ok(NoStore::new(Json(tokens.map_err(as_oauth_error)?)))
}

/// Token revocation (RFC 7009): ends the session of the token; 200 for unknown tokens too.
#[utoipa::path(tag = "oauth", request_body(content = RevokeRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The token's session, if any, has ended."), OAuthError, PayloadTooLarge,
        Unavailable))]
#[post("/oauth/revoke", data = "<form>")]
async fn revoke(auth: &State<Auth>, mut db: Connection<Db>, client: ClientInfo, form: FormBody) -> ApiResult<Status> {
    auth.revoke_token(&mut db, required(&form, "token")?, &client).await?;
    Ok(Status::Ok)
}

/// The service's base URL: `auth.public_url`, else the scheme and host the request came to.
struct BaseUrl(String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BaseUrl {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let configured = req.rocket().state::<Auth>().and_then(|a| a.config.public_url.clone());
        let base = configured.unwrap_or_else(|| {
            let scheme = req.headers().get_one("X-Forwarded-Proto").filter(|p| *p == "https").unwrap_or("http");
            let host = req.host().map(|h| h.to_string()).unwrap_or_else(|| "localhost".into());
            format!("{scheme}://{host}")
        });
        Outcome::Success(BaseUrl(base.trim_end_matches('/').to_owned()))
    }
}

/// Authorization server metadata (RFC 8414).
#[utoipa::path(tag = "oauth", responses((status = 200, description = "The metadata.", body = serde_json::Value,
    example = json!({"issuer": "portcullis", "token_endpoint": "http://localhost:8000/oauth/token",
        "revocation_endpoint": "http://localhost:8000/oauth/revoke",
        "jwks_uri": "http://localhost:8000/.well-known/jwks.json",
        "grant_types_supported": ["password", "refresh_token"]}))))]
#[get("/.well-known/oauth-authorization-server")]
fn metadata(auth: &State<Auth>, base: BaseUrl) -> Json<Value> {
    let base = base.0;
    let grants: Vec<&str> =
        if auth.config.password_grant { vec!["password", "refresh_token"] } else { vec!["refresh_token"] };
    Json(json!({
        "issuer": auth.config.issuer,
        "token_endpoint": format!("{base}/oauth/token"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": grants,
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "service_documentation": format!("{base}/docs"),
    }))
}

/// The public signing keys (RFC 7517/8037); `{"keys": []}` when tokens are signed with HS256.
#[utoipa::path(tag = "oauth", responses((status = 200, description = "The JWK set.", body = serde_json::Value,
    example = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "2026-01", "x": "...", "use": "sig",
        "alg": "EdDSA"}]}))))]
#[get("/.well-known/jwks.json")]
fn jwks(auth: &State<Auth>) -> Json<Value> {
    Json(auth.keys.jwks())
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![token, revoke, metadata, jwks]
}
