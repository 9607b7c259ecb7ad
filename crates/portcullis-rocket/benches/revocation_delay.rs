//! The end-to-end revocation delay Portcullis → app: logout at Portcullis until the app refuses
//! the token, over 200 trials (`cargo bench -p portcullis-rocket --bench revocation_delay`). A measurement, not a
//! check.

#[path = "../tests/common/mod.rs"]
mod common;

#[path = "../examples/reports_api.rs"]
#[allow(dead_code)]
mod reports_api;

use std::time::{Duration, Instant};

use common::*;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let world = World::new().await;
    let issuer = Issuer::start(&world.db(), 0).await;
    let admin = issuer.portcullis_token(ADMIN).await;
    issuer.role(&admin, "analyst", &["reports:read"]).await;
    issuer.user_with_roles(&admin, "ann@example.com", &["analyst"]).await;
    let app = Client::untracked(reports_api::app(world.app_figment(&issuer, 60))).await.unwrap();
    let mut delays = vec![];
    for _ in 0..200 {
        let token = issuer.token("ann@example.com").await;
        let status = |token: &str| {
            let request = app.get("/reports").header(Header::new("Authorization", format!("Bearer {token}")));
            async move { request.dispatch().await.status() }
        };
        assert_eq!(status(&token).await, Status::Ok);
        issuer.revoke(&token).await;
        let ended = Instant::now();
        while status(&token).await != Status::Unauthorized {
            assert!(ended.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        delays.push(ended.elapsed());
    }
    delays.sort();
    let at = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];
    eprintln!(
        "revocation delay over {} logouts (SQLite, revocation_poll_ms {}): p50 {:?}, p99 {:?}, max {:?}",
        delays.len(),
        poll_ms(),
        at(0.5),
        at(0.99),
        delays.last().unwrap()
    );
    issuer.stop().await;
}
