//! `GET /feed/changes`: the change feed for resource servers (see `auth::sync::feed`) and the
//! JSON shape of its answer.

use std::collections::BTreeMap;
use std::time::Duration;

use rocket::serde::json::Json;
use rocket::{get, State};
use serde::Serialize;

use super::responses::{Forbidden, Unauthorized, Unavailable};
use crate::auth::guards;
use crate::auth::permissions::{FeedRead, Permission};
use crate::auth::sync::feed::{FeedAnswer, MAX_WAIT};
use crate::auth::Auth;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult};
use crate::routes::query::SingleValued;

/// One answer of the feed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Changes {
    /// Pass it back as `cursor` to get what changed after this answer.
    pub cursor: i64,
    /// `true` when this answer is the whole state (no or an unusable cursor was given).
    pub snapshot: bool,
    /// Sessions ended while their access tokens may still be unexpired: refuse tokens whose `sid`
    /// is one of them until `until`.
    pub ended_sessions: Vec<Ended>,
    /// Deleted service clients: refuse tokens whose `client_id` is one of them until `until`.
    pub deleted_clients: Vec<DeletedClient>,
    /// Clients whose access tokens issued up to a time were revoked (secret rotation, RFC 7009):
    /// refuse tokens whose `client_id` is one of them and whose `iat` is at or before
    /// `revoked_through`, until `until`. A later answer may raise `revoked_through`; keep the
    /// highest.
    pub client_cutoffs: Vec<ClientCutoffView>,
    /// Users whose roles changed: refuse their tokens naming a role not in `roles` until `until`.
    pub role_changes: Vec<RoleChangeView>,
    /// Role name → permissions, the whole table (the `admin` role holds every permission).
    pub roles: BTreeMap<String, Vec<String>>,
    /// The access-token lifetime in seconds.
    pub access_ttl: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ended {
    pub sid: Id,
    pub until: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletedClient {
    pub client_id: Id,
    pub until: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientCutoffView {
    pub client_id: Id,
    pub revoked_through: i64,
    pub until: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoleChangeView {
    pub sub: Id,
    /// Orders changes of one user: keep the highest.
    pub version: i64,
    pub roles: Vec<String>,
    pub until: i64,
}

impl From<FeedAnswer> for Changes {
    fn from(a: FeedAnswer) -> Self {
        Changes {
            cursor: a.cursor,
            snapshot: a.snapshot,
            ended_sessions: a.ended_sessions.into_iter().map(|(sid, until)| Ended { sid, until }).collect(),
            deleted_clients: a
                .deleted_clients
                .into_iter()
                .map(|(client_id, until)| DeletedClient { client_id, until })
                .collect(),
            client_cutoffs: a
                .client_cutoffs
                .into_iter()
                .map(|c| ClientCutoffView {
                    client_id: c.client_id,
                    revoked_through: c.revoked_through,
                    until: c.expires_at,
                })
                .collect(),
            role_changes: a
                .role_changes
                .into_iter()
                .map(|c| RoleChangeView { sub: c.user_id, version: c.version, roles: c.roles, until: c.until })
                .collect(),
            roles: a.roles,
            access_ttl: a.access_ttl,
        }
    }
}

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
    Ok(Json(auth.change_feed(db, cursor, wait).await?.into()))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![changes]
}
