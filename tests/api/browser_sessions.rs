//! Browser sessions: the cookie (HttpOnly, SameSite=Lax, `__Host-` and Secure with an https
//! issuer), single sign-on for a second client, `prompt=login` and `max_age`, and the session's
//! place among the user's sessions: listed, and ended by logout-all and password change (then the
//! cookie is worth nothing and its pending codes are void).

use crate::browser_support::*;
use crate::helpers::*;
use crate::on_both_backends;
use portcullis::auth::oidc::codes::CodeRefusal;
use rocket::http::Status;
use serde_json::{json, Value};

/// Whether `GET url` shows the sign-in page (no usable browser session).
async fn asks_for_password(app: &TestApp, url: &str) -> bool {
    let (status, html, _) = get_page(&app.client, url).await;
    status == Status::Ok && html.contains("name=\"password\"")
}

on_both_backends! {
    async fn a_second_client_signs_in_without_the_password_while_the_browser_session_lives(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let first = browser_client(&app, "First", true, &[REDIRECT]).await;
        let second = browser_client(&app, "Second", true, &[REDIRECT]).await;
        let location = code_for(&app, &authorize_url(first, &[]), &user).await;
        let first_grant = redeem(&app, first, &location).await.unwrap();
        let (status, _, location) = get_page(&app.client, &authorize_url(second, &[])).await;
        assert!(matches!(status, Status::Found | Status::SeeOther), "no page: {status}");
        let grant = redeem(&app, second, &location.unwrap()).await.expect("a code for the second client");
        assert_eq!(grant.code.browser_session_id, first_grant.code.browser_session_id, "the same browser session");
        assert_eq!(grant.code.auth_time, first_grant.code.auth_time, "auth_time is the sign-in's");
        // Past browser_session_ttl it is over.
        app.clock.advance(86_401);
        assert!(asks_for_password(&app, &authorize_url(second, &[])).await);
    }

    async fn prompt_login_and_an_exceeded_max_age_ask_for_the_password_again(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = browser_client(&app, "First", true, &[REDIRECT]).await;
        code_for(&app, &authorize_url(client, &[]), &user).await;
        assert!(asks_for_password(&app, &authorize_url(client, &[("prompt", "login")])).await);
        app.clock.advance(100);
        assert!(!asks_for_password(&app, &authorize_url(client, &[("max_age", "100")])).await);
        assert!(asks_for_password(&app, &authorize_url(client, &[("max_age", "99")])).await);
        // Signing in again satisfies them: a code with the new auth_time.
        let location = code_for(&app, &authorize_url(client, &[("prompt", "login"), ("max_age", "0")]), &user).await;
        let grant = redeem(&app, client, &location).await.unwrap();
        assert_eq!(grant.code.auth_time, app.clock.now());
        // On to a consent page a moment after signing in: not asked for the password again.
        let third = browser_client(&app, "Third", false, &[REDIRECT]).await;
        let location = sign_in_at(&app.client, &authorize_url(third, &[("prompt", "login"), ("max_age", "0")]), &user).await;
        app.clock.advance(2);
        let (status, html, _) = get_page(&app.client, &location).await;
        assert_eq!(status, Status::Ok);
        assert!(html.contains("action=\"/consent\""), "the consent page, no loop: {html}");
    }

    async fn the_cookie_is_http_only_lax_and_host_prefixed_and_secure_under_an_https_issuer(backend) {
        for (issuer, name, secure) in [
            ("http://127.0.0.1:8000", "portcullis_session=", false),
            ("https://auth.example.com", "__Host-portcullis_session=", true),
        ] {
            let app = TestApp::builder(backend).with_config("issuer", issuer).build().await;
            let user = app.with_user().await;
            let client = browser_client(&app, "First", true, &[REDIRECT]).await;
            let (_, html, _) = get_page(&app.client, &authorize_url(client, &[])).await;
            let form = form_of(&html);
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("csrf", &form.csrf)
                .append_pair("request", &form.request)
                .append_pair("email", &user.email)
                .append_pair("password", &user.password)
                .finish();
            let response =
                app.client.post("/signin").header(rocket::http::ContentType::Form).body(body).dispatch().await;
            assert_eq!(response.status(), Status::SeeOther);
            let cookie = session_cookie_header(&response).expect("the session cookie");
            assert!(cookie.starts_with(name), "{cookie}");
            assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
            assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
            assert!(!cookie.contains("Domain"), "{cookie}");
        }
    }

    async fn the_browser_session_is_listed_and_logout_all_ends_it_and_voids_its_pending_codes(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = browser_client(&app, "First", true, &[REDIRECT]).await;
        let pending = code_for(&app, &authorize_url(client, &[]), &user).await;
        let tokens = app.login(&user).await;
        let list: Value = app.get_authed("/auth/sessions", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(list["sessions"].as_array().unwrap().len(), 2, "the browser session and the API one: {list}");
        let response = app.post_authed("/auth/logout-all", &tokens.access, json!({})).await;
        assert_eq!(response.status(), Status::NoContent);
        assert!(asks_for_password(&app, &authorize_url(client, &[])).await, "the cookie no longer works");
        assert_eq!(redeem(&app, client, &pending).await.unwrap_err(), CodeRefusal::Unknown, "its code is void");
    }

    async fn a_password_change_ends_the_browser_session(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = browser_client(&app, "First", true, &[REDIRECT]).await;
        code_for(&app, &authorize_url(client, &[]), &user).await;
        assert!(!asks_for_password(&app, &authorize_url(client, &[])).await);
        let tokens = app.login(&user).await;
        let body = json!({"current_password": PASSWORD, "new_password": "another long passphrase"});
        assert_eq!(app.put_authed("/users/me/password", &tokens.access, body).await.status(), Status::NoContent);
        assert!(asks_for_password(&app, &authorize_url(client, &[])).await);
    }

    async fn signing_in_again_in_the_same_browser_replaces_its_session(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = browser_client(&app, "First", true, &[REDIRECT]).await;
        let first = code_for(&app, &authorize_url(client, &[]), &user).await;
        let second = code_for(&app, &authorize_url(client, &[("prompt", "login")]), &user).await;
        let second = redeem(&app, client, &second).await.unwrap();
        assert_eq!(redeem(&app, client, &first).await.unwrap_err(), CodeRefusal::Unknown, "the old session's code");
        let tokens = app.login(&user).await;
        let list: Value = app.get_authed("/auth/sessions", &tokens.access).await.into_json().await.unwrap();
        let ids: Vec<&str> = list["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert!(ids.contains(&second.code.browser_session_id.to_string().as_str()));
        assert_eq!(ids.len(), 2, "one browser session, one API session: {list}");
    }
}
