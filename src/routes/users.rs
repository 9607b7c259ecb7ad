//! `/users/me`: the caller's own account.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::State;
use rocket_db_pools::Connection;
use serde::Deserialize;

use super::body::JsonBody;
use crate::auth::accounts::UserView;
use crate::auth::guards::{ClientInfo, Principal};
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::models::UserStore;

#[derive(Deserialize)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

#[rocket::get("/users/me")]
async fn me(me: Principal, mut db: Connection<Db>) -> ApiResult<Json<UserView>> {
    let conn = &mut *db;
    let (user, roles) = crate::with_conn!(conn, |c| {
        let user = c.find_user(me.user_id).await?;
        let roles = c.user_role_names(me.user_id).await?;
        Ok::<_, diesel::result::Error>((user, roles))
    })?;
    let user = user.ok_or_else(|| ApiError::invalid_token("The account of this access token no longer exists."))?;
    Ok(Json(UserView::new(&user, roles)))
}

#[rocket::put("/users/me/password", data = "<body>")]
async fn change_password(auth: &State<Auth>, me: Principal, mut db: Connection<Db>, client: ClientInfo, body: JsonBody<PasswordChange>) -> ApiResult<Status> {
    auth.change_password(&mut db, &me, &body.0.current_password, &body.0.new_password, &client).await?;
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![me, change_password]
}
