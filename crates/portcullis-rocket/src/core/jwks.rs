//! A resource server's keys: the Ed25519 keys of Portcullis's JWKS, by `kid`, as the
//! verification core looks them up. Only EdDSA is accepted: a token naming another algorithm is
//! refused before its `kid` is looked up (so it cannot make the app refetch the JWKS).

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::verify::{KeyLookup, SignatureKey, Undecodable};

/// Ed25519 public keys by `kid`: a resource server's keys, from the JWKS.
pub type KeySet = HashMap<String, ed25519_dalek::VerifyingKey>;

impl SignatureKey for ed25519_dalek::VerifyingKey {
    fn alg(&self) -> &str {
        "EdDSA"
    }

    fn verifies(&self, message: &[u8], signature: &str) -> Result<bool, Undecodable> {
        let bytes = URL_SAFE_NO_PAD.decode(signature).map_err(|_| Undecodable)?;
        let signature = ed25519_dalek::Signature::from_slice(&bytes).map_err(|_| Undecodable)?;
        Ok(ed25519_dalek::Verifier::verify(self, message, &signature).is_ok())
    }
}

impl KeyLookup for KeySet {
    type Key = ed25519_dalek::VerifyingKey;

    fn key(&self, kid: &str) -> Option<&Self::Key> {
        self.get(kid)
    }

    fn accepts(&self, alg: &str) -> bool {
        alg == "EdDSA"
    }
}

/// Parses a JWKS document into Ed25519 keys (`kty` OKP, `crv` Ed25519); other keys are skipped.
pub fn parse_jwks(document: &serde_json::Value) -> KeySet {
    let keys = document["keys"].as_array().map(Vec::as_slice).unwrap_or_default();
    keys.iter()
        .filter(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519")
        .filter_map(|k| {
            let kid = k["kid"].as_str()?.to_owned();
            let x: [u8; 32] = URL_SAFE_NO_PAD.decode(k["x"].as_str()?).ok()?.try_into().ok()?;
            Some((kid, ed25519_dalek::VerifyingKey::from_bytes(&x).ok()?))
        })
        .collect()
}
