//! The example app has its own audience (`https://reports.example`, listed in Portcullis's
//! `auth.resources`): the tokens it receives are for it alone, so it cannot replay them against
//! Portcullis (issue 21: an admin's token sent to the app was accepted by Portcullis's `/admin`),
//! and a token for Portcullis is refused by the app.

mod common;

#[path = "../examples/reports_api.rs"]
#[allow(dead_code)]
mod reports_api;

use common::*;
use reqwest::Method;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use serde_json::{json, Value};

async fn whoami(app: &Client, token: &str) -> (Status, Value) {
    let response = app.get("/whoami").header(Header::new("Authorization", format!("Bearer {token}"))).dispatch().await;
    (response.status(), response.into_json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_the_app_is_refused_by_portcullis_and_a_token_for_portcullis_by_the_app() {
    assert_eq!(reports_api::AUDIENCE, APP_AUDIENCE, "the tests configure the example's own audience");
    let world = World::new().await;
    let issuer = Issuer::start(&world.db(), 0).await;
    let app = Client::untracked(reports_api::app(world.app_figment(&issuer, 60))).await.expect("the app ignites");

    let for_app = issuer.token(ADMIN).await;
    assert_eq!(whoami(&app, &for_app).await.0, Status::Ok);
    let client = json!({"name": "replayed", "permissions": []});
    let (status, body) = issuer.call(Method::POST, "/admin/clients", &for_app, Some(client.clone())).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "the replay is refused");

    let for_portcullis = issuer.portcullis_token(ADMIN).await;
    let (status, body) = whoami(&app, &for_portcullis).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (Status::Unauthorized, Some("The access token has the wrong audience."))
    );
    assert_eq!(issuer.call(Method::POST, "/admin/clients", &for_portcullis, Some(client)).await.0, 201);
    issuer.stop().await;
}
