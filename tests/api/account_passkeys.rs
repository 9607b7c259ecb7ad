//! Passkeys on the account pages (issue 25): adding one on `/account` through
//! `POST /account/passkeys/add/start` and `/account/passkeys/add` (the API's register functions
//! behind the browser session's CSRF token), signing in with one on `/account/signin` and its
//! code step, and a passkey as the second factor of the reset-password page.

use crate::account_support::*;
use crate::helpers::*;
use crate::mail::link_mail;
use crate::on_both_backends;
use crate::passkey_support::*;
use crate::smtp_sink::SmtpSink;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::{json, Value};

const START: &str = "/account/passkeys/add/start";
const FINISH: &str = "/account/passkeys/add";

/// The start's JSON answer (asserting 200): `(ceremony_id, publicKey)`.
async fn started(response: LocalResponse<'_>) -> (String, Value) {
    assert_eq!(response.status(), Status::Ok, "the start");
    let body: Value = response.into_json().await.unwrap();
    (body["ceremony_id"].as_str().unwrap().to_owned(), body["publicKey"].clone())
}

/// The API's error code and description of a JSON refusal.
async fn refusal(response: LocalResponse<'_>) -> (Status, String, String) {
    let status = response.status();
    let body: Value = response.into_json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned(), body["error_description"].as_str().unwrap().to_owned())
}

/// Starts with the password and finishes with `key`'s new credential, named `name`.
async fn add<'a>(browser: &Browser<'a>, csrf: &str, key: &mut SoftKey, name: &str) -> LocalResponse<'a> {
    let start = browser.post(START, &[("csrf", csrf), ("name", name), ("password", PASSWORD), ("code", "")]).await;
    let (ceremony_id, options) = started(start).await;
    let credential = key.create(&options).to_string();
    browser
        .post(FINISH, &[("csrf", csrf), ("ceremony_id", &ceremony_id), ("name", name), ("credential", &credential)])
        .await
}

async fn passkey_names(app: &TestApp, tokens: &Tokens) -> Vec<String> {
    let listed: Value = app.get_authed("/auth/passkeys", &tokens.access).await.into_json().await.unwrap();
    listed["passkeys"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
}

/// The hidden field `name` of the form posting to `action`.
fn form_field(html: &str, action: &str, name: &str) -> String {
    let form = html.split(&format!("action=\"{action}\"")).nth(1).unwrap_or_else(|| panic!("a form to {action}"));
    field(form, name)
}

async fn post(client: &Client, path: &str, pairs: &[(&str, &str)]) -> (Status, Option<String>) {
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    let response = client.post(path.to_owned()).header(ContentType::Form).body(body).dispatch().await;
    (response.status(), response.headers().get_one("Location").map(str::to_owned))
}

on_both_backends! {
    async fn the_account_page_adds_a_passkey_and_the_first_one_shows_the_recovery_codes_once(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let browser = Browser::signed_in(&app, &user).await;
        let page = browser.get("/account").await;
        let csp = page.headers().get_one("Content-Security-Policy").unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        let (html, csrf) = browser.page().await;
        assert!(html.contains("data-passkey=\"register\""), "the add form");
        for id in ["passkey_name", "passkey_password"] {
            assert!(html.contains(&format!("<label for=\"{id}\"")), "label of {id}");
        }
        let mut key = SoftKey::new(true);
        let first = add(&browser, &csrf, &mut key, "Laptop").await;
        assert_eq!(first.status(), Status::Ok, "the first second factor: its codes, shown once");
        assert_page_headers(&first);
        let html = first.into_string().await.unwrap();
        assert!(html.contains("The passkey was added.") && html.contains("Laptop"), "{html}");
        assert_eq!(html.matches("<li><code>").count(), 10, "ten recovery codes");
        assert_eq!(passkey_names(&app, &tokens).await, ["Laptop"]);
        assert_eq!(app.login_response(&user.email, PASSWORD).await.status(), Status::Forbidden, "mfa_required");
        // A second passkey: back to the account page with the notice, no new codes.
        let (html, csrf) = browser.page().await;
        assert!(html.contains("<label for=\"passkey_code\""), "a code may re-authenticate now");
        let second = add(&browser, &csrf, &mut SoftKey::new(true), "Phone").await;
        assert_done(&second);
        let (html, _) = browser.page().await;
        assert!(html.contains("The passkey was added.") && html.contains("Phone"));
        assert_eq!(passkey_names(&app, &tokens).await, ["Laptop", "Phone"]);
        // The same authenticator again: the API's 409, on the page.
        let (_, csrf) = browser.page().await;
        let again = add(&browser, &csrf, &mut key, "Laptop again").await;
        assert_eq!(again.status(), Status::Conflict);
        assert!(again.into_string().await.unwrap().contains("This passkey is already registered."));
    }

    async fn a_wrong_password_is_the_apis_401_and_registers_nothing(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let browser = Browser::signed_in(&app, &user).await;
        let (_, csrf) = browser.page().await;
        let wrong = browser.post(START, &[("csrf", &csrf), ("name", "Laptop"), ("password", "not it")]).await;
        assert_eq!(refusal(wrong).await.0, Status::Unauthorized);
        let neither = browser.post(START, &[("csrf", &csrf), ("name", "Laptop"), ("password", ""), ("code", "")]).await;
        assert_eq!(refusal(neither).await.0, Status::BadRequest);
        let unnamed = browser.post(START, &[("csrf", &csrf), ("name", " "), ("password", PASSWORD)]).await;
        let (status, code, description) = refusal(unnamed).await;
        assert_eq!((status, code.as_str()), (Status::UnprocessableEntity, "invalid_request"));
        assert!(description.starts_with("name:"), "{description}");
        assert!(passkey_names(&app, &tokens).await.is_empty());
        // A credential that is not JSON: 400 on the page, nothing registered.
        let (ceremony_id, _) = started(browser.post(START, &[("csrf", &csrf), ("name", "Laptop"), ("password", PASSWORD)]).await).await;
        let broken = browser.post(FINISH, &[("csrf", &csrf), ("ceremony_id", &ceremony_id), ("name", "Laptop"), ("credential", "{")]).await;
        assert_eq!(broken.status(), Status::BadRequest);
        assert!(passkey_names(&app, &tokens).await.is_empty());
    }

    async fn wrong_codes_at_the_start_count_in_the_second_factor_counter_like_the_api(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let browser = Browser::signed_in(&app, &user).await;
        let (_, csrf) = browser.page().await;
        assert_eq!(add(&browser, &csrf, &mut SoftKey::new(true), "Laptop").await.status(), Status::Ok);
        let mut statuses = vec![];
        for _ in 0..5 {
            let guess = browser.post(START, &[("csrf", &csrf), ("name", "Phone"), ("code", "000000")]).await;
            statuses.push(guess.status());
        }
        assert_eq!(statuses, [Status::Unauthorized; 5]);
        let locked = browser.post(START, &[("csrf", &csrf), ("name", "Phone"), ("password", PASSWORD)]).await;
        assert_eq!(refusal(locked).await.0, Status::TooManyRequests, "429 first, even with the password");
    }

    async fn both_routes_refuse_a_missing_or_foreign_csrf_token_and_change_nothing(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let browser = Browser::signed_in(&app, &user).await;
        let second = app.second_instance(|b| b.with_config("issuer", ORIGIN)).await;
        let other = Browser::signed_in(&second, &user).await;
        let (_, other_csrf) = other.page().await;
        let (_, csrf) = browser.page().await;
        for token in ["", "forged", other_csrf.as_str()] {
            let start = browser.post(START, &[("csrf", token), ("name", "Laptop"), ("password", PASSWORD)]).await;
            assert_eq!(refusal(start).await.0, Status::Forbidden, "start with {token:?}");
        }
        let missing = browser.post(START, &[("name", "Laptop"), ("password", PASSWORD)]).await;
        assert_eq!(missing.status(), Status::Forbidden);
        let mut key = SoftKey::new(true);
        let (ceremony_id, options) = started(browser.post(START, &[("csrf", &csrf), ("name", "Laptop"), ("password", PASSWORD)]).await).await;
        let credential = key.create(&options).to_string();
        for token in ["", other_csrf.as_str()] {
            let finish = browser.post(FINISH, &[("csrf", token), ("ceremony_id", &ceremony_id), ("name", "Laptop"), ("credential", &credential)]).await;
            assert_eq!(finish.status(), Status::Forbidden, "finish with {token:?}");
            assert_page_headers(&finish);
        }
        assert!(passkey_names(&app, &tokens).await.is_empty());
        // Without a browser session: the start is the JSON 401, the finish sends to sign-in.
        let anonymous = app.second_instance(|b| b.with_config("issuer", ORIGIN)).await;
        let start = anonymous.client.post(START).header(ContentType::Form).body("csrf=x&name=a&password=b").dispatch().await;
        assert_eq!(refusal(start).await.0, Status::Unauthorized);
        let (status, location) = post(&anonymous.client, FINISH, &[("csrf", "x")]).await;
        assert_eq!((status, location.as_deref()), (Status::SeeOther, Some("/account/signin")));
    }

    async fn a_ceremony_started_by_another_browser_session_is_refused_and_stays_its_own(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let browser = Browser::signed_in(&app, &user).await;
        let second = app.second_instance(|b| b.with_config("issuer", ORIGIN)).await;
        let other = Browser::signed_in(&second, &user).await;
        let (_, csrf) = browser.page().await;
        let (_, other_csrf) = other.page().await;
        let mut key = SoftKey::new(true);
        let (ceremony_id, options) = started(browser.post(START, &[("csrf", &csrf), ("name", "Laptop"), ("password", PASSWORD)]).await).await;
        let credential = key.create(&options).to_string();
        let bare = ceremony_id.split('.').next().unwrap().to_owned();
        for id in [ceremony_id.as_str(), bare.as_str()] {
            let stolen = other.post(FINISH, &[("csrf", &other_csrf), ("ceremony_id", id), ("name", "Stolen"), ("credential", &credential)]).await;
            assert_eq!(stolen.status(), Status::BadRequest, "the API's unknown ceremony");
            assert!(stolen.into_string().await.unwrap().contains("The ceremony is unknown, used or expired"));
        }
        assert!(passkey_names(&app, &tokens).await.is_empty());
        // The ceremony was not taken: its own browser session finishes it.
        let own = browser.post(FINISH, &[("csrf", &csrf), ("ceremony_id", &ceremony_id), ("name", "Laptop"), ("credential", &credential)]).await;
        assert_eq!(own.status(), Status::Ok, "the first passkey's codes");
        assert_eq!(passkey_names(&app, &tokens).await, ["Laptop"]);
    }

    async fn an_eleventh_passkey_is_the_apis_409_at_the_start(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let browser = Browser::signed_in(&app, &user).await;
        for n in 0..10 {
            add_passkey(&app, &tokens, &mut SoftKey::new(true), &format!("Key {n}")).await;
        }
        let (_, csrf) = browser.page().await;
        let eleventh = browser.post(START, &[("csrf", &csrf), ("name", "Eleventh"), ("password", PASSWORD)]).await;
        let (status, code, description) = refusal(eleventh).await;
        assert_eq!((status, code.as_str()), (Status::Conflict, "conflict"));
        assert!(description.contains("10 passkeys"), "{description}");
        assert_eq!(passkey_names(&app, &tokens).await.len(), 10);
    }

    async fn a_passkey_signs_in_to_the_account_page_and_finishes_its_code_step(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let mut key = SoftKey::new(true);
        add_passkey(&app, &app.login(&user).await, &mut key, "Laptop").await;
        // Passwordless: the sign-in page's passkey form, the ceremony of POST /auth/passkeys/login.
        let page = app.client.get("/account/signin").dispatch().await;
        let csp = page.headers().get_one("Content-Security-Policy").unwrap().to_owned();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let html = page.into_string().await.unwrap();
        assert!(html.contains("Sign in with a passkey") && html.contains("autocomplete=\"username webauthn\""));
        let csrf = form_field(&html, "/account/signin/passkey", "csrf");
        let password_csrf = field(&html, "csrf");
        let (ceremony_id, options) = start_sign_in(&app, None).await;
        let credential = key.get(&options).to_string();
        let fields = [("ceremony_id", ceremony_id.as_str()), ("credential", credential.as_str())];
        let (status, _) = post(&app.client, "/account/signin/passkey", &[[("csrf", password_csrf.as_str())].as_slice(), &fields].concat()).await;
        assert_eq!(status, Status::Forbidden, "the password form's token");
        let (status, location) = post(&app.client, "/account/signin/passkey", &[[("csrf", csrf.as_str())].as_slice(), &fields].concat()).await;
        assert_eq!((status, location.as_deref()), (Status::SeeOther, Some("/account")));
        assert_eq!(app.client.get("/account").dispatch().await.status(), Status::Ok, "signed in");
        // After the password, the code step takes the passkey (a fresh browser).
        let second = app.second_instance(|b| b.with_config("issuer", ORIGIN)).await;
        let html = second.client.get("/account/signin").dispatch().await.into_string().await.unwrap();
        let (status, location) = post(&second.client, "/account/signin",
            &[("csrf", &field(&html, "csrf")), ("email", &user.email), ("password", PASSWORD)]).await;
        assert_eq!((status, location.as_deref()), (Status::SeeOther, Some("/account/signin/mfa")));
        let html = second.client.get("/account/signin/mfa").dispatch().await.into_string().await.unwrap();
        assert!(html.contains("Use a passkey instead"));
        let csrf = form_field(&html, "/account/signin/mfa/passkey", "csrf");
        let start = |csrf: String| second.client.post("/account/signin/mfa/passkey/start")
            .header(ContentType::Form).body(format!("csrf={csrf}")).dispatch();
        assert_eq!(refusal(start(field(&html, "csrf")).await).await.0, Status::Forbidden, "the code form's token");
        let (ceremony_id, options) = started(start(csrf.clone()).await).await;
        let credential = key.get(&options).to_string();
        let (status, location) = post(&second.client, "/account/signin/mfa/passkey",
            &[("csrf", &csrf), ("ceremony_id", &ceremony_id), ("credential", &credential)]).await;
        assert_eq!((status, location.as_deref()), (Status::SeeOther, Some("/account")));
        assert_eq!(second.client.get("/account").dispatch().await.status(), Status::Ok, "signed in");
    }

    async fn the_reset_password_page_takes_a_passkey_as_the_second_factor(backend) {
        let sink = SmtpSink::start().await;
        let app = TestApp::builder(backend).with_config("issuer", ORIGIN).with_config("mail.smtp_url", sink.url()).build().await;
        let user = app.with_user().await;
        let mut key = SoftKey::new(true);
        add_passkey(&app, &app.login(&user).await, &mut key, "Laptop").await;
        assert_eq!(app.post("/auth/password/forgot", json!({"email": user.email})).await.status(), Status::Accepted);
        let token = link_mail(&sink, &user.email, "reset-password", 1).await.token();
        let page = app.client.get(format!("/reset-password?token={token}")).dispatch().await;
        assert!(page.headers().get_one("Content-Security-Policy").unwrap().contains("script-src 'self'"));
        let html = page.into_string().await.unwrap();
        assert!(html.contains("data-passkey=\"reset\"") && html.contains("Use a passkey instead of a code"));
        let csrf = field(&html, "csrf");
        let reset = async |key: &mut SoftKey| {
            let (ceremony_id, options) = start_sign_in(&app, None).await;
            let credential = key.get(&options).to_string();
            post(&app.client, "/reset-password", &[("csrf", &csrf), ("token", &token), ("new_password", "a brand new secret"),
                ("code", ""), ("ceremony_id", &ceremony_id), ("credential", &credential)]).await
        };
        let mut forged = key.forged();
        forged.counter = 50;
        assert_eq!(reset(&mut forged).await.0, Status::Unauthorized, "another key's signature");
        let (status, location) = reset(&mut key).await;
        assert_eq!(status, Status::SeeOther);
        assert!(location.unwrap().starts_with("/pages/done"));
        assert_eq!(app.login_response(&user.email, "a brand new secret").await.status(), Status::Forbidden, "the new password, then mfa");
    }
}
