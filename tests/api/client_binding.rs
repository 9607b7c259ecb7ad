//! Sessions belong to their client: the `client_id` claim and introspection say which, refresh
//! tokens are exchanged only by it (and refusals change nothing), revocation of a confidential
//! client's tokens needs that client, and deleting a client ends its users' sessions.

use crate::admin_support::*;
use crate::client_types::{create_client_with, public_client};
use crate::clients::{create_client, post_basic};
use crate::helpers::*;
use crate::introspection::introspect;
use crate::oauth::post_form;
use crate::on_both_backends;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::http::Status;
use serde_json::{json, Value};

fn claims_of(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// A confidential client that may use the password and refresh grants: `(id, secret)`.
async fn app_client(app: &TestApp, admin: &Tokens) -> (String, String) {
    let body = json!({"name": "app", "grant_types": ["password", "refresh_token"]});
    let created = create_client_with(app, &admin.access, body).await;
    (created["client_id"].as_str().unwrap().to_owned(), created["client_secret"].as_str().unwrap().to_owned())
}

/// A session of `user` started by the password grant of client `id`.
async fn session_of(app: &TestApp, (id, secret): (&str, &str), user: &TestUser) -> Tokens {
    let password =
        [("grant_type", "password"), ("username", user.email.as_str()), ("password", user.password.as_str())];
    tokens(post_basic(app, "/oauth/token", id, secret, &password).await).await
}

/// Hands a first-party session to a public client, as the authorization-code grant would have
/// started it (plain SQL: ids only).
async fn give_session_to(app: &TestApp, session_id: &str, client_id: &str) {
    use diesel_async::SimpleAsyncConnection;
    use rocket_db_pools::{Database, Pool};
    let db = portcullis::db::Db::fetch(app.client.rocket()).unwrap();
    let mut conn = db.get().await.unwrap();
    let sql = format!("UPDATE sessions SET client_id = '{client_id}' WHERE id = '{session_id}'");
    portcullis::db::with_conn!(conn, |c| c.batch_execute(&sql).await).expect("update");
}

fn refresh_form(refresh: &str) -> [(&'static str, &str); 2] {
    [("grant_type", "refresh_token"), ("refresh_token", refresh)]
}

on_both_backends! {
    async fn user_tokens_and_introspection_name_the_client_of_the_session(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = app_client(&app, &admin).await;
        let (asker, asker_secret) = create_client(&app, &admin.access, &["tokens:introspect"]).await;
        let user = app.with_user().await;
        let first_party = app.login(&user).await;
        assert_eq!(claims_of(&first_party.access)["client_id"], "portcullis");
        let password = [("grant_type", "password"), ("username", user.email.as_str()), ("password", user.password.as_str())];
        let granted = tokens(post_form(&app, "/oauth/token", &password).await).await;
        assert_eq!(claims_of(&granted.access)["client_id"], "portcullis", "the password grant without a client");
        let by_app = session_of(&app, (&id, &secret), &user).await;
        assert_eq!(claims_of(&by_app.access)["client_id"], json!(id));
        assert_eq!(app.me_status(&by_app.access).await, Status::Ok);
        for (token, client) in [(&by_app.access, id.as_str()), (&by_app.refresh, id.as_str()), (&first_party.access, "portcullis"), (&first_party.refresh, "portcullis")] {
            let answer = introspect(&app, &asker, &asker_secret, token).await;
            assert_eq!((&answer["active"], &answer["client_id"]), (&json!(true), &json!(client)), "{answer}");
        }
        // The client's refreshed tokens still name it.
        let refreshed = tokens(post_basic(&app, "/oauth/token", &id, &secret, &refresh_form(&by_app.refresh)).await).await;
        assert_eq!(claims_of(&refreshed.access)["client_id"], json!(id));
    }

    async fn a_confidential_clients_refresh_token_is_exchanged_only_by_that_client_and_refusals_change_nothing(backend) {
        // Without a grace interval, a refused attempt that had spent the token would end the session.
        let app = TestApp::builder(backend).with_config("reuse_grace", 0).build().await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = app_client(&app, &admin).await;
        let (other, other_secret) = app_client(&app, &admin).await;
        let user = app.with_user().await;
        let session = session_of(&app, (&id, &secret), &user).await;
        let form = refresh_form(&session.refresh);
        let invalid_grant = (Status::BadRequest, "invalid_grant".to_owned());
        assert_eq!(error_of(app.refresh_response(&session.refresh).await).await, (Status::Unauthorized, "invalid_grant".into()));
        assert_eq!(error_of(post_form(&app, "/oauth/token", &form).await).await, invalid_grant, "without the client");
        assert_eq!(error_of(post_basic(&app, "/oauth/token", &other, &other_secret, &form).await).await, invalid_grant);
        assert_eq!(error_of(post_basic(&app, "/oauth/token", "my-app", "x", &form).await).await, invalid_grant);
        let mut bare = form.to_vec();
        bare.push(("client_id", id.as_str()));
        assert_eq!(error_of(post_form(&app, "/oauth/token", &bare).await).await, (Status::Unauthorized, "invalid_client".into()));
        // The session keeps working for its own client: the same token, then its successor.
        let next = tokens(post_basic(&app, "/oauth/token", &id, &secret, &form).await).await;
        assert_eq!(next.session_id, session.session_id);
        assert_eq!(post_basic(&app, "/oauth/token", &id, &secret, &refresh_form(&next.refresh)).await.status(), Status::Ok);
        // A first-party session is not the client's either, and keeps working at /auth/refresh.
        let own = app.login(&user).await;
        assert_eq!(error_of(post_basic(&app, "/oauth/token", &id, &secret, &refresh_form(&own.refresh)).await).await, invalid_grant);
        assert_eq!(app.refresh_response(&own.refresh).await.status(), Status::Ok);
    }

    async fn a_public_clients_session_refreshes_with_its_client_id_or_at_auth_refresh(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 0).build().await;
        let (_, admin) = with_admin(&app).await;
        let public = public_client(&app, &admin.access, None).await;
        let other = public_client(&app, &admin.access, None).await;
        let user = app.with_user().await;
        let session = app.login(&user).await;
        give_session_to(&app, &session.session_id, &public).await;
        let form = refresh_form(&session.refresh);
        let invalid_grant = (Status::BadRequest, "invalid_grant".to_owned());
        assert_eq!(error_of(post_form(&app, "/oauth/token", &form).await).await, invalid_grant, "without its client_id");
        let mut by_other = form.to_vec();
        by_other.push(("client_id", other.as_str()));
        assert_eq!(error_of(post_form(&app, "/oauth/token", &by_other).await).await, invalid_grant);
        let mut by_public = form.to_vec();
        by_public.push(("client_id", public.as_str()));
        let next = tokens(post_form(&app, "/oauth/token", &by_public).await).await;
        assert_eq!(claims_of(&next.access)["client_id"], json!(public));
        let again = tokens(app.refresh_response(&next.refresh).await).await;
        assert_eq!((again.session_id.as_str(), &claims_of(&again.access)["client_id"]), (session.session_id.as_str(), &json!(public)));
        // Without the refresh-token grant, it may not refresh at the token endpoint.
        let code_only = public_client(&app, &admin.access, Some(&["authorization_code"])).await;
        let mut form = refresh_form(&again.refresh).to_vec();
        form.push(("client_id", code_only.as_str()));
        assert_eq!(error_of(post_form(&app, "/oauth/token", &form).await).await, (Status::BadRequest, "unauthorized_client".into()));
    }

    async fn a_confidential_clients_tokens_are_revoked_only_by_that_client(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = app_client(&app, &admin).await;
        let (other, other_secret) = create_client(&app, &admin.access, &[]).await;
        let user = app.with_user().await;
        let session = session_of(&app, (&id, &secret), &user).await;
        for token in [&session.refresh, &session.access] {
            let token = [("token", token.as_str())];
            assert_eq!(post_form(&app, "/oauth/revoke", &token).await.status(), Status::Ok, "without credentials");
            assert_eq!(post_basic(&app, "/oauth/revoke", &other, &other_secret, &token).await.status(), Status::Ok);
            assert_eq!(post_basic(&app, "/oauth/revoke", "my-app", "x", &token).await.status(), Status::Ok);
            let wrong = post_basic(&app, "/oauth/revoke", &id, "wrong", &token).await;
            assert_eq!(error_of(wrong).await, (Status::Unauthorized, "invalid_client".into()));
            let bare = post_form(&app, "/oauth/revoke", &[token[0], ("client_id", id.as_str())]).await;
            assert_eq!(error_of(bare).await, (Status::Unauthorized, "invalid_client".into()));
            assert_eq!(app.me_status(&session.access).await, Status::Ok, "nothing happened");
        }
        assert_eq!(post_basic(&app, "/oauth/revoke", &id, &secret, &[("token", &session.refresh)]).await.status(), Status::Ok);
        assert_eq!(app.me_status(&session.access).await, Status::Unauthorized, "its own client ended it");
        // First-party and public clients' sessions: whoever holds a token may end its session.
        let own = app.login(&user).await;
        assert_eq!(post_basic(&app, "/oauth/revoke", &other, &other_secret, &[("token", &own.access)]).await.status(), Status::Ok);
        assert_eq!(app.me_status(&own.access).await, Status::Unauthorized);
        let public = public_client(&app, &admin.access, None).await;
        let theirs = app.login(&user).await;
        give_session_to(&app, &theirs.session_id, &public).await;
        assert_eq!(post_form(&app, "/oauth/revoke", &[("token", &theirs.refresh)]).await.status(), Status::Ok);
        assert_eq!(app.me_status(&theirs.access).await, Status::Unauthorized);
    }

    async fn deleting_a_client_ends_its_users_sessions_and_no_others(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = app_client(&app, &admin).await;
        let user = app.with_user().await;
        let session = session_of(&app, (&id, &secret), &user).await;
        let own = app.login(&user).await;
        assert_eq!(app.delete_authed(&format!("/admin/clients/{id}"), &admin.access).await.status(), Status::NoContent);
        assert_eq!(app.me_status(&session.access).await, Status::Unauthorized);
        assert_eq!(app.me_status(&own.access).await, Status::Ok);
        assert_eq!(error_of(app.refresh_response(&session.refresh).await).await, (Status::Unauthorized, "invalid_grant".into()));
    }
}
