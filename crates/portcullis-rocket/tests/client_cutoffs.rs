//! Client tokens cut off by time reach the resource server through the change feed: rotating a
//! client's secret revokes the access tokens issued under the old one, and a client revoking one
//! of its access tokens (RFC 7009) revokes it — at once at Portcullis, within a second at the app
//! (issue 21: the app kept accepting them until they expired).

mod common;

#[path = "../examples/reports_api.rs"]
#[allow(dead_code)]
mod reports_api;

#[path = "support/example.rs"]
#[allow(dead_code)]
mod example;

use std::time::Duration;

use common::*;
use example::*;
use reqwest::Method;
use rocket::http::Status;
use serde_json::{json, Value};

/// A client-credentials token for the app.
async fn client_token(issuer: &Issuer, id: &str, secret: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", issuer.base))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("resource", APP_AUDIENCE)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "client_credentials");
    response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_rotation_and_a_client_revoking_its_token_reach_the_app_within_a_second() {
    let world = World::new().await;
    let (issuer, app, admin, _, _) = setup(&world, 60).await;
    let body = json!({"name": "batch", "permissions": ["reports:read"]});
    let (status, created) = issuer.call(Method::POST, "/admin/clients", &admin, Some(body)).await;
    assert_eq!(status, 201);
    let id = created["client_id"].as_str().unwrap().to_owned();
    let old_secret = created["client_secret"].as_str().unwrap();
    let old = client_token(&issuer, &id, old_secret).await;
    assert_eq!(get(&app, "/reports", &old).await.0, Status::Ok);

    let (status, rotated) = issuer.call(Method::POST, &format!("/admin/clients/{id}/secret"), &admin, None).await;
    assert_eq!(status, 200, "rotate the secret");
    let secret = rotated["client_secret"].as_str().unwrap().to_owned();
    within(Duration::from_secs(1), "the rotation's cutoff", || async {
        get(&app, "/reports", &old).await.0 == Status::Unauthorized
    })
    .await;
    let (_, refused) = get(&app, "/reports", &old).await;
    assert_eq!(refused["error_description"], "This access token has been revoked.");
    let new = client_token(&issuer, &id, &secret).await;
    assert_eq!(get(&app, "/reports", &new).await.0, Status::Ok, "a token under the new secret is not cut off");

    let response = reqwest::Client::new()
        .post(format!("{}/oauth/revoke", issuer.base))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", new.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "RFC 7009 revocation by the client");
    within(Duration::from_secs(1), "the revocation's cutoff", || async {
        get(&app, "/reports", &new).await.0 == Status::Unauthorized
    })
    .await;
    let later = client_token(&issuer, &id, &secret).await;
    assert_eq!(get(&app, "/reports", &later).await.0, Status::Ok, "tokens issued after it still work");
    issuer.stop().await;
}
