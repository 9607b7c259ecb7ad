//! A key that left Portcullis's JWKS stops verifying in the app too (Portcullis's docs/services.md, "Keys
//! at rest"): the app refetches the JWKS every `jwks_refresh_interval`, drops the keys that left
//! it, and, the key set having changed, verifies every cached token again.
//!
//! It guards both halves of that fix (commit d2b011e): with the periodic refetch taken out
//! (`Trust::refresh_keys_periodically` never fetching) or with the cache kept across a key-set
//! change (`Trust::set_keys` not emptying it), the app still answers 200 five seconds after
//! Portcullis refused the token, and the test fails ("the app drops the key: not within 5s").

mod common;

#[path = "../examples/reports_api.rs"]
#[allow(dead_code)]
mod reports_api;

use std::time::Duration;

use common::*;
use rocket::http::Header;
use rocket::local::asynchronous::Client;
use serde_json::Value;

/// `GET /whoami` at the app: status, challenge, body — as `Issuer::get_raw` answers for Portcullis.
async fn whoami(app: &Client, token: &str) -> (u16, Option<String>, Value) {
    let response = app.get("/whoami").header(Header::new("Authorization", format!("Bearer {token}"))).dispatch().await;
    let challenge = response.headers().get_one("WWW-Authenticate").map(str::to_owned);
    (response.status().code, challenge, response.into_json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_whose_key_left_the_jwks_is_refused_by_the_app_as_by_portcullis() {
    let world = World::new().await;
    let issuer = Issuer::start(&world.db(), 0).await;
    let old = issuer.token(ADMIN).await;
    let figment = world.app_figment(&issuer, 60).merge(("portcullis.jwks_refresh_interval", 1));
    let app = Client::untracked(reports_api::app(figment)).await.expect("the app ignites");
    assert_eq!(whoami(&app, &old).await.0, 200, "verified, and kept in the app's cache");

    // A rotation long past: the retired key's last token has expired by Portcullis's reckoning
    // (`retired_key_until`), so at its next reload Portcullis drops the key from its keys and
    // its JWKS, while the token `old` still has most of its lifetime before it.
    let long_ago = portcullis::clock::Clock::new().now() - 86_400;
    portcullis::auth::keys::signing::rotate(&issuer.pool, &issuer.at_rest, long_ago).await.unwrap();
    let bearer_old = format!("Bearer {old}");
    within(Duration::from_secs(3), "Portcullis drops the retired key", || async {
        issuer.get_raw("/users/me", Some(&bearer_old)).await.0 == 401
    })
    .await;

    let took =
        within(Duration::from_secs(5), "the app drops the key", || async { whoami(&app, &old).await.0 == 401 }).await;
    eprintln!("the app refused the token {took:?} after Portcullis did (refresh interval 1 s)");
    let from_portcullis = issuer.get_raw("/users/me", Some(&bearer_old)).await;
    assert_eq!(whoami(&app, &old).await, from_portcullis, "the same refusal, challenge and body");
    assert_eq!(from_portcullis.2["error_description"], "The access token was signed with an unknown key.");

    let fresh = issuer.token(ADMIN).await;
    assert_eq!(whoami(&app, &fresh).await.0, 200, "a token of the new key passes");
    issuer.stop().await;
}
