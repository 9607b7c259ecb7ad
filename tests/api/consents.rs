//! Consents to third-party clients: remembered per user, client and scope, listed at
//! `GET /users/me/consents` and revoked at `DELETE /users/me/consents/<client_id>`.

use crate::helpers::*;
use crate::oidc_support::*;
use crate::on_both_backends;
use portcullis::auth::guards::RequestOrigin;
use portcullis::db::Id;
use rocket::http::Status;
use serde_json::Value;

async fn approve(app: &TestApp, user: &TestUser, client: Id, scope: &str) {
    let user: Id = user.id.parse().unwrap();
    auth(app).grant_consent(&mut conn(app).await, user, client, scope, &RequestOrigin::default()).await.unwrap();
}

async fn covers(app: &TestApp, user: &TestUser, client: Id, scope: &str) -> bool {
    auth(app).consent_covers(&mut conn(app).await, user.id.parse().unwrap(), client, scope).await.unwrap()
}

async fn consents(app: &TestApp, token: &str) -> Vec<Value> {
    let response = app.get_authed("/users/me/consents", token).await;
    assert_eq!(response.status(), Status::Ok);
    let body: Value = response.into_json().await.unwrap();
    body["consents"].as_array().unwrap().clone()
}

on_both_backends! {
    async fn consents_are_listed_with_the_client_name_scope_and_time(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        assert!(consents(&app, &tokens.access).await.is_empty());
        let client = registered_client(&app, "Photo printer").await;
        approve(&app, &user, client, "openid email").await;
        let listed = consents(&app, &tokens.access).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["client_id"], client.to_string());
        assert_eq!(listed[0]["name"], "Photo printer");
        assert_eq!(listed[0]["scope"], "email openid");
        assert!(listed[0]["granted_at"].as_str().unwrap().ends_with('Z'));
        // Another user sees none of them.
        let other = app.login(&app.with_user_email("other@example.com").await).await;
        assert!(consents(&app, &other.access).await.is_empty());
    }

    async fn an_approval_covers_what_it_named_and_later_approvals_add_to_it(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = registered_client(&app, "web").await;
        assert!(!covers(&app, &user, client, "openid").await, "nothing approved yet");
        approve(&app, &user, client, "openid").await;
        assert!(covers(&app, &user, client, "openid").await);
        assert!(!covers(&app, &user, client, "openid email").await, "a wider request asks again");
        approve(&app, &user, client, "email").await;
        assert!(covers(&app, &user, client, "email openid").await);
        let other = registered_client(&app, "other").await;
        assert!(!covers(&app, &user, other, "openid").await, "per client");
    }

    async fn revoking_a_consent_forgets_it_and_a_second_revocation_is_not_found(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let client = registered_client(&app, "web").await;
        approve(&app, &user, client, "openid").await;
        let path = format!("/users/me/consents/{client}");
        assert_eq!(app.delete_authed(&path, &tokens.access).await.status(), Status::NoContent);
        assert!(consents(&app, &tokens.access).await.is_empty());
        assert!(!covers(&app, &user, client, "openid").await);
        let (status, code) = error_of(app.delete_authed(&path, &tokens.access).await).await;
        assert_eq!((status, code.as_str()), (Status::NotFound, "not_found"));
        let (status, _) = error_of(app.delete_authed("/users/me/consents/not-a-uuid", &tokens.access).await).await;
        assert_eq!(status, Status::NotFound);
        // The caller's own session goes on.
        assert_eq!(app.me_status(&tokens.access).await, Status::Ok);
    }

    async fn nobody_revokes_another_users_consent(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = registered_client(&app, "web").await;
        approve(&app, &user, client, "openid").await;
        let other = app.login(&app.with_user_email("other@example.com").await).await;
        let (status, _) = error_of(app.delete_authed(&format!("/users/me/consents/{client}"), &other.access).await).await;
        assert_eq!(status, Status::NotFound);
        assert!(covers(&app, &user, client, "openid").await);
    }

    async fn the_consent_endpoints_need_a_users_bearer_token(backend) {
        let app = TestApp::new(backend).await;
        let client_token = client_access_token(&app).await;
        let path = format!("/users/me/consents/{}", Id::new());
        let (status, _) = error_of(app.client.get("/users/me/consents").dispatch().await).await;
        assert_eq!(status, Status::Unauthorized);
        let (status, _) = error_of(app.client.delete(path.clone()).dispatch().await).await;
        assert_eq!(status, Status::Unauthorized);
        let (status, code) = error_of(app.get_authed("/users/me/consents", &client_token).await).await;
        assert_eq!((status, code.as_str()), (Status::Forbidden, "insufficient_permissions"));
        let (status, _) = error_of(app.delete_authed(&path, &client_token).await).await;
        assert_eq!(status, Status::Forbidden);
    }
}
