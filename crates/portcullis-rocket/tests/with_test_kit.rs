//! The example app (`examples/reports_api.rs`) against the test kit's in-process issuer: its
//! routes and what a logout, a removed role or permission and a deleted client do to them, with
//! no Portcullis running. The app is built exactly as `main` builds it (its own
//! `Portcullis::fairing()` included); attaching `issuer.fairing()` afterwards replaces that one.
//! `tests/reports_api.rs` runs the same app against a real Portcullis, for the feed and JWKS.

#[path = "../examples/reports_api.rs"]
#[allow(dead_code)]
mod reports_api;

use portcullis_rocket::testing::{bearer, Issuer};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use serde_json::{json, Value};

/// The issuer of these tests: Portcullis's roles for the example.
fn issuer() -> Issuer {
    Issuer::new().role("analyst", ["reports:read"]).role("editor", ["reports:read", "reports:write"])
}

async fn app(issuer: &Issuer) -> Client {
    let rocket = reports_api::app(reports_api::figment()).attach(issuer.fairing());
    Client::tracked(rocket).await.expect("the app ignites without a Portcullis")
}

async fn get(app: &Client, path: &str, token: &str) -> (Status, Value) {
    let response = app.get(path.to_owned()).header(bearer(token)).dispatch().await;
    (response.status(), response.into_json().await.unwrap_or(Value::Null))
}

async fn post_report(app: &Client, token: &str) -> (Status, Value) {
    let response = app.post("/reports").header(bearer(token)).json(&json!({"title": "Q3"})).dispatch().await;
    (response.status(), response.into_json().await.unwrap_or(Value::Null))
}

#[rocket::async_test]
async fn a_user_gets_200_with_the_permission_403_without_it_and_401_without_a_token() {
    let issuer = issuer();
    let app = app(&issuer).await;
    let editor = issuer.user("ed").roles(["editor"]).amr(["pwd", "otp", "mfa"]).token();
    let analyst = issuer.user("ann").roles(["analyst"]).token();

    let (status, report) = post_report(&app, &editor).await;
    assert_eq!((status, &report["author"]), (Status::Created, &json!("ed")));
    assert_eq!(get(&app, "/reports", &analyst).await, (Status::Ok, json!({"reports": [report]})));
    let (status, body) = post_report(&app, &analyst).await;
    assert_eq!(status, Status::Forbidden);
    assert_eq!(body["error"], "insufficient_permissions");
    assert_eq!(body["error_description"], "This requires the reports:write permission.");

    let (status, whoami) = get(&app, "/whoami", &editor).await;
    assert_eq!(status, Status::Ok);
    assert_eq!((&whoami["sub"], &whoami["roles"]), (&json!("ed"), &json!(["editor"])));
    assert_eq!(whoami["amr"], json!(["pwd", "otp", "mfa"]));
    assert!(whoami["sid"].is_string());

    let response = app.get("/reports").dispatch().await;
    assert_eq!(response.status(), Status::Unauthorized);
    assert_eq!(response.headers().get_one("WWW-Authenticate"), Some("Bearer"));
    assert_eq!(response.into_json::<Value>().await.unwrap()["error"], "invalid_token");
}

#[rocket::async_test]
async fn permissions_given_without_a_role_grant_exactly_those() {
    let issuer = Issuer::new();
    let app = app(&issuer).await;
    let token = issuer.user("bob").permissions(["reports:read"]).token();
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok);
    assert_eq!(post_report(&app, &token).await.0, Status::Forbidden);
    issuer.remove_permission("bob:permissions", "reports:read");
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Forbidden);
}

#[rocket::async_test]
async fn a_down_scoped_token_grants_what_its_scope_names_of_what_its_roles_hold_now() {
    let issuer = issuer();
    let app = app(&issuer).await;
    let token = issuer.user("ed").roles(["editor"]).scope(["openid", "reports:read"]).token();
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok);
    let (status, body) = post_report(&app, &token).await;
    assert_eq!((status, body["error"].as_str()), (Status::Forbidden, Some("insufficient_permissions")), "not in scope");
    let (_, whoami) = get(&app, "/whoami", &token).await;
    assert_eq!(whoami["scope"], json!(["openid", "reports:read"]));
    let wider = issuer.user("ann").roles(["analyst"]).scope(["reports:read", "reports:write"]).token();
    assert_eq!(post_report(&app, &wider).await.0, Status::Forbidden, "a scope grants nothing the roles do not");

    issuer.remove_permission("editor", "reports:read");
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Forbidden, "the role table of now decides");
}

#[rocket::async_test]
async fn after_end_session_the_token_is_401_at_once_and_another_session_still_works() {
    let issuer = issuer();
    let app = app(&issuer).await;
    let token = issuer.user("ann").roles(["analyst"]).token();
    let other_session = issuer.user("ann").roles(["analyst"]).token();
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok);

    issuer.end_session(&token);
    let (status, body) = get(&app, "/reports", &token).await;
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["error_description"], "The session of this access token has ended.");
    assert_eq!(get(&app, "/whoami", &token).await.0, Status::Unauthorized);
    assert_eq!(get(&app, "/reports", &other_session).await.0, Status::Ok);
}

#[rocket::async_test]
async fn removing_a_permission_from_a_role_is_403_while_the_token_stays_valid() {
    let issuer = issuer();
    let app = app(&issuer).await;
    let token = issuer.user("ann").roles(["analyst"]).token();
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok);

    issuer.remove_permission("analyst", "reports:read");
    let (status, body) = get(&app, "/reports", &token).await;
    assert_eq!((status, body["error"].as_str()), (Status::Forbidden, Some("insufficient_permissions")));
    assert_eq!(get(&app, "/whoami", &token).await.0, Status::Ok, "the token itself is still valid");
}

#[rocket::async_test]
async fn taking_a_role_away_refuses_tokens_naming_it_with_401_until_a_new_token_is_minted() {
    let issuer = issuer();
    let app = app(&issuer).await;
    let token = issuer.user("ed").roles(["analyst", "editor"]).token();
    let other_user = issuer.user("eve").roles(["editor"]).token();
    assert_eq!(post_report(&app, &token).await.0, Status::Created);

    issuer.remove_role("ed", "editor");
    let (status, body) = get(&app, "/reports", &token).await;
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["error_description"], "A role of this access token was taken away; refresh it.");
    let refreshed = issuer.user("ed").roles(["analyst"]).token();
    assert_eq!(get(&app, "/reports", &refreshed).await.0, Status::Ok);
    assert_eq!(post_report(&app, &refreshed).await.0, Status::Forbidden);
    assert_eq!(post_report(&app, &other_user).await.0, Status::Created, "only ed lost the role");
}

#[rocket::async_test]
async fn a_client_token_works_by_its_scope_is_not_a_user_and_is_401_once_the_client_is_deleted() {
    let issuer = issuer();
    let app = app(&issuer).await;
    let token = issuer.client("cron").scope(["reports:read"]).token();
    assert_eq!(get(&app, "/reports", &token).await.0, Status::Ok);
    assert_eq!(post_report(&app, &token).await.0, Status::Forbidden, "reports:write is not in its scope");
    let (status, body) = get(&app, "/whoami", &token).await;
    assert_eq!((status, body["error"].as_str()), (Status::Forbidden, Some("insufficient_permissions")));

    issuer.delete_client("cron");
    let (status, body) = get(&app, "/reports", &token).await;
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["error_description"], "The client of this access token has been deleted.");
}

#[rocket::async_test]
async fn an_expired_token_and_one_of_another_issuer_are_401() {
    let issuer = issuer();
    let app = app(&issuer).await;
    let expired = issuer.user("ann").roles(["analyst"]).expires_in(0).token();
    let (status, body) = get(&app, "/reports", &expired).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (Status::Unauthorized, Some("The access token has expired."))
    );

    let stranger = Issuer::new().role("analyst", ["reports:read"]);
    let foreign = stranger.user("ann").roles(["analyst"]).token();
    let (status, body) = get(&app, "/reports", &foreign).await;
    assert_eq!((status, body["error"].as_str()), (Status::Unauthorized, Some("invalid_token")));
}

#[rocket::async_test]
async fn the_app_is_ready_and_its_answers_to_a_token_are_not_cached() {
    let issuer = issuer();
    let app = app(&issuer).await;
    let response = app.get("/ready").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.into_json::<Value>().await.unwrap()["status"], "ok");
    let token = issuer.user("ann").roles(["analyst"]).token();
    let response = app.get("/reports").header(bearer(&token)).dispatch().await;
    assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
}

/// RFC 6750 §3: a 403 to a bearer request names `insufficient_scope` with the body's description;
/// credentials of another scheme get 401 with a bare `Bearer`, as none do.
#[rocket::async_test]
async fn a_403_challenges_with_insufficient_scope_and_another_scheme_gets_a_bare_bearer() {
    let issuer = issuer();
    let app = app(&issuer).await;
    let analyst = issuer.user("ann").roles(["analyst"]).token();
    let response = app.post("/reports").header(bearer(&analyst)).json(&json!({"title": "Q3"})).dispatch().await;
    assert_eq!(response.status(), Status::Forbidden);
    assert_eq!(
        response.headers().get_one("WWW-Authenticate"),
        Some("Bearer error=\"insufficient_scope\", error_description=\"This requires the reports:write permission.\"")
    );
    assert_eq!(response.into_json::<Value>().await.unwrap()["error"], "insufficient_permissions");

    let basic = rocket::http::Header::new("Authorization", "Basic YTpi");
    let response = app.get("/reports").header(basic).dispatch().await;
    assert_eq!(
        (response.status(), response.headers().get_one("WWW-Authenticate")),
        (Status::Unauthorized, Some("Bearer"))
    );
    let body = response.into_json::<Value>().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], "The Authorization header must use the Bearer scheme.");
}
