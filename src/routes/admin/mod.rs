//! `/admin/*`: every route states the permission it needs in its signature
//! (`Authorized<UsersRead>`, ...), so it cannot run without it.

pub(super) mod audit;
pub(super) mod clients;
pub(super) mod roles;
pub(super) mod users;

use crate::db::Id;
use crate::error::{ApiError, ApiResult};

/// Parses a path id; anything that is not a UUID cannot name an existing thing: 404.
pub(super) fn path_id(id: &str, what: &'static str) -> ApiResult<Id> {
    id.parse().map_err(|_| ApiError::not_found(format!("No such {what}.")))
}

pub fn routes() -> Vec<rocket::Route> {
    let mut routes = users::routes();
    routes.extend(roles::routes());
    routes.extend(audit::routes());
    routes.extend(clients::routes());
    routes
}
