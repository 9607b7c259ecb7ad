//! Contract v2, delegation and taking power away: nobody grants what they do not hold, and a
//! removed role stops working for tokens already issued — at once here, within a second elsewhere.

use crate::admin_support::*;
use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::{json, Value};

fn forbidden() -> (Status, String) {
    (Status::Forbidden, "insufficient_permissions".to_string())
}

async fn set_roles<'a>(
    app: &'a TestApp,
    token: &str,
    user: &TestUser,
    roles: Value,
) -> rocket::local::asynchronous::LocalResponse<'a> {
    app.put_authed(&format!("/admin/users/{}/roles", user.id), token, json!({ "roles": roles })).await
}

async fn denied_grants(app: &TestApp, admin: &Tokens) -> usize {
    let audit = get_json(app, "/admin/audit?event=grant_denied", &admin.access).await;
    audit["events"].as_array().unwrap().len()
}

/// Waits until `GET path` on `app` answers `status` (see [`eventually`]).
async fn eventually_answers(app: &TestApp, path: &str, token: &str, status: Status) {
    eventually(&format!("GET {path} answers {status}"), async || app.get_authed(path, token).await.status() == status)
        .await;
}

on_both_backends! {
    async fn a_users_write_holder_cannot_make_itself_admin(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "manager", &["users:read", "users:write"]).await;
        let (manager, tokens) = user_with_roles(&app, "manager@example.com", &["manager"]).await;
        let response = set_roles(&app, &tokens.access, &manager, json!(["manager", "admin"])).await;
        assert_eq!(error_of(response).await, forbidden());
        let me = get_json(&app, &format!("/admin/users/{}", manager.id), &admin.access).await;
        assert_eq!(me["roles"], json!(["manager"]), "nothing changed");
        assert_eq!(denied_grants(&app, &admin).await, 1, "the attempt is audited");
    }

    async fn a_users_write_holder_assigns_and_removes_only_roles_within_its_permissions(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "manager", &["users:read", "users:write"]).await;
        create_role(&app, &admin, "reader", &["users:read"]).await;
        create_role(&app, &admin, "auditor", &["audit:read"]).await;
        let (_, manager) = user_with_roles(&app, "manager@example.com", &["manager"]).await;
        let (target, _) = user_with_roles(&app, "target@example.com", &["user"]).await;
        let response = set_roles(&app, &manager.access, &target, json!(["user", "reader"])).await;
        assert_eq!(response.status(), Status::Ok, "reader is within the manager's permissions");
        let response = set_roles(&app, &manager.access, &target, json!(["user"])).await;
        assert_eq!(response.status(), Status::Ok, "and so is taking it away");
        let (auditor, _) = user_with_roles(&app, "auditor@example.com", &["user", "auditor"]).await;
        let response = set_roles(&app, &manager.access, &auditor, json!(["user"])).await;
        assert_eq!(error_of(response).await, forbidden(), "removing auditor touches audit:read");
        let (other, _) = user_with_roles(&app, "other@example.com", &["user"]).await;
        let response = set_roles(&app, &manager.access, &other, json!(["user", "auditor"])).await;
        assert_eq!(error_of(response).await, forbidden(), "granting audit:read");
    }

    async fn only_an_admin_assigns_or_removes_admin_even_for_a_holder_of_every_permission(backend) {
        let app = TestApp::new(backend).await;
        let (admin_user, admin) = with_admin(&app).await;
        let catalogue = ["users:read", "users:write", "roles:read", "roles:write", "sessions:read", "sessions:revoke", "audit:read"];
        create_role(&app, &admin, "almighty", &catalogue).await;
        let (mighty, tokens) = user_with_roles(&app, "mighty@example.com", &["almighty"]).await;
        let response = set_roles(&app, &tokens.access, &mighty, json!(["almighty", "admin"])).await;
        assert_eq!(error_of(response).await, forbidden());
        user_with_roles(&app, "second@example.com", &["admin"]).await;
        let response = set_roles(&app, &tokens.access, &admin_user, json!(["user"])).await;
        assert_eq!(error_of(response).await, forbidden(), "removing admin");
        let response = set_roles(&app, &admin.access, &mighty, json!(["almighty", "admin"])).await;
        assert_eq!(response.status(), Status::Ok, "an admin may");
    }

    async fn a_roles_write_holder_creates_and_changes_roles_only_within_its_permissions(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "rolesmith", &["roles:read", "roles:write"]).await;
        create_role(&app, &admin, "auditor", &["audit:read"]).await;
        let (_, smith) = user_with_roles(&app, "smith@example.com", &["rolesmith"]).await;
        let enlarge = json!({"permissions": ["roles:read", "roles:write", "users:write"]});
        assert_eq!(error_of(app.put_authed("/admin/roles/rolesmith", &smith.access, enlarge).await).await, forbidden());
        let into_user = json!({"permissions": ["audit:read"]});
        assert_eq!(error_of(app.put_authed("/admin/roles/user", &smith.access, into_user).await).await, forbidden());
        let beyond = json!({"name": "spy", "description": "", "permissions": ["audit:read"]});
        assert_eq!(error_of(app.post_authed("/admin/roles", &smith.access, beyond).await).await, forbidden());
        let above = json!({"description": "renamed", "permissions": []});
        assert_eq!(error_of(app.put_authed("/admin/roles/auditor", &smith.access, above).await).await, forbidden(), "a role above the actor");
        assert_eq!(error_of(app.delete_authed("/admin/roles/auditor", &smith.access).await).await, forbidden());
        let within = json!({"name": "viewer", "description": "", "permissions": ["roles:read"]});
        assert_eq!(app.post_authed("/admin/roles", &smith.access, within).await.status(), Status::Created);
        let roles = get_json(&app, "/admin/roles", &admin.access).await;
        let smith_role = roles["roles"].as_array().unwrap().iter().find(|r| r["name"] == "rolesmith").unwrap().clone();
        assert_eq!(smith_role["permissions"], json!(["roles:read", "roles:write"]), "unchanged");
        assert_eq!(denied_grants(&app, &admin).await, 5);
    }

    async fn a_demoted_admins_token_is_refused_at_once_and_a_refresh_carries_the_new_roles(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let (demoted, old) = user_with_roles(&app, "demoted@example.com", &["admin"]).await;
        assert_eq!(app.get_authed("/admin/users", &old.access).await.status(), Status::Ok);
        assert_eq!(set_roles(&app, &admin.access, &demoted, json!(["user"])).await.status(), Status::Ok);
        let (status, code) = error_of(app.get_authed("/admin/users", &old.access).await).await;
        assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_token"));
        let response = set_roles(&app, &old.access, &demoted, json!(["admin"])).await;
        assert_eq!(response.status(), Status::Unauthorized, "it cannot re-promote itself");
        let fresh = tokens(app.refresh_response(&old.refresh).await).await;
        assert_eq!(app.me_status(&fresh.access).await, Status::Ok);
        assert_eq!(app.get_authed("/admin/users", &fresh.access).await.status(), Status::Forbidden);
        assert_eq!(get_json(&app, "/users/me", &fresh.access).await["roles"], json!(["user"]));
        assert_eq!(app.get_authed("/admin/users", &admin.access).await.status(), Status::Ok, "others are untouched");
    }

    async fn a_promotion_keeps_existing_tokens_working(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let before = app.login(&user).await;
        assert_eq!(set_roles(&app, &admin.access, &user, json!(["user", "admin"])).await.status(), Status::Ok);
        assert_eq!(app.me_status(&before.access).await, Status::Ok);
        let after = tokens(app.refresh_response(&before.refresh).await).await;
        assert_eq!(app.get_authed("/admin/users", &after.access).await.status(), Status::Ok);
    }

    async fn a_demotion_reaches_another_instance_within_a_second(backend) {
        let a = TestApp::new(backend).await;
        let b = a.second_instance(|b| b).await;
        let (_, admin) = with_admin(&a).await;
        let (demoted, old) = user_with_roles(&a, "demoted@example.com", &["admin"]).await;
        assert_eq!(b.get_authed("/admin/users", &old.access).await.status(), Status::Ok);
        assert_eq!(set_roles(&a, &admin.access, &demoted, json!(["user"])).await.status(), Status::Ok);
        eventually_answers(&b, "/admin/users", &old.access, Status::Unauthorized).await;
        let late = a.second_instance(|b| b).await;
        assert_eq!(late.get_authed("/admin/users", &old.access).await.status(), Status::Unauthorized, "an instance started later knows");
    }
}
