//! `GET` and `POST /oauth/userinfo` (OpenID Connect Core §5.3): the claims about the user of a
//! bearer access token whose scope has `openid`.

use rocket::serde::json::Json;
use rocket::{get, post, State};
use rocket_db_pools::Connection;
use serde::Serialize;

use super::responses::{Forbidden, Unauthorized, Unavailable};
use crate::auth::guards;
use crate::auth::oidc::userinfo::UserInfo;
use crate::auth::Auth;
use crate::db::{Db, Id};
use crate::error::ApiResult;

/// The UserInfo response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserInfoView {
    /// The account's id: the ID token's `sub`.
    pub sub: Id,
    /// With `email` in the token's scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl From<UserInfo> for UserInfoView {
    fn from(info: UserInfo) -> Self {
        UserInfoView { sub: info.sub, email: info.email, email_verified: info.email_verified }
    }
}

async fn answer(auth: &Auth, me: guards::User, mut db: Connection<Db>) -> ApiResult<Json<UserInfoView>> {
    let scope = me.scope.map(|values| values.join(" "));
    Ok(Json(auth.userinfo(&mut db, me.user_id, scope.as_deref()).await?.into()))
}

/// Who the access token's user is (OpenID Connect Core §5.3). Needs a token whose scope has
/// `openid`; `email` adds `email` and `email_verified`.
#[utoipa::path(tag = "oauth", operation_id = "userinfo", security(("bearer" = []), ("oauth2" = [])),
    responses((status = 200, description = "The claims.", body = UserInfoView), Unauthorized,
        Forbidden, Unavailable))]
#[get("/oauth/userinfo")]
pub async fn userinfo(auth: &State<Auth>, me: guards::User, db: Connection<Db>) -> ApiResult<Json<UserInfoView>> {
    answer(auth, me, db).await
}

/// The same as `GET` (OpenID Connect Core §5.3.1 allows both).
#[utoipa::path(tag = "oauth", operation_id = "userinfo_post", security(("bearer" = []), ("oauth2" = [])),
    responses((status = 200, description = "The claims.", body = UserInfoView), Unauthorized,
        Forbidden, Unavailable))]
#[post("/oauth/userinfo")]
pub async fn userinfo_post(auth: &State<Auth>, me: guards::User, db: Connection<Db>) -> ApiResult<Json<UserInfoView>> {
    answer(auth, me, db).await
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![userinfo, userinfo_post]
}
