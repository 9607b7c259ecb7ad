//! `/users/me/consents`: what the caller approved for third-party clients, and revoking it.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{delete, get, State};
use rocket_db_pools::Connection;
use serde::Serialize;

use super::responses::{ErrorObject, Forbidden, Unauthorized, Unavailable};
use crate::auth::first_party::FirstPartyUser;
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::clock::rfc3339;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::Consent;

/// One consent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    pub client_id: Id,
    /// The client's name.
    pub name: String,
    /// The approved scope values, space-separated.
    #[schema(example = "openid email reports:read")]
    pub scope: String,
    #[schema(format = DateTime)]
    pub granted_at: String,
}

/// The caller's consents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentList {
    pub consents: Vec<ConsentView>,
}

impl From<Consent> for ConsentView {
    fn from(c: Consent) -> Self {
        ConsentView { client_id: c.client_id, name: c.client_name, scope: c.scope, granted_at: rfc3339(c.granted_at) }
    }
}

/// The caller's consents to third-party clients, oldest first.
/// Sessions of third-party clients get 403 (`auth::first_party`).
#[utoipa::path(tag = "users", operation_id = "list_consents", security(("bearer" = []), ("oauth2" = [])),
    responses((status = 200, description = "The consents.", body = ConsentList), Unauthorized, Forbidden,
        Unavailable))]
#[get("/users/me/consents")]
async fn list(auth: &State<Auth>, me: FirstPartyUser, mut db: Connection<Db>) -> ApiResult<Json<ConsentList>> {
    let consents = auth.list_consents(&mut db, &me).await?;
    Ok(Json(ConsentList { consents: consents.into_iter().map(ConsentView::from).collect() }))
}

/// Revokes the consent to a client and ends the client's sessions of the caller.
#[utoipa::path(tag = "users", operation_id = "revoke_consent", security(("bearer" = []), ("oauth2" = [])),
    params(("client_id" = uuid::Uuid, Path, description = "A client id.")),
    responses((status = 204, description = "Revoked; the client's sessions of the caller have ended."),
        Unauthorized, Forbidden,
        (status = 404, description = "`not_found`: the caller has no consent to that client.", body = ErrorObject),
        Unavailable))]
#[delete("/users/me/consents/<client_id>")]
async fn revoke(
    auth: &State<Auth>,
    me: FirstPartyUser,
    mut db: Connection<Db>,
    origin: RequestOrigin,
    client_id: &str,
) -> ApiResult<Status> {
    let not_found = || ApiError::not_found("No consent to that client.");
    let client: Id = client_id.parse().map_err(|_| not_found())?;
    if !auth.revoke_consent(&mut db, &me, client, &origin).await? {
        return Err(not_found());
    }
    Ok(Status::NoContent)
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list, revoke]
}
