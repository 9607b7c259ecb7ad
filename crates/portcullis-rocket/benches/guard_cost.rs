//! The guard's cost: the example's `GET /reports` (verification, change-feed checks, permission)
//! against a bare Rocket route that only verifies the Ed25519 JWT with `jsonwebtoken`, both
//! through the local client in one process (`cargo bench -p portcullis-rocket --bench guard_cost`). A measurement, not a check.

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "../examples/reports_api.rs"]
#[allow(dead_code)]
mod reports_api;

use std::time::Instant;

use common::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::request::{FromRequest, Outcome, Request};
use serde_json::Value;

/// A bearer token verified by `jsonwebtoken` alone (signature, `exp`, `iss`, `aud`).
struct Bare;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Bare {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let (key, validation) = req.rocket().state::<(DecodingKey, Validation)>().unwrap();
        let token = req.headers().get_one("Authorization").and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        match jsonwebtoken::decode::<Value>(token, key, validation) {
            Ok(_) => Outcome::Success(Bare),
            Err(_) => Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

#[rocket::get("/bare")]
fn bare(_token: Bare) -> &'static str {
    "{\"reports\":[]}"
}

async fn rate(app: &Client, path: &str, token: &str, n: u32) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        let request = app.get(path.to_owned()).header(Header::new("Authorization", format!("Bearer {token}")));
        assert_eq!(request.dispatch().await.status(), Status::Ok);
    }
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let world = World::new().await;
    let issuer = Issuer::start(&world.db(), 0).await;
    let admin = issuer.portcullis_token(ADMIN).await;
    issuer.role(&admin, "analyst", &["reports:read"]).await;
    issuer.user_with_roles(&admin, "ann@example.com", &["analyst"]).await;
    let token = issuer.token("ann@example.com").await;
    let jwks: Value =
        reqwest::get(format!("{}/.well-known/jwks.json", issuer.base)).await.unwrap().json().await.unwrap();
    let key = DecodingKey::from_ed_components(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[APP_AUDIENCE]);
    let metadata: Value = reqwest::get(format!("{}/.well-known/oauth-authorization-server", issuer.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    validation.set_issuer(&[metadata["issuer"].as_str().unwrap()]);
    let app =
        reports_api::app(world.app_figment(&issuer, 60)).manage((key, validation)).mount("/", rocket::routes![bare]);
    let app = Client::untracked(app).await.unwrap();
    let n = 5000;
    rate(&app, "/reports", &token, 500).await;
    rate(&app, "/bare", &token, 500).await;
    let (guarded, plain) = (rate(&app, "/reports", &token, n).await, rate(&app, "/bare", &token, n).await);
    eprintln!(
        "GET /reports {guarded:.0} req/s, bare jsonwebtoken route {plain:.0} req/s: {:.0} % (local client, sequential)",
        100.0 * guarded / plain
    );
    issuer.stop().await;
}
