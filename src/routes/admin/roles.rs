//! `/admin/roles...`: role administration.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::State;
use rocket_db_pools::Connection;
use serde::{Deserialize, Serialize};

use crate::admin::roles::RoleView;
use crate::auth::guards::{Authorized, ClientInfo};
use crate::auth::permissions::{RolesRead, RolesWrite};
use crate::auth::Auth;
use crate::db::Db;
use crate::error::ApiResult;
use crate::routes::body::JsonBody;

#[derive(Deserialize)]
struct NewRole {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: Vec<String>,
}

#[derive(Deserialize)]
struct RoleChange {
    description: Option<String>,
    permissions: Option<Vec<String>>,
}

#[derive(Serialize)]
struct RoleList {
    roles: Vec<RoleView>,
}

#[rocket::get("/admin/roles")]
async fn list(auth: &State<Auth>, _who: Authorized<RolesRead>, mut db: Connection<Db>) -> ApiResult<Json<RoleList>> {
    Ok(Json(RoleList { roles: auth.list_roles(&mut db).await? }))
}

#[rocket::post("/admin/roles", data = "<body>")]
async fn create(
    auth: &State<Auth>,
    who: Authorized<RolesWrite>,
    mut db: Connection<Db>,
    client: ClientInfo,
    body: JsonBody<NewRole>,
) -> ApiResult<(Status, Json<RoleView>)> {
    let NewRole { name, description, permissions } = body.0;
    let role = auth.create_role(&mut db, &who, &name, &description, &permissions, &client).await?;
    Ok((Status::Created, Json(role)))
}

#[rocket::put("/admin/roles/<name>", data = "<body>")]
async fn update(
    auth: &State<Auth>,
    who: Authorized<RolesWrite>,
    mut db: Connection<Db>,
    client: ClientInfo,
    name: &str,
    body: JsonBody<RoleChange>,
) -> ApiResult<Json<RoleView>> {
    let RoleChange { description, permissions } = body.0;
    Ok(Json(auth.update_role(&mut db, &who, name, description.as_deref(), permissions.as_deref(), &client).await?))
}

#[rocket::delete("/admin/roles/<name>")]
async fn delete(
    auth: &State<Auth>,
    who: Authorized<RolesWrite>,
    mut db: Connection<Db>,
    client: ClientInfo,
    name: &str,
) -> ApiResult<Status> {
    auth.delete_role(&mut db, &who, name, &client).await?;
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list, create, update, delete]
}
