//! Passkeys on the hosted sign-in: `POST /signin/passkey` (the sign-in page) and
//! `/signin/mfa/passkey` (the code page) finish the ceremony with the API's own checks and start a
//! browser session; their forms are CSRF-bound like the password form; the script is allowed
//! only on the pages that use it.

use crate::browser_support::*;
use crate::helpers::*;
use crate::on_both_backends;
use crate::passkey_support::*;
use rocket::http::{ContentType, Status};
use serde_json::Value;

/// The passkey form of a page (`action`), after the password or code form.
fn passkey_form(html: &str, action: &str) -> PageForm {
    let marker = format!("<form method=\"post\" action=\"{action}\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("a form posting to {action} in {html}"));
    let rest = &html[start..];
    PageForm { action: action.to_owned(), csrf: field(rest, "csrf"), request: field(rest, "request") }
}

/// A user with a passkey (`key`), and a first-party client.
async fn user_with_passkey(app: &TestApp) -> (TestUser, SoftKey, portcullis::db::Id) {
    let user = app.with_user().await;
    let tokens = app.login(&user).await;
    let mut key = SoftKey::new(true);
    add_passkey(app, &tokens, &mut key, "Laptop").await;
    (user, key, browser_client(app, "First", true, &[REDIRECT]).await)
}

on_both_backends! {
    async fn a_passkey_on_the_sign_in_page_starts_a_browser_session_and_continues_the_request(backend) {
        let app = passkey_app(backend).await;
        let (_, mut key, client) = user_with_passkey(&app).await;
        let (status, html, _) = get_page(&app.client, &authorize_url(client, &[])).await;
        assert_eq!(status, Status::Ok);
        assert!(html.contains("autocomplete=\"username webauthn\""), "autofill of passkeys: {html}");
        let form = passkey_form(&html, "/signin/passkey");
        let (ceremony_id, options) = start_sign_in(&app, None).await;
        let credential = key.get(&options).to_string();
        let fields = [("ceremony_id", ceremony_id.as_str()), ("credential", credential.as_str())];
        let (status, body, location) = post_form(&app.client, &form, &fields).await;
        assert_eq!(status, Status::SeeOther, "{body}");
        let location = location.unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        let grant = redeem(&app, client, &location).await.expect("a code");
        assert_eq!(grant.code.amr, "hwk user mfa");
        // The browser session signs the next request in without asking (single sign-on).
        let (status, _, next) = get_page(&app.client, &authorize_url(client, &[])).await;
        assert_eq!(status, Status::SeeOther);
        assert!(next.unwrap().starts_with(REDIRECT));
    }

    async fn the_passkey_form_refuses_another_forms_token_a_foreign_key_and_a_spent_ceremony(backend) {
        let app = passkey_app(backend).await;
        let (_, mut key, client) = user_with_passkey(&app).await;
        let (_, html, _) = get_page(&app.client, &authorize_url(client, &[])).await;
        let form = passkey_form(&html, "/signin/passkey");
        let (ceremony_id, options) = start_sign_in(&app, None).await;
        let credential = key.get(&options).to_string();
        let fields = [("ceremony_id", ceremony_id.as_str()), ("credential", credential.as_str())];
        // The password form's token is not the passkey form's.
        let password_form = PageForm { csrf: form_of(&html).csrf, ..form.clone() };
        let (status, _, _) = post_form(&app.client, &password_form, &fields).await;
        assert_eq!(status, Status::Forbidden);
        // A key the account never registered: 401 and the page again, no cookie.
        let (other_id, other_options) = start_sign_in(&app, None).await;
        let foreign = SoftKey::new(true).get(&other_options).to_string();
        let (status, body, _) =
            post_form(&app.client, &form, &[("ceremony_id", other_id.as_str()), ("credential", foreign.as_str())]).await;
        assert_eq!(status, Status::Unauthorized);
        assert!(body.contains("The passkey was not accepted."), "{body}");
        // Not JSON: 400, the page again.
        let (status, _, _) = post_form(&app.client, &form, &[("ceremony_id", ceremony_id.as_str()), ("credential", "{")]).await;
        assert_eq!(status, Status::BadRequest);
        // The first finish wins; the same ceremony again is refused.
        let (status, _, _) = post_form(&app.client, &form, &fields).await;
        assert_eq!(status, Status::SeeOther);
        let (_, html, _) = get_page(&app.client, &authorize_url(client, &[("prompt", "login")])).await;
        let again = passkey_form(&html, "/signin/passkey");
        let (status, _, _) = post_form(&app.client, &again, &fields).await;
        assert_eq!(status, Status::BadRequest);
    }

    async fn a_passkey_finishes_the_code_page_after_the_password_with_pwd_hwk(backend) {
        let app = passkey_app(backend).await;
        let (user, mut key, client) = user_with_passkey(&app).await;
        let (_, html, _) = get_page(&app.client, &authorize_url(client, &[])).await;
        let (status, _, location) =
            post_form(&app.client, &form_of(&html), &[("email", &user.email), ("password", &user.password)]).await;
        assert_eq!(status, Status::SeeOther);
        let (status, html, _) = get_page(&app.client, &location.unwrap()).await;
        assert_eq!(status, Status::Ok);
        let form = passkey_form(&html, "/signin/mfa/passkey");
        // Starting needs the passkey form's token.
        let start = |csrf: String| {
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("csrf", &csrf)
                .append_pair("request", &form.request)
                .finish();
            app.client.post("/signin/mfa/passkey/start").header(ContentType::Form).body(body).dispatch()
        };
        assert_eq!(start(form_of(&html).csrf).await.status(), Status::Forbidden);
        let started = start(form.csrf.clone()).await;
        assert_eq!(started.status(), Status::Ok);
        let started: Value = started.into_json().await.unwrap();
        let ceremony_id = started["ceremony_id"].as_str().unwrap();
        let credential = key.get(&started["publicKey"]).to_string();
        let (status, body, location) =
            post_form(&app.client, &form, &[("ceremony_id", ceremony_id), ("credential", &credential)]).await;
        assert_eq!(status, Status::SeeOther, "{body}");
        let grant = redeem(&app, client, &location.unwrap()).await.expect("a code");
        assert_eq!(grant.code.amr, "pwd hwk mfa");
    }

    async fn only_the_pages_with_passkey_buttons_may_run_the_script(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let client = browser_client(&app, "Third", false, &[REDIRECT]).await;
        let sign_in = app.client.get(authorize_url(client, &[])).dispatch().await;
        let csp = sign_in.headers().get_one("Content-Security-Policy").unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        let html = sign_in.into_string().await.unwrap();
        assert!(html.contains("<script src=\"/pages/passkeys.js\" defer></script>"));
        let location = sign_in_at(&app.client, &authorize_url(client, &[]), &user).await;
        let consent = app.client.get(location).dispatch().await;
        let csp = consent.headers().get_one("Content-Security-Policy").unwrap();
        assert!(!csp.contains("script-src"), "the consent page runs nothing: {csp}");
        let script = app.client.get("/pages/passkeys.js").dispatch().await;
        assert_eq!(script.content_type(), Some(ContentType::JavaScript));
    }
}
