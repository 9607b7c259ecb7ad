//! `/admin/roles...`: role administration.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{delete, get, post, put, State};
use rocket_db_pools::Connection;
use serde::{Deserialize, Serialize};

use crate::admin::roles::RoleView;
use crate::auth::guards::{Authorized, RequestOrigin};
use crate::auth::permissions::{RolesRead, RolesWrite};
use crate::auth::Auth;
use crate::db::Db;
use crate::error::ApiResult;
use crate::page::Page;
use crate::routes::body::JsonBody;
use crate::routes::query::SingleValued;
use crate::routes::responses::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
};

#[derive(Deserialize, utoipa::ToSchema)]
struct NewRole {
    #[schema(example = "editor")]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    #[schema(example = json!(["users:read"]))]
    permissions: Vec<String>,
}

/// Absent fields stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
struct RoleChange {
    description: Option<String>,
    permissions: Option<Vec<String>>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct RoleList {
    roles: Vec<RoleView>,
}

/// The roles with their permissions, by name. Needs `roles:read`.
#[utoipa::path(tag = "admin", operation_id = "list_roles", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    params(("limit" = Option<u32>, Query, description = "Page size: default 50; more than 200 counts as 200."),
        ("offset" = Option<u32>, Query, description = "How many to skip; default 0.")),
    responses((status = 200, description = "One page of the roles.", body = RoleList), Unauthorized, Forbidden,
        Unprocessable, Unavailable))]
#[get("/admin/roles?<limit>&<offset>")]
async fn list(
    auth: &State<Auth>,
    _who: Authorized<RolesRead>,
    _single: SingleValued,
    mut db: Connection<Db>,
    limit: Option<&str>,
    offset: Option<&str>,
) -> ApiResult<Json<RoleList>> {
    let page = Page::parse(limit, offset)?;
    let roles = auth.list_roles(&mut db).await?;
    // Few enough to page in memory.
    let roles = roles.into_iter().skip(page.offset as usize).take(page.limit as usize).collect();
    Ok(Json(RoleList { roles }))
}

/// Creates a role. Needs `roles:write`.
#[utoipa::path(tag = "admin", operation_id = "create_role", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    request_body = NewRole,
    responses((status = 201, description = "The new role.", body = RoleView), BadRequest, Unauthorized, Forbidden,
        Conflict, PayloadTooLarge, Unprocessable, Unavailable))]
#[post("/admin/roles", data = "<body>")]
async fn create(
    auth: &State<Auth>,
    who: Authorized<RolesWrite>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    body: JsonBody<NewRole>,
) -> ApiResult<(Status, Json<RoleView>)> {
    let NewRole { name, description, permissions } = body.0;
    let role = auth.create_role(&mut db, &who, &name, &description, &permissions, &client).await?;
    Ok((Status::Created, Json(role)))
}

/// Changes a role's description or permissions. Needs `roles:write`.
#[utoipa::path(tag = "admin", operation_id = "update_role", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    request_body = RoleChange,
    params(("name" = String, Path, description = "A role name.")),
    responses((status = 200, description = "The changed role.", body = RoleView), BadRequest, Unauthorized, Forbidden,
        NotFound, Conflict, PayloadTooLarge, Unprocessable, Unavailable))]
#[put("/admin/roles/<name>", data = "<body>")]
async fn update(
    auth: &State<Auth>,
    who: Authorized<RolesWrite>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    name: &str,
    body: JsonBody<RoleChange>,
) -> ApiResult<Json<RoleView>> {
    let RoleChange { description, permissions } = body.0;
    Ok(Json(auth.update_role(&mut db, &who, name, description.as_deref(), permissions.as_deref(), &client).await?))
}

/// Deletes a role; 409 while it is assigned or built in. Needs `roles:write`.
#[utoipa::path(tag = "admin", operation_id = "delete_role", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    params(("name" = String, Path, description = "A role name.")),
    responses((status = 204, description = "Deleted."), Unauthorized, Forbidden, NotFound, Conflict, Unavailable))]
#[delete("/admin/roles/<name>")]
async fn delete(
    auth: &State<Auth>,
    who: Authorized<RolesWrite>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    name: &str,
) -> ApiResult<Status> {
    auth.delete_role(&mut db, &who, name, &client).await?;
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list, create, update, delete]
}
