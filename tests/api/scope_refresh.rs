//! Down-scoped sessions at a refresh: the scope the session was first granted is what a refresh
//! may narrow and never widen (RFC 6749 §6), a refused refresh spends nothing, and what a
//! down-scoped token grants follows the user's roles at the time of each request.

use crate::admin_support::*;
use crate::helpers::*;
use crate::mfa_support::claims;
use crate::oauth::post_form;
use crate::on_both_backends;
use crate::scopes::{invalid_scope, login_scoped, scoped_tokens};
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};

async fn refresh_scoped<'a>(app: &'a TestApp, refresh: &str, scope: Option<&str>) -> LocalResponse<'a> {
    let mut body = json!({"refresh_token": refresh});
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    app.post("/auth/refresh", body).await
}

/// A refresh that must succeed.
async fn refreshed(app: &TestApp, refresh: &str, scope: Option<&str>) -> Tokens {
    let response = refresh_scoped(app, refresh, scope).await;
    assert_eq!(response.status(), Status::Ok, "refresh with scope {scope:?}");
    tokens(response).await
}

on_both_backends! {
    async fn a_refresh_may_narrow_the_scope_never_widen_it_and_a_refused_one_spends_nothing(backend) {
        // No grace: a token spent by the refused request would be reuse at its next use.
        let app = TestApp::builder(backend).with_config("reuse_grace", 0).build().await;
        let (admin, _) = with_admin(&app).await;
        let first = scoped_tokens(&app, &admin, "users:read audit:read openid").await;
        for wider in ["users:read roles:read", "audit:read profile", "users:write"] {
            assert_eq!(error_of(refresh_scoped(&app, &first.refresh, Some(wider)).await).await, invalid_scope(), "{wider}");
        }
        let narrowed = refreshed(&app, &first.refresh, Some("audit:read")).await;
        assert_eq!((&narrowed.body["scope"], &claims(&narrowed.access)["scope"]), (&json!("audit:read"), &json!("audit:read")));
        assert_eq!(app.get_authed("/admin/audit", &narrowed.access).await.status(), Status::Ok);
        assert_eq!(app.get_authed("/admin/users", &narrowed.access).await.status(), Status::Forbidden);
        // Measured against the scope first granted: without a scope, that scope again.
        let again = refreshed(&app, &narrowed.refresh, None).await;
        assert_eq!(again.body["scope"], "users:read audit:read openid");
        assert_eq!(app.get_authed("/admin/users", &again.access).await.status(), Status::Ok);

        // The token endpoint: the same rules, and the same token still exchangeable.
        let wider = [("grant_type", "refresh_token"), ("refresh_token", again.refresh.as_str()), ("scope", "roles:read")];
        assert_eq!(error_of(post_form(&app, "/oauth/token", &wider).await).await, invalid_scope());
        let narrower = [("grant_type", "refresh_token"), ("refresh_token", again.refresh.as_str()), ("scope", "users:read")];
        let response = post_form(&app, "/oauth/token", &narrower).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.into_json::<Value>().await.unwrap()["scope"], "users:read");
    }

    async fn a_session_without_a_scope_may_name_held_permissions_at_a_refresh_for_that_token(backend) {
        let app = TestApp::new(backend).await;
        let (_, full) = with_admin(&app).await;
        let user = app.with_user().await;
        let plain = app.login(&user).await;
        assert_eq!(error_of(refresh_scoped(&app, &plain.refresh, Some("users:read")).await).await, invalid_scope());
        let narrowed = refreshed(&app, &full.refresh, Some("users:read")).await;
        assert_eq!(narrowed.body["scope"], "users:read");
        assert_eq!(app.get_authed("/admin/audit", &narrowed.access).await.status(), Status::Forbidden);
        let unscoped = refreshed(&app, &narrowed.refresh, None).await;
        assert_eq!(unscoped.body.get("scope"), None, "the session itself was never down-scoped");
        assert_eq!(app.get_authed("/admin/audit", &unscoped.access).await.status(), Status::Ok);
    }

    async fn a_down_scoped_token_follows_the_users_roles_of_now_and_its_scope_keeps_naming_what_was_lost(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "auditor", &["audit:read", "users:read"]).await;
        let (auditor, _) = user_with_roles(&app, "audrey@example.com", &["user", "auditor"]).await;
        let scoped = scoped_tokens(&app, &auditor, "audit:read").await;
        assert_eq!(app.get_authed("/admin/audit", &scoped.access).await.status(), Status::Ok);
        assert_eq!(app.get_authed("/admin/users", &scoped.access).await.status(), Status::Forbidden, "held, not in scope");

        // A permission taken from the role: refused at once, though the token names the role.
        let body = json!({"description": "auditor", "permissions": ["users:read"]});
        assert_eq!(app.put_authed("/admin/roles/auditor", &admin.access, body).await.status(), Status::Ok);
        assert_eq!(app.get_authed("/admin/audit", &scoped.access).await.status(), Status::Forbidden);
        let body = json!({"description": "auditor", "permissions": ["audit:read", "users:read"]});
        assert_eq!(app.put_authed("/admin/roles/auditor", &admin.access, body).await.status(), Status::Ok);
        assert_eq!(app.get_authed("/admin/audit", &scoped.access).await.status(), Status::Ok);

        // The role taken from the user: the token naming it is refused.
        let path = format!("/admin/users/{}/roles", auditor.id);
        assert_eq!(app.put_authed(&path, &admin.access, json!({"roles": ["user"]})).await.status(), Status::Ok);
        let refused = app.get_authed("/admin/audit", &scoped.access).await;
        assert_eq!(error_of(refused).await, (Status::Unauthorized, "invalid_token".into()));
        // A refresh does not fail for it: the scope still names the permission, which grants nothing.
        let after = refreshed(&app, &scoped.refresh, Some("audit:read")).await;
        assert_eq!((&after.body["scope"], &claims(&after.access)["roles"]), (&json!("audit:read"), &json!(["user"])));
        let audit = app.get_authed("/admin/audit", &after.access).await;
        assert_eq!(error_of(audit).await, (Status::Forbidden, "insufficient_permissions".into()));
        // But a new login cannot ask for it.
        assert_eq!(error_of(login_scoped(&app, &auditor, "audit:read").await).await, invalid_scope());
        // Given back, it grants again, within the scope.
        assert_eq!(app.put_authed(&path, &admin.access, json!({"roles": ["user", "auditor"]})).await.status(), Status::Ok);
        let regained = refreshed(&app, &after.refresh, None).await;
        assert_eq!(app.get_authed("/admin/audit", &regained.access).await.status(), Status::Ok);
        assert_eq!(app.get_authed("/admin/users", &regained.access).await.status(), Status::Forbidden);
    }
}
