//! The OAuth 2.0 endpoints: token (password and refresh grants), revocation, metadata.

use crate::helpers::*;
use crate::on_both_backends;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::LocalResponse;
use serde_json::{json, Value};

/// `POST path` with a form body.
pub async fn post_form<'a>(app: &'a TestApp, path: &str, form: &[(&str, &str)]) -> LocalResponse<'a> {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    app.client.post(path.to_owned()).header(ContentType::Form).body(body).dispatch().await
}

async fn oauth_error(response: LocalResponse<'_>) -> (Status, String) {
    error_of(response).await
}

on_both_backends! {
    async fn the_password_grant_returns_a_token_response_that_is_not_cached(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let response = post_form(&app, "/oauth/token", &[("grant_type", "password"), ("username", &user.email), ("password", &user.password), ("scope", "")]).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.headers().get_one("Cache-Control"), Some("no-store"));
        assert_eq!(response.headers().get_one("Pragma"), Some("no-cache"));
        let tokens = tokens(response).await;
        assert_eq!(tokens.body["token_type"], "Bearer");
        assert_eq!(tokens.body["expires_in"], 900);
        assert_eq!(app.me_status(&tokens.access).await, Status::Ok);
    }

    async fn failed_grants_are_400_invalid_grant(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let bad = [("grant_type", "password"), ("username", user.email.as_str()), ("password", "wrong password!")];
        assert_eq!(oauth_error(post_form(&app, "/oauth/token", &bad).await).await, (Status::BadRequest, "invalid_grant".into()));
        let unknown = [("grant_type", "password"), ("username", "nobody@example.com"), ("password", "wrong password!")];
        assert_eq!(oauth_error(post_form(&app, "/oauth/token", &unknown).await).await, (Status::BadRequest, "invalid_grant".into()));
        let refresh = [("grant_type", "refresh_token"), ("refresh_token", "no-such-token")];
        assert_eq!(oauth_error(post_form(&app, "/oauth/token", &refresh).await).await, (Status::BadRequest, "invalid_grant".into()));
    }

    async fn malformed_token_requests_are_invalid_request_or_unsupported_grant_type(backend) {
        let app = TestApp::new(backend).await;
        let invalid = (Status::BadRequest, "invalid_request".to_string());
        assert_eq!(oauth_error(post_form(&app, "/oauth/token", &[]).await).await, invalid);
        assert_eq!(oauth_error(post_form(&app, "/oauth/token", &[("grant_type", "password"), ("username", "a@b.co")]).await).await, invalid);
        assert_eq!(oauth_error(post_form(&app, "/oauth/token", &[("grant_type", "refresh_token")]).await).await, invalid);
        assert_eq!(oauth_error(post_form(&app, "/oauth/token", &[("grant_type", "authorization_code")]).await).await, invalid);
        let twice = app.client.post("/oauth/token").header(ContentType::Form).body("grant_type=password&grant_type=password").dispatch().await;
        assert_eq!(oauth_error(twice).await, invalid);
        let as_json = app.post("/oauth/token", json!({"grant_type": "password"})).await;
        assert_eq!(oauth_error(as_json).await, invalid);
        let unsupported = (Status::BadRequest, "unsupported_grant_type".to_string());
        for grant in ["implicit", "urn:ietf:params:oauth:grant-type:device_code"] {
            assert_eq!(oauth_error(post_form(&app, "/oauth/token", &[("grant_type", grant)]).await).await, unsupported, "{grant}");
        }
    }

    async fn the_password_grant_can_be_switched_off(backend) {
        let app = TestApp::builder(backend).with_config("password_grant", false).build().await;
        let user = app.with_user().await;
        let response = post_form(&app, "/oauth/token", &[("grant_type", "password"), ("username", &user.email), ("password", &user.password)]).await;
        assert_eq!(oauth_error(response).await, (Status::BadRequest, "unsupported_grant_type".into()));
        let metadata: Value = app.client.get("/.well-known/oauth-authorization-server").dispatch().await.into_json().await.unwrap();
        assert_eq!(metadata["grant_types_supported"], json!(["authorization_code", "refresh_token", "client_credentials"]));
        // The API document no longer offers the password flow; bearer tokens still work in it.
        let document: Value = app.client.get("/openapi.json").dispatch().await.into_json().await.unwrap();
        let schemes = document["components"]["securitySchemes"].as_object().unwrap();
        assert!(schemes.contains_key("bearer") && !schemes.contains_key("oauth2"), "{schemes:?}");
        assert!(!document["paths"].to_string().contains("oauth2"));
        assert_eq!(document["paths"]["/users/me"]["get"]["security"], json!([{"bearer": []}]));
        // The refresh grant still works for sessions started through /auth/login.
        let tokens = app.login(&user).await;
        let response = post_form(&app, "/oauth/token", &[("grant_type", "refresh_token"), ("refresh_token", &tokens.refresh)]).await;
        assert_eq!(response.status(), Status::Ok);
    }

    async fn the_refresh_grant_follows_the_same_rotation_rules(backend) {
        let app = TestApp::builder(backend).with_config("reuse_grace", 0).build().await;
        let user = app.with_user().await;
        let first = app.login(&user).await;
        let grant = |refresh: &str| vec![("grant_type".to_string(), "refresh_token".to_string()), ("refresh_token".to_string(), refresh.to_string())];
        let pairs = grant(&first.refresh);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let second = tokens(post_form(&app, "/oauth/token", &pairs).await).await;
        assert_eq!(second.session_id, first.session_id);
        // Replaying the spent token is theft: 400 invalid_grant, and the family ends.
        assert_eq!(oauth_error(post_form(&app, "/oauth/token", &pairs).await).await, (Status::BadRequest, "invalid_grant".into()));
        assert_eq!(app.me_status(&second.access).await, Status::Unauthorized);
        assert_eq!(app.refresh_response(&second.refresh).await.status(), Status::Unauthorized);
    }

    async fn the_token_endpoint_is_throttled_like_login(backend) {
        let app = TestApp::builder(backend).with_config("throttle_pair_failures", 2).build().await;
        let user = app.with_user().await;
        let bad = [("grant_type", "password"), ("username", user.email.as_str()), ("password", "wrong password!")];
        post_form(&app, "/oauth/token", &bad).await;
        post_form(&app, "/oauth/token", &bad).await;
        let response = post_form(&app, "/oauth/token", &bad).await;
        assert_eq!(response.status(), Status::TooManyRequests);
        assert!(response.headers().get_one("Retry-After").is_some());
        // The JSON login shares the counter.
        assert_eq!(app.login_response(&user.email, &user.password).await.status(), Status::TooManyRequests);
    }

    async fn revoking_a_refresh_or_access_token_ends_its_session(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let a = app.login(&user).await;
        let b = app.login(&user).await;
        let response = post_form(&app, "/oauth/revoke", &[("token", &a.refresh), ("token_type_hint", "refresh_token")]).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(app.me_status(&a.access).await, Status::Unauthorized);
        assert_eq!(app.refresh_response(&a.refresh).await.status(), Status::Unauthorized);
        assert_eq!(app.me_status(&b.access).await, Status::Ok);
        // An access token, with a wrong hint: still found and revoked.
        let response = post_form(&app, "/oauth/revoke", &[("token", &b.access), ("token_type_hint", "refresh_token")]).await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(app.me_status(&b.access).await, Status::Unauthorized);
        assert_eq!(app.refresh_response(&b.refresh).await.status(), Status::Unauthorized);
    }

    async fn revoking_an_unknown_token_is_200_and_a_missing_one_is_400(backend) {
        let app = TestApp::new(backend).await;
        for token in ["never-issued", "a.b.c", &"x".repeat(500)] {
            assert_eq!(post_form(&app, "/oauth/revoke", &[("token", token)]).await.status(), Status::Ok, "{token}");
        }
        assert_eq!(oauth_error(post_form(&app, "/oauth/revoke", &[]).await).await, (Status::BadRequest, "invalid_request".into()));
        // Revoking twice is fine too.
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        for _ in 0..2 {
            assert_eq!(post_form(&app, "/oauth/revoke", &[("token", &tokens.refresh)]).await.status(), Status::Ok);
        }
    }

    async fn the_metadata_document_names_the_endpoints(backend) {
        let app = TestApp::new(backend).await;
        let response = app.client.get("/.well-known/oauth-authorization-server").dispatch().await;
        assert_eq!(response.status(), Status::Ok);
        let metadata: Value = response.into_json().await.unwrap();
        assert_eq!(metadata["issuer"], crate::issuer::issuer_of(&app).as_str());
        for (field, path) in [("token_endpoint", "/oauth/token"), ("revocation_endpoint", "/oauth/revoke"), ("jwks_uri", "/.well-known/jwks.json")] {
            assert!(metadata[field].as_str().unwrap().ends_with(path), "{field}: {metadata}");
        }
        assert_eq!(metadata["grant_types_supported"], json!(["authorization_code", "password", "refresh_token", "client_credentials"]));
    }

    async fn the_jwks_lists_no_access_token_key_for_hs256_only_the_id_token_keys(backend) {
        let app = TestApp::builder(backend).with_config("secret", "a-configured-hs256-key-of-at-least-32-bytes").build().await;
        let jwks: Value = app.client.get("/.well-known/jwks.json").dispatch().await.into_json().await.unwrap();
        let algs: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();
        assert_eq!(algs, ["RS256", "EdDSA"], "the ID-token keys: {jwks}");
        assert!(jwks["keys"].as_array().unwrap().iter().all(|k| k["kty"] != "oct"), "the HS256 key is never published");
    }
}
