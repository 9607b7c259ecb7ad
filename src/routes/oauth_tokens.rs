//! What a client asks about tokens it holds: revocation (RFC 7009) and introspection (RFC 7662).

use rocket::http::Status;
use rocket::post;
use rocket::serde::json::{Json, Value};
use rocket::State;
use rocket_db_pools::Connection;

use super::body::FormBody;
use super::oauth_forms::{Authorization, IntrospectRequest, RevokeRequest};
use super::responses::{ErrorObject, OAuthError, PayloadTooLarge, TooManyRequests, Unavailable};
use super::NoStore;
use crate::auth::guards::RequestOrigin;
use crate::auth::permissions::{Permission, TokensIntrospect};
use crate::auth::token_client::TokenClient;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};

/// Token revocation (RFC 7009): ends the session of the token; 200 for unknown tokens too.
/// Credentials naming one of our clients are authenticated first (401 `invalid_client` when
/// wrong); a token issued to a confidential client (its session's, or its own access token) is
/// revoked only by that client, authenticated; otherwise nothing happens.
#[utoipa::path(tag = "oauth", request_body(content = RevokeRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The token's session, if any and if this client may end it, has ended."),
        OAuthError,
        (status = 401, description = "`invalid_client`: credentials naming a client were wrong.", body = ErrorObject),
        PayloadTooLarge, TooManyRequests, Unavailable))]
#[post("/oauth/revoke", data = "<form>")]
async fn revoke(
    auth: &State<Auth>,
    mut db: Connection<Db>,
    origin: RequestOrigin,
    authorization: Authorization,
    form: FormBody<RevokeRequest>,
) -> ApiResult<Status> {
    let form = form.0;
    let presented = authorization.presented(&form.client_id, &form.client_secret)?;
    let revoker = auth.identify_client(&mut db, presented.as_ref(), &origin).await?;
    if let TokenClient::Confidential(client) = &revoker {
        if auth.revoke_client_token(&mut db, client.client_id, &form.token).await? {
            return Ok(Status::Ok);
        }
    }
    auth.revoke_token(&mut db, &form.token, &revoker, &origin).await?;
    Ok(Status::Ok)
}

/// Token introspection (RFC 7662) for service clients holding `tokens:introspect` (others: 403
/// `insufficient_permissions` once authenticated): `{"active": true, ...}` for a live access or
/// refresh token, `{"active": false}` for anything else.
#[utoipa::path(tag = "oauth", security(("client_basic" = [])), request_body(content = IntrospectRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The token's state.", body = serde_json::Value,
        example = json!({"active": true, "token_type": "Bearer", "token_use": "access_token",
            "sub": "0192f0c4-5b1e-7cc2-9a52-3b0d0f4f8c11", "exp": 1764500000, "iat": 1764499100,
            "iss": "https://auth.example.com", "aud": "portcullis",
            "sid": "0192f0c4-5b1e-7cc2-9a52-3b0d0f4f8c12", "roles": ["user"], "client_id": "portcullis"})), OAuthError,
        (status = 401, description = "`invalid_client`: client authentication failed.", body = ErrorObject),
        (status = 403, description = "`insufficient_permissions`: the client lacks `tokens:introspect`.", body = ErrorObject),
        PayloadTooLarge, TooManyRequests, Unavailable))]
#[post("/oauth/introspect", data = "<form>")]
async fn introspect(
    auth: &State<Auth>,
    mut db: Connection<Db>,
    origin: RequestOrigin,
    authorization: Authorization,
    form: FormBody<IntrospectRequest>,
) -> ApiResult<NoStore<Json<Value>>> {
    let form = form.0;
    let presented = authorization
        .presented(&form.client_id, &form.client_secret)?
        .ok_or_else(|| ApiError::invalid_client(authorization.0.is_none()))?;
    let asker = auth.authenticate_client(&mut db, &presented, &origin).await?;
    if !asker.permissions.contains(TokensIntrospect::NAME) {
        return Err(ApiError::forbidden("Introspection needs the tokens:introspect permission."));
    }
    let answer = auth.introspect(&mut db, &form.token, form.token_type_hint.as_deref()).await?;
    Ok(NoStore::new(Json(answer)))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![revoke, introspect]
}
