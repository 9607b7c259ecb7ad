//! ID-token keys: an RSA key (RS256) and an Ed25519 key (EdDSA) generated on first start and
//! kept in the database, sealed at rest, shared by instances, listed in the JWKS whatever signs
//! access tokens, rotated by `portcullis keys rotate`; and ID tokens the running service signs,
//! verified from its JWKS alone by another JWT library.

use crate::generated_keys::{cells, KEK};
use crate::helpers::*;
use crate::oidc_support::*;
use crate::on_both_backends;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis::auth::oidc::id_token::{EmailClaim, IdTokenRequest};
use portcullis::auth::oidc::key_set::IdTokenAlg;
use portcullis::config::{AuthConfig, Secret};
use portcullis::db::{Id, PoolSettings};
use serde_json::Value;

const HS256_SECRET: &str = "a-configured-hs256-key-of-at-least-32-bytes";

/// `portcullis keys rotate` on the app's database at the app's time; the new ID-token kids.
async fn rotate(app: &TestApp, config: AuthConfig) -> Vec<String> {
    let settings: PoolSettings = test_figment(app.db_url()).extract_inner("databases.main").unwrap();
    portcullis::cli::rotate_keys(&settings, &config, app.clock.now()).await.expect("rotation").id_token_kids
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// An ID token of `alg` signed by the running app for a made-up session.
fn id_token(app: &TestApp, alg: IdTokenAlg, access_token: &str) -> String {
    let request = IdTokenRequest {
        client_id: "a-client",
        user_id: Id::new(),
        session_id: Id::new(),
        auth_time: app.clock.now(),
        nonce: Some("nonce-1"),
        amr: "pwd",
        scope: "openid",
        access_token,
        email: EmailClaim { email: "ada@example.com", verified: false },
    };
    auth(app).id_token(&request, alg).expect("an ID token")
}

/// Verifies `token` with jsonwebtoken and the JWK of its kid from the app's JWKS.
async fn verify_from_jwks(app: &TestApp, token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.clone().unwrap();
    let jwk = jwks(app).await.into_iter().find(|k| k["kid"] == kid.as_str()).expect("the kid is published");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&["a-client"]);
    // The frozen test clock is not the system's: time is the service's business here.
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "aud", "sub"]);
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    jsonwebtoken::decode::<Value>(token, &key, &validation).expect("verifies").claims
}

on_both_backends! {
    async fn the_first_start_generates_an_rsa_and_an_ed25519_id_token_key_listed_after_the_access_token_key(backend) {
        // Not the tests' template (which holds keys already): a database this start must fill.
        let app = TestApp::builder(backend).with_db(TestDb::empty(backend).await).build().await;
        let keys = jwks(&app).await;
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert_eq!(keys[0]["alg"], "EdDSA", "the access-token key comes first");
        assert!(!keys[0]["kid"].as_str().unwrap().starts_with("id-"));
        let rsa = keys.iter().find(|k| k["alg"] == "RS256").expect("an RS256 key");
        assert_eq!((rsa["kty"].as_str(), rsa["use"].as_str()), (Some("RSA"), Some("sig")));
        assert!(URL_SAFE_NO_PAD.decode(rsa["n"].as_str().unwrap()).unwrap().len() * 8 >= 2048);
        assert_eq!(rsa["e"], "AQAB");
        let ed = keys.iter().filter(|k| k["alg"] == "EdDSA").nth(1).expect("an EdDSA ID-token key");
        assert_eq!((ed["kty"].as_str(), ed["crv"].as_str(), ed["use"].as_str()), (Some("OKP"), Some("Ed25519"), Some("sig")));
        assert_ne!(ed["kid"], keys[0]["kid"], "ID tokens have a key of their own");
        let stored = cells(&app, "SELECT algorithm AS value FROM id_token_keys ORDER BY algorithm").await;
        assert_eq!(stored, "EdDSA\nRS256");
    }

    async fn under_hs256_the_jwks_holds_exactly_the_id_token_keys(backend) {
        let app = TestApp::builder(backend).with_config("secret", HS256_SECRET).build().await;
        let keys = jwks(&app).await;
        let algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
        assert_eq!(algs, ["RS256", "EdDSA"], "{keys:?}");
        assert!(keys.iter().all(|k| k["kid"].as_str().unwrap().starts_with("id-") && k["use"] == "sig"));
    }

    async fn id_tokens_of_both_algorithms_verify_from_the_jwks_alone(backend) {
        let app = TestApp::new(backend).await;
        for (alg, name) in [(IdTokenAlg::Rs256, "RS256"), (IdTokenAlg::EdDsa, "EdDSA")] {
            let token = id_token(&app, alg, "an-access-token");
            assert_eq!(format!("{:?}", jsonwebtoken::decode_header(&token).unwrap().alg), name);
            let claims = verify_from_jwks(&app, &token).await;
            assert_eq!(claims["iss"], auth(&app).config.issuer.as_str());
            assert_eq!(claims["nonce"], "nonce-1");
            assert_eq!(claims["exp"].as_i64().unwrap(), app.clock.now() + auth(&app).config.access_ttl as i64);
        }
    }

    async fn id_token_keys_are_sealed_under_the_key_encryption_key(backend) {
        let app = TestApp::builder(backend).with_config("key_encryption_key", KEK).build().await;
        let stored = cells(&app, "SELECT private_key AS value FROM id_token_keys").await;
        assert_eq!(stored.lines().count(), 2);
        assert!(stored.lines().all(|v| v.starts_with("xc20p1:")), "sealed: {stored}");
        // And they still sign.
        let token = id_token(&app, IdTokenAlg::Rs256, "t");
        verify_from_jwks(&app, &token).await;
    }

    async fn instances_sharing_a_database_sign_id_tokens_with_the_same_keys(backend) {
        let first = TestApp::new(backend).await;
        let second = first.second_instance(|b| b).await;
        assert_eq!(id_token_kids(&first).await, id_token_kids(&second).await);
        let token = id_token(&second, IdTokenAlg::Rs256, "t");
        verify_from_jwks(&first, &token).await;
    }

    async fn keys_rotate_makes_new_id_token_keys_sign_and_the_old_ones_leave_the_jwks_once_their_tokens_expired(backend) {
        let app = TestApp::new(backend).await;
        let old = id_token_kids(&app).await;
        let before = id_token(&app, IdTokenAlg::Rs256, "t");
        let new = rotate(&app, AuthConfig::default()).await;
        assert_eq!(new.len(), 2);
        eventually("the app signs ID tokens with the new RS256 key", async || {
            kid_of(&id_token(&app, IdTokenAlg::Rs256, "t")) == new[0]
        })
        .await;
        assert_eq!(kid_of(&id_token(&app, IdTokenAlg::EdDsa, "t")), new[1]);
        let published = id_token_kids(&app).await;
        assert_eq!(published, [new.clone(), old.clone()].concat(), "new first, the old ones still published");
        verify_from_jwks(&app, &before).await;
        // Once every ID token the old keys signed has expired, they leave the JWKS (and the table).
        let config = &auth(&app).config;
        app.clock.advance(config.access_ttl as i64 + config.leeway as i64 + 61);
        eventually("the retired ID-token keys leave the JWKS", async || id_token_kids(&app).await == new).await;
        eventually("and the table", async || {
            cells(&app, "SELECT kid AS value FROM id_token_keys ORDER BY kid").await.lines().count() == 2
        })
        .await;
    }

    async fn keys_rotate_under_hs256_rotates_the_id_token_keys_alone(backend) {
        let app = TestApp::builder(backend).with_config("secret", HS256_SECRET).build().await;
        let old = id_token_kids(&app).await;
        let config = AuthConfig { secret: Some(Secret::new(HS256_SECRET)), ..AuthConfig::default() };
        let settings: PoolSettings = test_figment(app.db_url()).extract_inner("databases.main").unwrap();
        let rotated = portcullis::cli::rotate_keys(&settings, &config, app.clock.now()).await.expect("rotation");
        assert_eq!(rotated.access_token_kid, None);
        eventually("the new ID-token keys are published", async || id_token_kids(&app).await.len() == 4).await;
        assert_eq!(id_token_kids(&app).await, [rotated.id_token_kids, old].concat());
    }
}
