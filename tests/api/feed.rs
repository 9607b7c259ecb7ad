//! `GET /feed/changes`: the snapshot a resource server loads on first connect, and the changes
//! after a cursor, held until something changes (long-poll) and never lost on a reconnect.

use crate::admin_support::*;
use crate::helpers::*;
use crate::oauth::post_form;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::{json, Value};

/// A service client created by `admin` and its access token; it holds `feed:read` besides
/// `permissions`.
async fn client_with_token(app: &TestApp, admin: &Tokens, permissions: &[&str]) -> (String, String) {
    let permissions: Vec<&str> = permissions.iter().copied().chain(["feed:read"]).collect();
    let response =
        app.post_authed("/admin/clients", &admin.access, json!({"name": "reports", "permissions": permissions})).await;
    assert_eq!(response.status(), Status::Created);
    let body: Value = response.into_json().await.unwrap();
    let (id, secret) = (body["client_id"].as_str().unwrap(), body["client_secret"].as_str().unwrap());
    let form = [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)];
    let response = post_form(app, "/oauth/token", &form).await;
    assert_eq!(response.status(), Status::Ok);
    let token: Value = response.into_json().await.unwrap();
    (id.to_owned(), token["access_token"].as_str().unwrap().to_owned())
}

async fn feed(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get_authed(&format!("/feed/changes{query}"), token).await;
    assert_eq!(response.status(), Status::Ok);
    response.into_json().await.unwrap()
}

/// How many change-feed requests wait on `app` now.
fn long_polls(app: &TestApp) -> usize {
    app.client.rocket().state::<portcullis::auth::Auth>().expect("Auth state").sync_wake.waiting()
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array().unwrap().iter().map(|e| e[field].as_str().unwrap().to_owned()).collect()
}

on_both_backends! {
    async fn the_first_answer_is_a_snapshot_of_ended_sessions_deleted_clients_role_changes_and_roles(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (_, reader) = client_with_token(&app, &admin, &[]).await;
        let (gone, _) = client_with_token(&app, &admin, &[]).await;
        assert_eq!(app.delete_authed(&format!("/admin/clients/{gone}"), &admin.access).await.status(), Status::NoContent);
        let (user, tokens) = user_with_roles(&app, "bob@example.com", &["user"]).await;
        assert_eq!(app.post_authed("/auth/logout", &tokens.access, json!({})).await.status(), Status::NoContent);
        create_role(&app, &admin, "auditor", &["audit:read"]).await;
        let path = format!("/admin/users/{}/roles", user.id);
        assert_eq!(app.put_authed(&path, &admin.access, json!({"roles": ["auditor"]})).await.status(), Status::Ok);

        let snapshot = feed(&app, &reader, "").await;
        assert_eq!(snapshot["snapshot"], true);
        assert!(snapshot["cursor"].as_i64().unwrap() > 0);
        assert_eq!(ids(&snapshot["ended_sessions"], "sid"), vec![tokens.session_id.clone()]);
        assert_eq!(ids(&snapshot["deleted_clients"], "client_id"), vec![gone]);
        let change = &snapshot["role_changes"][0];
        assert_eq!((change["sub"].as_str().unwrap(), &change["roles"]), (user.id.as_str(), &json!(["auditor"])));
        assert_eq!(snapshot["roles"]["auditor"], json!(["audit:read"]));
        assert!(snapshot["roles"]["admin"].as_array().unwrap().contains(&json!("clients:write")));
        assert_eq!(snapshot["access_ttl"], 900);
    }

    async fn only_a_live_client_token_reads_the_feed(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        assert_eq!(error_of(app.client.get("/feed/changes").dispatch().await).await, (Status::Unauthorized, "invalid_token".into()));
        let (status, code) = error_of(app.get_authed("/feed/changes", &admin.access).await).await;
        assert_eq!((status, code.as_str()), (Status::Forbidden, "insufficient_permissions"));
        let (id, token) = client_with_token(&app, &admin, &[]).await;
        assert_eq!(app.delete_authed(&format!("/admin/clients/{id}"), &admin.access).await.status(), Status::NoContent);
        assert_eq!(app.get_authed("/feed/changes", &token).await.status(), Status::Unauthorized);
    }

    async fn a_waiting_request_answers_with_a_logout_made_while_it_waits(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (_, reader) = client_with_token(&app, &admin, &[]).await;
        let (_, tokens) = user_with_roles(&app, "bob@example.com", &["user"]).await;
        let cursor = feed(&app, &reader, "").await["cursor"].as_i64().unwrap();
        let query = format!("?cursor={cursor}&wait=30");
        let waiting = feed(&app, &reader, &query);
        let logout = async {
            // Once the feed request waits (the assertion does not depend on it).
            eventually("the feed request waits", async || long_polls(&app) > 0).await;
            app.post_authed("/auth/logout", &tokens.access, json!({})).await.status()
        };
        let (changes, status) = futures::join!(waiting, logout);
        assert_eq!(status, Status::NoContent);
        assert_eq!(changes["snapshot"], false);
        assert_eq!(ids(&changes["ended_sessions"], "sid"), vec![tokens.session_id]);
        assert_ne!(changes["cursor"].as_i64().unwrap(), cursor);
    }

    async fn a_reconnect_with_an_old_cursor_gets_what_changed_since_at_once(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (_, reader) = client_with_token(&app, &admin, &[]).await;
        let (_, tokens) = user_with_roles(&app, "bob@example.com", &["user"]).await;
        let cursor = feed(&app, &reader, "").await["cursor"].as_i64().unwrap();
        assert_eq!(app.post_authed("/auth/logout", &tokens.access, json!({})).await.status(), Status::NoContent);
        create_role(&app, &admin, "auditor", &["audit:read"]).await;
        let changes = feed(&app, &reader, &format!("?cursor={cursor}&wait=30")).await;
        assert_eq!(ids(&changes["ended_sessions"], "sid"), vec![tokens.session_id]);
        assert_eq!(changes["roles"]["auditor"], json!(["audit:read"]));
    }

    async fn with_nothing_new_the_request_waits_and_keeps_its_cursor(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (_, reader) = client_with_token(&app, &admin, &[]).await;
        let cursor = feed(&app, &reader, "").await["cursor"].as_i64().unwrap();
        let changes = feed(&app, &reader, &format!("?cursor={cursor}&wait=1")).await;
        assert_eq!(changes["cursor"].as_i64().unwrap(), cursor, "the test clock is frozen and nothing changed");
        assert_eq!(changes["snapshot"], false);
    }

    async fn a_waiting_request_on_one_instance_answers_with_a_logout_on_another(backend) {
        let app = TestApp::new(backend).await;
        let other = app.second_instance(|b| b).await;
        let (_, admin) = with_admin(&app).await;
        let (_, reader) = client_with_token(&app, &admin, &[]).await;
        let (_, tokens) = user_with_roles(&app, "bob@example.com", &["user"]).await;
        let cursor = feed(&app, &reader, "").await["cursor"].as_i64().unwrap();
        let query = format!("?cursor={cursor}&wait=30");
        let waiting = feed(&app, &reader, &query);
        let logout = async {
            eventually("the feed request waits", async || long_polls(&app) > 0).await;
            other.post_authed("/auth/logout", &tokens.access, json!({})).await.status()
        };
        let (changes, status) = futures::join!(waiting, logout);
        assert_eq!(status, Status::NoContent);
        assert_eq!(ids(&changes["ended_sessions"], "sid"), vec![tokens.session_id]);
    }

    async fn a_secret_rotation_reaches_the_feed_as_a_cutoff_of_the_clients_tokens(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (_, reader) = client_with_token(&app, &admin, &[]).await;
        let (rotated, token) = client_with_token(&app, &admin, &[]).await;
        let first = feed(&app, &reader, "").await;
        assert_eq!(first["client_cutoffs"], json!([]));
        let cursor = first["cursor"].as_i64().unwrap();
        let query = format!("?cursor={cursor}&wait=30");
        let waiting = feed(&app, &reader, &query);
        let rotation = async {
            eventually("the feed request waits", async || long_polls(&app) > 0).await;
            app.post_authed(&format!("/admin/clients/{rotated}/secret"), &admin.access, json!({})).await.status()
        };
        let (changes, status) = futures::join!(waiting, rotation);
        assert_eq!(status, Status::Ok);
        let iat = crate::mfa_support::claims(&token)["iat"].as_i64().unwrap();
        let cutoff = &changes["client_cutoffs"][0];
        assert_eq!(cutoff["client_id"].as_str(), Some(rotated.as_str()));
        assert!(cutoff["revoked_through"].as_i64().unwrap() >= iat, "the old secret's token is cut off: {cutoff}");
        assert!(cutoff["until"].as_i64().unwrap() >= iat + 900);
        let snapshot = feed(&app, &reader, "").await;
        assert_eq!(ids(&snapshot["client_cutoffs"], "client_id"), vec![rotated]);
    }
}
