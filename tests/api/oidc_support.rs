//! Helpers for the browser sign-in tests: the app's auth state and database, a registered client,
//! and a relying party's view of the JWKS.

use crate::helpers::*;
use portcullis::auth::Auth;
use portcullis::db::{DbConn, DbPool, Id};
use rocket_db_pools::Database;
use serde_json::Value;

pub fn auth(app: &TestApp) -> &Auth {
    app.client.rocket().state::<Auth>().expect("auth state")
}

pub fn pool(app: &TestApp) -> &DbPool {
    portcullis::db::Db::fetch(app.client.rocket()).expect("db")
}

pub async fn conn(app: &TestApp) -> DbConn {
    pool(app).conn().await.expect("a connection")
}

/// A client registered as `portcullis client create --name <name>` does; its id.
pub async fn registered_client(app: &TestApp, name: &str) -> Id {
    let fields = portcullis::admin::client_settings::ClientFields { name: Some(name.into()), ..Default::default() };
    let created =
        portcullis::admin::clients::create_client_unchecked(auth(app), pool(app), &fields).await.expect("a client");
    created.client.client_id
}

pub async fn jwks(app: &TestApp) -> Vec<Value> {
    let jwks: Value = app.client.get("/.well-known/jwks.json").dispatch().await.into_json().await.unwrap();
    jwks["keys"].as_array().unwrap().clone()
}

/// The ID-token keys of the JWKS (their kids start with `id-`).
pub async fn id_token_jwks(app: &TestApp) -> Vec<Value> {
    jwks(app).await.into_iter().filter(|k| k["kid"].as_str().unwrap().starts_with("id-")).collect()
}

/// The kids of the ID-token keys of the JWKS, in order.
pub async fn id_token_kids(app: &TestApp) -> Vec<String> {
    id_token_jwks(app).await.iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

/// A client-credentials access token of a new client (with no permissions).
pub async fn client_access_token(app: &TestApp) -> String {
    let fields =
        portcullis::admin::client_settings::ClientFields { name: Some("service".into()), ..Default::default() };
    let created =
        portcullis::admin::clients::create_client_unchecked(auth(app), pool(app), &fields).await.expect("a client");
    let id = created.client.client_id.to_string();
    let secret = created.client_secret.expect("a confidential client's secret");
    let body = crate::clients::client_token(app, &id, &secret, None).await;
    body["access_token"].as_str().unwrap().to_owned()
}
