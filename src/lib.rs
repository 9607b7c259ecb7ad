//! Portcullis: an authentication and authorization service on Rocket.
//!
//! [`rocket`] assembles the whole service from a figment, so `main.rs`, the CLI and the tests
//! build the same app. Data enters at a route (`routes`), passes a guard (`auth::guards`),
//! reaches one function in `auth`, which talks to storage (`models`, `db`).

pub mod access_log;
pub mod admin;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod models;
pub mod routes;

use rocket::figment::Figment;
use rocket::{Build, Rocket};
use rocket_db_pools::Database;

/// Rocket's default figment (`Rocket.toml`, `ROCKET_*`) with Portcullis's defaults beneath it:
/// an SQLite file `portcullis.db` in the working directory.
pub fn figment() -> Figment {
    Figment::from(rocket::Config::figment()).join(("databases.main.url", "portcullis.db"))
}

/// The whole service, ready to launch or to hand to a local test client.
pub fn rocket(figment: Figment) -> Rocket<Build> {
    let access_log = figment.extract_inner::<bool>("access_log").unwrap_or(false);
    let rocket = rocket::custom(figment);
    let rocket = if access_log { rocket.attach(access_log::AccessLog::new()) } else { rocket };
    rocket
        .attach(db::Db::init())
        .attach(db::migrations_fairing())
        .attach(auth::stage())
        .mount("/", routes::all())
        .register("/", error::catchers())
}
