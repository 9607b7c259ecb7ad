//! The hosted sign-in and consent pages: the API's answers (401, 403, 429 with the same words
//! and the same throttle as `/auth/login`), the TOTP step, CSRF tokens bound to the browser and
//! its session, and the pages' headers.

use crate::browser_support::*;
use crate::helpers::*;
use crate::mfa_support::enrol;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::json;

/// The sign-in form of a fresh request of `client`.
async fn sign_in_form(app: &TestApp, client: portcullis::db::Id) -> PageForm {
    let (status, html, _) = get_page(&app.client, &authorize_url(client, &[])).await;
    assert_eq!(status, Status::Ok);
    form_of(&html)
}

on_both_backends! {
    async fn a_failed_sign_in_answers_the_page_with_the_status_and_words_of_the_api(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = browser_client(&app, "First", true, &[REDIRECT]).await;
        let form = sign_in_form(&app, client).await;
        let (wrong, wrong_html, _) = post_form(&app.client, &form, &[("email", &user.email), ("password", "not the password")]).await;
        let (unknown, unknown_html, _) = post_form(&app.client, &form, &[("email", "nobody@example.com"), ("password", "not the password")]).await;
        assert_eq!((wrong, unknown), (Status::Unauthorized, Status::Unauthorized));
        let (_, _, api_text) = error_with_description(app.login_response("nobody@example.com", "x-password").await).await;
        for html in [&wrong_html, &unknown_html] {
            assert!(html.contains(&api_text), "the API's words: {html}");
            assert!(html.contains("name=\"password\""), "the form again");
        }
        // Disabled: 403, as at /auth/login (after the password).
        let (_, admin) = crate::admin_support::with_admin(&app).await;
        let response = crate::admin_support::patch_authed(&app, &format!("/admin/users/{}", user.id), &admin.access, json!({"disabled": true})).await;
        assert_eq!(response.status(), Status::Ok);
        let (status, _, _) = post_form(&app.client, &form, &[("email", &user.email), ("password", &user.password)]).await;
        assert_eq!(status, Status::Forbidden);
    }

    async fn the_sign_in_form_is_throttled_with_the_counters_of_auth_login(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = browser_client(&app, "First", true, &[REDIRECT]).await;
        let form = sign_in_form(&app, client).await;
        // Failures at the API and on the page count together.
        for _ in 0..3 {
            assert_eq!(app.login_response(&user.email, "wrong password!").await.status(), Status::Unauthorized);
        }
        for _ in 0..2 {
            let (status, _, _) = post_form(&app.client, &form, &[("email", &user.email), ("password", "wrong password!")]).await;
            assert_eq!(status, Status::Unauthorized);
        }
        let (status, html, _) = post_form(&app.client, &form, &[("email", &user.email), ("password", &user.password)]).await;
        assert_eq!(status, Status::TooManyRequests, "throttled even with the right password: {html}");
        assert_eq!(app.login_response(&user.email, &user.password).await.status(), Status::TooManyRequests);
    }

    async fn an_account_with_totp_asks_for_the_code_counts_wrong_ones_and_signs_in_with_otp(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let authenticator = enrol(&app, &tokens).await;
        let client = browser_client(&app, "First", true, &[REDIRECT]).await;
        let form = sign_in_form(&app, client).await;
        let (status, _, location) = post_form(&app.client, &form, &[("email", &user.email), ("password", &user.password)]).await;
        assert_eq!(status, Status::SeeOther);
        let location = location.unwrap();
        assert!(location.starts_with("/signin/mfa?"), "{location}");
        let (status, html, _) = get_page(&app.client, &location).await;
        assert_eq!(status, Status::Ok);
        assert!(html.contains("<label for=\"code\">"), "{html}");
        let code_form = form_of(&html);
        let (status, html, _) = post_form(&app.client, &code_form, &[("code", "000000")]).await;
        assert_eq!(status, Status::Unauthorized, "a wrong code: {html}");
        let code = authenticator.code(&app, 0);
        let (status, _, location) = post_form(&app.client, &form_of(&html), &[("code", &code)]).await;
        assert_eq!(status, Status::SeeOther);
        let grant = redeem(&app, client, &location.unwrap()).await.expect("a code");
        assert_eq!(grant.code.amr, "pwd otp mfa");
    }

    async fn a_csrf_token_from_another_browser_or_another_browser_session_is_refused(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let third = browser_client(&app, "Third", false, &[REDIRECT]).await;
        // No token, or a made-up one: 403, nothing signed in.
        let mut form = sign_in_form(&app, third).await;
        form.csrf = "forged".into();
        let (status, _, _) = post_form(&app.client, &form, &[("email", &user.email), ("password", &user.password)]).await;
        assert_eq!(status, Status::Forbidden);
        // The consent form of one browser session...
        let location = sign_in_at(&app.client, &authorize_url(third, &[]), &user).await;
        let (_, html, _) = get_page(&app.client, &location).await;
        let consent = form_of(&html);
        // ...posted by another browser (its own cookies and session):
        let other = app.second_instance(|b| b).await;
        let location = sign_in_at(&other.client, &authorize_url(third, &[]), &user).await;
        get_page(&other.client, &location).await;
        let (status, _, _) = post_form(&other.client, &consent, &[("decision", "approve")]).await;
        assert_eq!(status, Status::Forbidden, "another browser");
        // ...or by the same browser after a new sign-in (another browser session):
        let location = sign_in_at(&app.client, &authorize_url(third, &[("prompt", "login")]), &user).await;
        assert!(location.starts_with("/oauth/authorize?"));
        let (status, _, _) = post_form(&app.client, &consent, &[("decision", "approve")]).await;
        assert_eq!(status, Status::Forbidden, "another browser session");
        // A token of one request does not carry another (a swapped redirect or client).
        let mut swapped = consent.clone();
        swapped.request = swapped.request.replace("st-1", "st-2");
        let (_, html, _) = get_page(&app.client, &location).await;
        swapped.csrf = form_of(&html).csrf;
        let (status, _, _) = post_form(&app.client, &swapped, &[("decision", "approve")]).await;
        assert_eq!(status, Status::Forbidden, "another request");
        // Nothing was approved by any of them.
        let tokens = app.login(&user).await;
        let consents: serde_json::Value = app.get_authed("/users/me/consents", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(consents["consents"], json!([]));
    }

    async fn every_sign_in_post_refuses_a_made_up_csrf_token_before_it_reads_anything_else(backend) {
        // One prelude serves them all (`pages::authorize::posted`); each route names its form.
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let third = browser_client(&app, "Third", false, &[REDIRECT]).await;
        let form = sign_in_form(&app, third).await;
        let routes: [(&str, &[(&str, &str)]); 4] = [
            ("/signin", &[("email", &user.email), ("password", &user.password)]),
            ("/signin/mfa", &[("code", "123456")]),
            ("/signin/passkey", &[("ceremony_id", "x"), ("credential", "{}")]),
            ("/signin/mfa/passkey", &[("ceremony_id", "x"), ("credential", "{}")]),
        ];
        for (action, fields) in routes {
            let forged = PageForm { action: action.to_owned(), csrf: "forged".into(), ..form.clone() };
            let (status, html, _) = post_form(&app.client, &forged, fields).await;
            assert_eq!(status, Status::Forbidden, "{action}");
            assert!(html.contains("did not come from this site"), "{action}: the form again, with why");
        }
    }

    async fn every_page_sends_the_security_headers_labels_its_fields_and_names_the_service(backend) {
        let app = TestApp::builder(backend).with_config("display_name", "Example Portal").build().await;
        let client = browser_client(&app, "First", true, &[REDIRECT]).await;
        for url in [authorize_url(client, &[]), authorize_url(portcullis::db::Id::new(), &[])] {
            let response = app.client.get(url.clone()).dispatch().await;
            let csp = response.headers().get_one("Content-Security-Policy").unwrap().to_owned();
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert_eq!(response.headers().get_one("X-Content-Type-Options"), Some("nosniff"));
            assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
            let html = response.into_string().await.unwrap();
            assert!(html.contains("Example Portal"), "{html}");
            // At most the one script file of this origin (passkeys), never inline code.
            assert_eq!(html.matches("<script").count(), html.matches("<script src=\"/pages/passkeys.js\" defer></script>").count(), "{html}");
            assert!(html.contains("name=\"viewport\""), "readable on a phone");
        }
        let (_, html, _) = get_page(&app.client, &authorize_url(client, &[])).await;
        assert!(html.contains("<label for=\"email\">") && html.contains("id=\"email\""));
        assert!(html.contains("<label for=\"password\">") && html.contains("id=\"password\""));
    }
}
