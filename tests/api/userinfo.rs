//! `/oauth/userinfo` (OpenID Connect Core §5.3) and the OpenID Connect fields of discovery.

use crate::helpers::*;
use crate::oidc_support::*;
use crate::on_both_backends;
use portcullis::db::Id;
use rocket::http::Status;
use serde_json::{json, Value};

on_both_backends! {
    async fn userinfo_refuses_a_token_not_granted_openid_on_get_and_post(backend) {
        let app = TestApp::new(backend).await;
        let tokens = app.login(&app.with_user().await).await;
        for response in [
            app.get_authed("/oauth/userinfo", &tokens.access).await,
            app.authed(app.client.post("/oauth/userinfo"), &tokens.access).dispatch().await,
        ] {
            let challenge = response.headers().get_one("WWW-Authenticate").unwrap_or_default().to_owned();
            let (status, code) = error_of(response).await;
            assert_eq!((status, code.as_str()), (Status::Forbidden, "insufficient_permissions"));
            assert!(challenge.contains("insufficient_scope"), "{challenge}");
        }
    }

    async fn userinfo_needs_a_users_bearer_token(backend) {
        let app = TestApp::new(backend).await;
        let response = app.client.get("/oauth/userinfo").dispatch().await;
        assert_eq!(response.headers().get_one("WWW-Authenticate"), Some("Bearer"));
        assert_eq!(response.status(), Status::Unauthorized);
        let (status, _) = error_of(app.get_authed("/oauth/userinfo", "not-a-token").await).await;
        assert_eq!(status, Status::Unauthorized);
        let (status, _) = error_of(app.get_authed("/oauth/userinfo", &client_access_token(&app).await).await).await;
        assert_eq!(status, Status::Forbidden);
    }

    async fn the_userinfo_answer_is_sub_and_with_the_email_scope_the_email(backend) {
        let app = TestApp::new(backend).await;
        let user = app.with_user().await;
        let id: Id = user.id.parse().unwrap();
        let info = auth(&app).userinfo(&mut conn(&app).await, id, Some("openid")).await.unwrap();
        assert_eq!((info.sub, info.email, info.email_verified), (id, None, None));
        let info = auth(&app).userinfo(&mut conn(&app).await, id, Some("email openid")).await.unwrap();
        assert_eq!(info.email.as_deref(), Some(user.email.as_str()));
        assert_eq!(info.email_verified, Some(false), "until addresses are verified by mail");
        let refused = auth(&app).userinfo(&mut conn(&app).await, id, Some("email")).await.unwrap_err();
        assert_eq!(refused.description(), "This access token was not granted the openid scope.");
    }

    async fn discovery_describes_browser_sign_in(backend) {
        let app = TestApp::new(backend).await;
        let issuer = auth(&app).config.issuer.clone();
        for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
            let document: Value = app.client.get(path).dispatch().await.into_json().await.unwrap();
            for (field, endpoint) in [("authorization_endpoint", "/oauth/authorize"), ("userinfo_endpoint", "/oauth/userinfo"), ("end_session_endpoint", "/oauth/logout")] {
                assert_eq!(document[field], format!("{issuer}{endpoint}"), "{path} {field}");
            }
            assert_eq!(document["response_types_supported"], json!(["code"]));
            assert_eq!(document["subject_types_supported"], json!(["public"]));
            assert_eq!(document["id_token_signing_alg_values_supported"], json!(["RS256", "EdDSA"]));
            assert_eq!(document["code_challenge_methods_supported"], json!(["S256"]));
            assert_eq!(document["authorization_response_iss_parameter_supported"], true);
            let claims = document["claims_supported"].as_array().unwrap();
            for claim in ["sub", "auth_time", "nonce", "amr", "sid", "at_hash", "email", "email_verified"] {
                assert!(claims.contains(&json!(claim)), "{claim}");
            }
            assert!(document["scopes_supported"].as_array().unwrap().contains(&json!("openid")));
        }
    }
}
