//! ID tokens checked by an independent verifier: jsonwebtoken, with the key taken from the JWKS
//! as a relying party would.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{decode, decode_header, jwk::Jwk, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

use super::id_token::{EmailClaim, IdTokenRequest};
use super::key_set::{IdTokenAlg, IdTokenKeySet};
use super::keys::generated_for_tests;
use crate::config::AuthConfig;
use crate::db::Id;

const ISSUER: &str = "https://auth.example.com";
const CLIENT: &str = "6f1c1d0e-8d5e-4bb5-9f0e-2f6a7f3b9c11";
const ACCESS_TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.an-access-token.signature";

fn system_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn request<'a>(user: Id, session: Id, scope: &'a str, nonce: Option<&'a str>) -> IdTokenRequest<'a> {
    IdTokenRequest {
        client_id: CLIENT,
        user_id: user,
        session_id: session,
        auth_time: system_now() - 30,
        nonce,
        amr: "pwd otp mfa",
        scope,
        access_token: ACCESS_TOKEN,
        email: EmailClaim { email: "ada@example.com", verified: true },
    }
}

/// Signs `request` and verifies the result the way a relying party does: the key whose `kid` the
/// header names, from the JWKS, with jsonwebtoken; returns the claims.
fn sign_and_verify(keys: &IdTokenKeySet, alg: IdTokenAlg, request: &IdTokenRequest<'_>) -> Value {
    let now = system_now();
    let token = keys.sign(alg, &request.claims(alg, ISSUER, 900, now)).expect("signed");
    let header = decode_header(&token).expect("a JWS header");
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let kid = header.kid.expect("a kid");
    let jwks = keys.jwks(now);
    let jwk = jwks.iter().find(|k| k["kid"] == kid.as_str()).expect("the kid is in the JWKS");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["alg"], alg.as_str());
    let jwk: Jwk = serde_json::from_value(jwk.clone()).expect("a JWK jsonwebtoken reads");
    let algorithm = match alg {
        IdTokenAlg::Rs256 => Algorithm::RS256,
        IdTokenAlg::EdDsa => Algorithm::EdDSA,
    };
    assert_eq!(header.alg, algorithm);
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&[CLIENT]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let key = DecodingKey::from_jwk(&jwk).expect("a decoding key from the JWK");
    decode::<Value>(&token, &key, &validation).expect("the ID token verifies").claims
}

fn left_half(digest: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

#[tokio::test]
async fn rs256_and_eddsa_id_tokens_verify_with_the_jwks_and_carry_every_claim() {
    let keys = generated_for_tests(&AuthConfig::default()).await;
    let (user, session) = (Id::new(), Id::new());
    for alg in IdTokenAlg::ALL {
        let request = request(user, session, "openid email", Some("n-0S6_WzA2Mj"));
        let claims = sign_and_verify(&keys, alg, &request);
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["sub"], user.to_string());
        assert_eq!(claims["aud"], CLIENT);
        assert_eq!(claims["sid"], session.to_string());
        assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(claims["auth_time"], request.auth_time);
        assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
        assert_eq!(claims["email"], "ada@example.com");
        assert_eq!(claims["email_verified"], true);
        let expected = match alg {
            IdTokenAlg::Rs256 => left_half(&Sha256::digest(ACCESS_TOKEN)),
            IdTokenAlg::EdDsa => left_half(&Sha512::digest(ACCESS_TOKEN)),
        };
        assert_eq!(claims["at_hash"], expected, "{}", alg.as_str());
    }
}

#[tokio::test]
async fn without_the_email_scope_or_a_nonce_those_claims_are_absent() {
    let keys = generated_for_tests(&AuthConfig::default()).await;
    let claims = sign_and_verify(&keys, IdTokenAlg::Rs256, &request(Id::new(), Id::new(), "openid", None));
    for absent in ["email", "email_verified", "nonce"] {
        assert!(claims.get(absent).is_none(), "{absent} in {claims}");
    }
}

#[tokio::test]
async fn the_rsa_key_has_at_least_2048_bits_and_each_algorithm_its_own_kid() {
    let keys = generated_for_tests(&AuthConfig::default()).await;
    let jwks = keys.jwks(0);
    let rsa = jwks.iter().find(|k| k["kty"] == "RSA").expect("an RSA key");
    let modulus = URL_SAFE_NO_PAD.decode(rsa["n"].as_str().unwrap()).unwrap();
    assert!(modulus.len() * 8 >= 2048, "{} bits", modulus.len() * 8);
    let rs256 = keys.active_kid(IdTokenAlg::Rs256).unwrap();
    let eddsa = keys.active_kid(IdTokenAlg::EdDsa).unwrap();
    assert_ne!(rs256, eddsa);
    assert_eq!(jwks.len(), 2);
}
