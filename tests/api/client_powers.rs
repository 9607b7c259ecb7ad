//! What a service client may do beyond its admin permissions: introspection needs
//! `tokens:introspect` and the change feed `feed:read`, and clients that existed before version 3
//! are given both when it is installed.

use crate::admin_support::*;
use crate::clients::{client_token, create_client, post_basic};
use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::{json, Value};

/// Runs `sql` (one or more statements) on the test database at `url`.
pub async fn execute_sql(backend: Backend, url: &str, sql: &str) {
    match backend {
        Backend::Sqlite => {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            diesel::SqliteConnection::establish(url)
                .unwrap()
                .batch_execute(&format!("PRAGMA busy_timeout = 10000; {sql}"))
                .unwrap();
        }
        Backend::Postgres => {
            use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
            AsyncPgConnection::establish(url).await.unwrap().batch_execute(sql).await.unwrap();
        }
    }
}

async fn introspection_status(app: &TestApp, id: &str, secret: &str, token: &str) -> (Status, Value) {
    let response = post_basic(app, "/oauth/introspect", id, secret, &[("token", token)]).await;
    (response.status(), response.into_json().await.unwrap_or_default())
}

/// A client that existed before version 3, as version 2 stored it: holding only `users:read`.
const OLD_CLIENT: &str = "0192f0c4-5b1e-7cc2-9a52-3b0d0f4f8c11";
const OLD_SECRET: &str = "an-old-secret-of-version-2";

on_both_backends! {
    async fn a_client_without_tokens_introspect_is_refused_introspection_after_authenticating(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (plain, plain_secret) = create_client(&app, &admin.access, &["users:read"]).await;
        let (asker, asker_secret) = create_client(&app, &admin.access, &["tokens:introspect"]).await;
        let token = client_token(&app, &plain, &plain_secret, None).await["access_token"].as_str().unwrap().to_owned();
        let response = post_basic(&app, "/oauth/introspect", &plain, &plain_secret, &[("token", &token)]).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()));
        // Client authentication still comes first: a wrong secret is 401, not 403.
        let response = post_basic(&app, "/oauth/introspect", &plain, "wrong", &[("token", &token)]).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_client".into()));
        let (status, answer) = introspection_status(&app, &asker, &asker_secret, &token).await;
        assert_eq!((status, &answer["active"]), (Status::Ok, &json!(true)));
    }

    async fn the_change_feed_answers_403_to_a_client_token_without_feed_read(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (id, secret) = create_client(&app, &admin.access, &["users:read", "feed:read"]).await;
        let narrow = client_token(&app, &id, &secret, Some("users:read")).await["access_token"].as_str().unwrap().to_owned();
        let response = app.get_authed("/feed/changes", &narrow).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()));
        let reader = client_token(&app, &id, &secret, None).await["access_token"].as_str().unwrap().to_owned();
        assert_eq!(app.get_authed("/feed/changes", &reader).await.status(), Status::Ok);
    }

    async fn clients_that_exist_when_version_3_is_installed_keep_introspection_and_the_feed(backend) {
        let db = TestDb::migrated(backend).await;
        // Version 2's database: the client as it stored it, and version 3's migration not yet run.
        let hash = portcullis::auth::secrets::hash_token(OLD_SECRET);
        let sql = format!(
            "DELETE FROM __diesel_schema_migrations WHERE version = '20261205000801';
             DELETE FROM client_permissions WHERE permission IN ('tokens:introspect', 'feed:read');
             INSERT INTO clients (client_id, name, secret_hash, disabled, created_at)
                 VALUES ('{OLD_CLIENT}', 'old', '{hash}', FALSE, 0);
             INSERT INTO client_permissions (client_id, permission) VALUES ('{OLD_CLIENT}', 'users:read');"
        );
        execute_sql(backend, db.url(), &sql).await;
        let app = TestApp::builder(backend).with_db(db).build().await;
        let granted = client_token(&app, OLD_CLIENT, OLD_SECRET, None).await;
        assert_eq!(granted["scope"], "feed:read tokens:introspect users:read");
        let token = granted["access_token"].as_str().unwrap();
        let (status, answer) = introspection_status(&app, OLD_CLIENT, OLD_SECRET, token).await;
        assert_eq!((status, &answer["active"]), (Status::Ok, &json!(true)));
        assert_eq!(app.get_authed("/feed/changes", token).await.status(), Status::Ok);
    }
}
