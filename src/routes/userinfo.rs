//! `GET` and `POST /oauth/userinfo` (OpenID Connect Core §5.3): the claims about the user of a
//! bearer access token whose scope has `openid`.

use rocket::request::{self, FromRequest, Request};
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

/// The `scope` claim of the request's bearer token. Read after [`guards::User`] has verified
/// the token (a handler lists that guard first), from the verification cache.
// TODO(scope): read the scope from `guards::User` once it carries it (branch `scope`).
pub struct TokenScope(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for TokenScope {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        let auth = req.rocket().state::<Auth>();
        let header = req.headers().get_one("Authorization").unwrap_or_default().trim();
        let token = header.split_once(' ').map(|(_, token)| token.trim()).unwrap_or_default();
        let scope = auth.and_then(|auth| auth.keys.verify(token, auth.clock.now()).ok()).and_then(|c| c.scope);
        request::Outcome::Success(TokenScope(scope))
    }
}

async fn answer(
    auth: &Auth,
    me: guards::User,
    scope: TokenScope,
    mut db: Connection<Db>,
) -> ApiResult<Json<UserInfoView>> {
    Ok(Json(auth.userinfo(&mut db, me.user_id, scope.0.as_deref()).await?.into()))
}

/// Who the access token's user is (OpenID Connect Core §5.3). Needs a token whose scope has
/// `openid`; `email` adds `email` and `email_verified`.
#[utoipa::path(tag = "oauth", operation_id = "userinfo", security(("bearer" = []), ("oauth2" = [])),
    responses((status = 200, description = "The claims.", body = UserInfoView), Unauthorized,
        Forbidden, Unavailable))]
#[get("/oauth/userinfo")]
pub async fn userinfo(
    auth: &State<Auth>,
    me: guards::User,
    scope: TokenScope,
    db: Connection<Db>,
) -> ApiResult<Json<UserInfoView>> {
    answer(auth, me, scope, db).await
}

/// The same as `GET` (OpenID Connect Core §5.3.1 allows both).
#[utoipa::path(tag = "oauth", operation_id = "userinfo_post", security(("bearer" = []), ("oauth2" = [])),
    responses((status = 200, description = "The claims.", body = UserInfoView), Unauthorized,
        Forbidden, Unavailable))]
#[post("/oauth/userinfo")]
pub async fn userinfo_post(
    auth: &State<Auth>,
    me: guards::User,
    scope: TokenScope,
    db: Connection<Db>,
) -> ApiResult<Json<UserInfoView>> {
    answer(auth, me, scope, db).await
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![userinfo, userinfo_post]
}
