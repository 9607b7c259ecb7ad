//! An example resource server behind Portcullis.
//!
//! ```sh
//! PORTCULLIS_URL=http://127.0.0.1:8000 PORTCULLIS_CLIENT_ID=… PORTCULLIS_CLIENT_SECRET=… \
//!     ROCKET_PORT=8001 cargo run --release -p portcullis-rocket --example reports_api
//! ```
//!
//! `GET /whoami` (any user token), `GET /reports` (`reports:read`), `POST /reports`
//! (`reports:write`), `GET /ready` (the change feed's state). Portcullis needs
//! `auth.permissions = ["reports:read", "reports:write"]`, `auth.resources = ["https://reports.example"]`
//! and a service client for this app. The app accepts only tokens for its own audience,
//! [`AUDIENCE`]: clients request them with `resource=https://reports.example` (RFC 8707), and
//! Portcullis refuses them, so the app cannot replay a token it receives.

use std::sync::Mutex;

use portcullis_rocket::{permission, readiness_routes, AuthError, Authorized, Portcullis, User};
use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::serde::json::{self, json, Json, Value};
use rocket::{get, post, routes, Build, Rocket, State};

/// This app's resource identifier: the `aud` of the tokens it accepts (`PORTCULLIS_AUDIENCE`
/// overrides it).
pub const AUDIENCE: &str = "https://reports.example";

permission!(ReportsRead = "reports:read");
permission!(ReportsWrite = "reports:write");

/// The reports, in memory.
#[derive(Default)]
struct Reports(Mutex<Vec<Value>>);

#[get("/whoami")]
fn whoami(user: User) -> Json<Value> {
    Json(
        json!({"sub": user.user_id, "sid": user.session_id, "roles": user.roles, "scope": user.scope, "amr": user.amr}),
    )
}

#[get("/reports")]
fn list(_caller: Authorized<ReportsRead>, reports: &State<Reports>) -> Json<Value> {
    let reports = reports.0.lock().map(|r| r.clone()).unwrap_or_default();
    Json(json!({ "reports": reports }))
}

/// Creates a report from `{"title"}` (an empty body makes an untitled one); malformed JSON is
/// 400 and a body over Rocket's JSON limit 413, in the contract's error shape.
#[post("/reports", data = "<body>")]
fn create(
    caller: Authorized<ReportsWrite>,
    reports: &State<Reports>,
    body: Result<Json<Value>, json::Error<'_>>,
) -> Result<(Status, Json<Value>), AuthError> {
    let body = match body {
        Ok(body) => Some(body),
        Err(json::Error::Parse(raw, _)) if raw.trim().is_empty() => None,
        Err(json::Error::Parse(_, e)) => {
            return Err(AuthError::new(Status::BadRequest, "invalid_request", format!("The body is not JSON: {e}")))
        }
        Err(json::Error::Io(_)) => {
            return Err(AuthError::new(Status::PayloadTooLarge, "payload_too_large", "The body is too large."))
        }
    };
    let title = body.as_ref().and_then(|b| b["title"].as_str()).unwrap_or("untitled").to_owned();
    let mut reports = reports.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let report = json!({"id": reports.len() + 1, "title": title, "author": caller.id()});
    reports.push(report.clone());
    Ok((Status::Created, Json(report)))
}

/// Rocket's configuration with `[default.portcullis]` taken from `PORTCULLIS_URL`,
/// `PORTCULLIS_CLIENT_ID`, `PORTCULLIS_CLIENT_SECRET` and `PORTCULLIS_AUDIENCE` when they are set,
/// and [`AUDIENCE`] unless an audience is configured.
pub fn figment() -> Figment {
    let mut figment = rocket::Config::figment().join(("portcullis.audience", AUDIENCE));
    for (key, var) in [
        ("url", "PORTCULLIS_URL"),
        ("client_id", "PORTCULLIS_CLIENT_ID"),
        ("client_secret", "PORTCULLIS_CLIENT_SECRET"),
        ("audience", "PORTCULLIS_AUDIENCE"),
    ] {
        if let Ok(value) = std::env::var(var) {
            figment = figment.merge((format!("portcullis.{key}"), value));
        }
    }
    figment
}

/// The app, for `main` and for tests.
pub fn app(figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(Portcullis::fairing())
        // Answers to a bearer token carry the caller's data: no cache may keep them.
        .attach(AdHoc::on_response("Cache-Control: no-store", |req, res| {
            Box::pin(async move {
                if req.headers().contains("Authorization") {
                    res.set_raw_header("Cache-Control", "no-store");
                }
            })
        }))
        .manage(Reports::default())
        .mount("/", routes![whoami, list, create])
        .mount("/", readiness_routes())
}

#[rocket::main]
#[allow(dead_code)]
async fn main() -> Result<(), Box<rocket::Error>> {
    app(figment()).launch().await.map_err(Box::new)?;
    Ok(())
}
