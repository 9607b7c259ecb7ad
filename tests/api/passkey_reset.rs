//! A passkey as the second factor of a password reset (contract v3, "Password reset order"),
//! and the per-account second-factor counter fed by failed passkey assertions: once it reaches
//! its limit, 429 wins at every second-factor endpoint, until 15 minutes after the fifth failure.

use crate::helpers::*;
use crate::mfa_support::{mfa_token, verify};
use crate::on_both_backends;
use crate::passkey_support::*;
use crate::smtp_sink::SmtpSink;
use rocket::http::Status;
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// A passkey app with mail through `sink` (and a login throttle that stays out of the way, so
/// the second-factor counter is what answers).
async fn app_with_mail(backend: Backend, sink: &SmtpSink) -> TestApp {
    TestApp::builder(backend)
        .with_config("issuer", ORIGIN)
        .with_config("mail.smtp_url", sink.url())
        // Longer than the lock, so a token outlives it.
        .with_config("mail.reset_ttl", 3600)
        .with_config("throttle_pair_failures", 100)
        .build()
        .await
}

/// Alice with one passkey (and its recovery codes), and the token of a reset mail.
async fn alice_with_reset(app: &TestApp, sink: &SmtpSink) -> (TestUser, SoftKey, Vec<String>, String) {
    let user = app.with_user().await;
    let mut key = SoftKey::new(true);
    let added = add_passkey(app, &app.login(&user).await, &mut key, "Laptop").await;
    let codes = added["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(app.post("/auth/password/forgot", json!({"email": user.email})).await.status(), Status::Accepted);
    let token = crate::mail::link_mail(sink, &user.email, "reset-password", 1).await.token();
    (user, key, codes, token)
}

/// A reset with the passkey answer of `key` to a fresh `POST /auth/passkeys/login` for `email`.
async fn reset_with<'a>(
    app: &'a TestApp,
    token: &str,
    password: &str,
    email: &str,
    key: &mut SoftKey,
) -> LocalResponse<'a> {
    let (ceremony, options) = start_sign_in(app, Some(email)).await;
    let body =
        json!({"token": token, "new_password": password, "ceremony_id": ceremony, "credential": key.get(&options)});
    app.post("/auth/password/reset", body).await
}

fn status_code(status: Status, code: &str) -> (Status, String) {
    (status, code.to_owned())
}

on_both_backends! {
    async fn a_reset_of_a_passkey_account_follows_the_contract_order_and_takes_a_passkey(backend) {
        let sink = SmtpSink::start().await;
        let app = app_with_mail(backend, &sink).await;
        let (user, mut key, _, token) = alice_with_reset(&app, &sink).await;
        // Unknown token first, then a bad new password, then the missing factor.
        let unknown = reset_with(&app, "no such token", NEW_PASSWORD, &user.email, &mut key).await;
        assert_eq!(error_of(unknown).await, status_code(Status::BadRequest, "invalid_grant"));
        let short = app.post("/auth/password/reset", json!({"token": token, "new_password": "short"})).await;
        assert_eq!(short.status(), Status::UnprocessableEntity);
        let missing = app.post("/auth/password/reset", json!({"token": token, "new_password": NEW_PASSWORD})).await;
        assert_eq!(missing.status(), Status::Forbidden);
        let body: Value = missing.into_json().await.unwrap();
        assert_eq!((body["error"].clone(), body["mfa_methods"].clone()), (json!("mfa_required"), json!(["passkey", "recovery_code"])));
        // A forged assertion is a wrong factor and spends nothing.
        let mut forged = key.forged();
        forged.counter = 50;
        let wrong = reset_with(&app, &token, NEW_PASSWORD, &user.email, &mut forged).await;
        assert_eq!(error_of(wrong).await, status_code(Status::Unauthorized, "invalid_credentials"));
        // A used ceremony is dead.
        let (ceremony, options) = start_sign_in(&app, Some(&user.email)).await;
        let answer = key.get(&options);
        let body = json!({"token": token, "new_password": NEW_PASSWORD, "ceremony_id": ceremony, "credential": answer});
        assert_eq!(crate::passkey_support::finish_sign_in(&app, &ceremony, answer.clone()).await.status(), Status::Ok);
        assert_eq!(error_of(app.post("/auth/password/reset", body).await).await, status_code(Status::BadRequest, "invalid_grant"));
        // The right passkey resets, once.
        assert_eq!(reset_with(&app, &token, NEW_PASSWORD, &user.email, &mut key).await.status(), Status::NoContent);
        let again = reset_with(&app, &token, "another passphrase!", &user.email, &mut key).await;
        assert_eq!(error_of(again).await, status_code(Status::BadRequest, "invalid_grant"));
        let login = app.login_response(&user.email, NEW_PASSWORD).await;
        assert_eq!(login.status(), Status::Forbidden, "the new password, and the passkey still a second factor");
    }

    async fn a_reset_takes_another_accounts_passkey_for_a_wrong_factor(backend) {
        let sink = SmtpSink::start().await;
        let app = app_with_mail(backend, &sink).await;
        let (user, _, _, token) = alice_with_reset(&app, &sink).await;
        let bob = app.with_user_email("bob@example.com").await;
        let mut bobs = SoftKey::new(true);
        add_passkey(&app, &app.login(&bob).await, &mut bobs, "Phone").await;
        // Bob's passkey answering a discoverable ceremony, presented for Alice's reset.
        let (ceremony, options) = start_sign_in(&app, None).await;
        let body = json!({"token": token, "new_password": NEW_PASSWORD, "ceremony_id": ceremony, "credential": bobs.get(&options)});
        assert_eq!(error_of(app.post("/auth/password/reset", body).await).await, status_code(Status::Unauthorized, "invalid_credentials"));
        // Bob's ceremony (started with his email) is not Alice's either.
        let wrong_account = reset_with(&app, &token, NEW_PASSWORD, &bob.email, &mut bobs).await;
        assert_eq!(error_of(wrong_account).await, status_code(Status::BadRequest, "invalid_grant"));
        assert_eq!(app.login_response(&user.email, NEW_PASSWORD).await.status(), Status::Unauthorized, "nothing changed");
    }

    async fn a_recovery_code_resets_a_passkey_only_account(backend) {
        let sink = SmtpSink::start().await;
        let app = app_with_mail(backend, &sink).await;
        let (user, _, codes, token) = alice_with_reset(&app, &sink).await;
        let body = json!({"token": token, "new_password": NEW_PASSWORD, "code": codes[0]});
        assert_eq!(app.post("/auth/password/reset", body).await.status(), Status::NoContent);
        assert_eq!(app.login_response(&user.email, NEW_PASSWORD).await.status(), Status::Forbidden);
    }

    async fn failed_reset_assertions_lock_every_second_factor_endpoint_until_the_window_ends(backend) {
        let sink = SmtpSink::start().await;
        let app = app_with_mail(backend, &sink).await;
        let (user, mut key, codes, token) = alice_with_reset(&app, &sink).await;
        let pending = mfa_token(&app, &user).await;
        let tokens = {
            let (ceremony, options) = start_sign_in(&app, None).await;
            tokens(finish_sign_in(&app, &ceremony, key.get(&options)).await).await
        };
        let mut forged = key.forged();
        forged.counter = 100;
        for _ in 0..5 {
            let wrong = reset_with(&app, &token, NEW_PASSWORD, &user.email, &mut forged).await;
            assert_eq!(wrong.status(), Status::Unauthorized);
        }
        let too_many = status_code(Status::TooManyRequests, "too_many_requests");
        assert_eq!(error_of(reset_with(&app, &token, NEW_PASSWORD, &user.email, &mut key).await).await, too_many, "the right passkey waits");
        let missing = app.post("/auth/password/reset", json!({"token": token, "new_password": NEW_PASSWORD})).await;
        assert_eq!(error_of(missing).await, too_many, "429 before mfa_required");
        assert_eq!(error_of(verify(&app, &pending, &codes[0]).await).await, too_many);
        assert_eq!(error_of(app.post("/auth/mfa/passkey", json!({"mfa_token": pending})).await).await, too_many);
        let reauth = app.post_authed("/auth/passkeys/register", &tokens.access, json!({"code": codes[1]})).await;
        assert_eq!(error_of(reauth).await, too_many);
        // 15 minutes after the fifth failure the lock ends; the token survived it all.
        app.clock.advance(15 * 60 + 1);
        assert_eq!(reset_with(&app, &token, NEW_PASSWORD, &user.email, &mut key).await.status(), Status::NoContent);
    }

    async fn failed_second_step_assertions_count_toward_the_same_lock(backend) {
        let sink = SmtpSink::start().await;
        let app = app_with_mail(backend, &sink).await;
        let (user, mut key, codes, token) = alice_with_reset(&app, &sink).await;
        let mut forged = key.forged();
        forged.counter = 100;
        let pending = mfa_token(&app, &user).await;
        for _ in 0..5 {
            let start: Value = app.post("/auth/mfa/passkey", json!({"mfa_token": pending})).await.into_json().await.unwrap();
            let body = json!({"mfa_token": pending, "ceremony_id": start["ceremony_id"], "credential": forged.get(&start["publicKey"])});
            assert_eq!(app.post("/auth/mfa/verify", body).await.status(), Status::Unauthorized);
        }
        let too_many = status_code(Status::TooManyRequests, "too_many_requests");
        assert_eq!(error_of(verify(&app, &mfa_token(&app, &user).await, &codes[0]).await).await, too_many);
        assert_eq!(error_of(reset_with(&app, &token, NEW_PASSWORD, &user.email, &mut key).await).await, too_many);
    }
}
