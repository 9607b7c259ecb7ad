//! `/admin/users...`: user and session administration.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{delete, get, patch, put, State};
use rocket_db_pools::Connection;
use serde::Deserialize;

use super::path_id;
use crate::auth::guards::{Authorized, RequestOrigin};
use crate::auth::permissions::{SessionsRead, SessionsRevoke, UsersRead, UsersWrite};
use crate::auth::Auth;
use crate::db::Db;
use crate::error::ApiResult;
use crate::page::Page;
use crate::routes::body::JsonBody;
use crate::routes::query::SingleValued;
use crate::routes::responses::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
};
use crate::routes::views::{SessionList, UserPage, UserView};

#[derive(Deserialize, utoipa::ToSchema)]
struct RolesBody {
    #[schema(example = json!(["user", "editor"]))]
    roles: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct PatchBody {
    disabled: bool,
}

/// Lists users, oldest first. Needs `users:read`.
#[utoipa::path(tag = "admin", operation_id = "list_users", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])), params(
        ("limit" = Option<u32>, Query, description = "Page size: default 50; more than 200 counts as 200."),
        ("offset" = Option<u32>, Query, description = "How many to skip; default 0."),
        ("email" = Option<String>, Query, description = "Only emails containing this text.")),
    responses((status = 200, description = "One page of users.", body = UserPage), Unauthorized, Forbidden,
        Unprocessable, Unavailable))]
#[get("/admin/users?<limit>&<offset>&<email>")]
async fn list(
    auth: &State<Auth>,
    _who: Authorized<UsersRead>,
    _single: SingleValued,
    mut db: Connection<Db>,
    limit: Option<&str>,
    offset: Option<&str>,
    email: Option<&str>,
) -> ApiResult<Json<UserPage>> {
    Ok(Json(auth.list_users(&mut db, email, Page::parse(limit, offset)?).await?.into()))
}

/// One user. Needs `users:read`.
#[utoipa::path(tag = "admin", operation_id = "get_user", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    params(("id" = uuid::Uuid, Path, description = "A user id.")),
    responses((status = 200, description = "The user.", body = UserView), Unauthorized, Forbidden, NotFound,
        Unavailable))]
#[get("/admin/users/<id>")]
async fn get(
    auth: &State<Auth>,
    _who: Authorized<UsersRead>,
    mut db: Connection<Db>,
    id: &str,
) -> ApiResult<Json<UserView>> {
    Ok(Json(auth.user_view(&mut db, path_id(id, "user")?).await?.into()))
}

/// Replaces a user's roles; takes effect at the user's next refresh. Needs `users:write`.
#[utoipa::path(tag = "admin", operation_id = "set_user_roles", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    request_body = RolesBody,
    params(("id" = uuid::Uuid, Path, description = "A user id.")),
    responses((status = 200, description = "The user with the new roles.", body = UserView), BadRequest, Unauthorized,
        Forbidden, NotFound, Conflict, PayloadTooLarge, Unprocessable, Unavailable))]
#[put("/admin/users/<id>/roles", data = "<body>")]
async fn set_roles(
    auth: &State<Auth>,
    who: Authorized<UsersWrite>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    id: &str,
    body: JsonBody<RolesBody>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(auth.set_roles(&mut db, &who, path_id(id, "user")?, body.0.roles, &client).await?.into()))
}

/// Disables or enables a user; disabling ends all its sessions. Needs `users:write`.
#[utoipa::path(tag = "admin", operation_id = "patch_user", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    request_body = PatchBody,
    params(("id" = uuid::Uuid, Path, description = "A user id.")),
    responses((status = 200, description = "The changed user.", body = UserView), BadRequest, Unauthorized, Forbidden,
        NotFound, Conflict, PayloadTooLarge, Unavailable))]
#[patch("/admin/users/<id>", data = "<body>")]
async fn patch(
    auth: &State<Auth>,
    who: Authorized<UsersWrite>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    id: &str,
    body: JsonBody<PatchBody>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(auth.set_disabled(&mut db, &who, path_id(id, "user")?, body.0.disabled, &client).await?.into()))
}

/// Deletes a user and its sessions. Needs `users:write`.
#[utoipa::path(tag = "admin", operation_id = "delete_user", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    params(("id" = uuid::Uuid, Path, description = "A user id.")),
    responses((status = 204, description = "Deleted."), Unauthorized, Forbidden, NotFound, Conflict, Unavailable))]
#[delete("/admin/users/<id>")]
async fn delete(
    auth: &State<Auth>,
    who: Authorized<UsersWrite>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    id: &str,
) -> ApiResult<Status> {
    auth.delete_user(&mut db, &who, path_id(id, "user")?, &client).await?;
    Ok(Status::NoContent)
}

/// A user's live sessions. Needs `sessions:read`.
#[utoipa::path(tag = "admin", operation_id = "list_user_sessions", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    params(("id" = uuid::Uuid, Path, description = "A user id."),
        ("limit" = Option<u32>, Query, description = "Page size: default 50; more than 200 counts as 200."),
        ("offset" = Option<u32>, Query, description = "How many to skip; default 0.")),
    responses((status = 200, description = "One page of the live sessions, newest first.", body = SessionList),
        Unauthorized, Forbidden, NotFound, Unprocessable, Unavailable))]
#[get("/admin/users/<id>/sessions?<limit>&<offset>")]
async fn sessions(
    auth: &State<Auth>,
    who: Authorized<SessionsRead>,
    _single: SingleValued,
    mut db: Connection<Db>,
    id: &str,
    limit: Option<&str>,
    offset: Option<&str>,
) -> ApiResult<Json<SessionList>> {
    let (target, page) = (path_id(id, "user")?, Page::parse(limit, offset)?);
    let sessions = auth.user_sessions(&mut db, target, page).await?;
    Ok(Json(SessionList::new(&sessions, who.session_id().copied())))
}

/// Ends every session of a user. Needs `sessions:revoke`.
#[utoipa::path(tag = "admin", operation_id = "revoke_user_sessions", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    params(("id" = uuid::Uuid, Path, description = "A user id.")),
    responses((status = 204, description = "Every session has ended."), Unauthorized, Forbidden, NotFound,
        Unavailable))]
#[delete("/admin/users/<id>/sessions")]
async fn revoke_sessions(
    auth: &State<Auth>,
    who: Authorized<SessionsRevoke>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    id: &str,
) -> ApiResult<Status> {
    auth.revoke_user_sessions(&mut db, &who, path_id(id, "user")?, &client).await?;
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list, get, set_roles, patch, delete, sessions, revoke_sessions]
}
