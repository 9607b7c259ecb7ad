//! Access tokens: RFC 9068-style JWTs (`typ: at+jwt`, `kid`) issued and verified here.
//!
//! Verification is the verification core of `portcullis-rocket` ([`portcullis_rocket::core`]),
//! the one resource servers run too: it pins the algorithm to the key named by `kid`, requires
//! every claim, and checks `typ`, issuer and audience. This file holds what only the issuer has:
//! signing, the HS256 and Ed25519 keys (a retired one with its end) that the core looks up, and
//! the JWKS. Expiry is checked against the service [`Clock`](crate::clock::Clock) with the
//! configured leeway, not the system time, so tests can move time.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use portcullis_rocket::core::{self, Expected, KeyLookup, SignatureKey, Undecodable};
use sha2::{Digest, Sha256};

use crate::config::AuthConfig;
use crate::db::Id;

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub use portcullis_rocket::core::ACCESS_TOKEN_TYP;

/// The claims of an access token: the verification core's, with Portcullis's UUIDs as ids (a
/// token whose ids are not UUIDs is refused as it is parsed). A user's token carries `sid` and
/// `roles`; a client's (client-credentials grant) carries `client_id` (= `sub`) and `scope`.
pub type AccessClaims = core::AccessClaims<Id>;

/// Whom an access token speaks for.
pub type Subject<'a> = core::Subject<'a, Id>;

/// How a key signs. Ed25519 keys are kept parsed: jsonwebtoken would re-parse the PKCS#8 key
/// and recompute its public half on every signature.
enum Signer {
    Hs256(EncodingKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// A key that signs, with its `kid`.
pub struct SigningKey {
    pub kid: String,
    signer: Signer,
}

impl SigningKey {
    pub fn hs256(kid: String, secret: &[u8]) -> Self {
        SigningKey { kid, signer: Signer::Hs256(EncodingKey::from_secret(secret)) }
    }

    pub fn ed25519(kid: String, key: ed25519_dalek::SigningKey) -> Self {
        SigningKey { kid, signer: Signer::Ed25519(Box::new(key)) }
    }

    fn algorithm(&self) -> Algorithm {
        match self.signer {
            Signer::Hs256(_) => Algorithm::HS256,
            Signer::Ed25519(_) => Algorithm::EdDSA,
        }
    }
}

/// How a key verifies; an Ed25519 public key is kept decompressed, ready to verify.
enum Verifier {
    Hs256(DecodingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A key that verifies, with its `kid`.
pub struct VerifyingKey {
    verifier: Verifier,
    /// A retired key verifies (and is published) only before this time.
    pub until: Option<i64>,
}

impl VerifyingKey {
    pub fn hs256(secret: &[u8], until: Option<i64>) -> Self {
        VerifyingKey { verifier: Verifier::Hs256(DecodingKey::from_secret(secret)), until }
    }

    pub fn ed25519(public: ed25519_dalek::VerifyingKey, until: Option<i64>) -> Self {
        VerifyingKey { verifier: Verifier::Ed25519(public), until }
    }
}

/// The verification core's view of a key: its algorithm, its signature check, its end.
impl SignatureKey for VerifyingKey {
    fn alg(&self) -> &str {
        match self.verifier {
            Verifier::Hs256(_) => "HS256",
            Verifier::Ed25519(_) => "EdDSA",
        }
    }

    fn verifies(&self, message: &[u8], signature: &str) -> Result<bool, Undecodable> {
        match &self.verifier {
            Verifier::Hs256(key) => {
                jsonwebtoken::crypto::verify(signature, message, key, Algorithm::HS256).map_err(|_| Undecodable)
            }
            Verifier::Ed25519(key) => key.verifies(message, signature),
        }
    }

    fn until(&self) -> Option<i64> {
        self.until
    }
}

/// The active signing key and every key accepted for verification.
pub struct TokenKeys {
    active: SigningKey,
    verifiers: HashMap<String, VerifyingKey>,
    /// Issuer, audience and leeway, as the verification core takes them.
    expected: Expected,
    ttl: i64,
    /// The public keys as JWKs, each with the time it leaves the set; empty for HS256.
    jwks: Vec<(serde_json::Value, Option<i64>)>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("active_kid", &self.active.kid).finish_non_exhaustive()
    }
}

/// The `kid` of an HS256 key: a digest prefix that names the key without revealing it.
pub fn hs256_kid(secret: &[u8]) -> String {
    format!("hs256-{}", URL_SAFE_NO_PAD.encode(&Sha256::digest(secret)[..9]))
}

impl TokenKeys {
    /// Keys for HS256 with `secret` as the only key.
    pub fn hs256(secret: &[u8], config: &AuthConfig) -> TokenKeys {
        let kid = hs256_kid(secret);
        let active = SigningKey::hs256(kid.clone(), secret);
        let verifier = VerifyingKey::hs256(secret, None);
        TokenKeys::new(active, vec![(kid, verifier)], config)
    }

    /// Signs with `active`; verifies tokens whose `kid` is one of `verifiers`.
    pub fn new(active: SigningKey, verifiers: Vec<(String, VerifyingKey)>, config: &AuthConfig) -> TokenKeys {
        TokenKeys {
            active,
            verifiers: verifiers.into_iter().collect(),
            expected: Expected {
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
                leeway: config.leeway as i64,
            },
            ttl: config.access_ttl as i64,
            jwks: vec![],
        }
    }

    /// Sets the published public keys, each with the time it stops being published.
    pub fn with_jwks(mut self, jwks: Vec<(serde_json::Value, Option<i64>)>) -> Self {
        self.jwks = jwks;
        self
    }

    /// The JWKS document at `now`: `{"keys": [...]}` without keys retired for good.
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        let keys: Vec<_> =
            self.jwks.iter().filter(|(_, until)| until.is_none_or(|u| now < u)).map(|(k, _)| k).collect();
        serde_json::json!({ "keys": keys })
    }

    /// Adds a key that verifies (and is not published).
    pub fn with_verifier(mut self, kid: String, key: VerifyingKey) -> Self {
        self.verifiers.insert(kid, key);
        self
    }

    /// The `kid` of the key that signs.
    pub fn active_kid(&self) -> &str {
        &self.active.kid
    }

    /// Access-token lifetime in seconds.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// Signs `claims` with the active key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, String> {
        let mut header = Header::new(self.active.algorithm());
        header.typ = Some(ACCESS_TOKEN_TYP.into());
        header.kid = Some(self.active.kid.clone());
        match &self.active.signer {
            Signer::Hs256(key) => jsonwebtoken::encode(&header, claims, key).map_err(|e| e.to_string()),
            Signer::Ed25519(key) => {
                let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
                let claims = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
                let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
                let signature = ed25519_dalek::Signer::sign(key.as_ref(), message.as_bytes());
                Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes())))
            }
        }
    }

    /// Checks signature, `typ`, `kid`, issuer, audience, claims and expiry at `now`
    /// ([`core::verify`](fn@core::verify)). The error is a short reason suitable for `error_description`.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, &'static str> {
        core::verify(token, self, &self.expected, now).map_err(|e| e.description())
    }

    /// The time checks of [`verify`](Self::verify): the key's and the token's lifetimes at `now`.
    pub fn check_time(&self, claims: &AccessClaims, until: Option<i64>, now: i64) -> Result<(), &'static str> {
        core::check_time(claims, until, &self.expected, now).map_err(|e| e.description())
    }

    /// Everything [`verify`](Self::verify) checks except time: for revoking a token whose
    /// session should end even though the token itself has expired.
    pub fn verify_signed(&self, token: &str) -> Result<AccessClaims, &'static str> {
        self.verify_signed_with(token).map(|(claims, _)| claims)
    }

    /// [`verify_signed`](Self::verify_signed), also returning until when the key verifies.
    pub fn verify_signed_with(&self, token: &str) -> Result<(AccessClaims, Option<i64>), &'static str> {
        core::verify_signed(token, self, &self.expected).map_err(|e| e.description())
    }

    /// [`verify_signed_with`](Self::verify_signed_with) for a token whose `aud` is `audience`
    /// (a resource server's, RFC 8707) instead of Portcullis's own: for revocation and
    /// introspection, never for access to Portcullis.
    pub fn verify_signed_for(&self, token: &str, audience: &str) -> Result<(AccessClaims, Option<i64>), &'static str> {
        let expected = Expected { audience: audience.to_owned(), ..self.expected.clone() };
        core::verify_signed(token, self, &expected).map_err(|e| e.description())
    }
}

/// The keys the verification core looks a token's `kid` up in.
impl KeyLookup for TokenKeys {
    type Key = VerifyingKey;

    fn key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifiers.get(kid)
    }
}
