//! EdDSA signing from key files, the JWKS, key rotation without logouts, and interoperability
//! with libraries we do not sign with: the `oauth2` client crate and `jwt-simple`.

use crate::helpers::*;
use crate::on_both_backends;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rocket::http::{Header, Status};
use serde_json::{json, Value};

fn key_pair(dir: &std::path::Path, kid: &str) -> Value {
    let (private, _) = portcullis::auth::keys::files::generate(dir, kid).expect("generate key");
    json!({"kid": kid, "private_key": private})
}

fn kid_of(token: &str) -> String {
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    header["kid"].as_str().unwrap().to_owned()
}

on_both_backends! {
    async fn eddsa_tokens_are_signed_with_the_active_key_and_published_in_the_jwks(backend) {
        let dir = tempfile::tempdir().unwrap();
        let app = TestApp::builder(backend).with_config("eddsa_keys", json!([key_pair(dir.path(), "k1")])).build().await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        assert_eq!(kid_of(&tokens.access), "k1");
        assert_eq!(app.me_status(&tokens.access).await, Status::Ok);
        let jwks: Value = app.client.get("/.well-known/jwks.json").dispatch().await.into_json().await.unwrap();
        let key = &jwks["keys"][0];
        assert_eq!((key["kty"].as_str(), key["crv"].as_str(), key["kid"].as_str(), key["alg"].as_str()), (Some("OKP"), Some("Ed25519"), Some("k1"), Some("EdDSA")));
        assert_eq!(URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap().len(), 32);
        assert!(key.get("d").is_none(), "never the private part");
    }

    async fn rotating_the_active_key_keeps_existing_tokens_valid(backend) {
        let dir = tempfile::tempdir().unwrap();
        let old = key_pair(dir.path(), "old");
        let before = TestApp::builder(backend).with_config("eddsa_keys", json!([old.clone()])).build().await;
        let user = before.with_user().await;
        let old_tokens = before.login(&user).await;
        // The new key first, the old one still configured, the new one active.
        let new = key_pair(dir.path(), "new");
        let after = before.second_instance(|b| b.with_config("eddsa_keys", json!([new, old])).with_config("active_kid", "new")).await;
        assert_eq!(after.me_status(&old_tokens.access).await, Status::Ok, "old tokens stay valid");
        let new_tokens = tokens(after.refresh_response(&old_tokens.refresh).await).await;
        assert_eq!(kid_of(&new_tokens.access), "new");
        let jwks: Value = after.client.get("/.well-known/jwks.json").dispatch().await.into_json().await.unwrap();
        let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids[..2], ["new", "old"], "the access-token keys, then the ID-token keys");
        // An instance that only knows the new key refuses the old key's tokens: unknown kid.
        let only_new = before.second_instance(|b| b.with_config("eddsa_keys", json!([{"kid": "new", "private_key": dir.path().join("new.pem")}]))).await;
        let (status, code) = error_of(only_new.get_authed("/users/me", &old_tokens.access).await).await;
        assert_eq!((status, code.as_str()), (Status::Unauthorized, "invalid_token"));
        assert_eq!(only_new.me_status(&new_tokens.access).await, Status::Ok);
    }

    async fn a_verify_only_key_cannot_be_the_active_one(backend) {
        let dir = tempfile::tempdir().unwrap();
        portcullis::auth::keys::files::generate(dir.path(), "pub").unwrap();
        let public = dir.path().join("pub.pub.pem");
        let db = TestDb::migrated(backend).await;
        let figment = test_figment(db.url()).merge(("auth.eddsa_keys", json!([{"kid": "pub", "public_key": public}])));
        match portcullis::rocket(figment).ignite().await {
            Ok(_) => panic!("a public key cannot sign"),
            // Rocket insists that a launch error is looked at before it is dropped.
            Err(e) => drop(e.kind().to_string()),
        }
    }

    async fn another_jwt_library_verifies_our_eddsa_tokens_from_the_jwks_alone(backend) {
        use jwt_simple::prelude::*;
        use std::collections::HashSet;
        let dir = tempfile::tempdir().unwrap();
        let app = TestApp::builder(backend).with_config("eddsa_keys", json!([key_pair(dir.path(), "k1")])).build().await;
        let user = app.with_user().await;
        let tokens = app.login(&user).await;
        let jwks: serde_json::Value = app.client.get("/.well-known/jwks.json").dispatch().await.into_json().await.unwrap();
        let jwk = &jwks["keys"][0];
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        let key = Ed25519PublicKey::from_bytes(&x).unwrap().with_key_id(jwk["kid"].as_str().unwrap());
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from([crate::issuer::issuer_of(&app)])),
            allowed_audiences: Some(HashSet::from(["portcullis".to_string()])),
            ..Default::default()
        };
        let claims = key.verify_token::<serde_json::Value>(&tokens.access, Some(options)).expect("verifies with the JWKS key");
        assert_eq!(claims.subject.as_deref(), Some(user.id.as_str()));
        assert_eq!(claims.custom["sid"], tokens.session_id.as_str());
        // A token signed by anyone else does not verify.
        let forged = Ed25519KeyPair::generate().with_key_id("k1");
        let forged = forged.sign(Claims::create(Duration::from_mins(5)).with_subject(&user.id)).unwrap();
        assert!(key.verify_token::<NoCustomClaims>(&forged, None).is_err());
    }

    async fn the_oauth2_client_crate_drives_the_password_and_refresh_flows(backend) {
        use oauth2::basic::BasicClient;
        use oauth2::{ClientId, ResourceOwnerPassword, ResourceOwnerUsername, TokenResponse, TokenUrl};
        let app = TestApp::builder(backend).with_config("reuse_grace", 0).build().await;
        let user = app.with_user().await;
        let app_ref = &app;
        // The crate's HTTP client hook, served by the local Rocket client instead of a socket.
        let http = |request: oauth2::HttpRequest| async move {
            let method = request.method().as_str().parse::<rocket::http::Method>().unwrap();
            let mut local = app_ref.client.req(method, request.uri().path().to_owned());
            for (name, value) in request.headers() {
                local = local.header(Header::new(name.as_str().to_owned(), value.to_str().unwrap().to_owned()));
            }
            let response = local.body(request.body().clone()).dispatch().await;
            let mut builder = http::Response::builder().status(response.status().code);
            for header in response.headers().iter() {
                builder = builder.header(header.name().as_str(), header.value());
            }
            let body = response.into_bytes().await.unwrap_or_default();
            Ok::<_, std::io::Error>(builder.body(body).unwrap())
        };
        let client = BasicClient::new(ClientId::new("portcullis-test".into()))
            .set_token_uri(TokenUrl::new("http://localhost/oauth/token".into()).unwrap());
        let token = client
            .exchange_password(&ResourceOwnerUsername::new(user.email.clone()), &ResourceOwnerPassword::new(user.password.clone()))
            .request_async(&http)
            .await
            .expect("password grant");
        assert_eq!(app.me_status(token.access_token().secret()).await, Status::Ok);
        let refresh = token.refresh_token().expect("a refresh token").clone();
        let rotated = client.exchange_refresh_token(&refresh).request_async(&http).await.expect("refresh grant");
        assert_ne!(rotated.refresh_token().unwrap().secret(), refresh.secret());
        assert_eq!(app.me_status(rotated.access_token().secret()).await, Status::Ok);
        // A replay is refused in RFC 6749 terms the crate understands.
        let replay = client.exchange_refresh_token(&refresh).request_async(&http).await;
        match replay {
            Err(oauth2::RequestTokenError::ServerResponse(e)) => assert_eq!(e.error().as_ref(), "invalid_grant"),
            other => panic!("expected invalid_grant, got {other:?}"),
        }
        let wrong = client
            .exchange_password(&ResourceOwnerUsername::new(user.email.clone()), &ResourceOwnerPassword::new("wrong password!".into()))
            .request_async(&http)
            .await;
        assert!(matches!(wrong, Err(oauth2::RequestTokenError::ServerResponse(_))), "{wrong:?}");
    }
}
