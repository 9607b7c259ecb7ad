//! `/users/me`: the caller's own account.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{get, put, State};
use rocket_db_pools::Connection;
use serde::Deserialize;

use super::body::JsonBody;
use super::responses::{
    BadRequest, ErrorObject, Forbidden, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable, Unprocessable,
};
use crate::auth::accounts::Account;
use crate::auth::first_party::FirstPartyUser;
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::models::UserStore;
use crate::routes::views::UserView;

#[derive(Deserialize, utoipa::ToSchema)]
struct PasswordChange {
    current_password: String,
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

/// The caller's account.
#[utoipa::path(tag = "users", security(("bearer" = []), ("oauth2" = [])),
    responses((status = 200, description = "The caller's account.", body = UserView), Unauthorized, Forbidden, Unavailable))]
#[get("/users/me")]
async fn me(me: guards::User, mut db: Connection<Db>) -> ApiResult<Json<UserView>> {
    let conn = &mut *db;
    let (user, roles) = crate::db::with_conn!(conn, |c| c.find_user_with_roles(me.user_id).await)?
        .ok_or_else(|| ApiError::invalid_token("The account of this access token no longer exists."))?;
    Ok(Json(Account::new(&user, roles).into()))
}

/// What the caller's access token says, checked but without a database round-trip.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct TokenInfo {
    user_id: crate::db::Id,
    session_id: crate::db::Id,
    roles: Vec<String>,
    /// The token's scope values, in a down-scoped session only.
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<Vec<String>>,
    #[schema(format = DateTime)]
    expires_at: String,
}

/// What the caller's access token says, checked but without a database round-trip.
#[utoipa::path(tag = "users", security(("bearer" = []), ("oauth2" = [])),
    responses((status = 200, description = "The token's claims.", body = TokenInfo), Unauthorized, Forbidden))]
#[get("/users/me/token")]
fn token_info(me: guards::User) -> Json<TokenInfo> {
    Json(TokenInfo {
        user_id: me.user_id,
        session_id: me.session_id,
        roles: me.roles,
        scope: me.scope,
        expires_at: crate::clock::rfc3339(me.expires_at),
    })
}

/// Changes the caller's password; every other session of the caller ends.
#[utoipa::path(tag = "users", security(("bearer" = []), ("oauth2" = [])), request_body = PasswordChange, responses(
    (status = 204, description = "Changed."), BadRequest,
    (status = 401, description = "`invalid_token` (see the other routes), or `invalid_credentials`: \
        `current_password` is wrong (failures count against the login throttle).", body = ErrorObject),
    Forbidden, PayloadTooLarge, Unprocessable, TooManyRequests, Unavailable))]
#[put("/users/me/password", data = "<body>")]
async fn change_password(
    auth: &State<Auth>,
    me: FirstPartyUser,
    db: &State<Db>,
    client: RequestOrigin,
    body: JsonBody<PasswordChange>,
) -> ApiResult<Status> {
    auth.change_password(db, &me, &body.0.current_password, &body.0.new_password, &client).await?;
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![me, token_info, change_password]
}
