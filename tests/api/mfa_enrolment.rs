//! TOTP enrolment: the pending secret, confirmation, recovery codes, disabling and the
//! administrator's reset.

use crate::admin_support::*;
use crate::helpers::*;
use crate::mfa_support::*;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::json;

/// The events recorded about `user`, newest first, read as `admin`.
async fn events(app: &TestApp, admin: &Tokens, user: &TestUser) -> Vec<String> {
    let body = get_json(app, &format!("/admin/audit?user_id={}&limit=200", user.id), &admin.access).await;
    body["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap().to_owned()).collect()
}

on_both_backends! {
    async fn enrolment_gives_a_secret_and_its_otpauth_uri_and_the_first_code_turns_mfa_on(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let other = app.login(&user).await;
        assert_eq!(get_json(&app, "/users/me", &tokens.access).await["mfa"], false);
        let body = start_enrolment(&app, &tokens, PASSWORD).await;
        let secret = body["secret"].as_str().unwrap();
        // The name is the issuer's host by default (auth.display_name).
        let host = url::Url::parse(&crate::issuer::issuer_of(&app)).unwrap().host_str().unwrap().to_owned();
        assert_eq!(
            body["otpauth_uri"],
            format!("otpauth://totp/{host}:alice@example.com?secret={secret}&issuer={host}&algorithm=SHA1&digits=6&period=30")
        );
        assert_eq!(get_json(&app, "/users/me", &tokens.access).await["mfa"], false, "pending until confirmed");
        let authenticator = Authenticator::from_base32(secret);
        let response = app.post_authed("/auth/mfa/totp/confirm", &tokens.access, json!({"code": authenticator.code(&app, 0)})).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
        let body: serde_json::Value = response.into_json().await.unwrap();
        let codes = body["recovery_codes"].as_array().unwrap();
        assert_eq!(codes.len(), 10);
        assert_eq!(codes.iter().collect::<std::collections::HashSet<_>>().len(), 10);
        assert_eq!(get_json(&app, "/users/me", &tokens.access).await["mfa"], true);
        assert_eq!(app.me_status(&other.access).await, Status::Unauthorized, "every other session ended");
        assert_eq!(app.refresh_response(&other.refresh).await.status(), Status::Unauthorized);
    }

    async fn the_otpauth_uri_names_the_display_name_not_the_issuer_url(backend) {
        let app = TestApp::builder(backend).with_config("issuer", "https://auth.example.com/tenant").build().await;
        let tokens = app.login(&app.with_user().await).await;
        let uri = start_enrolment(&app, &tokens, PASSWORD).await["otpauth_uri"].as_str().unwrap().to_owned();
        assert!(uri.starts_with("otpauth://totp/auth.example.com:alice@example.com?"), "the issuer's host: {uri}");
        assert!(uri.contains("&issuer=auth.example.com&"), "{uri}");
        let app = TestApp::builder(backend).with_config("display_name", "Example Auth & Co").build().await;
        let tokens = app.login(&app.with_user().await).await;
        let uri = start_enrolment(&app, &tokens, PASSWORD).await["otpauth_uri"].as_str().unwrap().to_owned();
        assert!(uri.starts_with("otpauth://totp/Example%20Auth%20%26%20Co:alice@example.com?"), "{uri}");
        assert!(uri.contains("&issuer=Example%20Auth%20%26%20Co&"), "URL-encoded: {uri}");
    }

    async fn enrolment_needs_the_password_and_a_new_call_replaces_a_pending_secret(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let response = app.post_authed("/auth/mfa/totp", &tokens.access, json!({"password": "not the password"})).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()));
        let first = Authenticator::from_base32(start_enrolment(&app, &tokens, PASSWORD).await["secret"].as_str().unwrap());
        let second = Authenticator::from_base32(start_enrolment(&app, &tokens, PASSWORD).await["secret"].as_str().unwrap());
        let response = app.post_authed("/auth/mfa/totp/confirm", &tokens.access, json!({"code": first.code(&app, 0)})).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()), "the replaced secret");
        let response = app.post_authed("/auth/mfa/totp/confirm", &tokens.access, json!({"code": second.code(&app, 0)})).await;
        assert_eq!(response.status(), Status::Ok);
        let response = app.post_authed("/auth/mfa/totp", &tokens.access, json!({"password": PASSWORD})).await;
        assert_eq!(error_of(response).await, (Status::Conflict, "conflict".into()), "MFA is on already");
        let response = app.post_authed("/auth/mfa/totp/confirm", &tokens.access, json!({"code": second.code(&app, 1)})).await;
        assert_eq!(error_of(response).await, (Status::Conflict, "conflict".into()));
    }

    async fn confirming_without_a_pending_enrolment_is_a_conflict(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let response = app.post_authed("/auth/mfa/totp/confirm", &tokens.access, json!({"code": "123456"})).await;
        assert_eq!(error_of(response).await, (Status::Conflict, "conflict".into()));
    }

    async fn disabling_needs_the_password_and_a_code_or_a_recovery_code(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let authenticator = enrol(&app, &tokens).await;
        let wrong_code = json!({"password": PASSWORD, "code": "000000"});
        let response = delete_json(&app, "/auth/mfa/totp", &tokens.access, wrong_code).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()));
        let wrong_password = json!({"password": "not the password", "code": authenticator.code(&app, 0)});
        let response = delete_json(&app, "/auth/mfa/totp", &tokens.access, wrong_password).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()));
        let with_recovery = json!({"password": PASSWORD, "code": authenticator.recovery_codes[0]});
        assert_eq!(delete_json(&app, "/auth/mfa/totp", &tokens.access, with_recovery.clone()).await.status(), Status::NoContent);
        assert_eq!(get_json(&app, "/users/me", &tokens.access).await["mfa"], false);
        assert_eq!(app.login(&user).await.body["token_type"], "Bearer", "the password alone logs in again");
        let response = delete_json(&app, "/auth/mfa/totp", &tokens.access, with_recovery).await;
        assert_eq!(error_of(response).await, (Status::Conflict, "conflict".into()));
        let events = events(&app, &admin, &user).await;
        for event in ["mfa_enabled", "mfa_failed", "recovery_code_used", "mfa_disabled"] {
            assert!(events.iter().any(|e| e == event), "{event} in {events:?}");
        }
    }

    async fn new_recovery_codes_replace_the_old_set_and_each_works_once(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 50).build().await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let authenticator = enrol(&app, &tokens).await;
        let response = app
            .post_authed("/auth/mfa/recovery-codes", &tokens.access, json!({"password": PASSWORD, "code": authenticator.code(&app, 0)}))
            .await;
        assert_eq!(response.status(), Status::Ok);
        let body: serde_json::Value = response.into_json().await.unwrap();
        let new_codes: Vec<String> = body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
        assert_eq!(new_codes.len(), 10);
        let old = verify(&app, &mfa_token(&app, &user).await, &authenticator.recovery_codes[1]).await;
        assert_eq!(error_of(old).await, (Status::Unauthorized, "invalid_credentials".into()), "the old set stopped working");
        login_with_code(&app, &user, &new_codes[0]).await;
        let again = verify(&app, &mfa_token(&app, &user).await, &new_codes[0]).await;
        assert_eq!(error_of(again).await, (Status::Unauthorized, "invalid_credentials".into()), "a recovery code works once");
        login_with_code(&app, &user, &new_codes[1].to_uppercase()).await;
    }

    async fn an_admin_reset_turns_mfa_off_and_ends_every_session_of_the_user(backend) {
        let app = TestApp::new(backend).await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        enrol(&app, &tokens).await;
        assert_eq!(get_json(&app, &format!("/admin/users/{}", user.id), &admin.access).await["mfa"], true);
        let response = app.delete_authed(&format!("/admin/users/{}/mfa", user.id), &tokens.access).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()));
        let response = app.delete_authed(&format!("/admin/users/{}/mfa", user.id), &admin.access).await;
        assert_eq!(response.status(), Status::NoContent);
        assert_eq!(app.me_status(&tokens.access).await, Status::Unauthorized, "every session ended");
        assert_eq!(get_json(&app, &format!("/admin/users/{}", user.id), &admin.access).await["mfa"], false);
        app.login(&user).await;
        let unknown = app.delete_authed(&format!("/admin/users/{}/mfa", uuid::Uuid::new_v4()), &admin.access).await;
        assert_eq!(error_of(unknown).await, (Status::NotFound, "not_found".into()));
        assert!(events(&app, &admin, &user).await.iter().any(|e| e == "mfa_reset"));
    }

    async fn an_admin_reset_kills_pending_logins_and_only_an_admin_resets_an_admin(backend) {
        let app = TestApp::new(backend).await;
        let (admin_user, admin) = with_admin(&app).await;
        create_role(&app, &admin, "helpdesk", &["users:write"]).await;
        let (_, helpdesk) = user_with_roles(&app, "helpdesk@example.com", &["helpdesk"]).await;
        let user = app.with_user().await;
        let authenticator = enrol(&app, &app.login(&user).await).await;
        let pending = mfa_token(&app, &user).await;
        let response = app.delete_authed(&format!("/admin/users/{}/mfa", user.id), &helpdesk.access).await;
        assert_eq!(response.status(), Status::NoContent);
        let late = verify(&app, &pending, &authenticator.code(&app, 0)).await;
        assert_eq!(error_of(late).await, (Status::Unauthorized, "invalid_grant".into()), "the pending login died with the reset");
        enrol(&app, &admin).await;
        let response = app.delete_authed(&format!("/admin/users/{}/mfa", admin_user.id), &helpdesk.access).await;
        assert_eq!(error_of(response).await, (Status::Forbidden, "insufficient_permissions".into()));
    }
}
