//! Token introspection (RFC 7662): what a client holding `tokens:introspect` learns about live
//! access and refresh tokens, and nothing about the rest.

use crate::admin_support::*;
use crate::clients::{client_token, create_client, post_basic};
use crate::helpers::*;
use crate::oauth::post_form;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::{json, Value};

pub async fn introspect(app: &TestApp, id: &str, secret: &str, token: &str) -> Value {
    let response = post_basic(app, "/oauth/introspect", id, secret, &[("token", token)]).await;
    assert_eq!(response.status(), Status::Ok);
    response.into_json().await.unwrap()
}

on_both_backends! {
    async fn introspection_reports_live_tokens_and_nothing_about_the_rest(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = create_client(&app, &admin.access, &["tokens:introspect", "users:read"]).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let access = introspect(&app, &id, &secret, &tokens.access).await;
        assert_eq!((&access["active"], &access["token_type"], &access["token_use"], &access["sub"], &access["sid"], &access["roles"]), (&json!(true), &json!("Bearer"), &json!("access_token"), &json!(user.id), &json!(tokens.session_id), &json!(["user"])));
        assert_eq!(access["iss"], crate::issuer::issuer_of(&app).as_str());
        for claim in ["exp", "iat", "iss", "aud"] {
            assert!(access.get(claim).is_some(), "{claim}");
        }
        let refresh = introspect(&app, &id, &secret, &tokens.refresh).await;
        assert_eq!((&refresh["active"], &refresh["token_type"], &refresh["token_use"], &refresh["sid"]), (&json!(true), &json!("refresh_token"), &json!("refresh_token"), &json!(tokens.session_id)));
        let client = client_token(&app, &id, &secret, None).await["access_token"].as_str().unwrap().to_owned();
        let about_client = introspect(&app, &id, &secret, &client).await;
        assert_eq!((&about_client["client_id"], &about_client["scope"], about_client.get("sid")), (&json!(id), &json!("tokens:introspect users:read"), None));
        assert_eq!((&about_client["token_type"], &about_client["token_use"]), (&json!("Bearer"), &json!("access_token")));
        assert_eq!(introspect(&app, &id, &secret, "garbage").await, json!({"active": false}));
        // Ended sessions: inactive at once.
        assert_eq!(app.post_authed("/auth/logout", &tokens.access, json!({})).await.status(), Status::NoContent);
        assert_eq!(introspect(&app, &id, &secret, &tokens.access).await, json!({"active": false}));
        assert_eq!(introspect(&app, &id, &secret, &tokens.refresh).await, json!({"active": false}));
        // Introspection needs client authentication.
        let anonymous = post_form(&app, "/oauth/introspect", &[("token", &client)]).await;
        assert_eq!(error_of(anonymous).await, (Status::Unauthorized, "invalid_client".into()));
        // A deleted client's tokens are inactive (asked by another client).
        let (other_id, other_secret) = create_client(&app, &admin.access, &["tokens:introspect"]).await;
        assert_eq!(app.delete_authed(&format!("/admin/clients/{id}"), &admin.access).await.status(), Status::NoContent);
        assert_eq!(introspect(&app, &other_id, &other_secret, &client).await, json!({"active": false}));
    }
}
