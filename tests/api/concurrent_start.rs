//! Two instances starting at the same moment on one fresh database with `key_encryption_key`
//! set (a deployment's first roll-out, several replicas at once): each migrates, generates what
//! is missing and seals it (`src/auth/keys/sealing.rs`), and they must end up with one sealed key
//! set that both use — one signing key in the JWKS, one refresh-token key — so that a token or a
//! refresh token issued by either works at the other, and nothing is stored in clear.

use crate::generated_keys::{cells_at, KEK};
use crate::helpers::*;
use crate::on_both_backends;
use crate::test_db::TestDb;
use portcullis::auth::keys::kek::AtRest;
use portcullis::clock::Clock;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use serde_json::{json, Value};

async fn post(client: &Client, path: &str, body: Value) -> (Status, Value) {
    let response = client.post(path.to_owned()).header(ContentType::JSON).body(body.to_string()).dispatch().await;
    (response.status(), response.into_json().await.unwrap_or(Value::Null))
}

async fn get(client: &Client, path: &str, token: Option<&str>) -> (Status, Value) {
    let mut request = client.get(path.to_owned());
    if let Some(token) = token {
        request = request.header(Header::new("Authorization", format!("Bearer {token}")));
    }
    let response = request.dispatch().await;
    (response.status(), response.into_json().await.unwrap_or(Value::Null))
}

/// Logs `email` in at `client`: (access token, refresh token).
async fn login(client: &Client, email: &str) -> (String, String) {
    let (status, body) = post(client, "/auth/login", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(status, Status::Ok, "login {email}: {body}");
    (body["access_token"].as_str().unwrap().to_owned(), body["refresh_token"].as_str().unwrap().to_owned())
}

on_both_backends! {
    async fn two_instances_starting_at_once_on_a_fresh_database_agree_on_one_sealed_key_set(backend) {
        let db = TestDb::empty(backend).await;
        let clock = Clock::frozen();
        let start = || {
            let figment = test_figment(db.url()).merge(("auth.key_encryption_key", KEK));
            Client::tracked(portcullis::rocket(figment).manage(clock.clone()))
        };
        let (a, b) = futures::join!(start(), start());
        let (a, b) = (a.expect("the first instance starts"), b.expect("the second instance starts"));

        let keys = cells_at(backend, db.url(), "SELECT private_key AS value FROM signing_keys").await;
        assert_eq!(keys.lines().count(), 1, "one signing key, not one per instance");
        let refresh = cells_at(backend, db.url(), "SELECT value FROM settings WHERE name = 'refresh_mac_key'").await;
        assert_eq!(refresh.lines().count(), 1, "one refresh-token key");
        for value in keys.lines().chain(refresh.lines()) {
            assert!(AtRest::is_sealed(value), "stored sealed, never in clear: {value:.12}…");
        }
        let (jwks_a, jwks_b) = (get(&a, "/.well-known/jwks.json", None).await, get(&b, "/.well-known/jwks.json", None).await);
        assert_eq!(jwks_a.0, Status::Ok);
        assert_eq!(jwks_a, jwks_b, "both publish the same key set");
        // One access-token key; the ID-token keys (kids `id-…`) are counted by tests/api/id_token_keys.rs.
        let access_keys = jwks_a.1["keys"].as_array().unwrap().iter().filter(|k| !k["kid"].as_str().unwrap().starts_with("id-"));
        assert_eq!(access_keys.count(), 1);

        assert_eq!(post(&a, "/auth/register", json!({"email": "ann@example.com", "password": PASSWORD})).await.0, Status::Created);
        let (access, refresh) = login(&a, "ann@example.com").await;
        assert_eq!(get(&b, "/users/me", Some(&access)).await.0, Status::Ok, "a's token verifies at b");
        let (status, body) = post(&b, "/auth/refresh", json!({"refresh_token": refresh})).await;
        assert_eq!(status, Status::Ok, "a's refresh token is valid at b: {body}");
        let from_b = body["access_token"].as_str().unwrap();
        assert_eq!(get(&a, "/users/me", Some(from_b)).await.0, Status::Ok, "b's token verifies at a");
        let (_, refresh_b) = login(&b, "ann@example.com").await;
        assert_eq!(post(&a, "/auth/refresh", json!({"refresh_token": refresh_b})).await.0, Status::Ok);
    }
}
