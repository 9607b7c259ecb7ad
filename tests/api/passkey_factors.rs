//! A passkey among the account's second factors: the recovery codes a first passkey issues
//! (and a second does not), what they complete, `mfa_methods` on every `mfa_required` of a
//! sign-in, TOTP turned off beside a passkey, the administrator's reset, and the metric.

use crate::admin_support::with_admin;
use crate::helpers::*;
use crate::mfa_support::{claims, delete_json, enrol, mfa_token, verify};
use crate::oauth::post_form;
use crate::on_both_backends;
use crate::passkey_support::*;
use rocket::http::Status;
use serde_json::{json, Value};

/// The recovery codes of a register/finish answer, if it has any.
fn codes_of(added: &Value) -> Option<Vec<String>> {
    added.get("recovery_codes").map(|c| c.as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect())
}

/// The `mfa_methods` of a 403 `mfa_required` answer.
async fn methods_of(response: rocket::local::asynchronous::LocalResponse<'_>) -> Value {
    assert_eq!(response.status(), Status::Forbidden);
    let body: Value = response.into_json().await.unwrap();
    assert_eq!(body["error"], "mfa_required");
    body["mfa_methods"].clone()
}

/// The value of the series `series` in `/metrics` as `token` (0 when absent).
async fn metric(app: &TestApp, token: &str, series: &str) -> f64 {
    let text = app.get_authed("/metrics", token).await.into_string().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

on_both_backends! {
    async fn a_first_passkey_issues_ten_recovery_codes_that_complete_a_login_and_a_second_passkey_issues_none(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let first = add_passkey(&app, &tokens, &mut SoftKey::new(true), "Laptop").await;
        let codes = codes_of(&first).expect("the first passkey brings recovery codes");
        assert_eq!(codes.len(), 10);
        let second = add_passkey(&app, &tokens, &mut SoftKey::new(true), "Phone").await;
        assert_eq!(codes_of(&second), None, "a second passkey mints none");
        let methods = methods_of(app.login_response(&user.email, PASSWORD).await).await;
        assert_eq!(methods, json!(["passkey", "recovery_code"]));
        // The codes of the first passkey still work (the second did not replace them), once each.
        let response = verify(&app, &mfa_token(&app, &user).await, &codes[0]).await;
        assert_eq!(response.status(), Status::Ok);
        assert!(claims(&tokens_of(response).await)["amr"].as_array().unwrap().contains(&json!("mfa")));
        let again = verify(&app, &mfa_token(&app, &user).await, &codes[0]).await;
        assert_eq!(error_of(again).await, (Status::Unauthorized, "invalid_credentials".into()));
        // A code re-authenticates a passkey change on an account without TOTP.
        let start = app.post_authed("/auth/passkeys/register", &tokens.access, json!({"code": codes[1]})).await;
        assert_eq!(start.status(), Status::Ok);
        // And a new set replaces them (password and a code), the old set then dead.
        let renewed = app.post_authed("/auth/mfa/recovery-codes", &tokens.access, json!({"password": PASSWORD, "code": codes[2]})).await;
        assert_eq!(renewed.status(), Status::Ok);
        let renewed: Value = renewed.into_json().await.unwrap();
        let old = verify(&app, &mfa_token(&app, &user).await, &codes[3]).await;
        assert_eq!(error_of(old).await, (Status::Unauthorized, "invalid_credentials".into()));
        let new = renewed["recovery_codes"][0].as_str().unwrap();
        assert_eq!(verify(&app, &mfa_token(&app, &user).await, new).await.status(), Status::Ok);
    }

    async fn a_passkey_added_after_totp_issues_no_codes_and_login_and_password_grant_list_every_method(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let authenticator = enrol(&app, &tokens).await;
        let tokens = app.post("/auth/mfa/verify", json!({"mfa_token": mfa_token(&app, &user).await, "code": authenticator.code(&app, 0)})).await;
        let tokens = tokens_struct(tokens).await;
        let added = add_passkey(&app, &tokens, &mut SoftKey::new(true), "Laptop").await;
        assert_eq!(codes_of(&added), None, "TOTP confirmation issued the codes already");
        let all = json!(["totp", "passkey", "recovery_code"]);
        assert_eq!(methods_of(app.login_response(&user.email, PASSWORD).await).await, all);
        let grant = [("grant_type", "password"), ("username", user.email.as_str()), ("password", PASSWORD)];
        assert_eq!(methods_of(post_form(&app, "/oauth/token", &grant).await).await, all, "the password grant too");
        // The TOTP codes issued at confirmation complete the login still.
        assert_eq!(verify(&app, &mfa_token(&app, &user).await, &authenticator.recovery_codes[0]).await.status(), Status::Ok);
    }

    async fn a_totp_only_account_lists_totp_and_recovery_codes(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        enrol(&app, &app.login(&user).await).await;
        assert_eq!(methods_of(app.login_response(&user.email, PASSWORD).await).await, json!(["totp", "recovery_code"]));
    }

    async fn turning_totp_off_beside_a_passkey_keeps_the_recovery_codes(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let authenticator = enrol(&app, &tokens).await;
        let tokens = tokens_struct(verify(&app, &mfa_token(&app, &user).await, &authenticator.code(&app, 0)).await).await;
        add_passkey(&app, &tokens, &mut SoftKey::new(true), "Laptop").await;
        app.clock.advance(30);
        let off = json!({"password": PASSWORD, "code": authenticator.code(&app, 0)});
        assert_eq!(delete_json(&app, "/auth/mfa/totp", &tokens.access, off).await.status(), Status::NoContent);
        assert_eq!(methods_of(app.login_response(&user.email, PASSWORD).await).await, json!(["passkey", "recovery_code"]));
        assert_eq!(verify(&app, &mfa_token(&app, &user).await, &authenticator.recovery_codes[1]).await.status(), Status::Ok);
    }

    async fn removing_the_last_passkey_retires_its_codes_and_a_new_first_passkey_issues_new_ones(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let added = add_passkey(&app, &tokens, &mut SoftKey::new(true), "Laptop").await;
        let old = codes_of(&added).unwrap();
        let path = format!("/auth/passkeys/{}", added["id"].as_str().unwrap());
        assert_eq!(delete_json(&app, &path, &tokens.access, json!({"password": PASSWORD})).await.status(), Status::NoContent);
        assert_eq!(app.login_response(&user.email, PASSWORD).await.status(), Status::Ok);
        let again = add_passkey(&app, &tokens, &mut SoftKey::new(true), "Phone").await;
        let new = codes_of(&again).expect("a new first passkey");
        assert_eq!(error_of(verify(&app, &mfa_token(&app, &user).await, &old[0]).await).await, (Status::Unauthorized, "invalid_credentials".into()));
        assert_eq!(verify(&app, &mfa_token(&app, &user).await, &new[0]).await.status(), Status::Ok);
    }

    async fn an_administrators_mfa_reset_removes_passkeys_and_recovery_codes(backend) {
        let app = passkey_app(backend).await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let mut key = SoftKey::new(true);
        add_passkey(&app, &tokens, &mut key, "Laptop").await;
        let me: Value = app.get_authed("/users/me", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(me["mfa"], json!(true), "a passkey alone makes mfa true");
        let path = format!("/admin/users/{}/mfa", user.id);
        assert_eq!(app.delete_authed(&path, &admin.access).await.status(), Status::NoContent);
        let tokens = app.login(&user).await;
        let me: Value = app.get_authed("/users/me", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(me["mfa"], json!(false));
        let list: Value = app.get_authed("/auth/passkeys", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(list["passkeys"], json!([]));
        let (ceremony, options) = start_sign_in(&app, None).await;
        assert_eq!(error_of(finish_sign_in(&app, &ceremony, key.get(&options)).await).await, (Status::Unauthorized, "invalid_credentials".into()));
    }

    async fn passkey_sign_ins_are_counted_by_step_and_outcome(backend) {
        let app = passkey_app(backend).await;
        let (_, admin) = with_admin(&app).await;
        let user = app.with_user().await;
        let mut key = SoftKey::new(true);
        add_passkey(&app, &app.login(&user).await, &mut key, "Laptop").await;
        let succeeded = "portcullis_passkey_sign_ins_total{outcome=\"succeeded\",step=\"passwordless\"}";
        let failed = "portcullis_passkey_sign_ins_total{outcome=\"failed\",step=\"passwordless\"}";
        let second = "portcullis_passkey_sign_ins_total{outcome=\"succeeded\",step=\"second_factor\"}";
        let before = (metric(&app, &admin.access, succeeded).await, metric(&app, &admin.access, failed).await, metric(&app, &admin.access, second).await);
        let (ceremony, options) = start_sign_in(&app, None).await;
        assert_eq!(finish_sign_in(&app, &ceremony, key.get(&options)).await.status(), Status::Ok);
        let (ceremony, options) = start_sign_in(&app, None).await;
        assert_eq!(finish_sign_in(&app, &ceremony, key.forged().get(&options)).await.status(), Status::Unauthorized);
        let token = mfa_token(&app, &user).await;
        let start: Value = app.post("/auth/mfa/passkey", json!({"mfa_token": token})).await.into_json().await.unwrap();
        let body = json!({"mfa_token": token, "ceremony_id": start["ceremony_id"], "credential": key.get(&start["publicKey"])});
        assert_eq!(app.post("/auth/mfa/verify", body).await.status(), Status::Ok);
        // Other tests in this process count too: at least ours.
        assert!(metric(&app, &admin.access, succeeded).await >= before.0 + 1.0);
        assert!(metric(&app, &admin.access, failed).await >= before.1 + 1.0);
        assert!(metric(&app, &admin.access, second).await >= before.2 + 1.0);
    }
}

/// The access token of a token response.
async fn tokens_of(response: rocket::local::asynchronous::LocalResponse<'_>) -> String {
    tokens(response).await.access
}

/// The token pair of a token response; panics unless 200.
async fn tokens_struct(response: rocket::local::asynchronous::LocalResponse<'_>) -> Tokens {
    assert_eq!(response.status(), Status::Ok);
    tokens(response).await
}
