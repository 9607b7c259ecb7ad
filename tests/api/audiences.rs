//! Audiences (RFC 8707 resource indicators): a token requested for a resource server carries
//! that server's identifier as `aud` and nothing else, so the server cannot replay it against
//! Portcullis; an unknown resource is 400 `invalid_target` before anything about the account;
//! a session started for a resource stays bound to it.

use crate::admin_support::*;
use crate::helpers::*;
use crate::mfa_support::{claims, enrol, verify};
use crate::oauth::post_form;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::{json, Value};

const REPORTS: &str = "https://reports.example";
const BILLING: &str = "https://billing.example";
const UNKNOWN: &str = "https://unknown.example";

async fn app_with_resources(backend: Backend) -> TestApp {
    TestApp::builder(backend).with_config("resources", json!([REPORTS, BILLING])).build().await
}

async fn login_for<'a>(
    app: &'a TestApp,
    user: &TestUser,
    resource: &str,
) -> rocket::local::asynchronous::LocalResponse<'a> {
    app.post("/auth/login", json!({"email": user.email, "password": user.password, "resource": resource})).await
}

async fn refresh_for<'a>(
    app: &'a TestApp,
    refresh: &str,
    resource: Option<&str>,
) -> rocket::local::asynchronous::LocalResponse<'a> {
    let mut body = json!({"refresh_token": refresh});
    if let Some(resource) = resource {
        body["resource"] = json!(resource);
    }
    app.post("/auth/refresh", body).await
}

fn aud(tokens: &Tokens) -> Value {
    claims(&tokens.access)["aud"].clone()
}

fn invalid_target() -> (Status, String) {
    (Status::BadRequest, "invalid_target".to_owned())
}

on_both_backends! {
    async fn a_token_for_a_listed_resource_is_for_it_alone_and_portcullis_refuses_it(backend) {
        let app = app_with_resources(backend).await;
        let (admin, portcullis) = with_admin(&app).await;
        assert_eq!(aud(&portcullis), json!("portcullis"), "without resource: Portcullis's own audience");
        assert_eq!(app.me_status(&portcullis.access).await, Status::Ok);

        let response = login_for(&app, &admin, REPORTS).await;
        assert_eq!(response.status(), Status::Ok);
        let reports = tokens(response).await;
        assert_eq!(aud(&reports), json!(REPORTS), "aud is exactly the resource, a single string");
        let me = app.get_authed("/users/me", &reports.access).await;
        assert_eq!(error_of(me).await, (Status::Unauthorized, "invalid_token".to_owned()));
        // The replay of issue 21: the resource server holding an admin's token cannot use it here.
        let replayed = app.post_authed("/admin/clients", &reports.access, json!({"name": "replayed", "permissions": []})).await;
        assert_eq!(error_of(replayed).await, (Status::Unauthorized, "invalid_token".to_owned()));
    }

    async fn an_unknown_resource_is_invalid_target_before_credentials_and_throttling(backend) {
        let app = TestApp::builder(backend)
            .with_config("resources", json!([REPORTS]))
            .with_config("throttle_pair_failures", 2)
            .build()
            .await;
        let user = app.with_user().await;
        assert_eq!(error_of(login_for(&app, &user, UNKNOWN).await).await, invalid_target());
        let wrong = app.post("/auth/login", json!({"email": user.email, "password": "wrong password!", "resource": UNKNOWN})).await;
        assert_eq!(error_of(wrong).await, invalid_target(), "before the password is looked at");
        for _ in 0..2 {
            assert_eq!(app.login_response(&user.email, "wrong password!").await.status(), Status::Unauthorized);
        }
        assert_eq!(app.login_response(&user.email, &user.password).await.status(), Status::TooManyRequests);
        assert_eq!(error_of(login_for(&app, &user, UNKNOWN).await).await, invalid_target(), "before throttling");
        let without_list = TestApp::new(backend).await;
        let user = without_list.with_user().await;
        assert_eq!(error_of(login_for(&without_list, &user, REPORTS).await).await, invalid_target(), "resources default to none");
    }

    async fn a_session_started_for_a_resource_stays_bound_to_it(backend) {
        let app = app_with_resources(backend).await;
        let user = app.with_user().await;
        let first = tokens(login_for(&app, &user, REPORTS).await).await;
        assert_eq!(error_of(refresh_for(&app, &first.refresh, Some(BILLING)).await).await, invalid_target());
        assert_eq!(error_of(refresh_for(&app, &first.refresh, Some(UNKNOWN)).await).await, invalid_target());
        // A refused refresh spends nothing: the same token is still the one to exchange.
        let omitted = refresh_for(&app, &first.refresh, None).await;
        assert_eq!(omitted.status(), Status::Ok);
        let omitted = tokens(omitted).await;
        assert_eq!(aud(&omitted), json!(REPORTS), "leaving it out keeps the session's resource");
        let repeated = tokens(refresh_for(&app, &omitted.refresh, Some(REPORTS)).await).await;
        assert_eq!(aud(&repeated), json!(REPORTS));
        assert_eq!(app.me_status(&repeated.access).await, Status::Unauthorized);
    }

    async fn revoking_an_access_token_for_a_resource_ends_its_session(backend) {
        let app = app_with_resources(backend).await;
        let user = app.with_user().await;
        let reports = tokens(login_for(&app, &user, REPORTS).await).await;
        assert_eq!(post_form(&app, "/oauth/revoke", &[("token", reports.access.as_str())]).await.status(), Status::Ok);
        let refused = refresh_for(&app, &reports.refresh, None).await;
        assert_eq!(error_of(refused).await, (Status::Unauthorized, "invalid_grant".to_owned()), "RFC 7009: the session ended");
    }

    async fn a_session_without_a_resource_may_name_one_at_a_refresh_for_that_token(backend) {
        let app = app_with_resources(backend).await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        let for_billing = refresh_for(&app, &first.refresh, Some(BILLING)).await;
        assert_eq!(for_billing.status(), Status::Ok);
        let for_billing = tokens(for_billing).await;
        assert_eq!(aud(&for_billing), json!(BILLING));
        assert_eq!(app.me_status(&for_billing.access).await, Status::Unauthorized);
        let own = tokens(refresh_for(&app, &for_billing.refresh, None).await).await;
        assert_eq!(aud(&own), json!("portcullis"), "the session itself stays unbound");
        assert_eq!(app.me_status(&own.access).await, Status::Ok);
        let for_reports = tokens(refresh_for(&app, &own.refresh, Some(REPORTS)).await).await;
        assert_eq!(aud(&for_reports), json!(REPORTS));
    }

    async fn every_grant_of_the_token_endpoint_takes_a_resource(backend) {
        let app = app_with_resources(backend).await;
        let (admin, admin_tokens) = with_admin(&app).await;
        let password = |resource: &'static str| {
            [("grant_type", "password"), ("username", admin.email.as_str()), ("password", admin.password.as_str()), ("resource", resource)]
        };
        let response = post_form(&app, "/oauth/token", &password(REPORTS)).await;
        assert_eq!(response.status(), Status::Ok);
        let granted = tokens(response).await;
        assert_eq!(aud(&granted), json!(REPORTS));
        assert_eq!(error_of(post_form(&app, "/oauth/token", &password(UNKNOWN)).await).await, invalid_target());

        let other = [("grant_type", "refresh_token"), ("refresh_token", granted.refresh.as_str()), ("resource", BILLING)];
        assert_eq!(error_of(post_form(&app, "/oauth/token", &other).await).await, invalid_target());
        let same = [("grant_type", "refresh_token"), ("refresh_token", granted.refresh.as_str()), ("resource", REPORTS)];
        let refreshed = tokens(post_form(&app, "/oauth/token", &same).await).await;
        assert_eq!(aud(&refreshed), json!(REPORTS));

        let created = app.post_authed("/admin/clients", &admin_tokens.access, json!({"name": "cron", "permissions": ["users:read"]})).await;
        assert_eq!(created.status(), Status::Created);
        let created: Value = created.into_json().await.unwrap();
        let (id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());
        let client = |resource: &'static str| {
            [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret), ("resource", resource)]
        };
        let response = post_form(&app, "/oauth/token", &client(BILLING)).await;
        assert_eq!(response.status(), Status::Ok);
        let body: Value = response.into_json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(claims(token)["aud"], json!(BILLING));
        let listed = app.get_authed("/admin/users", token).await;
        assert_eq!(error_of(listed).await, (Status::Unauthorized, "invalid_token".to_owned()), "users:read, but not here");
        assert_eq!(error_of(post_form(&app, "/oauth/token", &client(UNKNOWN)).await).await, invalid_target());
    }

    async fn the_second_step_of_an_mfa_login_issues_tokens_for_the_resource_of_the_first(backend) {
        let app = app_with_resources(backend).await;
        let user = app.with_user().await;
        let authenticator = enrol(&app, &app.login(&user).await).await;
        let response = login_for(&app, &user, REPORTS).await;
        assert_eq!(response.status(), Status::Forbidden, "mfa_required");
        let body: Value = response.into_json().await.unwrap();
        let verified = verify(&app, body["mfa_token"].as_str().unwrap(), &authenticator.code(&app, 0)).await;
        assert_eq!(verified.status(), Status::Ok);
        let reports = tokens(verified).await;
        assert_eq!(aud(&reports), json!(REPORTS), "the resource named with the password");
        assert_eq!(app.me_status(&reports.access).await, Status::Unauthorized, "not a token for Portcullis");
        let refreshed = tokens(refresh_for(&app, &reports.refresh, None).await).await;
        assert_eq!(aud(&refreshed), json!(REPORTS), "the session is bound to it");

        app.clock.advance(30);
        let grant = [("grant_type", "password"), ("username", user.email.as_str()), ("password", user.password.as_str()), ("resource", BILLING)];
        let body: Value = post_form(&app, "/oauth/token", &grant).await.into_json().await.unwrap();
        assert_eq!(body["error"], "mfa_required");
        let verified = verify(&app, body["mfa_token"].as_str().unwrap(), &authenticator.code(&app, 0)).await;
        assert_eq!(aud(&tokens(verified).await), json!(BILLING), "the password grant's resource too");
    }
}
