//! `/admin/users...`: user and session administration.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::State;
use rocket_db_pools::Connection;
use serde::Deserialize;

use super::path_id;
use crate::admin::users::UserPage;
use crate::admin::Page;
use crate::auth::accounts::UserView;
use crate::auth::guards::{Authorized, ClientInfo};
use crate::auth::permissions::{SessionsRead, SessionsRevoke, UsersRead, UsersWrite};
use crate::auth::sessions::SessionView;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::ApiResult;
use crate::routes::body::JsonBody;

#[derive(Deserialize)]
struct RolesBody {
    roles: Vec<String>,
}

#[derive(Deserialize)]
struct PatchBody {
    disabled: bool,
}

#[derive(serde::Serialize)]
struct SessionList {
    sessions: Vec<SessionView>,
}

#[rocket::get("/admin/users?<limit>&<offset>&<email>")]
async fn list(
    auth: &State<Auth>,
    _who: Authorized<UsersRead>,
    mut db: Connection<Db>,
    limit: Option<&str>,
    offset: Option<&str>,
    email: Option<&str>,
) -> ApiResult<Json<UserPage>> {
    Ok(Json(auth.list_users(&mut db, email, Page::parse(limit, offset)?).await?))
}

#[rocket::get("/admin/users/<id>")]
async fn get(
    auth: &State<Auth>,
    _who: Authorized<UsersRead>,
    mut db: Connection<Db>,
    id: &str,
) -> ApiResult<Json<UserView>> {
    Ok(Json(auth.user_view(&mut db, path_id(id, "user")?).await?))
}

#[rocket::put("/admin/users/<id>/roles", data = "<body>")]
async fn set_roles(
    auth: &State<Auth>,
    who: Authorized<UsersWrite>,
    mut db: Connection<Db>,
    client: ClientInfo,
    id: &str,
    body: JsonBody<RolesBody>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(auth.set_roles(&mut db, &who, path_id(id, "user")?, body.0.roles, &client).await?))
}

#[rocket::patch("/admin/users/<id>", data = "<body>")]
async fn patch(
    auth: &State<Auth>,
    who: Authorized<UsersWrite>,
    mut db: Connection<Db>,
    client: ClientInfo,
    id: &str,
    body: JsonBody<PatchBody>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(auth.set_disabled(&mut db, &who, path_id(id, "user")?, body.0.disabled, &client).await?))
}

#[rocket::delete("/admin/users/<id>")]
async fn delete(
    auth: &State<Auth>,
    who: Authorized<UsersWrite>,
    mut db: Connection<Db>,
    client: ClientInfo,
    id: &str,
) -> ApiResult<Status> {
    auth.delete_user(&mut db, &who, path_id(id, "user")?, &client).await?;
    Ok(Status::NoContent)
}

#[rocket::get("/admin/users/<id>/sessions")]
async fn sessions(
    auth: &State<Auth>,
    who: Authorized<SessionsRead>,
    mut db: Connection<Db>,
    id: &str,
) -> ApiResult<Json<SessionList>> {
    let sessions = auth.user_sessions(&mut db, &who, path_id(id, "user")?).await?;
    Ok(Json(SessionList { sessions }))
}

#[rocket::delete("/admin/users/<id>/sessions")]
async fn revoke_sessions(
    auth: &State<Auth>,
    who: Authorized<SessionsRevoke>,
    mut db: Connection<Db>,
    client: ClientInfo,
    id: &str,
) -> ApiResult<Status> {
    auth.revoke_user_sessions(&mut db, &who, path_id(id, "user")?, &client).await?;
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list, get, set_roles, patch, delete, sessions, revoke_sessions]
}
