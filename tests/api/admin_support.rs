//! Helpers for the admin tests: accounts with given roles, created through the library the way
//! `portcullis user create --role` does, and logged in through the API.

use crate::helpers::*;
use rocket::http::Status;
use rocket_db_pools::Database;
use serde_json::{json, Value};

/// Creates `email` with `roles` (as the CLI would) and logs it in.
pub async fn user_with_roles(app: &TestApp, email: &str, roles: &[&str]) -> (TestUser, Tokens) {
    let auth = app.client.rocket().state::<portcullis::auth::Auth>().expect("auth");
    let db = portcullis::db::Db::fetch(app.client.rocket()).expect("db");
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    let view = portcullis::auth::accounts::create_user(
        auth,
        db,
        email,
        PASSWORD,
        &roles,
        portcullis::auth::accounts::Creation::Operator,
    )
    .await
    .expect("create user");
    let user = TestUser { id: view.id.to_string(), email: email.to_owned(), password: PASSWORD.to_owned() };
    let tokens = app.login(&user).await;
    (user, tokens)
}

/// An admin, `admin@example.com`, logged in.
pub async fn with_admin(app: &TestApp) -> (TestUser, Tokens) {
    user_with_roles(app, "admin@example.com", &["admin"]).await
}

/// Creates a role through the API as `admin`.
pub async fn create_role(app: &TestApp, admin: &Tokens, name: &str, permissions: &[&str]) {
    let response = app
        .post_authed(
            "/admin/roles",
            &admin.access,
            json!({"name": name, "description": name, "permissions": permissions}),
        )
        .await;
    assert_eq!(response.status(), Status::Created, "creating role {name}");
}

/// `GET path` as `token`, parsed.
pub async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app.get_authed(path, token).await;
    assert_eq!(response.status(), Status::Ok, "GET {path}");
    response.into_json().await.expect("json")
}

/// A PATCH with a JSON body as `token`.
pub async fn patch_authed<'a>(
    app: &'a TestApp,
    path: &str,
    token: &str,
    body: Value,
) -> rocket::local::asynchronous::LocalResponse<'a> {
    let request = app.authed(app.client.patch(path.to_owned()), token);
    app.json_request(request, body).dispatch().await
}
