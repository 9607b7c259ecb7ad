//! Access tokens: their shape, and every way a forged or stale one is refused.

use crate::helpers::*;
use crate::on_both_backends;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rocket::http::{Header as HttpHeader, Status};
use serde_json::{json, Value};

const SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("jwt part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

fn sign(header: Header, claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("sign")
}

fn header_like(token: &str) -> Header {
    let original = decode_part(token, 0);
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = original["kid"].as_str().map(str::to_owned);
    header
}

/// The app with a known secret, a user, and a valid token pair.
async fn setup(backend: Backend) -> (TestApp, Tokens) {
    let app = TestApp::builder(backend).with_config("secret", SECRET).build().await;
    let user = app.with_user().await;
    let tokens = app.login(&user).await;
    (app, tokens)
}

/// Asserts 401 `invalid_token` with an RFC 6750 challenge carrying the error attribute.
async fn assert_rejected(app: &TestApp, token: &str, why: &str) {
    let response = app.get_authed("/users/me", token).await;
    let challenge = response.headers().get_one("WWW-Authenticate").map(str::to_owned);
    let (status, code) = error_of(response).await;
    assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_token"), "{why}");
    let challenge = challenge.unwrap_or_default();
    assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{why}: challenge {challenge:?}");
    assert!(challenge.contains("error_description=\""), "{why}: challenge {challenge:?}");
}

on_both_backends! {
    async fn access_tokens_carry_the_rfc_9068_header_and_every_claim(backend) {
        let (app, tokens) = setup(backend).await;
        let header = decode_part(&tokens.access, 0);
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], "HS256");
        assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
        let claims = decode_part(&tokens.access, 1);
        for claim in ["iss", "aud", "sub", "sid", "jti", "iat", "exp", "roles"] {
            assert!(!claims[claim].is_null(), "claim {claim} missing in {claims}");
        }
        assert_eq!(claims["iss"], crate::issuer::issuer_of(&app).as_str(), "the configured issuer URL");
        assert_eq!(claims["aud"], "portcullis");
        assert_eq!(claims["sid"], tokens.session_id.as_str());
        assert_eq!(claims["roles"], json!(["user"]));
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
        assert_eq!(tokens.body["token_type"], "Bearer");
        assert_eq!(tokens.body["expires_in"], 900);
        assert_eq!(tokens.body["refresh_expires_in"], 1_209_600);
        assert_eq!(app.me_status(&tokens.access).await, Status::Ok);
    }

    async fn forged_and_foreign_tokens_are_rejected_with_invalid_token(backend) {
        let (app, tokens) = setup(backend).await;
        let claims = decode_part(&tokens.access, 1);
        let header = header_like(&tokens.access);

        // alg: none, unsigned.
        let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt", "kid": header.kid}).to_string());
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_rejected(&app, &format!("{none_header}.{body}."), "alg none").await;

        // Signed with another key.
        assert_rejected(&app, &sign(header.clone(), &claims, b"another-secret-0123456789-abcdefghijk"), "wrong key").await;

        // Payload changed after signing (roles escalated), signature kept.
        let mut escalated = claims.clone();
        escalated["roles"] = json!(["admin"]);
        let parts: Vec<&str> = tokens.access.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(escalated.to_string()), parts[2]);
        assert_rejected(&app, &tampered, "tampered payload").await;

        // Correctly signed, but wrong type, issuer or audience, or a claim missing.
        let mut jwt_typ = header.clone();
        jwt_typ.typ = Some("JWT".into());
        assert_rejected(&app, &sign(jwt_typ, &claims, SECRET.as_bytes()), "typ JWT").await;
        let mut wrong_iss = claims.clone();
        wrong_iss["iss"] = json!("someone-else");
        assert_rejected(&app, &sign(header.clone(), &wrong_iss, SECRET.as_bytes()), "wrong iss").await;
        let mut wrong_aud = claims.clone();
        wrong_aud["aud"] = json!("another-api");
        assert_rejected(&app, &sign(header.clone(), &wrong_aud, SECRET.as_bytes()), "wrong aud").await;
        for claim in ["sid", "roles", "exp", "jti"] {
            let mut missing = claims.clone();
            missing.as_object_mut().unwrap().remove(claim);
            assert_rejected(&app, &sign(header.clone(), &missing, SECRET.as_bytes()), claim).await;
        }
        let mut unknown_kid = header.clone();
        unknown_kid.kid = Some("no-such-key".into());
        assert_rejected(&app, &sign(unknown_kid, &claims, SECRET.as_bytes()), "unknown kid").await;

        // The same key but another algorithm.
        let mut hs512 = header.clone();
        hs512.alg = Algorithm::HS512;
        assert_rejected(&app, &sign(hs512, &claims, SECRET.as_bytes()), "HS512").await;

        // Not a JWT at all, and a refresh token used as a bearer token.
        assert_rejected(&app, "not-a-token", "garbage").await;
        assert_rejected(&app, &tokens.refresh, "refresh token as bearer").await;

        // The genuine token still works.
        assert_eq!(app.me_status(&tokens.access).await, Status::Ok);
    }

    async fn an_expired_access_token_is_rejected(backend) {
        let (app, tokens) = setup(backend).await;
        app.clock.advance(899);
        assert_eq!(app.me_status(&tokens.access).await, Status::Ok);
        app.clock.advance(1);
        assert_rejected(&app, &tokens.access, "expired").await;
    }

    async fn the_configured_leeway_tolerates_clock_skew(backend) {
        let app = TestApp::builder(backend).with_config("leeway", 30).build().await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        app.clock.advance(900 + 29);
        assert_eq!(app.me_status(&tokens.access).await, Status::Ok);
        app.clock.advance(1);
        assert_eq!(app.me_status(&tokens.access).await, Status::Unauthorized);
    }

    async fn the_bearer_scheme_is_case_insensitive_and_other_schemes_are_refused(backend) {
        let (app, tokens) = setup(backend).await;
        for scheme in ["bearer", "BEARER", "Bearer"] {
            let request = app.client.get("/users/me").header(HttpHeader::new("Authorization", format!("{scheme} {}", tokens.access)));
            assert_eq!(request.dispatch().await.status(), Status::Ok, "{scheme}");
        }
        let basic = app.client.get("/users/me").header(HttpHeader::new("Authorization", "Basic YWxpY2U6cHc=")).dispatch().await;
        assert_eq!(error_of(basic).await, (Status::Unauthorized, "invalid_token".to_string()));
    }

    async fn a_request_without_credentials_gets_a_bare_bearer_challenge(backend) {
        let app = TestApp::new(backend).await;
        for path in ["/users/me", "/auth/sessions"] {
            let response = app.client.get(path).dispatch().await;
            assert_eq!(response.headers().get_one("WWW-Authenticate"), Some("Bearer"), "{path}");
            assert_eq!(error_of(response).await, (Status::Unauthorized, "invalid_token".to_string()));
        }
        let response = app.client.post("/auth/logout-all").dispatch().await;
        assert_eq!(response.headers().get_one("WWW-Authenticate"), Some("Bearer"));
    }

    async fn a_token_whose_nbf_lies_in_the_future_is_refused_until_then(backend) {
        let (app, tokens) = setup(backend).await;
        let mut claims = decode_part(&tokens.access, 1);
        claims["nbf"] = json!(app.clock.now() + 60);
        let early = sign(header_like(&tokens.access), &claims, SECRET.as_bytes());
        assert_rejected(&app, &early, "nbf in the future (RFC 7519 §4.1.5)").await;
        app.clock.advance(60);
        assert_eq!(app.me_status(&early).await, Status::Ok, "accepted from nbf on");
    }
}

on_both_backends! {
    async fn a_token_with_a_crit_header_is_rejected_though_correctly_signed(backend) {
        let (app, tokens) = setup(backend).await;
        let mut header = decode_part(&tokens.access, 0);
        header["crit"] = json!(["urn:example:must-understand"]);
        header["urn:example:must-understand"] = json!(true);
        let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), tokens.access.split('.').nth(1).unwrap());
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(SECRET.as_bytes()), Algorithm::HS256).unwrap();
        assert_rejected(&app, &format!("{message}.{signature}"), "unknown crit").await;
        assert_eq!(app.me_status(&tokens.access).await, Status::Ok, "the same token without crit passes");
    }
}
