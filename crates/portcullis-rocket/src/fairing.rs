//! The fairing: reads `[default.portcullis]`, connects at ignite (metadata, JWKS, the feed's
//! snapshot, retried for `connect_timeout` seconds; the app does not start without them), follows the feed from liftoff to shutdown,
//! and registers the JSON catchers.

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::{Build, Orbit, Rocket};

use crate::settings::Settings;
use crate::trust::{ConnectError, Trust};

/// Attach it: `rocket::build().attach(portcullis_rocket::Portcullis::fairing())`.
///
/// A singleton fairing (Rocket's `Kind::Singleton`): of several attached, the last one runs. So
/// a test can attach the test kit's (`testing::Issuer::fairing`, with the `testing` feature) to
/// an app whose builder already attached this one, and the app then trusts the test issuer.
#[derive(Debug, Default)]
pub struct Portcullis {
    cursor: std::sync::Mutex<Option<i64>>,
    /// A trust fed in process (the test kit's): managed as is, with no connection or feed.
    preset: Option<Trust>,
}

impl Portcullis {
    /// The fairing that connects to the Portcullis of `[default.portcullis]`.
    pub fn fairing() -> Portcullis {
        Portcullis::default()
    }

    /// The fairing of an in-process issuer: it manages `trust` instead of connecting.
    #[cfg(feature = "testing")]
    pub(crate) fn preset(trust: Trust) -> Portcullis {
        Portcullis { cursor: Default::default(), preset: Some(trust) }
    }
}

#[rocket::async_trait]
impl Fairing for Portcullis {
    fn info(&self) -> Info {
        Info { name: "Portcullis", kind: Kind::Ignite | Kind::Liftoff | Kind::Singleton }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        if let Some(trust) = &self.preset {
            return Ok(rocket.manage(trust.clone()).register("/", crate::error::catchers()));
        }
        let settings: Settings = match rocket.figment().extract_inner("portcullis") {
            Ok(settings) => settings,
            Err(e) => {
                rocket::error!("portcullis: configuration [default.portcullis]: {e}");
                return Err(rocket);
            }
        };
        // Portcullis may be starting at the same time: retry for `connect_timeout` seconds.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(settings.connect_timeout);
        // A refused secret is not retried: that would only get the client throttled.
        let connected = loop {
            match Trust::connect(settings.clone()).await {
                Err(e @ ConnectError::Unreachable(_)) if std::time::Instant::now() < deadline => {
                    rocket::warn!("{e}; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                outcome => break outcome,
            }
        };
        match connected {
            Ok((trust, cursor)) => {
                if let Ok(mut slot) = self.cursor.lock() {
                    *slot = Some(cursor);
                }
                Ok(rocket.manage(trust).register("/", crate::error::catchers()))
            }
            Err(e) => {
                rocket::error!("{e}");
                Err(rocket)
            }
        }
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let (Some(trust), Some(cursor)) = (rocket.state::<Trust>(), self.cursor.lock().ok().and_then(|c| *c)) else {
            return;
        };
        tokio::spawn(trust.clone().follow(cursor, rocket.shutdown()));
    }
}

/// `GET /ready`: 200 `{"status":"ok"|"degraded",...}` while tokens are trusted (degraded: the
/// feed is down and the guards serve from what they know), 503 once the feed has been silent
/// longer than `max_staleness`: `{"error":"unavailable","error_description",...}` (the contract's
/// error shape) with the same fields. Mount it with
/// `.mount("/", portcullis_rocket::readiness_routes())`.
#[rocket::get("/ready")]
fn ready(
    trust: &rocket::State<Trust>,
) -> (rocket::http::Status, rocket::serde::json::Json<rocket::serde::json::Value>) {
    let readiness = trust.readiness();
    let mut body = rocket::serde::json::json!(readiness);
    if readiness.status != "unavailable" {
        return (rocket::http::Status::Ok, rocket::serde::json::Json(body));
    }
    body["error"] = "unavailable".into();
    body["error_description"] =
        "The change feed has not answered for longer than max_staleness; tokens are refused until it does.".into();
    (rocket::http::Status::ServiceUnavailable, rocket::serde::json::Json(body))
}

/// The readiness route (`GET /ready`).
pub fn readiness_routes() -> Vec<rocket::Route> {
    rocket::routes![ready]
}
