//! Portcullis: an authentication and authorization service on Rocket.
//!
//! [`rocket`](fn@rocket) assembles the whole service from a figment, so `main.rs`, the CLI and the tests
//! build the same app. Data enters at a route (`routes`), passes a guard (`auth::guards`),
//! reaches one function in `auth`, which talks to storage (`models`, `db`).

pub mod access_log;
pub mod admin;
pub mod at_rest;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod mail;
pub mod models;
pub mod ops;
pub mod page;
pub mod pages;
pub mod routes;

use rocket::figment::Figment;
use rocket::{Build, Rocket};
use rocket_db_pools::Database;

/// Rocket's figment (`Rocket.toml`, `ROCKET_*`) over Portcullis's defaults, which stand in for
/// Rocket's own where they differ (see [`defaults`]).
pub fn figment() -> Figment {
    use rocket::figment::providers::{Env, Format, Toml};
    use rocket::figment::Profile;
    Figment::from(defaults())
        .merge(Toml::file(Env::var_or("ROCKET_CONFIG", "Rocket.toml")).nested())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .select(Profile::from_env_or("ROCKET_PROFILE", rocket::Config::DEFAULT_PROFILE))
}

/// Rocket's defaults with Portcullis's beneath any configuration file: an SQLite file
/// `portcullis.db` in the working directory, the client address taken from the TCP peer, and
/// JSON and form bodies limited to 64 KiB. Rocket's own default `ip_header` is `X-Real-IP`, which
/// lets any client choose the address recorded in audit rows and used by per-address throttling;
/// it is applied only when the operator names a proxy header, with or without a `Rocket.toml` on
/// disk. Rocket's own body limits (1 MiB of JSON) are far beyond any request of the contract.
pub fn defaults() -> Figment {
    Figment::from(rocket::Config::default())
        .merge(("ip_header", false))
        .merge(("databases.main.url", "portcullis.db"))
        .merge(("limits.json", "64 KiB"))
        .merge(("limits.form", "64 KiB"))
}

/// The whole service, ready to launch or to hand to a local test client.
pub fn rocket(figment: Figment) -> Rocket<Build> {
    ops::metrics::get();
    let access_log = figment.extract_inner::<bool>("access_log").unwrap_or(false);
    let log_format = ops::json_log::LogFormat::from_figment(&figment);
    if log_format == Ok(ops::json_log::LogFormat::Json) {
        // Before `rocket::custom`, which installs Rocket's own logger unless one is set.
        ops::json_log::install();
    }
    let rocket = rocket::custom(figment);
    let rocket = match log_format {
        Ok(format) if access_log => rocket.attach(access_log::AccessLog::with_format(format)),
        Ok(_) => rocket,
        Err(e) => rocket.attach(rocket::fairing::AdHoc::try_on_ignite("log_format", |rocket| async move {
            rocket::error!("{e}");
            Err(rocket)
        })),
    };
    rocket
        .attach(db::Db::init())
        .attach(db::migrations_fairing())
        .attach(auth::stage())
        .attach(routes::NoStoreForBearer)
        .attach(routes::cors::Cors)
        .attach(ops::http::Operations)
        .attach(routes::discovery::under_issuer_path())
        .mount("/", routes::all())
        .mount("/", pages::routes())
        .register("/", error::catchers())
}
