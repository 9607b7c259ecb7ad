//! Client access tokens taken back before they expire: a secret rotation revokes the tokens
//! issued under the old secret, and a client revokes its own token (RFC 7009) — at once on this
//! instance, within a second on another. The test clock is frozen, so every token here is issued
//! in the very second of the change: the case whole-second `iat`s make hard.

use crate::admin_support::*;
use crate::clients::{client_token, create_client, post_basic};
use crate::helpers::*;
use crate::oauth::post_form;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::{json, Value};

async fn access_token(app: &TestApp, id: &str, secret: &str) -> String {
    client_token(app, id, secret, None).await["access_token"].as_str().unwrap().to_owned()
}

async fn refused(app: &TestApp, token: &str) -> bool {
    app.get_authed("/admin/users", token).await.status() == Status::Unauthorized
}

on_both_backends! {
    async fn rotating_a_client_secret_revokes_the_tokens_issued_under_the_old_one_here_and_elsewhere(backend) {
        let app = TestApp::new(backend).await;
        let other = app.second_instance(|b| b).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = create_client(&app, &admin.access, &["users:read"]).await;
        let (asker, asker_secret) = create_client(&app, &admin.access, &["tokens:introspect"]).await;
        let old = access_token(&app, &id, &secret).await;
        assert_eq!(other.get_authed("/admin/users", &old).await.status(), Status::Ok);
        let response = app.post_authed(&format!("/admin/clients/{id}/secret"), &admin.access, json!({})).await;
        let rotated: Value = response.into_json().await.unwrap();
        let new_secret = rotated["client_secret"].as_str().unwrap();
        let (status, code) = error_of(app.get_authed("/admin/users", &old).await).await;
        assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_token"), "refused here at once");
        eventually("the other instance refuses the old secret's token", async || refused(&other, &old).await).await;
        let answer = post_basic(&app, "/oauth/introspect", &asker, &asker_secret, &[("token", &old)]).await;
        assert_eq!(answer.into_json::<Value>().await.unwrap(), json!({"active": false}));
        // A token of the new secret, issued in the same second as the rotation, works everywhere.
        let new = access_token(&app, &id, new_secret).await;
        assert_eq!(app.get_authed("/admin/users", &new).await.status(), Status::Ok);
        assert_eq!(other.get_authed("/admin/users", &new).await.status(), Status::Ok);
        let on_other = access_token(&other, &id, new_secret).await;
        assert_eq!(app.get_authed("/admin/users", &on_other).await.status(), Status::Ok);
    }

    async fn a_client_revokes_its_own_access_token_and_nobody_else_can(backend) {
        let app = TestApp::new(backend).await;
        let other = app.second_instance(|b| b).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = create_client(&app, &admin.access, &["users:read"]).await;
        let (stranger, stranger_secret) = create_client(&app, &admin.access, &[]).await;
        let token = access_token(&app, &id, &secret).await;
        // Without client authentication, or by another client: 200 and nothing happens.
        assert_eq!(post_form(&app, "/oauth/revoke", &[("token", &token)]).await.status(), Status::Ok);
        let by_stranger = post_basic(&app, "/oauth/revoke", &stranger, &stranger_secret, &[("token", &token)]).await;
        assert_eq!(by_stranger.status(), Status::Ok);
        assert_eq!(app.get_authed("/admin/users", &token).await.status(), Status::Ok);
        // Wrong credentials of a real client are 401.
        let wrong = post_basic(&app, "/oauth/revoke", &id, "wrong", &[("token", &token)]).await;
        assert_eq!(error_of(wrong).await, (Status::Unauthorized, "invalid_client".into()));
        assert_eq!(app.get_authed("/admin/users", &token).await.status(), Status::Ok);
        // By the client itself: revoked here at once, elsewhere within a second.
        assert_eq!(post_basic(&app, "/oauth/revoke", &id, &secret, &[("token", &token)]).await.status(), Status::Ok);
        assert!(refused(&app, &token).await, "refused here at once");
        eventually("the other instance refuses the revoked token", async || refused(&other, &token).await).await;
        // The client's next token works.
        let next = access_token(&app, &id, &secret).await;
        assert_eq!(app.get_authed("/admin/users", &next).await.status(), Status::Ok);
    }

    async fn a_client_revokes_its_access_token_for_a_resource_server(backend) {
        let app = TestApp::builder(backend).with_config("resources", json!(["https://reports.example"])).build().await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = create_client(&app, &admin.access, &["users:read"]).await;
        let (asker, asker_secret) = create_client(&app, &admin.access, &["tokens:introspect"]).await;
        let form = [("grant_type", "client_credentials"), ("resource", "https://reports.example")];
        let token: Value = post_basic(&app, "/oauth/token", &id, &secret, &form).await.into_json().await.unwrap();
        let token = token["access_token"].as_str().unwrap();
        let active = async || {
            let answer = post_basic(&app, "/oauth/introspect", &asker, &asker_secret, &[("token", token)]).await;
            answer.into_json::<Value>().await.unwrap()["active"] == json!(true)
        };
        assert!(active().await, "a live token for the resource server");
        assert_eq!(post_basic(&app, "/oauth/revoke", &id, &secret, &[("token", token)]).await.status(), Status::Ok);
        assert!(!active().await, "revoked by its client, though it is not for Portcullis");
    }
}
