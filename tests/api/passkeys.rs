//! Passkeys (WebAuthn Level 2) driven by a software authenticator: registration, passwordless
//! sign-in and the second step, and each refusal: another origin, a ceremony used twice, a
//! counter going backwards, another account's passkey, an 11th passkey, throttling, missing
//! user verification, removal without re-authentication, one ceremony finished twice at once.

use crate::helpers::*;
use crate::mfa_support::{claims, delete_json};
use crate::on_both_backends;
use crate::passkey_support::*;
use rocket::http::Status;
use serde_json::{json, Value};

/// An app with alice holding one passkey (`verifies_user` as given).
async fn with_passkey(backend: Backend, verifies_user: bool) -> (TestApp, TestUser, SoftKey) {
    let app = passkey_app(backend).await;
    let user = app.with_user().await;
    let tokens = app.login(&user).await;
    let mut key = SoftKey::new(verifies_user);
    add_passkey(&app, &tokens, &mut key, "Laptop").await;
    (app, user, key)
}

on_both_backends! {
    async fn a_registered_passkey_signs_in_without_a_password_with_amr_hwk_user_mfa(backend) {
        let (app, user, mut key) = with_passkey(backend, true).await;
        let (ceremony, options) = start_sign_in(&app, None).await;
        assert_eq!(options["userVerification"], "required");
        let response = finish_sign_in(&app, &ceremony, key.get(&options)).await;
        assert_eq!(response.status(), Status::Ok);
        let signed_in = tokens(response).await;
        assert_eq!(claims(&signed_in.access)["amr"], json!(["hwk", "user", "mfa"]));
        assert_eq!(claims(&signed_in.access)["sub"], json!(user.id));
        let me: Value = app.get_authed("/users/me", &signed_in.access).await.into_json().await.unwrap();
        assert_eq!(me["mfa"], json!(true), "a passkey alone makes mfa true");
        let (ceremony, options) = start_sign_in(&app, Some(&user.email)).await;
        assert_eq!(options["allowCredentials"].as_array().unwrap().len(), 1);
        assert_eq!(finish_sign_in(&app, &ceremony, key.get(&options)).await.status(), Status::Ok, "by email too");
        let list: Value = app.get_authed("/auth/passkeys", &signed_in.access).await.into_json().await.unwrap();
        assert_eq!(list["passkeys"][0]["name"], "Laptop");
        assert!(list["passkeys"][0]["last_used_at"].is_string());
    }

    async fn an_assertion_made_for_another_origin_is_refused(backend) {
        let (app, _, mut key) = with_passkey(backend, true).await;
        key.origin = "http://localhost.evil.test:8000".into();
        let (ceremony, options) = start_sign_in(&app, None).await;
        let response = finish_sign_in(&app, &ceremony, key.get(&options)).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()));
    }

    async fn a_ceremony_works_once(backend) {
        let (app, _, mut key) = with_passkey(backend, true).await;
        let (ceremony, options) = start_sign_in(&app, None).await;
        let assertion = key.get(&options);
        assert_eq!(finish_sign_in(&app, &ceremony, assertion.clone()).await.status(), Status::Ok);
        let replay = finish_sign_in(&app, &ceremony, assertion).await;
        assert_eq!(error_of(replay).await, (Status::BadRequest, "invalid_grant".into()));
    }

    async fn a_signature_counter_going_backwards_is_refused(backend) {
        let (app, _, mut key) = with_passkey(backend, true).await;
        let (ceremony, options) = start_sign_in(&app, None).await;
        key.counter = 5;
        assert_eq!(finish_sign_in(&app, &ceremony, key.get(&options)).await.status(), Status::Ok);
        key.counter = 2;
        let (ceremony, options) = start_sign_in(&app, None).await;
        let response = finish_sign_in(&app, &ceremony, key.get(&options)).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()));
    }

    async fn a_passkey_of_one_account_never_signs_into_another(backend) {
        let (app, _, mut key) = with_passkey(backend, true).await;
        let bob = app.with_user_email("bob@example.com").await;
        let mut bobs = SoftKey::new(true);
        add_passkey(&app, &app.login(&bob).await, &mut bobs, "Phone").await;
        let (ceremony, options) = start_sign_in(&app, Some(&bob.email)).await;
        let response = finish_sign_in(&app, &ceremony, key.get(&options)).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()));
    }

    async fn an_account_holds_at_most_ten_passkeys(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        for i in 0..10 {
            add_passkey(&app, &tokens, &mut SoftKey::new(true), &format!("key {i}")).await;
        }
        let eleventh = app.post_authed("/auth/passkeys/register", &tokens.access, json!({"password": PASSWORD})).await;
        assert_eq!(error_of(eleventh).await, (Status::Conflict, "conflict".into()));
    }

    async fn failed_passkey_sign_ins_count_toward_the_account_throttle(backend) {
        let app = TestApp::builder(backend).with_config("issuer", ORIGIN).with_config("throttle_pair_failures", 2).build().await;
        let user = app.with_user().await;
        let mut key = SoftKey::new(true);
        add_passkey(&app, &app.login(&user).await, &mut key, "Laptop").await;
        let mut wrong = key.clone();
        wrong.origin = "http://example.test".into();
        for _ in 0..2 {
            let (ceremony, options) = start_sign_in(&app, None).await;
            assert_eq!(finish_sign_in(&app, &ceremony, wrong.get(&options)).await.status(), Status::Unauthorized);
        }
        let (ceremony, options) = start_sign_in(&app, None).await;
        assert_eq!(finish_sign_in(&app, &ceremony, key.get(&options)).await.status(), Status::TooManyRequests);
        assert_eq!(app.login_response(&user.email, &user.password).await.status(), Status::TooManyRequests, "the same throttle as passwords");
    }

    async fn a_password_login_completes_with_a_key_without_user_verification(backend) {
        let (app, user, mut key) = with_passkey(backend, false).await;
        let response = app.login_response(&user.email, &user.password).await;
        assert_eq!(response.status(), Status::Forbidden);
        let body: Value = response.into_json().await.unwrap();
        let mfa_token = body["mfa_token"].as_str().unwrap().to_owned();
        let start = app.post("/auth/mfa/passkey", json!({"mfa_token": mfa_token})).await;
        assert_eq!(start.status(), Status::Ok);
        let start: Value = start.into_json().await.unwrap();
        let credential = key.get(&start["publicKey"]);
        let body = json!({"mfa_token": mfa_token, "ceremony_id": start["ceremony_id"], "credential": credential});
        let response = app.post("/auth/mfa/verify", body).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(claims(&tokens(response).await.access)["amr"], json!(["pwd", "hwk", "mfa"]));
        // Without user verification it is no password replacement.
        let (ceremony, options) = start_sign_in(&app, None).await;
        let response = finish_sign_in(&app, &ceremony, key.get(&options)).await;
        assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_credentials".into()));
    }

    async fn removing_a_passkey_needs_the_password_again(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let passkey = add_passkey(&app, &tokens, &mut SoftKey::new(true), "Laptop").await;
        let path = format!("/auth/passkeys/{}", passkey["id"].as_str().unwrap());
        let wrong = delete_json(&app, &path, &tokens.access, json!({"password": "not the password"})).await;
        assert_eq!(error_of(wrong).await, (Status::Unauthorized, "invalid_credentials".into()));
        let missing = delete_json(&app, &path, &tokens.access, json!({})).await;
        assert_eq!(missing.status(), Status::BadRequest);
        assert_eq!(delete_json(&app, &path, &tokens.access, json!({"password": PASSWORD})).await.status(), Status::NoContent);
        let list: Value = app.get_authed("/auth/passkeys", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(list["passkeys"], json!([]));
    }

    async fn one_ceremony_finished_twice_at_once_succeeds_once(backend) {
        let (app, _, mut key) = with_passkey(backend, true).await;
        let (ceremony, options) = start_sign_in(&app, None).await;
        let assertion = key.get(&options);
        let (a, b) = tokio::join!(
            finish_sign_in(&app, &ceremony, assertion.clone()),
            finish_sign_in(&app, &ceremony, assertion.clone())
        );
        let mut statuses = [a.status().code, b.status().code];
        statuses.sort();
        assert_eq!(statuses, [200, 400]);
    }

    async fn an_ip_address_as_relying_party_turns_passkeys_off_naming_the_key(backend) {
        let app = TestApp::new(backend).await;
        let response = app.post("/auth/passkeys/login", json!({})).await;
        let (status, code, description) = error_with_description(response).await;
        assert_eq!((status, code.as_str()), (Status::ServiceUnavailable, "unavailable"));
        assert!(description.contains("auth.webauthn_rp_id"), "{description}");
    }
}
