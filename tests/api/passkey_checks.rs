//! Passkeys: what an attacker might send instead of the authenticator's honest answer, and
//! what the relying party itself must get right — another relying party id, a challenge of
//! another ceremony, an assertion replayed at a new ceremony, a forged signature, a removed
//! passkey, a credential id registered twice, EdDSA keys, counters that never count, user
//! handles, the same answer for unknown emails, an IP address as relying party id, and a
//! ceremony finished by another instance.

use crate::helpers::*;
use crate::mfa_support::delete_json;
use crate::on_both_backends;
use crate::passkey_support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::http::Status;
use serde_json::{json, Value};

/// An app with alice holding the passkey `key`.
async fn with_key(backend: Backend, mut key: SoftKey) -> (TestApp, TestUser, Tokens, SoftKey) {
    let app = passkey_app(backend).await;
    let user = app.with_user().await;
    let tokens = app.login(&user).await;
    add_passkey(&app, &tokens, &mut key, "Laptop").await;
    (app, user, tokens, key)
}

/// `POST /auth/passkeys/register` and the finish with `key`'s answer: the finish's response.
async fn register<'a>(
    app: &'a TestApp,
    tokens: &Tokens,
    key: &mut SoftKey,
) -> rocket::local::asynchronous::LocalResponse<'a> {
    let start = app.post_authed("/auth/passkeys/register", &tokens.access, json!({"password": PASSWORD})).await;
    assert_eq!(start.status(), Status::Ok);
    let start: Value = start.into_json().await.unwrap();
    let credential = key.create(&start["publicKey"]);
    let body = json!({"ceremony_id": start["ceremony_id"], "name": "Again", "credential": credential});
    app.post_authed("/auth/passkeys/register/finish", &tokens.access, body).await
}

fn refused() -> (Status, String) {
    (Status::Unauthorized, "invalid_credentials".into())
}

on_both_backends! {
    async fn an_assertion_for_another_relying_party_id_is_refused(backend) {
        let (app, _, _, mut key) = with_key(backend, SoftKey::new(true)).await;
        key.rp_id = "evil.test".into();
        let (ceremony, options) = start_sign_in(&app, None).await;
        assert_eq!(error_of(finish_sign_in(&app, &ceremony, key.get(&options)).await).await, refused());
    }

    async fn an_assertion_signed_over_another_ceremonys_challenge_is_refused(backend) {
        let (app, _, _, mut key) = with_key(backend, SoftKey::new(true)).await;
        let (_, first_options) = start_sign_in(&app, None).await;
        let (second, _) = start_sign_in(&app, None).await;
        let answer = key.get(&first_options);
        assert_eq!(error_of(finish_sign_in(&app, &second, answer).await).await, refused());
    }

    async fn an_accepted_assertion_replayed_at_a_new_ceremony_is_refused(backend) {
        let (app, _, _, mut key) = with_key(backend, SoftKey::new(true)).await;
        let (ceremony, options) = start_sign_in(&app, None).await;
        let answer = key.get(&options);
        assert_eq!(finish_sign_in(&app, &ceremony, answer.clone()).await.status(), Status::Ok);
        let (again, _) = start_sign_in(&app, None).await;
        assert_eq!(error_of(finish_sign_in(&app, &again, answer).await).await, refused());
    }

    async fn an_assertion_with_a_forged_signature_is_refused(backend) {
        let (app, _, _, key) = with_key(backend, SoftKey::new(true)).await;
        let mut forger = key.forged();
        forger.counter = 7;
        let (ceremony, options) = start_sign_in(&app, None).await;
        assert_eq!(error_of(finish_sign_in(&app, &ceremony, forger.get(&options)).await).await, refused());
        // A flipped bit in what the real key signed fails as well.
        let mut honest = key.clone();
        let (ceremony, options) = start_sign_in(&app, None).await;
        let mut answer = honest.get(&options);
        let mut data = URL_SAFE_NO_PAD.decode(answer["response"]["authenticatorData"].as_str().unwrap()).unwrap();
        data[36] ^= 0x01;
        answer["response"]["authenticatorData"] = json!(URL_SAFE_NO_PAD.encode(&data));
        assert_eq!(error_of(finish_sign_in(&app, &ceremony, answer).await).await, refused());
    }

    async fn a_removed_passkey_no_longer_signs_in(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let mut key = SoftKey::new(true);
        let passkey = add_passkey(&app, &tokens, &mut key, "Laptop").await;
        let path = format!("/auth/passkeys/{}", passkey["id"].as_str().unwrap());
        assert_eq!(delete_json(&app, &path, &tokens.access, json!({"password": PASSWORD})).await.status(), Status::NoContent);
        let (ceremony, options) = start_sign_in(&app, None).await;
        assert_eq!(error_of(finish_sign_in(&app, &ceremony, key.get(&options)).await).await, refused());
        assert_eq!(app.login_response(&user.email, PASSWORD).await.status(), Status::Ok, "no second factor left");
    }

    async fn a_credential_id_registered_already_is_a_conflict_on_any_account(backend) {
        let (app, _, tokens, key) = with_key(backend, SoftKey::new(true)).await;
        let mut same = key.clone();
        assert_eq!(error_of(register(&app, &tokens, &mut same).await).await, (Status::Conflict, "conflict".into()));
        let bob = app.with_user_email("bob@example.com").await;
        let mut same = key.clone();
        let response = register(&app, &app.login(&bob).await, &mut same).await;
        assert_eq!(error_of(response).await, (Status::Conflict, "conflict".into()), "another account cannot claim it");
    }

    async fn an_ed25519_passkey_registers_and_signs_in(backend) {
        let (app, user, _, mut key) = with_key(backend, SoftKey::ed25519(true)).await;
        let (ceremony, options) = start_sign_in(&app, Some(&user.email)).await;
        let response = finish_sign_in(&app, &ceremony, key.get(&options)).await;
        assert_eq!(response.status(), Status::Ok);
        let mut forged = key.forged();
        forged.counter = 9;
        let (ceremony, options) = start_sign_in(&app, None).await;
        assert_eq!(error_of(finish_sign_in(&app, &ceremony, forged.get(&options)).await).await, refused());
    }

    async fn an_authenticator_that_never_counts_signs_in_with_counter_zero_every_time(backend) {
        let (app, _, _, key) = with_key(backend, SoftKey::new(true)).await;
        for _ in 0..3 {
            let (ceremony, options) = start_sign_in(&app, None).await;
            assert_eq!(finish_sign_in(&app, &ceremony, key.assertion(&options)).await.status(), Status::Ok);
        }
    }

    async fn the_user_handle_is_random_per_account_and_not_the_user_id(backend) {
        let (app, alice, alice_tokens, alice_key) = with_key(backend, SoftKey::new(true)).await;
        let handle = alice_key.user_handle().to_vec();
        let alice_id = uuid::Uuid::parse_str(&alice.id).unwrap();
        assert!(handle != alice_id.as_bytes() && handle != alice.id.as_bytes(), "the handle is not the user id");
        // The same handle for the account's next passkey, another for another account.
        let mut second = SoftKey::new(true);
        add_passkey(&app, &alice_tokens, &mut second, "Phone").await;
        assert_eq!(second.user_handle(), handle.as_slice());
        let bob = app.with_user_email("bob@example.com").await;
        let mut bobs = SoftKey::new(true);
        add_passkey(&app, &app.login(&bob).await, &mut bobs, "Key").await;
        assert_ne!(bobs.user_handle(), handle.as_slice());
        assert!(!handle.is_empty() && handle.len() <= 64);
    }

    async fn sign_in_by_email_answers_the_same_shape_for_unknown_and_passkeyless_accounts(backend) {
        let (app, alice, _, _) = with_key(backend, SoftKey::new(true)).await;
        app.with_user_email("carol@example.com").await;
        let shape = |options: &Value| {
            let mut keys: Vec<String> = options.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            let allowed = options["allowCredentials"].as_array().unwrap();
            let entry: Vec<String> = allowed[0].as_object().unwrap().keys().cloned().collect();
            (keys, allowed.len(), entry, options["userVerification"].clone())
        };
        let (_, known) = start_sign_in(&app, Some(&alice.email)).await;
        let (_, unknown) = start_sign_in(&app, Some("nobody@example.com")).await;
        let (_, passkeyless) = start_sign_in(&app, Some("carol@example.com")).await;
        // The same fields and entries; how many entries varies as it does between real accounts
        // (webauthn-rs's decoy distribution), but never none.
        let fields = |options: &Value| { let (keys, count, entry, uv) = shape(options); assert!(count >= 1); (keys, entry, uv) };
        assert_eq!(fields(&unknown), fields(&known));
        assert_eq!(fields(&passkeyless), fields(&known));
        let id_length = |options: &Value| options["allowCredentials"][0]["id"].as_str().unwrap().len();
        assert!(id_length(&unknown) >= 22 && id_length(&passkeyless) >= 22, "credential ids of at least 16 bytes");
        let (_, unknown_again) = start_sign_in(&app, Some("nobody@example.com")).await;
        assert_eq!(unknown_again["allowCredentials"], unknown["allowCredentials"], "stable decoys: asking twice tells nothing");
        let (_, spelled) = start_sign_in(&app, Some(" Nobody@Example.COM")).await;
        assert_eq!(spelled["allowCredentials"], unknown["allowCredentials"], "as stable as a real account's across spellings");
    }

    async fn every_passkey_endpoint_answers_503_naming_the_key_with_an_ip_address_relying_party(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let answers = [
            app.post_authed("/auth/passkeys/register", &tokens.access, json!({"password": PASSWORD})).await,
            app.post_authed("/auth/passkeys/register/finish", &tokens.access, json!({"ceremony_id": "x", "name": "n", "credential": SoftKey::new(true).create(&json!({"challenge": "AA", "user": {"id": "AA"}}))})).await,
            app.post("/auth/passkeys/login", json!({"email": user.email})).await,
            app.post("/auth/passkeys/login/finish", json!({"ceremony_id": "x", "credential": SoftKey::new(true).assertion(&json!({"challenge": "AA"}))})).await,
            app.post("/auth/mfa/passkey", json!({"mfa_token": "x"})).await,
        ];
        for response in answers {
            let (status, code, description) = error_with_description(response).await;
            assert_eq!((status, code.as_str()), (Status::ServiceUnavailable, "unavailable"));
            assert!(description.contains("auth.webauthn_rp_id"), "{description}");
        }
    }

    async fn a_ceremony_started_on_one_instance_finishes_on_another(backend) {
        let (app, user, tokens, mut key) = with_key(backend, SoftKey::new(true)).await;
        let other = app.second_instance(|b| b.with_config("issuer", ORIGIN)).await;
        let (ceremony, options) = start_sign_in(&app, Some(&user.email)).await;
        assert_eq!(finish_sign_in(&other, &ceremony, key.get(&options)).await.status(), Status::Ok);
        // Registration too: started here, finished there.
        let start = app.post_authed("/auth/passkeys/register", &tokens.access, json!({"password": PASSWORD})).await;
        let start: Value = start.into_json().await.unwrap();
        let credential = SoftKey::new(true).create(&start["publicKey"]);
        let body = json!({"ceremony_id": start["ceremony_id"], "name": "Phone", "credential": credential});
        assert_eq!(other.post_authed("/auth/passkeys/register/finish", &tokens.access, body).await.status(), Status::Created);
        // And once finished there, it is spent here.
        assert_eq!(error_of(finish_sign_in(&app, &ceremony, key.get(&options)).await).await, (Status::BadRequest, "invalid_grant".into()));
    }
}
