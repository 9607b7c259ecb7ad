//! The example app when Portcullis goes away, hangs, restarts or refuses the app's secret, and
//! its answers to malformed input: what a resource server does when its issuer is not there.

mod common;

#[path = "../examples/reports_api.rs"]
#[allow(dead_code)]
mod reports_api;

#[path = "support/example.rs"]
#[allow(dead_code)]
mod example;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use example::*;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use serde_json::{json, Value};

/// The claims of `token` signed with a key Portcullis never published (kid `unseen`).
fn signed_with_unseen_key(token: &str) -> String {
    let claims = token.split('.').nth(1).unwrap();
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "unseen"}).to_string());
    let message = format!("{header}.{claims}");
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let signature = ed25519_dalek::Signer::sign(&key, message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// With the default long polls (a third of `max_staleness`: 20 s here), a restarted Portcullis
/// must not leave the app degraded until a poll ends: after a failure the app asks for an
/// immediate answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_portcullis_restarts_the_feed_is_up_again_at_once_not_after_a_long_poll() {
    let world = World::new().await;
    let (issuer, app, _, _, token) = setup(&world, 60).await;
    let port = issuer.port;
    issuer.stop().await;
    within(Duration::from_secs(5), "degraded", || async { ready(&app).await.1["status"] == "degraded" }).await;
    let issuer = Issuer::start(&world.db(), port).await;
    within(Duration::from_secs(3), "back to ok", || async { ready(&app).await.1["status"] == "ok" }).await;
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok);
    // Back online, an unknown key is fetched for, found missing, and the token refused.
    assert_eq!(get(&app, "/reports", &signed_with_unseen_key(&token)).await.0, Status::Unauthorized);
    issuer.stop().await;
}

/// A Portcullis that hangs (accepts, answers nothing) shows as `degraded` once the feed's long
/// poll is overdue, well before `max_staleness`: not `ok` until the request finally times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portcullis_that_hangs_shows_as_degraded_before_max_staleness() {
    let world = World::new().await;
    let issuer = Issuer::start(&world.db(), 0).await;
    let proxy = proxy::Proxy::start(issuer.port).await;
    // Long polls of 5 s (a third of 15): overdue 3 s later.
    let figment = world.app_figment(&issuer, 15).merge(("portcullis.url", proxy.base.clone()));
    let app = Client::untracked(reports_api::app(figment)).await.expect("the app ignites");
    let token = issuer.token(ADMIN).await;
    assert_eq!(ready(&app).await.1["status"], "ok");
    proxy.freeze();
    within(Duration::from_secs(12), "degraded while hung", || async {
        let (status, body) = ready(&app).await;
        status == Status::Ok && body["status"] == "degraded" && body["feed_connected"] == false
    })
    .await;
    assert_eq!(get(&app, "/whoami", &token).await.0, Status::Ok, "serving from what it knows");
    issuer.stop().await;
}

/// A wrong client secret is not retried for the whole `connect_timeout`: retries would get the
/// client throttled, and its correctly configured replicas locked out with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_with_a_wrong_secret_fails_at_once_and_does_not_lock_out_its_client() {
    let world = World::new().await;
    let issuer = Issuer::start(&world.db(), 0).await;
    let figment = world.app_figment(&issuer, 60).merge(("portcullis.connect_timeout", 5));
    let wrong = figment.clone().merge(("portcullis.client_secret", "wrong"));
    match Client::untracked(reports_api::app(wrong)).await {
        // Reading the kind marks Rocket's error handled (it panics on drop otherwise).
        Err(e) => assert!(matches!(e.kind(), rocket::error::ErrorKind::FailedFairings(_))),
        Ok(_) => panic!("a refused secret must stop the app"),
    }
    for _ in 0..3 {
        let replica = Client::untracked(reports_api::app(figment.clone())).await;
        assert!(replica.is_ok(), "a correctly configured replica still starts");
    }
    issuer.stop().await;
}

/// The example's own answers: a malformed body is 400 in the contract's shape, and what a token
/// reads is not cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_report_is_400_and_answers_to_a_token_are_not_cached() {
    let world = World::new().await;
    let (issuer, app, admin, _, token) = setup(&world, 60).await;
    issuer.role(&admin, "editor", &["reports:read", "reports:write"]).await;
    issuer.user_with_roles(&admin, "ed@example.com", &["editor"]).await;
    let editor = issuer.token("ed@example.com").await;
    let bearer = Header::new("Authorization", format!("Bearer {editor}"));
    let response = app.post("/reports").header(bearer.clone()).header(ContentType::JSON).body("{oops").dispatch().await;
    assert_eq!(response.status(), Status::BadRequest);
    assert_eq!(response.into_json::<Value>().await.unwrap()["error"], "invalid_request");
    let response = app.post("/reports").header(bearer).dispatch().await;
    assert_eq!(response.status(), Status::Created, "no body: an untitled report");
    let response = app.get("/whoami").header(Header::new("Authorization", format!("Bearer {token}"))).dispatch().await;
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
    issuer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_feed_goes_away_the_app_serves_then_refuses_and_recovers_when_it_comes_back() {
    let world = World::new().await;
    let (issuer, app, _, _, token) = setup(&world, 2).await;
    let port = issuer.port;
    assert_eq!(ready(&app).await.1["status"], "ok");
    issuer.stop().await;

    within(Duration::from_secs(5), "degraded", || async { ready(&app).await.1["status"] == "degraded" }).await;
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok, "serving from what it knows");
    // A token signed with a key the app has not seen cannot be judged while the JWKS is out of
    // reach: 503, not "invalid".
    let unseen = signed_with_unseen_key(&token);
    let (status, body) = get(&app, "/reports", &unseen).await;
    assert_eq!((status, body["error"].as_str()), (Status::ServiceUnavailable, Some("unavailable")));
    within(Duration::from_secs(5), "unavailable", || async { ready(&app).await.0 == Status::ServiceUnavailable }).await;
    let (_, readiness) = ready(&app).await;
    assert_eq!((readiness["error"].as_str(), readiness["status"].as_str()), (Some("unavailable"), Some("unavailable")));
    assert!(readiness["error_description"].is_string(), "the contract's error shape: {readiness}");
    let (status, body) = get(&app, "/reports", &token).await;
    assert_eq!((status, body["error"].as_str()), (Status::ServiceUnavailable, Some("unavailable")));
    // A forged token is still 401: its signature is checked before the feed's age.
    assert_eq!(get(&app, "/reports", "not.a.token").await.0, Status::Unauthorized);

    let issuer = Issuer::start(&world.db(), port).await;
    within(Duration::from_secs(5), "back", || async { ready(&app).await.1["status"] == "ok" }).await;
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok);
    issuer.revoke(&token).await;
    within(Duration::from_secs(1), "logout after the feed came back", || async {
        get(&app, "/reports", &token).await.0 == Status::Unauthorized
    })
    .await;
    issuer.stop().await;
}
