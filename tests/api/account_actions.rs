//! Contract v3, delegation of account actions: disabling, enabling, deleting, ending the sessions
//! of or resetting the MFA of an account needs every permission the account holds, and `admin`
//! for an admin's; a client acts through its scope, bounded by what its creator holds now.

use crate::admin_support::*;
use crate::helpers::*;
use crate::oauth::post_form;
use crate::on_both_backends;
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};

/// The account actions of `/admin/users/<id>...`, each with the status of its success.
#[derive(Debug, Clone, Copy)]
enum Action {
    Disable,
    Enable,
    EndSessions,
    ResetMfa,
    Delete,
}

const ACTIONS: [Action; 5] = [Action::Disable, Action::Enable, Action::EndSessions, Action::ResetMfa, Action::Delete];

impl Action {
    async fn on<'a>(self, app: &'a TestApp, token: &str, target: &TestUser) -> LocalResponse<'a> {
        let path = format!("/admin/users/{}", target.id);
        match self {
            Action::Disable => patch_authed(app, &path, token, json!({"disabled": true})).await,
            Action::Enable => patch_authed(app, &path, token, json!({"disabled": false})).await,
            Action::EndSessions => app.delete_authed(&format!("{path}/sessions"), token).await,
            Action::ResetMfa => app.delete_authed(&format!("{path}/mfa"), token).await,
            Action::Delete => app.delete_authed(&path, token).await,
        }
    }

    fn success(self) -> Status {
        match self {
            Action::Disable | Action::Enable => Status::Ok,
            _ => Status::NoContent,
        }
    }
}

fn forbidden() -> (Status, String) {
    (Status::Forbidden, "insufficient_permissions".to_string())
}

async fn denied_grants(app: &TestApp, admin: &Tokens) -> usize {
    let audit = get_json(app, "/admin/audit?event=grant_denied", &admin.access).await;
    audit["events"].as_array().unwrap().len()
}

/// Every action on `target` as `token` is refused, audited, and leaves the account as it was.
async fn every_action_refused(app: &TestApp, admin: &Tokens, token: &str, target: &TestUser) {
    let before = get_json(app, &format!("/admin/users/{}", target.id), &admin.access).await;
    let denied = denied_grants(app, admin).await;
    for action in ACTIONS {
        assert_eq!(error_of(action.on(app, token, target).await).await, forbidden(), "{action:?} on {}", target.email);
    }
    assert_eq!(denied_grants(app, admin).await, denied + ACTIONS.len(), "every refusal is audited");
    let after = get_json(app, &format!("/admin/users/{}", target.id), &admin.access).await;
    assert_eq!(after, before, "{} is untouched", target.email);
}

/// Every action on a fresh plain user as `token` succeeds.
async fn every_action_allowed_on_a_plain_user(app: &TestApp, token: &str, email: &str) {
    let (plain, _) = user_with_roles(app, email, &["user"]).await;
    for action in ACTIONS {
        assert_eq!(action.on(app, token, &plain).await.status(), action.success(), "{action:?} on a plain user");
    }
}

/// A client created by `creator_token` with `permissions`, and a client-credentials token of it.
async fn client_with(app: &TestApp, creator_token: &str, permissions: &[&str]) -> (String, String, String) {
    let body = json!({"name": "helper", "permissions": permissions});
    let response = app.post_authed("/admin/clients", creator_token, body).await;
    assert_eq!(response.status(), Status::Created);
    let created: Value = response.into_json().await.unwrap();
    let (id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());
    let token = client_token(app, id, secret).await.expect("a client token");
    (id.to_owned(), secret.to_owned(), token)
}

async fn client_token(app: &TestApp, id: &str, secret: &str) -> Result<String, (Status, String)> {
    let form = [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)];
    let response = post_form(app, "/oauth/token", &form).await;
    if response.status() != Status::Ok {
        return Err(error_of(response).await);
    }
    let body: Value = response.into_json().await.unwrap();
    Ok(body["access_token"].as_str().unwrap().to_owned())
}

on_both_backends! {
    async fn a_helpdesk_acts_on_plain_users_but_not_on_admins_or_accounts_holding_more_than_it(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "helpdesk", &["users:read", "users:write", "sessions:revoke"]).await;
        create_role(&app, &admin, "auditor", &["audit:read"]).await;
        let (_, helpdesk) = user_with_roles(&app, "helpdesk@example.com", &["helpdesk"]).await;
        let (other_admin, _) = user_with_roles(&app, "second-admin@example.com", &["admin"]).await;
        let (auditor, _) = user_with_roles(&app, "auditor@example.com", &["user", "auditor"]).await;
        every_action_refused(&app, &admin, &helpdesk.access, &other_admin).await;
        every_action_refused(&app, &admin, &helpdesk.access, &auditor).await;
        // An admin the root admin disabled (a leaked password) stays disabled.
        let path = format!("/admin/users/{}", other_admin.id);
        assert_eq!(patch_authed(&app, &path, &admin.access, json!({"disabled": true})).await.status(), Status::Ok);
        every_action_refused(&app, &admin, &helpdesk.access, &other_admin).await;
        assert_eq!(get_json(&app, &path, &admin.access).await["disabled"], json!(true));
        every_action_allowed_on_a_plain_user(&app, &helpdesk.access, "plain@example.com").await;
        let (peer, _) = user_with_roles(&app, "peer@example.com", &["helpdesk"]).await;
        let response = Action::Disable.on(&app, &helpdesk.access, &peer).await;
        assert_eq!(response.status(), Status::Ok, "an account holding no more than the actor");
    }

    async fn a_helpdesk_cannot_change_the_roles_of_an_account_holding_more_than_it(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "helpdesk", &["users:read", "users:write"]).await;
        create_role(&app, &admin, "auditor", &["audit:read"]).await;
        create_role(&app, &admin, "reader", &["users:read"]).await;
        let (_, helpdesk) = user_with_roles(&app, "helpdesk@example.com", &["helpdesk"]).await;
        let (auditor, _) = user_with_roles(&app, "auditor@example.com", &["user", "auditor"]).await;
        let roles = json!({"roles": ["user", "auditor", "reader"]});
        let path = format!("/admin/users/{}/roles", auditor.id);
        let response = app.put_authed(&path, &helpdesk.access, roles).await;
        assert_eq!(error_of(response).await, forbidden(), "reader alone is within reach, the account is not");
    }

    async fn a_client_with_users_write_acts_only_on_accounts_within_its_scope(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "auditor", &["audit:read"]).await;
        let (_, _, token) = client_with(&app, &admin.access, &["users:read", "users:write", "sessions:revoke"]).await;
        let (other_admin, _) = user_with_roles(&app, "second-admin@example.com", &["admin"]).await;
        let (auditor, _) = user_with_roles(&app, "auditor@example.com", &["user", "auditor"]).await;
        every_action_refused(&app, &admin, &token, &other_admin).await;
        every_action_refused(&app, &admin, &token, &auditor).await;
        every_action_allowed_on_a_plain_user(&app, &token, "plain@example.com").await;
        // Only users:write: no admin, however the request is made.
        let (_, _, narrow) = client_with(&app, &admin.access, &["users:write"]).await;
        for action in [Action::Disable, Action::ResetMfa, Action::Delete] {
            assert_eq!(error_of(action.on(&app, &narrow, &other_admin).await).await, forbidden(), "{action:?}");
        }
        let (plain, _) = user_with_roles(&app, "plain2@example.com", &["user"]).await;
        assert_eq!(Action::Disable.on(&app, &narrow, &plain).await.status(), Status::Ok);
    }

    async fn a_demoted_creators_clients_lose_what_the_creator_lost(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        create_role(&app, &admin, "manager", &["users:read", "users:write", "clients:write"]).await;
        let (manager_user, manager) = user_with_roles(&app, "manager@example.com", &["manager"]).await;
        let (id, secret, token) = client_with(&app, &manager.access, &["users:write"]).await;
        let (plain, _) = user_with_roles(&app, "plain@example.com", &["user"]).await;
        assert_eq!(Action::Disable.on(&app, &token, &plain).await.status(), Status::Ok, "before the demotion");
        let roles = format!("/admin/users/{}/roles", manager_user.id);
        assert_eq!(app.put_authed(&roles, &admin.access, json!({"roles": ["user"]})).await.status(), Status::Ok);
        // The token issued before the demotion is cut off (tests/api/demotion.rs).
        let (status, code) = error_of(Action::Enable.on(&app, &token, &plain).await).await;
        assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_token"));
        // A new token holds only what the creator still holds: nothing.
        let fresh = client_token(&app, &id, &secret).await.expect("the client still authenticates");
        let (status, _) = error_of(Action::Enable.on(&app, &fresh, &plain).await).await;
        assert_eq!(status, Status::Forbidden);
        let scoped = [("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret), ("scope", "users:write")];
        let (status, code) = error_of(post_form(&app, "/oauth/token", &scoped).await).await;
        assert_eq!((status, code.as_str()), (Status::BadRequest, "invalid_scope"));
        // Promoted again, the creator's clients have their permissions back.
        assert_eq!(app.put_authed(&roles, &admin.access, json!({"roles": ["manager"]})).await.status(), Status::Ok);
        let restored = client_token(&app, &id, &secret).await.unwrap();
        assert_eq!(Action::Enable.on(&app, &restored, &plain).await.status(), Status::Ok);
    }
}
