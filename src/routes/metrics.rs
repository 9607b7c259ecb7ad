//! `GET /metrics`: the Prometheus text exposition, for a bearer token with `metrics:read`.

use rocket::http::ContentType;
use rocket::{get, State};

use super::docs::{Forbidden, Unauthorized};
use crate::auth::guards::Authorized;
use crate::auth::permissions::MetricsRead;
use crate::auth::Auth;
use crate::db::Db;
use crate::ops::metrics as recorded;

/// The Prometheus text exposition (format 0.0.4) of the service's metrics. Needs `metrics:read`.
#[utoipa::path(tag = "operations", security(("bearer" = []), ("oauth2" = [])),
    responses((status = 200, description = "The metrics.", content_type = "text/plain; version=0.0.4", body = String),
        Unauthorized, Forbidden))]
#[get("/metrics")]
fn exposition(_who: Authorized<MetricsRead>, db: &State<Db>, auth: &State<Auth>) -> (ContentType, String) {
    let pool = db.status();
    let sample = recorded::Sample {
        pool_max: pool.max_size,
        pool_size: pool.size,
        pool_idle: pool.available,
        pool_waiting: pool.waiting,
        revoked_sessions: auth.revoked.len(),
    };
    let content_type = ContentType::new("text", "plain").with_params([("version", "0.0.4"), ("charset", "utf-8")]);
    (content_type, recorded::render(sample))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![exposition]
}
