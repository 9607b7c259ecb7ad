//! Down-scoped sessions at sign-in: a `scope` at `/auth/login`, in the password grant and
//! through the MFA second step gives tokens that carry it and grant only the permissions it names
//! of those the user's roles hold; a permission the user lacks is 400 `invalid_scope`, told only
//! to whoever has the password (and second factor). Refreshes are in `scope_refresh.rs`.

use crate::admin_support::*;
use crate::clients::create_client;
use crate::helpers::*;
use crate::introspection::introspect;
use crate::mfa_support::{claims, enrol, verify};
use crate::oauth::post_form;
use crate::on_both_backends;
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};

/// `POST /auth/login` with a `scope`.
pub async fn login_scoped<'a>(app: &'a TestApp, user: &TestUser, scope: &str) -> LocalResponse<'a> {
    app.post("/auth/login", json!({"email": user.email, "password": user.password, "scope": scope})).await
}

/// [`login_scoped`], which must succeed.
pub async fn scoped_tokens(app: &TestApp, user: &TestUser, scope: &str) -> Tokens {
    let response = login_scoped(app, user, scope).await;
    assert_eq!(response.status(), Status::Ok, "login of {} with scope {scope:?}", user.email);
    tokens(response).await
}

pub fn invalid_scope() -> (Status, String) {
    (Status::BadRequest, "invalid_scope".to_owned())
}

on_both_backends! {
    async fn a_scoped_login_carries_its_scope_and_grants_only_the_permissions_it_names(backend) {
        let app = TestApp::new(backend).await;
        let (admin, full) = with_admin(&app).await;
        assert_eq!(full.body.get("scope"), None, "no scope asked, none answered");
        assert_eq!(claims(&full.access).get("scope"), None);

        let scoped = scoped_tokens(&app, &admin, "users:read openid").await;
        assert_eq!(scoped.body["scope"], "users:read openid");
        assert_eq!(claims(&scoped.access)["scope"], "users:read openid");
        assert_eq!(claims(&scoped.access)["roles"], json!(["admin"]), "the roles stay what they are");
        assert_eq!(app.get_authed("/admin/users", &scoped.access).await.status(), Status::Ok);
        let audit = app.get_authed("/admin/audit", &scoped.access).await;
        assert_eq!(error_of(audit).await, (Status::Forbidden, "insufficient_permissions".into()));
        assert_eq!(app.get_authed("/admin/audit", &full.access).await.status(), Status::Ok);
        let token = get_json(&app, "/users/me/token", &scoped.access).await;
        assert_eq!(token["scope"], json!(["users:read", "openid"]));
        assert_eq!(app.me_status(&scoped.access).await, Status::Ok, "the account's own endpoints need no permission");
    }

    async fn a_down_scoped_admin_grants_only_within_its_scope_and_never_the_admin_role(backend) {
        let app = TestApp::new(backend).await;
        let (admin, full) = with_admin(&app).await;
        let other = app.with_user().await;
        let scoped = scoped_tokens(&app, &admin, "users:read users:write").await;
        let path = format!("/admin/users/{}/roles", other.id);
        let promote = app.put_authed(&path, &scoped.access, json!({"roles": ["admin"]})).await;
        assert_eq!(error_of(promote).await, (Status::Forbidden, "insufficient_permissions".into()));
        create_role(&app, &full, "auditor", &["audit:read"]).await;
        let beyond = app.put_authed(&path, &scoped.access, json!({"roles": ["user", "auditor"]})).await;
        assert_eq!(error_of(beyond).await, (Status::Forbidden, "insufficient_permissions".into()), "audit:read is not in scope");
        assert_eq!(app.put_authed(&path, &full.access, json!({"roles": ["admin"]})).await.status(), Status::Ok);
    }

    async fn a_permission_the_user_lacks_or_that_does_not_exist_is_invalid_scope_after_the_password(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 2).build().await;
        let (admin, _) = with_admin(&app).await;
        let user = app.with_user().await;
        assert_eq!(error_of(login_scoped(&app, &user, "users:read").await).await, invalid_scope());
        assert_eq!(error_of(login_scoped(&app, &admin, "reports:read").await).await, invalid_scope(), "no such permission");
        assert_eq!(error_of(login_scoped(&app, &admin, "users:read\"x").await).await, invalid_scope(), "malformed");
        let wrong = app.post("/auth/login", json!({"email": user.email, "password": "wrong password!", "scope": "users:read"})).await;
        assert_eq!(error_of(wrong).await, (Status::Unauthorized, "invalid_credentials".into()), "the password comes first");
        // A refused scope is no failed login: the right password never locks the account.
        for _ in 0..3 {
            assert_eq!(error_of(login_scoped(&app, &user, "audit:read").await).await, invalid_scope());
        }
        assert_eq!(app.login_response(&user.email, &user.password).await.status(), Status::Ok);

        let grant = |scope: &'static str| {
            let (app, email) = (&app, user.email.clone());
            async move {
                let form = [("grant_type", "password"), ("username", &email), ("password", PASSWORD), ("scope", scope)];
                post_form(app, "/oauth/token", &form).await
            }
        };
        assert_eq!(error_of(grant("users:read").await).await, invalid_scope());
        let granted = grant("openid profile address").await;
        assert_eq!(granted.status(), Status::Ok, "OpenID values are no permissions; unknown ones are dropped");
        let granted: Value = granted.into_json().await.unwrap();
        assert_eq!(granted["scope"], "openid profile");
        assert_eq!(claims(granted["access_token"].as_str().unwrap())["scope"], "openid profile");
    }

    async fn the_scope_of_the_password_step_carries_through_the_second_factor(backend) {
        let app = TestApp::new(backend).await;
        let (admin, full) = with_admin(&app).await;
        let authenticator = enrol(&app, &full).await;
        let step = |scope: &'static str| {
            let (app, admin) = (&app, admin.clone());
            async move {
                let body: Value = login_scoped(app, &admin, scope).await.into_json().await.unwrap();
                assert_eq!(body["error"], "mfa_required", "the second factor comes before the scope");
                body["mfa_token"].as_str().unwrap().to_owned()
            }
        };
        let mfa_token = step("users:read").await;
        let response = verify(&app, &mfa_token, &authenticator.code(&app, 0)).await;
        assert_eq!(response.status(), Status::Ok);
        let scoped = tokens(response).await;
        assert_eq!(scoped.body["scope"], "users:read");
        assert_eq!(claims(&scoped.access)["amr"], json!(["pwd", "otp", "mfa"]));
        assert_eq!(claims(&scoped.access)["scope"], "users:read");
        assert_eq!(app.get_authed("/admin/users", &scoped.access).await.status(), Status::Ok);
        assert_eq!(app.get_authed("/admin/audit", &scoped.access).await.status(), Status::Forbidden);

        app.clock.advance(30);
        let unknown = step("reports:read").await;
        let refused = verify(&app, &unknown, &authenticator.code(&app, 0)).await;
        assert_eq!(error_of(refused).await, invalid_scope(), "judged once the code is right");
    }

    async fn introspection_answers_the_scope_of_a_down_scoped_sessions_tokens(backend) {
        let app = TestApp::new(backend).await;
        let (admin, full) = with_admin(&app).await;
        let (id, secret) = create_client(&app, &full.access, &["tokens:introspect"]).await;
        let scoped = scoped_tokens(&app, &admin, "openid users:read").await;
        for token in [&scoped.access, &scoped.refresh] {
            let answer = introspect(&app, &id, &secret, token).await;
            assert_eq!((&answer["active"], &answer["scope"]), (&json!(true), &json!("openid users:read")));
        }
        for token in [&full.access, &full.refresh] {
            assert_eq!(introspect(&app, &id, &secret, token).await.get("scope"), None, "no scope, none answered");
        }
    }

    async fn the_metadata_lists_the_openid_values_and_every_permission_as_scopes(backend) {
        let app = TestApp::builder(backend).with_config("permissions", json!(["reports:read"])).build().await;
        let metadata: Value = app.client.get("/.well-known/oauth-authorization-server").dispatch().await.into_json().await.unwrap();
        let scopes = metadata["scopes_supported"].as_array().unwrap();
        for scope in ["openid", "email", "profile", "offline_access", "users:read", "tokens:introspect", "reports:read"] {
            assert!(scopes.contains(&json!(scope)), "{scope} in {scopes:?}");
        }
    }
}

#[tokio::test]
async fn the_openapi_document_shows_scope_at_login_and_refresh_and_in_the_token_response() {
    let app = TestApp::new(Backend::Sqlite).await;
    let document: Value = app.client.get("/openapi.json").dispatch().await.into_json().await.unwrap();
    let schemas = &document["components"]["schemas"];
    for schema in ["LoginBody", "RefreshBody", "TokenResponse"] {
        assert!(schemas[schema]["properties"]["scope"].is_object(), "{schema}: {}", schemas[schema]);
    }
}
