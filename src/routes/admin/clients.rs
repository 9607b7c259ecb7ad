//! `/admin/clients...`: service-client administration.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{delete, get, post, State};
use rocket_db_pools::Connection;
use serde::Deserialize;

use super::path_id;
use crate::admin::clients::{ClientList, CreatedClient, NewSecret};
use crate::auth::guards::{Authorized, RequestOrigin};
use crate::auth::permissions::{ClientsRead, ClientsWrite};
use crate::auth::Auth;
use crate::db::Db;
use crate::error::ApiResult;
use crate::page::Page;
use crate::routes::body::JsonBody;
use crate::routes::query::SingleValued;
use crate::routes::responses::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
};
use crate::routes::NoStore;

#[derive(Deserialize, utoipa::ToSchema)]
struct NewClientBody {
    #[schema(example = "reports-api")]
    name: String,
    #[serde(default)]
    #[schema(example = json!(["users:read"]))]
    permissions: Vec<String>,
}

/// Lists service clients (never their secrets). Needs `clients:read`.
#[utoipa::path(tag = "admin", operation_id = "list_clients", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    params(
        ("limit" = Option<u32>, Query, description = "Page size: default 50; more than 200 counts as 200."),
        ("offset" = Option<u32>, Query, description = "How many to skip; default 0.")),
    responses((status = 200, description = "One page of clients.", body = ClientList), Unauthorized, Forbidden,
        Unprocessable, Unavailable))]
#[get("/admin/clients?<limit>&<offset>")]
async fn list(
    auth: &State<Auth>,
    _who: Authorized<ClientsRead>,
    _single: SingleValued,
    mut db: Connection<Db>,
    limit: Option<&str>,
    offset: Option<&str>,
) -> ApiResult<Json<ClientList>> {
    Ok(Json(auth.list_clients(&mut db, Page::parse(limit, offset)?).await?))
}

/// Creates a client with permissions the caller holds itself; the secret is shown only here.
/// Needs `clients:write`.
#[utoipa::path(tag = "admin", operation_id = "create_client", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    request_body = NewClientBody,
    responses((status = 201, description = "The new client and its secret.", body = CreatedClient), BadRequest,
        Unauthorized, Forbidden, PayloadTooLarge, Unprocessable, Unavailable))]
#[post("/admin/clients", data = "<body>")]
async fn create(
    auth: &State<Auth>,
    who: Authorized<ClientsWrite>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    body: JsonBody<NewClientBody>,
) -> ApiResult<(Status, NoStore<Json<CreatedClient>>)> {
    let created = auth.create_client(&mut db, &who, &body.0.name, &body.0.permissions, &client).await?;
    Ok((Status::Created, NoStore::new(Json(created))))
}

/// Gives a client a new secret; the old one stops working. Needs `clients:write`.
#[utoipa::path(tag = "admin", operation_id = "rotate_client_secret", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    params(("client_id" = uuid::Uuid, Path, description = "A client id.")),
    responses((status = 200, description = "The new secret.", body = NewSecret), Unauthorized, Forbidden, NotFound,
        Unavailable))]
#[post("/admin/clients/<client_id>/secret")]
async fn rotate_secret(
    auth: &State<Auth>,
    who: Authorized<ClientsWrite>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    client_id: &str,
) -> ApiResult<NoStore<Json<NewSecret>>> {
    let secret = auth.rotate_client_secret(&mut db, &who, path_id(client_id, "client")?, &client).await?;
    Ok(NoStore::new(Json(secret)))
}

/// Deletes a client; its access tokens are rejected at once. Needs `clients:write`.
#[utoipa::path(tag = "admin", operation_id = "delete_client", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    params(("client_id" = uuid::Uuid, Path, description = "A client id.")),
    responses((status = 204, description = "Deleted."), Unauthorized, Forbidden, NotFound, Unavailable))]
#[delete("/admin/clients/<client_id>")]
async fn delete(
    auth: &State<Auth>,
    who: Authorized<ClientsWrite>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    client_id: &str,
) -> ApiResult<Status> {
    auth.delete_client(&mut db, &who, path_id(client_id, "client")?, &client).await?;
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list, create, rotate_secret, delete]
}
