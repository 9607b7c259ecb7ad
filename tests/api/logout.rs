//! RP-initiated logout at `/oauth/logout` (contract "(v3) Browser sign-in" and "Browser
//! sessions"): a hint of the cookie's user ends the browser session and every session its codes
//! started, then redirects to the registered `post_logout_redirect_uri` with `state`; expired
//! hints count; an unregistered URI is an error page, never a redirect; without a matching hint
//! the person confirms on a form whose CSRF token is checked; a hint ends nothing by itself.

use crate::browser_support::*;
use crate::helpers::*;
use crate::oauth::post_form as post_api_form;
use crate::on_both_backends;
use portcullis::admin::client_settings::ClientFields;
use portcullis::db::Id;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use serde_json::Value;

const AFTER: &str = "https://app.example.com/signed-out";

/// A first-party public client with the code and refresh grants, `REDIRECT`, and `AFTER` as its
/// post-logout redirect URI.
async fn logout_client(app: &TestApp, name: &str) -> Id {
    let fields = ClientFields {
        name: Some(name.into()),
        client_type: Some("public".into()),
        redirect_uris: Some(vec![REDIRECT.into()]),
        post_logout_redirect_uris: Some(vec![AFTER.into()]),
        grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
        first_party: Some(true),
        ..Default::default()
    };
    let created = portcullis::admin::clients::create_client_unchecked(
        crate::oidc_support::auth(app),
        crate::oidc_support::pool(app),
        &fields,
    )
    .await
    .expect("a client");
    created.client.client_id
}

/// Exchanges the code of the client redirect `location`: the token response.
async fn exchange(app: &TestApp, client: Id, location: &str) -> Value {
    let code = query_of(location).remove("code").expect("a code");
    let client = client.to_string();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", client.as_str()),
    ];
    let response = post_api_form(app, "/oauth/token", &form).await;
    assert_eq!(response.status(), Status::Ok);
    response.into_json().await.unwrap()
}

/// Signs `user` in on `browser` (password, or single sign-on when it has a session) for
/// `client`, and exchanges the code: the token response (with `id_token`).
async fn tokens_on(app: &TestApp, browser: &Client, client: Id, user: &TestUser) -> Value {
    let url = authorize_url(client, &[]);
    let (status, html, location) = get_page(browser, &url).await;
    let location = match status {
        Status::Ok => {
            let (status, _, location) =
                post_form(browser, &form_of(&html), &[("email", &user.email), ("password", &user.password)]).await;
            assert_eq!(status, Status::SeeOther);
            location.unwrap()
        }
        _ => location.expect("a redirect"),
    };
    exchange(app, client, &follow(browser, location, true).await).await
}

/// Whether the refresh token of `tokens` still refreshes at `/oauth/token` for `client`.
async fn refreshes(app: &TestApp, client: Id, tokens: &Value) -> bool {
    let client = client.to_string();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", client.as_str()),
    ];
    let response = post_api_form(app, "/oauth/token", &form).await;
    response.status() == Status::Ok
}

/// Whether `browser` is still signed in: `/oauth/authorize` answers without the password page.
async fn signed_in(browser: &Client, client: Id) -> bool {
    let (status, html, _) = get_page(browser, &authorize_url(client, &[])).await;
    !(status == Status::Ok && html.contains("name=\"password\""))
}

fn logout_url(params: &[(&str, &str)]) -> String {
    format!("/oauth/logout?{}", form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish())
}

/// GET `url` on `browser`: (status, body, Location, whether it sent the pages' headers).
async fn get_with_headers(browser: &Client, url: &str) -> (Status, String, Option<String>, bool) {
    let response = browser.get(url.to_owned()).dispatch().await;
    let headers = response.headers();
    let paged = headers.get_one("X-Content-Type-Options") == Some("nosniff")
        && headers.get_one("Cache-Control") == Some("no-store")
        && headers.get_one("Content-Security-Policy").is_some_and(|c| c.contains("frame-ancestors 'none'"));
    let (status, location) = (response.status(), headers.get_one("Location").map(str::to_owned));
    (status, response.into_string().await.unwrap_or_default(), location, paged)
}

fn is_redirect(status: Status) -> bool {
    matches!(status, Status::Found | Status::SeeOther)
}

on_both_backends! {
    async fn a_hint_of_the_cookies_user_ends_the_browser_session_and_what_it_started_and_redirects_with_state(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let (first, second) = (logout_client(&app, "First").await, logout_client(&app, "Second").await);
        let tokens = tokens_on(&app, &app.client, first, &user).await;
        // The second client signs in by single sign-on: a session started from the same browser session.
        let sso = tokens_on(&app, &app.client, second, &user).await;
        // A session of the same user that no code of this browser started.
        let elsewhere = app.login(&user).await;
        let hint = tokens["id_token"].as_str().unwrap();
        let response = app
            .client
            .get(logout_url(&[("id_token_hint", hint), ("post_logout_redirect_uri", AFTER), ("state", "s t&1")]))
            .dispatch()
            .await;
        assert!(is_redirect(response.status()), "{}", response.status());
        assert_eq!(response.headers().get_one("Location"), Some(format!("{AFTER}?state=s+t%261").as_str()));
        let cleared = session_cookie_header(&response).expect("the cookie is cleared");
        assert!(cleared.contains("Max-Age=0") || cleared.contains("Expires="), "{cleared}");
        // The browser session and both sessions it started are over: refresh and access tokens refused.
        assert!(!signed_in(&app.client, first).await, "the browser session ended");
        assert!(!refreshes(&app, first, &tokens).await);
        assert!(!refreshes(&app, second, &sso).await);
        for access in [&tokens["access_token"], &sso["access_token"]] {
            assert_eq!(app.me_status(access.as_str().unwrap()).await, Status::Unauthorized);
            let response = app.get_authed("/oauth/userinfo", access.as_str().unwrap()).await;
            assert_eq!(response.status(), Status::Unauthorized);
        }
        // The session started elsewhere lives on.
        assert_eq!(app.me_status(&elsewhere.access).await, Status::Ok);
        assert_eq!(app.refresh_response(&elsewhere.refresh).await.status(), Status::Ok);
    }

    async fn an_expired_hint_is_accepted(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = logout_client(&app, "First").await;
        let tokens = tokens_on(&app, &app.client, client, &user).await;
        app.clock.advance(tokens["expires_in"].as_i64().unwrap() + 3600);
        let hint = tokens["id_token"].as_str().unwrap();
        let (status, _, location, _) =
            get_with_headers(&app.client, &logout_url(&[("id_token_hint", hint), ("post_logout_redirect_uri", AFTER)])).await;
        assert!(is_redirect(status), "no confirmation for an expired hint: {status}");
        assert_eq!(location.as_deref(), Some(AFTER));
        assert!(!signed_in(&app.client, client).await);
        assert!(!refreshes(&app, client, &tokens).await);
    }

    async fn a_post_logout_redirect_uri_not_registered_byte_for_byte_is_an_error_page_and_ends_nothing(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = logout_client(&app, "First").await;
        let tokens = tokens_on(&app, &app.client, client, &user).await;
        let hint = tokens["id_token"].as_str().unwrap();
        let client_id = client.to_string();
        for uri in [
            "https://evil.example/signed-out",
            "https://app.example.com/signed-outs",
            "https://app.example.com/Signed-out",
            "https://app.example.com/signed-out/",
            "https://app.example.com/signed-out?x=1",
            REDIRECT,
        ] {
            for params in [
                vec![("id_token_hint", hint), ("post_logout_redirect_uri", uri), ("state", "s")],
                vec![("client_id", client_id.as_str()), ("post_logout_redirect_uri", uri)],
            ] {
                let (status, html, location, paged) = get_with_headers(&app.client, &logout_url(&params)).await;
                assert_eq!(status, Status::BadRequest, "{uri}: {html}");
                assert_eq!(location, None, "never a redirect: {uri}");
                assert!(paged && html.contains("post_logout_redirect_uri"), "{html}");
            }
        }
        // A registered URI with nothing naming the client cannot be checked either.
        let (status, _, location, _) = get_with_headers(&app.client, &logout_url(&[("post_logout_redirect_uri", AFTER)])).await;
        assert_eq!((status, location), (Status::BadRequest, None));
        // A client_id that is not the hint's audience.
        let other = logout_client(&app, "Other").await.to_string();
        let params = [("id_token_hint", hint), ("client_id", other.as_str()), ("post_logout_redirect_uri", AFTER)];
        assert_eq!(get_with_headers(&app.client, &logout_url(&params)).await.0, Status::BadRequest);
        assert!(signed_in(&app.client, client).await, "nothing ended");
        assert!(refreshes(&app, client, &tokens).await);
    }

    async fn without_a_hint_the_person_confirms_on_a_form_whose_csrf_token_is_checked(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = logout_client(&app, "First").await;
        let tokens = tokens_on(&app, &app.client, client, &user).await;
        let url = logout_url(&[("client_id", &client.to_string()), ("post_logout_redirect_uri", AFTER), ("state", "st")]);
        let (status, html, location, paged) = get_with_headers(&app.client, &url).await;
        assert_eq!((status, location), (Status::Ok, None));
        assert!(paged, "the pages' headers");
        let form = form_of(&html);
        assert_eq!(form.action, "/oauth/logout");
        // The form without its token, with another token, or with the carried request swapped: 403.
        let forged_request = form.request.replace("state=st", "state=xx");
        for (csrf, request) in [("", form.request.as_str()), ("x".repeat(43).as_str(), form.request.as_str()), (form.csrf.as_str(), forged_request.as_str())] {
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("csrf", csrf)
                .append_pair("request", request)
                .append_pair("confirm", "yes")
                .finish();
            let response = app.client.post("/oauth/logout").header(ContentType::Form).body(body).dispatch().await;
            assert_eq!(response.status(), Status::Forbidden);
        }
        let body = form_urlencoded::Serializer::new(String::new()).append_pair("request", &form.request).finish();
        let response = app.client.post("/oauth/logout").header(ContentType::Form).body(body).dispatch().await;
        assert_eq!(response.status(), Status::Forbidden, "no csrf field at all");
        // The same form posted by another browser ends nothing.
        let other = app.second_instance(|b| b).await;
        post_form(&other.client, &form, &[("confirm", "yes")]).await;
        assert!(signed_in(&app.client, client).await && refreshes(&app, client, &tokens).await, "still signed in");
        // Confirmed: ended, then 303 to the registered URI with state.
        let (status, _, location) = post_form(&app.client, &form, &[("confirm", "yes")]).await;
        assert_eq!(status, Status::SeeOther);
        assert_eq!(location.as_deref(), Some(format!("{AFTER}?state=st").as_str()));
        assert!(!signed_in(&app.client, client).await);
        assert!(!refreshes(&app, client, &tokens).await);
        assert_eq!(app.me_status(tokens["access_token"].as_str().unwrap()).await, Status::Unauthorized);
    }

    async fn another_users_hint_asks_for_confirmation_and_ends_nothing_by_itself(backend) {
        let app = TestApp::new(backend).await;
        let (ada, bob) = (app.with_user_email("ada@example.com").await, app.with_user_email("bob@example.com").await);
        let client = logout_client(&app, "First").await;
        let ada_tokens = tokens_on(&app, &app.client, client, &ada).await;
        let bob_browser = app.second_instance(|b| b).await;
        let bob_tokens = tokens_on(&app, &bob_browser.client, client, &bob).await;
        let params = [("id_token_hint", bob_tokens["id_token"].as_str().unwrap()), ("post_logout_redirect_uri", AFTER)];
        let (status, html, _, _) = get_with_headers(&app.client, &logout_url(&params)).await;
        assert_eq!(status, Status::Ok, "a confirmation page");
        assert!(html.contains("action=\"/oauth/logout\""), "{html}");
        assert!(refreshes(&app, client, &ada_tokens).await && refreshes(&app, client, &bob_tokens).await);
        // A made-up hint is no hint either.
        let (status, _, _, _) = get_with_headers(&app.client, &logout_url(&[("id_token_hint", "e30.e30.c2ln")])).await;
        assert_eq!(status, Status::Ok);
        // An access token is no ID token.
        let access = logout_url(&[("id_token_hint", ada_tokens["access_token"].as_str().unwrap())]);
        assert_eq!(get_with_headers(&app.client, &access).await.0, Status::Ok);
        assert!(signed_in(&app.client, client).await && signed_in(&bob_browser.client, client).await);
        // Confirming ends Ada's browser session only.
        let (status, _, location) = post_form(&app.client, &form_of(&html), &[("confirm", "yes")]).await;
        assert_eq!((status, location.as_deref()), (Status::SeeOther, Some(AFTER)));
        assert!(!refreshes(&app, client, &ada_tokens).await);
        assert!(refreshes(&app, client, &bob_tokens).await, "Bob's sessions are his");
        assert!(signed_in(&bob_browser.client, client).await);
    }

    async fn with_no_browser_session_logout_shows_the_signed_out_page_or_redirects(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = logout_client(&app, "First").await;
        let other = app.second_instance(|b| b).await;
        let tokens = tokens_on(&app, &other.client, client, &user).await;
        let (status, html, location, paged) = get_with_headers(&app.client, "/oauth/logout").await;
        assert_eq!((status, location), (Status::Ok, None));
        assert!(paged && html.contains("signed out"), "{html}");
        let params = [("id_token_hint", tokens["id_token"].as_str().unwrap()), ("post_logout_redirect_uri", AFTER), ("state", "z")];
        let (status, _, location, _) = get_with_headers(&app.client, &logout_url(&params)).await;
        assert!(is_redirect(status));
        assert_eq!(location.as_deref(), Some(format!("{AFTER}?state=z").as_str()));
        // The hint alone ended nothing: the browser that holds the session is still signed in.
        assert!(signed_in(&other.client, client).await && refreshes(&app, client, &tokens).await);
        // A relying party's logout by form POST is accepted as well (here: no session, 303).
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        let response = app.client.post("/oauth/logout").header(ContentType::Form).body(body).dispatch().await;
        assert_eq!(response.status(), Status::SeeOther);
    }
}
