//! Access tokens: RFC 9068-style JWTs (`typ: at+jwt`, `kid`) issued and verified here.
//!
//! Verification pins the algorithm to the key named by `kid`, requires every claim, and checks
//! `typ`, issuer and audience; expiry is checked against the service [`Clock`](crate::clock::Clock)
//! with the configured leeway, not the system time, so tests can move time.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::AuthConfig;
use crate::db::Id;

/// How far in the future an `iat` may lie, beyond the leeway, before the token is refused.
const MAX_IAT_SKEW: i64 = 60;

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub use portcullis_rocket::core::ACCESS_TOKEN_TYP;

/// The claims of an access token. A user's token carries `sid` and `roles`; a client's
/// (client-credentials grant) carries `client_id` (= `sub`) and `scope`, and neither of the
/// user's. [`AccessClaims::subject`] checks that a token is exactly one of the two; optional
/// claims are one field each so that others can be added alongside.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: Id,
    pub jti: Id,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Id>,
    /// Space-separated permissions (RFC 9068 §2.2.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// RFC 8176 authentication methods of a user's login: `["pwd"]`, or `["pwd","otp","mfa"]`
    /// after MFA; none in a client's token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// Whom an access token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A user in a session, with the roles in the token.
    User { user_id: Id, session_id: Id, roles: &'a [String] },
    /// A service client, with the permissions in the token's scope.
    Client { client_id: Id, scope: &'a str },
}

impl AccessClaims {
    /// The token's subject, or `None` when its claims mix the two kinds or lack one's claims.
    pub fn subject(&self) -> Option<Subject<'_>> {
        match (self.sid, &self.roles, self.client_id, &self.scope) {
            (Some(session_id), Some(roles), None, None) => Some(Subject::User { user_id: self.sub, session_id, roles }),
            (None, None, Some(client_id), Some(scope)) if client_id == self.sub => {
                Some(Subject::Client { client_id, scope })
            }
            _ => None,
        }
    }
}

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

    fn algorithm(&self) -> Algorithm {
        match self.verifier {
            Verifier::Hs256(_) => Algorithm::HS256,
            Verifier::Ed25519(_) => Algorithm::EdDSA,
        }
    }

    /// Whether `signature` (base64url) signs `message`; `Err` when it cannot be decoded.
    fn verifies(&self, message: &[u8], signature: &str) -> Result<bool, ()> {
        match &self.verifier {
            Verifier::Hs256(key) => {
                jsonwebtoken::crypto::verify(signature, message, key, Algorithm::HS256).map_err(drop)
            }
            Verifier::Ed25519(key) => {
                let bytes = URL_SAFE_NO_PAD.decode(signature).map_err(drop)?;
                let signature = ed25519_dalek::Signature::from_slice(&bytes).map_err(drop)?;
                Ok(ed25519_dalek::Verifier::verify(key, message, &signature).is_ok())
            }
        }
    }
}

/// The active signing key and every key accepted for verification.
pub struct TokenKeys {
    active: SigningKey,
    verifiers: HashMap<String, VerifyingKey>,
    issuer: String,
    audience: String,
    leeway: i64,
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
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway as i64,
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

    /// Checks signature, `typ`, `kid`, issuer, audience, claims and expiry at `now`. The error
    /// is a short reason suitable for `error_description`.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, &'static str> {
        let (claims, until) = self.verify_signed_with(token)?;
        self.check_time(&claims, until, now)?;
        Ok(claims)
    }

    /// The time checks of [`verify`](Self::verify): the key's and the token's lifetimes at `now`.
    pub fn check_time(&self, claims: &AccessClaims, until: Option<i64>, now: i64) -> Result<(), &'static str> {
        if until.is_some_and(|until| now >= until) {
            return Err("The access token was signed with a retired key.");
        }
        if now >= claims.exp + self.leeway {
            return Err("The access token has expired.");
        }
        // Instances' clocks differ by fractions of a second, which whole-second `iat`s turn into
        // a second; only a token from well in the future is suspicious.
        if claims.iat > now + self.leeway + MAX_IAT_SKEW {
            return Err("The access token was issued in the future.");
        }
        Ok(())
    }

    /// Everything [`verify`](Self::verify) checks except time: for revoking a token whose
    /// session should end even though the token itself has expired.
    ///
    /// Decodes each part once: `jsonwebtoken::decode` parses the header a second time and the
    /// claims twice (once for its own validation), which was most of the bearer guard's cost.
    /// The order of checks is the same: header, key, signature, then claims.
    pub fn verify_signed(&self, token: &str) -> Result<AccessClaims, &'static str> {
        self.verify_signed_with(token).map(|(claims, _)| claims)
    }

    /// [`verify_signed`](Self::verify_signed), also returning until when the key verifies.
    pub fn verify_signed_with(&self, token: &str) -> Result<(AccessClaims, Option<i64>), &'static str> {
        const MALFORMED: &str = "The access token is malformed.";
        let (message, signature) = token.rsplit_once('.').ok_or(MALFORMED)?;
        let (header, payload) = message.split_once('.').ok_or(MALFORMED)?;
        let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| MALFORMED)?;
        let header: JoseHeader<'_> = serde_json::from_slice(&header).map_err(|_| MALFORMED)?;
        // RFC 7515 §4.1.11: a `crit` header names extensions the recipient must understand; this
        // verifier understands none, so any `crit` is refused.
        if header.crit.is_some() {
            return Err("The access token names critical header parameters this server does not understand.");
        }
        if !header.typ.is_some_and(|typ| typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)) {
            return Err("The token is not an access token.");
        }
        let kid = header.kid.ok_or("The access token has no key id.")?;
        let key = self.verifiers.get(kid.as_ref()).ok_or("The access token was signed with an unknown key.")?;
        if header.alg != key.algorithm() {
            return Err("The access token uses an unexpected algorithm.");
        }
        match key.verifies(message.as_bytes(), signature) {
            Ok(true) => {}
            Ok(false) => return Err("The access token signature is invalid."),
            Err(_) => return Err("The access token is invalid."),
        }
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| "The access token is invalid.")?;
        let claims: AccessClaims = serde_json::from_slice(&payload).map_err(|_| "The access token is invalid.")?;
        if claims.iss != self.issuer {
            return Err("The access token has the wrong issuer.");
        }
        if claims.aud != self.audience {
            return Err("The access token has the wrong audience.");
        }
        if claims.subject().is_none() {
            return Err("The access token is invalid.");
        }
        Ok((claims, key.until))
    }
}

/// The JOSE header fields verification looks at; others are ignored.
#[derive(Deserialize)]
struct JoseHeader<'a> {
    alg: Algorithm,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    crit: Option<serde::de::IgnoredAny>,
}
