//! The account page `/account` (contract "(v3) Browser sign-in", hosted pages): each section a
//! form with the browser session's CSRF token, calling the API's functions; 303 on success, the
//! page again with the API's status on a refusal, the pages' headers everywhere.

use crate::account_support::*;
use crate::helpers::*;
use crate::mail::{link_mail, mail_app};
use crate::mfa_support::{enrol, Authenticator};
use crate::oidc_support::*;
use crate::on_both_backends;
use crate::passkey_support::{add_passkey, passkey_app, SoftKey};
use crate::smtp_sink::SmtpSink;
use portcullis::auth::guards::RequestOrigin;
use portcullis::db::Id;
use rocket::http::{ContentType, Status};
use serde_json::{json, Value};

on_both_backends! {
    async fn without_a_browser_session_the_page_sends_the_browser_to_sign_in_and_back(backend) {
        let app = TestApp::new(backend).await;
        let response = app.client.get("/account").dispatch().await;
        assert_eq!(response.status(), Status::SeeOther);
        let location = response.headers().get_one("Location").unwrap();
        assert!(location.contains("account"), "comes back to /account: {location}");
        // A form posted without a session does nothing but send the browser to sign in.
        let posted = app.client.post("/account/password").header(ContentType::Form)
            .body("csrf=x&current_password=x&new_password=y").dispatch().await;
        assert_eq!(posted.status(), Status::SeeOther);
    }

    async fn the_page_lists_the_sessions_marks_this_browser_and_has_labelled_forms(backend) {
        let app = TestApp::builder(backend).with_config("display_name", "Example Corp").build().await;
        let user = app.with_user().await;
        let api = app.login(&user).await;
        let browser = Browser::signed_in(&app, &user).await;
        let (html, csrf) = browser.page().await;
        assert!(html.contains("Example Corp"), "the service's display name");
        assert!(html.contains(&user.email));
        assert!(html.contains("This browser"));
        assert!(html.contains("Sign-in through the API"));
        assert!(html.contains(&api.session_id), "the API session has an End button");
        assert!(!csrf.is_empty());
        for id in ["current_password", "new_password", "new_email", "totp_password"] {
            assert!(html.contains(&format!("<label for=\"{id}\"")), "label of {id}");
        }
        let scripts: Vec<&str> = html.split("<script").skip(1).collect();
        assert_eq!(scripts.len(), 1, "the passkey script only");
        assert!(scripts[0].starts_with(" src=\"/pages/passkeys.js\" defer></script>"), "no inline code");
    }

    async fn ending_a_session_from_the_page_ends_it_and_ending_this_browser_signs_out(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let api = app.login(&user).await;
        let browser = Browser::signed_in(&app, &user).await;
        let (_, csrf) = browser.page().await;
        let ended = browser.post("/account/sessions/end", &[("csrf", &csrf), ("session_id", &api.session_id)]).await;
        assert_done(&ended);
        assert_eq!(app.me_status(&api.access).await, Status::Unauthorized, "the API session ended");
        let (html, _) = browser.page().await;
        assert!(html.contains("The session has ended."), "a one-time notice");
        let (html, _) = browser.page().await;
        assert!(!html.contains("The session has ended."), "shown once");
        // Another user's session is not found, and stays.
        let other = app.login(&app.with_user_email("other@example.com").await).await;
        let refused = browser.post("/account/sessions/end", &[("csrf", &csrf), ("session_id", &other.session_id)]).await;
        assert_eq!(refused.status(), Status::NotFound);
        assert_eq!(app.me_status(&other.access).await, Status::Ok);
        // This browser's own session: signed out, the cookie cleared.
        let own = browser.post("/account/sessions/end", &[("csrf", &csrf), ("session_id", &browser.session_id)]).await;
        assert_done(&own);
        let cleared = own.headers().get("Set-Cookie").any(|c| c.starts_with("portcullis_session=;"));
        assert!(cleared, "the session cookie is removed");
        assert_eq!(browser.get("/account").await.status(), Status::SeeOther, "signed out");
    }

    async fn a_wrong_current_password_is_401_and_a_change_ends_the_other_sessions_only(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let api = app.login(&user).await;
        let browser = Browser::signed_in(&app, &user).await;
        let (_, csrf) = browser.page().await;
        let wrong = browser.post("/account/password",
            &[("csrf", &csrf), ("current_password", "not the password"), ("new_password", "a brand new secret")]).await;
        assert_eq!(wrong.status(), Status::Unauthorized);
        assert_page_headers(&wrong);
        assert!(wrong.into_string().await.unwrap().contains("Your account"), "the page again");
        let weak = browser.post("/account/password",
            &[("csrf", &csrf), ("current_password", PASSWORD), ("new_password", "short")]).await;
        assert_eq!(weak.status(), Status::UnprocessableEntity);
        assert_eq!(app.me_status(&api.access).await, Status::Ok, "nothing changed yet");
        let changed = browser.post("/account/password",
            &[("csrf", &csrf), ("current_password", PASSWORD), ("new_password", "a brand new secret")]).await;
        assert_done(&changed);
        assert_eq!(app.me_status(&api.access).await, Status::Unauthorized, "the other session ended");
        browser.page().await;
        assert_eq!(app.login_response(&user.email, "a brand new secret").await.status(), Status::Ok);
    }

    async fn wrong_current_passwords_on_the_page_are_throttled_like_the_api(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let browser = Browser::signed_in(&app, &user).await;
        let (_, csrf) = browser.page().await;
        let mut statuses = vec![];
        for _ in 0..6 {
            let r = browser.post("/account/password",
                &[("csrf", &csrf), ("current_password", "wrong password"), ("new_password", "a brand new secret")]).await;
            statuses.push(r.status());
        }
        assert_eq!(statuses[..5], [Status::Unauthorized; 5]);
        assert_eq!(statuses[5], Status::TooManyRequests);
    }

    async fn totp_enrolment_shows_a_qr_code_then_the_recovery_codes_and_turns_mfa_on(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let api = app.login(&user).await;
        let browser = Browser::signed_in(&app, &user).await;
        let (_, csrf) = browser.page().await;
        let wrong = browser.post("/account/totp", &[("csrf", &csrf), ("password", "not the password")]).await;
        assert_eq!(wrong.status(), Status::Unauthorized);
        let started = browser.post("/account/totp", &[("csrf", &csrf), ("password", PASSWORD)]).await;
        assert_eq!(started.status(), Status::Ok);
        assert_page_headers(&started);
        let html = started.into_string().await.unwrap();
        assert!(html.contains("<svg"), "an inline SVG QR code");
        assert!(html.contains("<label for=\"code\""));
        let secret = html.split("class=\"secret\" id=\"secret\">").nth(1).unwrap().split('<').next().unwrap();
        let authenticator = Authenticator::from_base32(secret);
        let bad = browser.post("/account/totp/confirm", &[("csrf", &csrf), ("code", "000000")]).await;
        assert_eq!(bad.status(), Status::Unauthorized);
        let code = authenticator.code(&app, 0);
        let confirmed = browser.post("/account/totp/confirm", &[("csrf", &csrf), ("code", &code)]).await;
        assert_eq!(confirmed.status(), Status::Ok);
        let html = confirmed.into_string().await.unwrap();
        assert_eq!(html.matches("<li><code>").count(), 10, "ten recovery codes");
        assert_eq!(app.me_status(&api.access).await, Status::Unauthorized, "other sessions ended");
        assert_eq!(app.login_response(&user.email, PASSWORD).await.status(), Status::Forbidden, "mfa_required");
        // The page now offers to turn it off, with the password and a code.
        let (html, csrf) = browser.page().await;
        assert!(html.contains("/account/totp/disable"));
        app.clock.advance(30);
        let code = authenticator.code(&app, 0);
        let off = browser.post("/account/totp/disable", &[("csrf", &csrf), ("password", PASSWORD), ("code", &code)]).await;
        assert_done(&off);
        assert_eq!(app.login_response(&user.email, PASSWORD).await.status(), Status::Ok, "MFA is off");
    }

    async fn revoking_a_consent_from_the_page_forgets_it(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = registered_client(&app, "Photo printer").await;
        let user_id: Id = user.id.parse().unwrap();
        auth(&app).grant_consent(&mut conn(&app).await, user_id, client, "openid email", &RequestOrigin::default())
            .await.unwrap();
        let browser = Browser::signed_in(&app, &user).await;
        let (html, csrf) = browser.page().await;
        assert!(html.contains("Photo printer"));
        let revoked = browser.post("/account/consents/revoke", &[("csrf", &csrf), ("client_id", &client.to_string())]).await;
        assert_done(&revoked);
        let api = app.login(&user).await;
        let body: Value = app.get_authed("/users/me/consents", &api.access).await.into_json().await.unwrap();
        assert_eq!(body["consents"], json!([]));
        let again = browser.post("/account/consents/revoke", &[("csrf", &csrf), ("client_id", &client.to_string())]).await;
        assert_eq!(again.status(), Status::NotFound);
    }

    async fn an_email_change_from_the_page_mails_the_confirmation_link(backend) {
        let sink = SmtpSink::start().await;
        let app = mail_app(backend, &sink).await;
        let user = app.with_user().await;
        let browser = Browser::signed_in(&app, &user).await;
        let (_, csrf) = browser.page().await;
        let wrong = browser.post("/account/email", &[("csrf", &csrf), ("password", "not it"), ("new_email", "alice@new.example")]).await;
        assert_eq!(wrong.status(), Status::Unauthorized);
        let asked = browser.post("/account/email", &[("csrf", &csrf), ("password", PASSWORD), ("new_email", "alice@new.example")]).await;
        assert_done(&asked);
        let mail = link_mail(&sink, "alice@new.example", "confirm-email", 1).await;
        assert!(!mail.token().is_empty());
        let without_mail = TestApp::new(backend).await;
        let user = without_mail.with_user().await;
        let browser = Browser::signed_in(&without_mail, &user).await;
        let (_, csrf) = browser.page().await;
        let refused = browser.post("/account/email", &[("csrf", &csrf), ("password", PASSWORD), ("new_email", "a@new.example")]).await;
        assert_eq!(refused.status(), Status::ServiceUnavailable);
    }

    async fn the_account_sign_in_answers_like_the_api_and_asks_for_the_code_when_totp_is_on(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let authenticator = enrol(&app, &app.login(&user).await).await;
        let post = async |path: &str, pairs: &[(&str, &str)]| {
            let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
            app.client.post(path.to_owned()).header(ContentType::Form).body(body).dispatch().await
        };
        let csrf = field(&app.client.get("/account/signin").dispatch().await.into_string().await.unwrap(), "csrf");
        let wrong = post("/account/signin", &[("csrf", &csrf), ("email", &user.email), ("password", "not it")]).await;
        assert_eq!(wrong.status(), Status::Unauthorized);
        assert_page_headers(&wrong);
        let forged = post("/account/signin", &[("csrf", "forged"), ("email", &user.email), ("password", PASSWORD)]).await;
        assert_eq!(forged.status(), Status::Forbidden);
        let step = post("/account/signin", &[("csrf", &csrf), ("email", &user.email), ("password", PASSWORD)]).await;
        assert_eq!(step.status(), Status::SeeOther);
        assert_eq!(step.headers().get_one("Location"), Some("/account/signin/mfa"));
        assert_eq!(app.client.get("/account").dispatch().await.status(), Status::SeeOther, "not signed in yet");
        let html = app.client.get("/account/signin/mfa").dispatch().await.into_string().await.unwrap();
        assert!(html.contains("<label for=\"code\""));
        let csrf = field(&html, "csrf");
        let bad = post("/account/signin/mfa", &[("csrf", &csrf), ("code", "000000")]).await;
        assert_eq!(bad.status(), Status::Unauthorized);
        let code = authenticator.code(&app, 0);
        let signed_in = post("/account/signin/mfa", &[("csrf", &csrf), ("code", &code)]).await;
        assert_eq!(signed_in.status(), Status::SeeOther);
        assert_eq!(signed_in.headers().get_one("Location"), Some("/account"));
        assert_eq!(app.client.get("/account").dispatch().await.status(), Status::Ok);
    }

    async fn removing_a_passkey_from_the_page_needs_the_password_or_a_code(backend) {
        let app = passkey_app(backend).await;
        let user = app.with_user().await;
        let browser = Browser::signed_in(&app, &user).await;
        let tokens = app.login(&user).await;
        let mut key = SoftKey::new(true);
        add_passkey(&app, &tokens, &mut key, "Laptop").await;
        let (html, csrf) = browser.page().await;
        assert!(html.contains("Laptop"));
        let id = field(&html, "passkey_id");
        let none = browser.post("/account/passkeys/remove", &[("csrf", &csrf), ("passkey_id", &id), ("password", "")]).await;
        assert_eq!(none.status(), Status::BadRequest);
        let wrong = browser.post("/account/passkeys/remove", &[("csrf", &csrf), ("passkey_id", &id), ("password", "not it")]).await;
        assert_eq!(wrong.status(), Status::Unauthorized);
        let forged = browser.post("/account/passkeys/remove", &[("csrf", "x"), ("passkey_id", &id), ("password", PASSWORD)]).await;
        assert_eq!(forged.status(), Status::Forbidden);
        let listed: Value = app.get_authed("/auth/passkeys", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(listed["passkeys"].as_array().unwrap().len(), 1, "still there");
        let removed = browser.post("/account/passkeys/remove", &[("csrf", &csrf), ("passkey_id", &id), ("password", PASSWORD)]).await;
        assert_done(&removed);
        let listed: Value = app.get_authed("/auth/passkeys", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(listed["passkeys"], json!([]));
    }

    async fn a_form_without_this_browser_sessions_csrf_token_is_refused_and_changes_nothing(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let api = app.login(&user).await;
        let browser = Browser::signed_in(&app, &user).await;
        let second = app.second_instance(|b| b).await;
        let other_browser = Browser::signed_in(&second, &user).await;
        let (_, other_csrf) = other_browser.page().await;
        let (_, csrf) = browser.page().await;
        assert_ne!(csrf, other_csrf, "one token per browser session");
        for token in ["", "forged", other_csrf.as_str()] {
            let change = browser.post("/account/password",
                &[("csrf", token), ("current_password", PASSWORD), ("new_password", "a brand new secret")]).await;
            assert_eq!(change.status(), Status::Forbidden, "token {token:?}");
            assert_page_headers(&change);
            let end = browser.post("/account/sessions/end", &[("csrf", token), ("session_id", &api.session_id)]).await;
            assert_eq!(end.status(), Status::Forbidden);
        }
        let missing = browser.post("/account/sessions/end", &[("session_id", &api.session_id)]).await;
        assert_eq!(missing.status(), Status::Forbidden, "no token");
        assert_eq!(app.me_status(&api.access).await, Status::Ok, "no session ended");
        assert_eq!(app.login_response(&user.email, PASSWORD).await.status(), Status::Ok, "password unchanged");
        assert_eq!(live_session_ids(&app, &api.access).await.len(), 4, "both browsers, the API session and a login");
    }

    async fn every_account_form_refuses_a_made_up_csrf_token_before_it_does_anything(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let browser = Browser::signed_in(&app, &user).await;
        let routes = [
            "/account/password",
            "/account/email",
            "/account/sessions/end",
            "/account/totp",
            "/account/totp/confirm",
            "/account/totp/disable",
            "/account/consents/revoke",
            "/account/passkeys/remove",
            "/account/passkeys/add/start",
            "/account/passkeys/add",
        ];
        // Every field any of them takes, filled in, so only the token can be wrong.
        let session = Id::new().to_string();
        let fields = [
            ("csrf", "made-up"),
            ("password", PASSWORD),
            ("current_password", PASSWORD),
            ("new_password", "a brand new secret"),
            ("new_email", "new@example.com"),
            ("code", "123456"),
            ("session_id", session.as_str()),
            ("client_id", session.as_str()),
            ("passkey_id", session.as_str()),
            ("name", "key"),
            ("ceremony_id", "x"),
            ("credential", "{}"),
        ];
        for route in routes {
            let answer = browser.post(route, &fields).await;
            assert_eq!(answer.status(), Status::Forbidden, "{route}");
        }
        assert_eq!(app.login_response(&user.email, PASSWORD).await.status(), Status::Ok, "password unchanged");
    }
}
