//! The ID-token keys in force: the active RS256 and EdDSA signers and the public keys published
//! in the JWKS (each with the time it leaves it). Built by [`super::keys`] from the database.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

/// The algorithms an ID token may be signed with: the client setting's type, one enum for both.
pub use crate::models::IdTokenAlg;

/// A private key that signs ID tokens. Kept parsed: parsing an RSA key is costly. RSA keys are
/// AWS-LC's (aws-lc-rs, from the stored PKCS#1 DER, at key load): it signs in about a fifth of
/// the `rsa` crate's time (bench/rsa-sign), and PKCS#1 v1.5 signatures are deterministic, so
/// every library gives the same bytes for the same key and message.
pub enum IdSigner {
    Rs256(Box<aws_lc_rs::signature::RsaKeyPair>),
    EdDsa(Box<ed25519_dalek::SigningKey>),
}

impl IdSigner {
    fn alg(&self) -> IdTokenAlg {
        match self {
            IdSigner::Rs256(_) => IdTokenAlg::Rs256,
            IdSigner::EdDsa(_) => IdTokenAlg::EdDsa,
        }
    }

    /// The signature of `message`. AWS-LC signs RSA with blinding (a random blinding factor per
    /// signature from its own generator; the `rng` argument is there for ring's API) and in
    /// constant time, which hides the private exponent from timing.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            IdSigner::Rs256(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                let rng = aws_lc_rs::rand::SystemRandom::new();
                key.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| "cannot sign the ID token with the RSA key".to_string())?;
                Ok(signature)
            }
            IdSigner::EdDsa(key) => Ok(ed25519_dalek::Signer::sign(key.as_ref(), message).to_bytes().to_vec()),
        }
    }
}

/// The active signer of each algorithm and every published public key.
pub struct IdTokenKeySet {
    signers: Vec<(String, IdSigner)>,
    /// Public keys as JWKs (with `kid`, `alg`, `use`), each with the time it leaves the set.
    jwks: Vec<(Value, Option<i64>)>,
}

impl std::fmt::Debug for IdTokenKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.signers.iter().map(|(kid, _)| kid.as_str()).collect();
        f.debug_struct("IdTokenKeySet").field("active_kids", &kids).finish_non_exhaustive()
    }
}

/// A published JWK: the stored public half plus its `kid`, `alg` and `use`.
pub fn published_jwk(public_jwk: &Value, kid: &str, alg: IdTokenAlg) -> Value {
    let mut jwk = public_jwk.clone();
    if let Some(object) = jwk.as_object_mut() {
        object.insert("kid".into(), json!(kid));
        object.insert("alg".into(), json!(alg.as_str()));
        object.insert("use".into(), json!("sig"));
    }
    jwk
}

impl IdTokenKeySet {
    /// No keys: before the first load (nothing signs, nothing is published).
    pub fn empty() -> IdTokenKeySet {
        IdTokenKeySet { signers: vec![], jwks: vec![] }
    }

    pub fn new(signers: Vec<(String, IdSigner)>, jwks: Vec<(Value, Option<i64>)>) -> IdTokenKeySet {
        IdTokenKeySet { signers, jwks }
    }

    /// The published keys at `now`.
    pub fn jwks(&self, now: i64) -> Vec<Value> {
        self.jwks.iter().filter(|(_, until)| until.is_none_or(|u| now < u)).map(|(k, _)| k.clone()).collect()
    }

    /// The `kid` of the active key of `alg`.
    pub fn active_kid(&self, alg: IdTokenAlg) -> Option<&str> {
        self.signers.iter().find(|(_, s)| s.alg() == alg).map(|(kid, _)| kid.as_str())
    }

    /// A compact JWS of `claims` (`typ: JWT`) signed with the active key of `alg`.
    pub fn sign(&self, alg: IdTokenAlg, claims: &impl serde::Serialize) -> Result<String, String> {
        let (kid, signer) = self
            .signers
            .iter()
            .find(|(_, s)| s.alg() == alg)
            .ok_or_else(|| format!("no active {} ID-token key", alg.as_str()))?;
        let header = json!({"alg": alg.as_str(), "typ": "JWT", "kid": kid});
        let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        let claims = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let signature = signer.sign(message.as_bytes())?;
        Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}
