//! `GET /admin/audit`: the audit log, newest first.

use rocket::serde::json::Json;
use rocket::{get, State};
use rocket_db_pools::Connection;
use serde::Serialize;

use crate::admin::audit::AuditView;
use crate::auth::guards::Authorized;
use crate::auth::permissions::AuditRead;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::page::Page;
use crate::routes::query::SingleValued;
use crate::routes::responses::{Forbidden, Unauthorized, Unavailable, Unprocessable};

#[derive(Serialize, utoipa::ToSchema)]
struct EventList {
    events: Vec<AuditView>,
}

/// Audit events, newest first. Needs `audit:read`.
#[utoipa::path(tag = "admin", operation_id = "list_audit_events", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])), params(
        ("user_id" = Option<uuid::Uuid>, Query, description = "Only events about this user."),
        ("event" = Option<String>, Query, description = "Only events of this name, e.g. `login_failed`."),
        ("limit" = Option<u32>, Query, description = "Page size: default 50; more than 200 counts as 200."),
        ("offset" = Option<u32>, Query, description = "How many to skip; default 0.")),
    responses((status = 200, description = "The events.", body = EventList), Unauthorized, Forbidden, Unprocessable,
        Unavailable))]
#[get("/admin/audit?<user_id>&<event>&<limit>&<offset>")]
// A Rocket handler takes each guard and query parameter as an argument.
#[allow(clippy::too_many_arguments)]
async fn list(
    auth: &State<Auth>,
    _who: Authorized<AuditRead>,
    _single: SingleValued,
    mut db: Connection<Db>,
    user_id: Option<&str>,
    event: Option<String>,
    limit: Option<&str>,
    offset: Option<&str>,
) -> ApiResult<Json<EventList>> {
    let user_id = user_id
        .filter(|id| !id.is_empty())
        .map(|id| id.parse().map_err(|_| ApiError::invalid_field("user_id: must be a UUID")))
        .transpose()?;
    let event = event.filter(|e| !e.is_empty());
    let events = auth.list_audit(&mut db, user_id, event, Page::parse(limit, offset)?).await?;
    Ok(Json(EventList { events }))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list]
}
