//! `/oauth/authorize`: the client and redirect URI are validated before anything is redirected
//! (an error page otherwise), PKCE S256 is required, errors and codes carry `state` and `iss`,
//! `prompt=none`, scopes and resources, and the consent of third-party clients.

use crate::admin_support::with_admin;
use crate::browser_support::*;
use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::Status;
use serde_json::Value;

const ISSUER_PARAM: &str = "iss";

on_both_backends! {
    async fn a_redirect_uri_differing_by_one_character_or_an_unknown_client_gets_an_error_page_never_a_redirect(backend) {
        let app = TestApp::new(backend).await;
        let client = browser_client(&app, "web", true, &[REDIRECT]).await;
        let near = "https://app.example.com/callbacj";
        for url in [
            authorize_url(client, &[("redirect_uri", near)]),
            authorize_url(client, &[("redirect_uri", "https://app.example.com/callback/")]),
            authorize_url(client, &[("redirect_uri", "")]),
            authorize_url(portcullis::db::Id::new(), &[]),
            authorize_url(client, &[]).replace("client_id=", "client_id=x"),
        ] {
            let (status, html, location) = get_page(&app.client, &url).await;
            assert_eq!(status, Status::BadRequest, "{url}");
            assert_eq!(location, None, "never a redirect: {url}");
            assert!(html.contains("<h1>"), "an HTML page: {html}");
        }
        // Even with every other error in the request: the redirect URI is judged first.
        let url = authorize_url(client, &[("redirect_uri", near), ("code_challenge", ""), ("response_type", "token")]);
        assert_eq!(get_page(&app.client, &url).await.2, None);
    }

    async fn a_loopback_redirect_uri_takes_any_port_and_the_response_goes_to_that_port(backend) {
        let app = TestApp::new(backend).await;
        let client = browser_client(&app, "cli", true, &["http://127.0.0.1/cb", "http://[::1]/cb"]).await;
        for requested in ["http://127.0.0.1:53123/cb", "http://[::1]:8123/cb"] {
            let url = authorize_url(client, &[("redirect_uri", requested), ("prompt", "none")]);
            let (status, _, location) = get_page(&app.client, &url).await;
            assert!(matches!(status, Status::Found | Status::SeeOther), "{requested}: {status}");
            let location = location.unwrap();
            assert!(location.starts_with(&format!("{requested}?")), "{location}");
            assert_eq!(query_of(&location)["error"], "login_required");
        }
        let (status, _, location) =
            get_page(&app.client, &authorize_url(client, &[("redirect_uri", "http://127.0.0.1:53123/cc")])).await;
        assert_eq!((status, location), (Status::BadRequest, None));
    }

    async fn pkce_missing_plain_or_malformed_and_other_response_types_are_redirected_errors_with_state_and_iss(backend) {
        let app = TestApp::new(backend).await;
        let client = browser_client(&app, "web", true, &[REDIRECT]).await;
        let issuer = crate::oidc_support::auth(&app).config.issuer.clone();
        for (extra, error) in [
            (vec![("code_challenge", "")], "invalid_request"),
            (vec![("code_challenge_method", "")], "invalid_request"),
            (vec![("code_challenge_method", "plain")], "invalid_request"),
            (vec![("code_challenge", "short")], "invalid_request"),
            (vec![("response_type", "token")], "unsupported_response_type"),
            (vec![("response_type", "")], "invalid_request"),
            (vec![("scope", "openid users:fly")], "invalid_scope"),
            (vec![("resource", "https://unknown.example")], "invalid_target"),
        ] {
            let (status, _, location) = get_page(&app.client, &authorize_url(client, &extra)).await;
            assert!(matches!(status, Status::Found | Status::SeeOther), "{extra:?}: {status}");
            let location = location.unwrap();
            assert!(location.starts_with(REDIRECT), "{location}");
            let query = query_of(&location);
            assert_eq!(query["error"], error, "{extra:?}");
            assert!(!query["error_description"].is_empty());
            assert_eq!(query["state"], "st-1");
            assert_eq!(query[ISSUER_PARAM], issuer);
        }
        // A client without the authorization_code grant.
        let fields = portcullis::admin::client_settings::ClientFields {
            name: Some("service".into()),
            redirect_uris: Some(vec![REDIRECT.into()]),
            ..Default::default()
        };
        let service = portcullis::admin::clients::create_client_unchecked(
            crate::oidc_support::auth(&app), crate::oidc_support::pool(&app), &fields).await.unwrap().client.client_id;
        let (_, _, location) = get_page(&app.client, &authorize_url(service, &[])).await;
        assert_eq!(query_of(&location.unwrap())["error"], "unauthorized_client");
    }

    async fn prompt_none_redirects_login_required_without_a_session_and_consent_required_without_consent(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let third = browser_client(&app, "Third", false, &[REDIRECT]).await;
        let (_, _, location) = get_page(&app.client, &authorize_url(third, &[("prompt", "none")])).await;
        let query = query_of(&location.unwrap());
        assert_eq!((query["error"].as_str(), query["state"].as_str()), ("login_required", "st-1"));
        // Signed in (through a first-party client), still no consent to the third party.
        let first = browser_client(&app, "First", true, &[REDIRECT]).await;
        let location = code_for(&app, &authorize_url(first, &[]), &user).await;
        assert!(query_of(&location).contains_key("code"));
        let (_, _, location) = get_page(&app.client, &authorize_url(third, &[("prompt", "none")])).await;
        assert_eq!(query_of(&location.unwrap())["error"], "consent_required");
    }

    async fn a_first_party_client_gets_a_code_carrying_the_request_and_the_sign_in(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let client = browser_client(&app, "First", true, &[REDIRECT]).await;
        let location = code_for(&app, &authorize_url(client, &[("scope", "openid email address")]), &user).await;
        let query = query_of(&location);
        assert_eq!(query["state"], "st-1");
        assert_eq!(query[ISSUER_PARAM], crate::oidc_support::auth(&app).config.issuer);
        let grant = redeem(&app, client, &location).await.expect("the code redeems");
        assert_eq!(grant.code.user_id.to_string(), user.id);
        assert_eq!(grant.code.scope, "openid email", "unknown OpenID values are dropped");
        assert_eq!((grant.code.nonce.as_deref(), grant.code.amr.as_str()), (Some("n-1"), "pwd"));
        assert_eq!(grant.code.auth_time, app.clock.now());
    }

    async fn a_consent_denial_redirects_access_denied_and_remembers_nothing(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let third = browser_client(&app, "Third App", false, &[REDIRECT]).await;
        let location = sign_in_at(&app.client, &authorize_url(third, &[]), &user).await;
        let (status, html, _) = get_page(&app.client, &location).await;
        assert_eq!(status, Status::Ok);
        assert!(html.contains("Third App") && html.contains("email address"), "names the client and the scope: {html}");
        let (status, _, location) = post_form(&app.client, &form_of(&html), &[("decision", "deny")]).await;
        assert_eq!(status, Status::SeeOther);
        let query = query_of(&location.unwrap());
        assert_eq!((query["error"].as_str(), query["state"].as_str()), ("access_denied", "st-1"));
        let tokens = app.login(&user).await;
        let consents: Value = app.get_authed("/users/me/consents", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(consents["consents"], serde_json::json!([]));
        // Asked again: the consent page again, not a code.
        let (status, html, _) = get_page(&app.client, &authorize_url(third, &[])).await;
        assert_eq!(status, Status::Ok);
        assert!(html.contains("action=\"/consent\""));
    }

    async fn an_approval_is_remembered_per_client_and_scope_and_prompt_consent_asks_again(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let third = browser_client(&app, "Third", false, &[REDIRECT]).await;
        let location = code_for(&app, &authorize_url(third, &[]), &user).await;
        assert!(redeem(&app, third, &location).await.is_ok());
        // Remembered: the next request (same or narrower scope) gets its code at once.
        let (_, _, location) = get_page(&app.client, &authorize_url(third, &[("scope", "openid")])).await;
        assert!(query_of(&location.unwrap()).contains_key("code"));
        // prompt=consent shows the page anyway; a wider scope asks again.
        for extra in [vec![("prompt", "consent")], vec![("scope", "openid email profile")]] {
            let (status, html, _) = get_page(&app.client, &authorize_url(third, &extra)).await;
            assert_eq!(status, Status::Ok, "{extra:?}");
            assert!(html.contains("action=\"/consent\""), "{extra:?}");
        }
        let tokens = app.login(&user).await;
        let consents: Value = app.get_authed("/users/me/consents", &tokens.access).await.into_json().await.unwrap();
        assert_eq!(consents["consents"][0]["scope"], "email openid");
    }

    async fn a_third_party_app_asking_admin_permissions_gets_only_what_it_asked_and_was_approved(backend) {
        let app = TestApp::new(backend).await;
        let (admin, _) = with_admin(&app).await;
        let third = browser_client(&app, "Third", false, &[REDIRECT]).await;
        // Asking for nothing but sign-in: no permission at all.
        let location = code_for(&app, &authorize_url(third, &[("scope", "openid")]), &admin).await;
        assert_eq!(redeem(&app, third, &location).await.unwrap().code.scope, "openid");
        // Asking for one permission: that one, after the consent page named it.
        let url = authorize_url(third, &[("scope", "openid users:read")]);
        let (status, html, _) = get_page(&app.client, &url).await;
        assert_eq!(status, Status::Ok);
        assert!(html.contains("users:read") || html.contains("List and read user accounts"), "{html}");
        let location = follow(&app.client, url, true).await;
        assert_eq!(redeem(&app, third, &location).await.unwrap().code.scope, "openid users:read");
        // A permission the account does not hold is refused, as at /auth/login.
        let user = app.with_user_email("bob@example.com").await;
        let other = browser_client(&app, "Other", false, &[REDIRECT]).await;
        let url = authorize_url(other, &[("scope", "openid users:write"), ("prompt", "login")]);
        let location = sign_in_at(&app.client, &url, &user).await;
        assert_eq!(query_of(&location)["error"], "invalid_scope");
    }

    async fn a_form_post_to_the_authorization_endpoint_is_answered_like_its_get(backend) {
        let app = TestApp::new(backend).await;
        let client = browser_client(&app, "First", true, &[REDIRECT]).await;
        let url = authorize_url(client, &[("prompt", "none")]);
        let body = url.split_once('?').unwrap().1.to_owned();
        let response = app.client.post("/oauth/authorize").header(rocket::http::ContentType::Form).body(body).dispatch().await;
        assert!(matches!(response.status(), Status::Found | Status::SeeOther));
        let location = response.headers().get_one("Location").unwrap().to_owned();
        assert_eq!(query_of(&location)["error"], "login_required");
        let body = authorize_url(client, &[("redirect_uri", "https://evil.example/cb")]).split_once('?').unwrap().1.to_owned();
        let response = app.client.post("/oauth/authorize").header(rocket::http::ContentType::Form).body(body).dispatch().await;
        assert_eq!(response.status(), Status::BadRequest);
        assert!(response.headers().get_one("Location").is_none());
    }
}
