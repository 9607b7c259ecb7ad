//! `GET /feed/changes`: the change feed for resource servers (see `auth::feed`).

use std::time::Duration;

use rocket::serde::json::Json;
use rocket::{get, State};

use super::responses::{Forbidden, Unauthorized, Unavailable};
use crate::auth::guards;
use crate::auth::permissions::{FeedRead, Permission};
use crate::auth::sync::feed::{Changes, MAX_WAIT};
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::routes::query::SingleValued;

/// What a resource server needs to refuse tokens as Portcullis does: ended sessions, deleted
/// clients, per-user role changes and the role → permission table. A service client whose token's
/// scope holds `feed:read` may read it; others get 403 `insufficient_permissions`.
///
/// Without `cursor` (or with one this server cannot use): the snapshot, at once. With the
/// `cursor` of the previous answer: held until something changed after it (or `wait` seconds,
/// default 25, at most 55), then every change since that answer; entries may repeat and are
/// applied idempotently, so a reconnect with the last cursor misses nothing.
#[utoipa::path(tag = "feed", security(("client_credentials" = [])),
    params(
        ("cursor" = Option<i64>, Query, description = "The `cursor` of the previous answer; none for a snapshot."),
        ("wait" = Option<u64>, Query, description = "Seconds to hold the request while nothing changed (default 25, at most 55)."),
    ),
    responses((status = 200, description = "The snapshot, or the changes after `cursor`.", body = Changes),
        Unauthorized, Forbidden, Unavailable))]
#[get("/feed/changes?<cursor>&<wait>")]
pub async fn changes(
    client: guards::Client,
    _single: SingleValued,
    auth: &State<Auth>,
    db: &State<Db>,
    cursor: Option<i64>,
    wait: Option<u64>,
) -> ApiResult<Json<Changes>> {
    if !client.scope.iter().any(|p| p == FeedRead::NAME) {
        return Err(ApiError::forbidden("Reading the change feed needs the feed:read permission."));
    }
    let wait = Duration::from_secs(wait.unwrap_or(25).min(MAX_WAIT));
    Ok(Json(auth.change_feed(db, cursor, wait).await?))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![changes]
}
