//! `/admin/clients...`: service-client administration.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{delete, get, post, put, State};
use rocket_db_pools::Connection;
use serde::Deserialize;

use super::path_id;
use crate::admin::client_settings::ClientFields;
use crate::admin::clients::{ClientList, ClientView, CreatedClient, NewSecret};
use crate::auth::guards::{Authorized, RequestOrigin};
use crate::auth::permissions::{ClientsRead, ClientsWrite};
use crate::auth::Auth;
use crate::db::Db;
use crate::error::ApiResult;
use crate::page::Page;
use crate::routes::body::JsonBody;
use crate::routes::query::SingleValued;
use crate::routes::responses::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
};
use crate::routes::NoStore;

/// A new client: only `name` is required.
#[derive(Deserialize, utoipa::ToSchema)]
struct NewClientBody {
    #[schema(example = "reports-api")]
    name: String,
    #[serde(default)]
    #[schema(example = json!(["users:read"]))]
    permissions: Vec<String>,
    #[serde(flatten)]
    #[schema(inline)]
    settings: SettingsBody,
}

/// A client's type and settings, each optional.
#[derive(Deserialize, utoipa::ToSchema)]
struct SettingsBody {
    /// `confidential` (the default; gets a secret) or `public` (no secret). Cannot change.
    #[serde(rename = "type")]
    #[schema(example = "confidential")]
    client_type: Option<String>,
    /// Absolute `https` URLs, `http` on a loopback host, or private-use schemes
    /// (`com.example.app:/cb`); no fragment.
    #[schema(example = json!(["https://app.example/callback"]))]
    redirect_uris: Option<Vec<String>>,
    /// Where RP-initiated logout may send the user; the same rules.
    post_logout_redirect_uris: Option<Vec<String>>,
    /// Any of `client_credentials` and `password` (confidential clients only),
    /// `authorization_code`, `refresh_token`. Default: `["client_credentials"]` for a
    /// confidential client, `["authorization_code","refresh_token"]` for a public one.
    #[schema(example = json!(["client_credentials"]))]
    grant_types: Option<Vec<String>>,
    /// Users are not asked for consent; setting it needs `admin`. Default false.
    first_party: Option<bool>,
    /// `RS256` (the default) or `EdDSA`.
    #[schema(example = "RS256")]
    id_token_signed_response_alg: Option<String>,
}

/// The fields `PUT /admin/clients/<id>` changes: those it carries.
#[derive(Deserialize, utoipa::ToSchema)]
struct ClientChangeBody {
    #[schema(example = "reports-api")]
    name: Option<String>,
    #[schema(example = json!(["users:read"]))]
    permissions: Option<Vec<String>>,
    #[serde(flatten)]
    #[schema(inline)]
    settings: SettingsBody,
}

impl SettingsBody {
    fn into_fields(self, name: Option<String>, permissions: Option<Vec<String>>) -> ClientFields {
        ClientFields {
            name,
            permissions,
            client_type: self.client_type,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grant_types,
            first_party: self.first_party,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
        }
    }
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

/// Creates a client with permissions the caller holds itself; a confidential client's secret is
/// shown only here (a public client has none). Needs `clients:write`; `first_party` needs `admin`.
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
    let NewClientBody { name, permissions, settings } = body.0;
    let fields = settings.into_fields(Some(name), Some(permissions));
    let created = auth.create_client(&mut db, &who, &fields, &client).await?;
    Ok((Status::Created, NoStore::new(Json(created))))
}

/// Changes the fields the body carries (not the type). Needs `clients:write` and every
/// permission the client holds or is given; making a client first-party, or changing that of a
/// first-party client, needs `admin`.
#[utoipa::path(tag = "admin", operation_id = "update_client", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    params(("client_id" = uuid::Uuid, Path, description = "A client id.")),
    request_body = ClientChangeBody,
    responses((status = 200, description = "The client as changed.", body = ClientView), BadRequest,
        Unauthorized, Forbidden, NotFound, PayloadTooLarge, Unprocessable, Unavailable))]
#[put("/admin/clients/<client_id>", data = "<body>")]
async fn update(
    auth: &State<Auth>,
    who: Authorized<ClientsWrite>,
    mut db: Connection<Db>,
    client: RequestOrigin,
    client_id: &str,
    body: JsonBody<ClientChangeBody>,
) -> ApiResult<Json<ClientView>> {
    let client_id = path_id(client_id, "client")?;
    let ClientChangeBody { name, permissions, settings } = body.0;
    let fields = settings.into_fields(name, permissions);
    Ok(Json(auth.update_client(&mut db, &who, client_id, &fields, &client).await?))
}

/// Gives a client a new secret; the old one stops working. Needs `clients:write`.
#[utoipa::path(tag = "admin", operation_id = "rotate_client_secret", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
    params(("client_id" = uuid::Uuid, Path, description = "A client id.")),
    responses((status = 200, description = "The new secret.", body = NewSecret), Unauthorized, Forbidden, NotFound,
        Conflict, Unavailable))]
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
    rocket::routes![list, create, update, rotate_secret, delete]
}
