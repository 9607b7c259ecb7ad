//! `auth.mfa_required_roles`: holders of such a role reach `/admin` only with a token whose login
//! used MFA; enrolment stays reachable.

use crate::admin_support::*;
use crate::helpers::*;
use crate::mfa_support::*;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::{json, Value};

on_both_backends! {
    async fn a_required_role_without_mfa_gets_mfa_required_on_every_admin_endpoint(backend) {
        let app = TestApp::builder(backend).with_config("mfa_required_roles", vec!["admin"]).build().await;
        let (admin_user, admin) = with_admin(&app).await;
        let target = app.with_user().await;
        for path in ["/admin/users".to_owned(), format!("/admin/users/{}", target.id), "/admin/roles".into(), "/admin/audit".into()] {
            let response = app.get_authed(&path, &admin.access).await;
            assert_eq!(error_of(response).await, (Status::Forbidden, "mfa_required".into()), "{path}");
        }
        let response = app.delete_authed(&format!("/admin/users/{}/sessions", target.id), &admin.access).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "mfa_required".into()));
        // The answer lists the account's second factors: none yet.
        let body: Value = app.get_authed("/admin/users", &admin.access).await.into_json().await.unwrap();
        assert_eq!(body["mfa_methods"], json!([]), "{body}");
        // Enrolment and the caller's own account stay reachable.
        let authenticator = enrol(&app, &admin).await;
        assert_eq!(app.me_status(&admin.access).await, Status::Ok);
        let response = app.get_authed("/admin/users", &admin.access).await;
        assert_eq!(response.status(), Status::Forbidden, "still a password-only token");
        let body: Value = response.into_json().await.unwrap();
        assert_eq!(body["mfa_methods"], json!(["totp", "recovery_code"]), "what to log in again with: {body}");
        let with_mfa = login_with_code(&app, &admin_user, &authenticator.code(&app, 0)).await;
        assert_eq!(app.get_authed("/admin/users", &with_mfa.access).await.status(), Status::Ok);
        let refreshed = tokens(app.refresh_response(&with_mfa.refresh).await).await;
        assert_eq!(app.get_authed("/admin/users", &refreshed.access).await.status(), Status::Ok, "a refresh keeps amr");
    }

    async fn roles_outside_the_policy_and_the_default_policy_need_no_mfa(backend) {
        let app = TestApp::builder(backend).with_config("mfa_required_roles", vec!["auditor"]).build().await;
        let (_, admin) = with_admin(&app).await;
        assert_eq!(app.get_authed("/admin/users", &admin.access).await.status(), Status::Ok);
        create_role(&app, &admin, "auditor", &["audit:read"]).await;
        let (_, auditor) = user_with_roles(&app, "auditor@example.com", &["auditor"]).await;
        let response = app.get_authed("/admin/audit", &auditor.access).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "mfa_required".into()));
        let default = TestApp::new(backend).await;
        let (_, admin) = with_admin(&default).await;
        assert_eq!(default.get_authed("/admin/users", &admin.access).await.status(), Status::Ok);
    }
}
