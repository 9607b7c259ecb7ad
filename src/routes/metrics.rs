//! `GET /metrics`: the Prometheus text exposition, for a bearer token with `metrics:read`.

use rocket::http::ContentType;
use rocket::{get, State};

use super::responses::{Forbidden, Unauthorized};
use crate::auth::guards::Authorized;
use crate::auth::permissions::MetricsRead;
use crate::auth::session::login::LoginOutcome;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiResult, ErrorCode};
use crate::ops::metrics as recorded;

/// The Prometheus text exposition (format 0.0.4) of the service's metrics. Needs `metrics:read`.
#[utoipa::path(tag = "operations", security(("bearer" = []), ("oauth2" = []), ("client_credentials" = [])),
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

/// Counts a login attempt (a password, or the second step's code) by its outcome and hands the
/// result back.
pub fn counted_login(result: ApiResult<LoginOutcome>) -> ApiResult<LoginOutcome> {
    recorded::login(match &result {
        Ok(LoginOutcome::Session(_)) => "succeeded",
        Ok(LoginOutcome::SecondFactor { .. }) => "mfa_required",
        Err(e) => match e.code {
            ErrorCode::TooManyRequests => "throttled",
            _ if e.status.code < 500 => "failed",
            _ => "error",
        },
    });
    result
}

/// Counts a passkey sign-in at `step` (`passwordless` or `second_factor`) by its outcome and
/// hands the result back (it is a login too: [`counted_login`] counts it as well).
pub fn counted_passkey<T>(step: &'static str, result: ApiResult<T>) -> ApiResult<T> {
    recorded::passkey_sign_in(
        step,
        match &result {
            Ok(_) => "succeeded",
            Err(e) if e.code == ErrorCode::TooManyRequests => "throttled",
            Err(e) if e.status.code < 500 => "failed",
            Err(_) => "error",
        },
    );
    result
}

/// Counts a refresh-token exchange by its outcome and hands the result back.
pub fn counted_refresh<T>(result: ApiResult<T>) -> ApiResult<T> {
    recorded::refresh(match &result {
        Ok(_) => "succeeded",
        Err(e) if e.status.code < 500 => "failed",
        Err(_) => "error",
    });
    result
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![exposition]
}
