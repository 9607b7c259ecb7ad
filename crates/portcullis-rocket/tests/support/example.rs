//! What the example app's tests share: the app under test trusting a real Portcullis, requests
//! with a bearer token, and the usual cast (an admin and an analyst with `reports:read`).

use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use serde_json::Value;

use crate::common::*;
use crate::reports_api;

/// The app under test, trusting `issuer`.
pub async fn app(world: &World, issuer: &Issuer, max_staleness: u64) -> Client {
    Client::untracked(reports_api::app(world.app_figment(issuer, max_staleness))).await.expect("the app ignites")
}

pub async fn get(app: &Client, path: &str, token: &str) -> (Status, Value) {
    let response =
        app.get(path.to_owned()).header(Header::new("Authorization", format!("Bearer {token}"))).dispatch().await;
    (response.status(), response.into_json().await.unwrap_or(Value::Null))
}

/// The issuer, the app, the admin's token and an analyst (`reports:read`) with their token.
pub async fn setup(world: &World, max_staleness: u64) -> (Issuer, Client, String, String, String) {
    let issuer = Issuer::start(&world.db(), 0).await;
    let admin = issuer.portcullis_token(ADMIN).await;
    issuer.role(&admin, "analyst", &["reports:read"]).await;
    let id = issuer.user_with_roles(&admin, "ann@example.com", &["analyst"]).await;
    let token = issuer.token("ann@example.com").await;
    let app = app(world, &issuer, max_staleness).await;
    (issuer, app, admin, id, token)
}

pub async fn ready(app: &Client) -> (Status, Value) {
    let response = app.get("/ready").dispatch().await;
    (response.status(), response.into_json::<Value>().await.unwrap())
}
