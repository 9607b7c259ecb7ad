//! The example app (`examples/reports_api.rs`) through Rocket's local client, with a real
//! Portcullis started in process as the issuer: what a Rocket developer would copy to test their
//! own resource server.

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
use reqwest::Method;
use rocket::http::{Header, Status};
use serde_json::{json, Value};

fn kid_of(token: &str) -> String {
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_token_is_401_without_and_403_without_the_permission_and_200_with_it() {
    let world = World::new().await;
    let (issuer, app, admin, id, token) = setup(&world, 60).await;

    let (status, whoami) = get(&app, "/whoami", &token).await;
    assert_eq!(status, Status::Ok);
    assert_eq!((whoami["sub"].as_str(), &whoami["roles"]), (Some(id.as_str()), &json!(["analyst"])));
    assert!(whoami["sid"].is_string());
    assert_eq!(whoami["amr"], json!(["pwd"]), "amr reaches handlers");
    assert_eq!(get(&app, "/reports", &token).await, (Status::Ok, json!({"reports": []})));

    let post = |token: String| {
        let app = &app;
        async move {
            let request = app.post("/reports").header(Header::new("Authorization", format!("Bearer {token}")));
            let response = request.json(&json!({"title": "Q3"})).dispatch().await;
            (response.status(), response.into_json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = post(token.clone()).await;
    assert_eq!((status, body["error"].as_str()), (Status::Forbidden, Some("insufficient_permissions")));
    issuer.role(&admin, "editor", &["reports:read", "reports:write"]).await;
    issuer.user_with_roles(&admin, "ed@example.com", &["editor"]).await;
    // A new role reaches the app through the feed, like a removed one.
    let editor = issuer.token("ed@example.com").await;
    within(Duration::from_secs(1), "the new role", || async { post(editor.clone()).await.0 == Status::Created }).await;
    let (_, body) = get(&app, "/reports", &token).await;
    assert_eq!(body["reports"][0]["title"], "Q3");

    let response = app.get("/reports").dispatch().await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(response.headers().get_one("WWW-Authenticate"), Some("Bearer"));
    let body: Value = response.into_json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert!(body["error_description"].is_string());
    let response = app.get("/whoami").header(Header::new("Authorization", "Bearer nonsense")).dispatch().await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert!(response.headers().get_one("WWW-Authenticate").unwrap().starts_with("Bearer error=\"invalid_token\""));
    issuer.stop().await;
}

/// A down-scoped token: the app grants what its `scope` names of what the user's roles hold as
/// Portcullis's change feed has them now, and refuses it once the user lost a role it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_scoped_token_grants_what_its_scope_names_of_the_users_roles_of_now() {
    let world = World::new().await;
    let (issuer, app, admin, _, _) = setup(&world, 60).await;
    issuer.role(&admin, "editor", &["reports:read", "reports:write"]).await;
    let id = issuer.user_with_roles(&admin, "ed@example.com", &["user", "editor"]).await;
    let login = issuer.login_scoped("ed@example.com", "reports:read openid").await;
    assert_eq!(login["scope"], "reports:read openid");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (status, whoami) = get(&app, "/whoami", &token).await;
    assert_eq!((status, &whoami["scope"]), (Status::Ok, &json!(["reports:read", "openid"])));
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok);
    let bearer = Header::new("Authorization", format!("Bearer {token}"));
    let response = app.post("/reports").header(bearer).json(&json!({"title": "Q3"})).dispatch().await;
    assert_eq!(response.status(), Status::Forbidden, "reports:write is held but not in scope");

    issuer.role(&admin, "editor", &["reports:write"]).await;
    within(Duration::from_secs(2), "the permission's removal", || async {
        get(&app, "/reports", &token).await.0 == Status::Forbidden
    })
    .await;
    issuer.role(&admin, "editor", &["reports:read", "reports:write"]).await;
    within(Duration::from_secs(2), "its return", || async { get(&app, "/reports", &token).await.0 == Status::Ok })
        .await;

    let roles = json!({"roles": ["user"]});
    let (status, _) = issuer.call(Method::PUT, &format!("/admin/users/{id}/roles"), &admin, Some(roles)).await;
    assert_eq!(status, 200);
    within(Duration::from_secs(2), "the role's removal", || async {
        get(&app, "/reports", &token).await.0 == Status::Unauthorized
    })
    .await;
    let refreshed = issuer.refresh_for(login["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(refreshed["scope"], "reports:read openid", "the scope keeps naming what was lost");
    let (status, body) = get(&app, "/reports", refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (Status::Forbidden, Some("insufficient_permissions")));
    issuer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_forged_and_foreign_tokens_are_refused() {
    let world = World::new().await;
    let (issuer, app, _, _, token) = setup(&world, 60).await;
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let mut expired: portcullis::auth::keys::tokens::AccessClaims = serde_json::from_value(claims.clone()).unwrap();
    expired.iat -= 3600;
    expired.exp = expired.iat + 900;
    let expired = issuer.keys.sign(&expired).unwrap();
    let (status, body) = get(&app, "/reports", &expired).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (Status::Unauthorized, Some("The access token has expired."))
    );

    // Same header and claims, signed by a key that is not Portcullis's.
    let (message, _) = token.rsplit_once('.').unwrap();
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let signature = ed25519_dalek::Signer::sign(&stranger, message.as_bytes());
    let forged = format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    let (status, body) = get(&app, "/reports", &forged).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (Status::Unauthorized, Some("The access token signature is invalid."))
    );

    let mut foreign: portcullis::auth::keys::tokens::AccessClaims = serde_json::from_value(claims).unwrap();
    foreign.aud = "another-api".into();
    let (status, _) = get(&app, "/reports", &issuer.keys.sign(&foreign).unwrap()).await;
    assert_eq!(status, Status::Unauthorized);
    issuer.stop().await;
}

/// Portcullis's own `GET /users/me` and the app's `GET /whoami` take the same guard type (`User`,
/// fed by two sources): whatever a client sends, both refuse it with the same status, body and
/// challenge. Each is sent the credential meant for it (a token for its own audience).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portcullis_and_the_app_refuse_a_bad_credential_with_the_same_status_body_and_challenge() {
    let world = World::new().await;
    let (issuer, app, _, _, _) = setup(&world, 60).await;
    // One session, two tokens: Portcullis's own, and the app's from a refresh that names it.
    let login = issuer.login_for("ann@example.com", None).await;
    let own = login["access_token"].as_str().unwrap().to_owned();
    let for_app = issuer.refresh_for(login["refresh_token"].as_str().unwrap(), Some(APP_AUDIENCE)).await
        ["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let forge = |token: &str| {
        let (message, _) = token.rsplit_once('.').unwrap();
        let stranger = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let signature = ed25519_dalek::Signer::sign(&stranger, message.as_bytes());
        format!("Bearer {message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    };
    let forged = (forge(&own), forge(&for_app));
    assert_eq!(get(&app, "/whoami", &for_app).await.0, Status::Ok);
    assert_eq!(issuer.call(Method::POST, "/auth/logout", &own, Some(json!({}))).await.0, 204);
    within(Duration::from_secs(1), "logout", || async { get(&app, "/whoami", &for_app).await.0 != Status::Ok }).await;
    let ended = (format!("Bearer {own}"), format!("Bearer {for_app}"));

    let same = |value: &'static str| (Some(value), Some(value));
    let cases = [
        (None, None),
        same("Basic YTpi"),
        same("Bearer "),
        same("Bearer not.a.jwt"),
        (Some(&*forged.0), Some(&*forged.1)),
        (Some(&*ended.0), Some(&*ended.1)),
    ];
    for (to_portcullis, authorization) in cases {
        let from_portcullis = issuer.get_raw("/users/me", to_portcullis).await;
        let mut request = app.get("/whoami");
        if let Some(value) = authorization {
            request = request.header(Header::new("Authorization", value.to_owned()));
        }
        let response = request.dispatch().await;
        let challenge = response.headers().get_one("WWW-Authenticate").map(str::to_owned);
        let from_app = (response.status().code, challenge, response.into_json::<Value>().await.unwrap());
        assert_eq!(from_app, from_portcullis, "{authorization:?}");
        assert_eq!(from_app.0, 401, "{authorization:?}");
    }
    issuer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_reaches_the_app_within_a_second() {
    let world = World::new().await;
    let (issuer, app, _, _, token) = setup(&world, 60).await;
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok);
    // The app's token is refused by Portcullis's `POST /auth/logout`: its client ends the
    // session with RFC 7009 revocation instead.
    issuer.revoke(&token).await;
    let took = within(Duration::from_secs(1), "logout", || async {
        get(&app, "/reports", &token).await.0 == Status::Unauthorized
    })
    .await;
    eprintln!("logout reached the app in {took:?}");
    let (_, body) = get(&app, "/whoami", &token).await;
    assert_eq!(body["error_description"], "The session of this access token has ended.");
    issuer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_permission_or_a_role_reaches_the_app_within_a_second() {
    let world = World::new().await;
    let (issuer, app, admin, id, token) = setup(&world, 60).await;
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok);
    issuer.role(&admin, "analyst", &[]).await;
    within(Duration::from_secs(1), "permission removal", || async {
        get(&app, "/reports", &token).await.0 == Status::Forbidden
    })
    .await;
    assert_eq!(get(&app, "/whoami", &token).await.0, Status::Ok, "the token itself is still valid");

    let (status, _) =
        issuer.call(Method::PUT, &format!("/admin/users/{id}/roles"), &admin, Some(json!({"roles": ["user"]}))).await;
    assert_eq!(status, 200);
    within(Duration::from_secs(1), "role removal", || async {
        get(&app, "/whoami", &token).await.0 == Status::Unauthorized
    })
    .await;
    let fresh = issuer.token("ann@example.com").await;
    assert_eq!(get(&app, "/whoami", &fresh).await.0, Status::Ok, "a refreshed token names the current roles");
    issuer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_client_is_refused_within_a_second_and_a_client_token_is_not_a_user() {
    let world = World::new().await;
    let (issuer, app, admin, _, _) = setup(&world, 60).await;
    let (status, created) = issuer
        .call(Method::POST, "/admin/clients", &admin, Some(json!({"name": "batch", "permissions": ["reports:read"]})))
        .await;
    assert_eq!(status, 201);
    let (id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", issuer.base))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("resource", APP_AUDIENCE)])
        .send()
        .await
        .unwrap();
    let token = response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok);
    assert_eq!(get(&app, "/whoami", &token).await.0, Status::Forbidden);
    assert_eq!(issuer.call(Method::DELETE, &format!("/admin/clients/{id}"), &admin, None).await.0, 204);
    within(Duration::from_secs(1), "client deletion", || async {
        get(&app, "/reports", &token).await.0 == Status::Unauthorized
    })
    .await;
    issuer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_key_rotation_new_tokens_and_old_ones_are_accepted() {
    let world = World::new().await;
    let (issuer, app, _, _, old) = setup(&world, 60).await;
    let new_kid =
        portcullis::auth::keys::signing::rotate(&issuer.pool, &issuer.at_rest, portcullis::clock::Clock::new().now())
            .await
            .unwrap();
    // The issuer picks up the rotation within its poll interval.
    let started = std::time::Instant::now();
    let token = loop {
        let token = issuer.token("ann@example.com").await;
        if kid_of(&token) == new_kid {
            break token;
        }
        assert!(started.elapsed() < Duration::from_secs(2), "the issuer signs with the new key");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok, "the app fetched the JWKS for the unknown kid");
    assert_eq!(get(&app, "/reports", &old).await.0, Status::Ok, "the retired key still verifies");
    issuer.stop().await;
}
