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
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token; every one is required when decoding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: Id,
    pub sid: Id,
    pub jti: Id,
    pub iat: i64,
    pub exp: i64,
    pub roles: Vec<String>,
    /// RFC 8176 authentication methods: `["pwd"]`, or `["pwd","otp","mfa"]` after MFA.
    #[serde(default)]
    pub amr: Vec<String>,
}

/// A key that signs, with its `kid`.
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub key: EncodingKey,
}

/// A key that verifies, with its `kid`.
pub struct VerifyingKey {
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

/// The active signing key and every key accepted for verification.
pub struct TokenKeys {
    active: SigningKey,
    verifiers: HashMap<String, VerifyingKey>,
    issuer: String,
    audience: String,
    leeway: i64,
    ttl: i64,
    /// The public keys as JWKs; empty for HS256.
    jwks: Vec<serde_json::Value>,
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
        let active =
            SigningKey { kid: kid.clone(), algorithm: Algorithm::HS256, key: EncodingKey::from_secret(secret) };
        let verifier = VerifyingKey { algorithm: Algorithm::HS256, key: DecodingKey::from_secret(secret) };
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

    /// Sets the published public keys.
    pub fn with_jwks(mut self, jwks: Vec<serde_json::Value>) -> Self {
        self.jwks = jwks;
        self
    }

    /// The JWKS document: `{"keys": [...]}`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.jwks })
    }

    /// Access-token lifetime in seconds.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// Signs `claims` with the active key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, String> {
        let mut header = Header::new(self.active.algorithm);
        header.typ = Some(ACCESS_TOKEN_TYP.into());
        header.kid = Some(self.active.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.active.key).map_err(|e| e.to_string())
    }

    /// Checks signature, `typ`, `kid`, issuer, audience, claims and expiry at `now`. The error
    /// is a short reason suitable for `error_description`.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, &'static str> {
        let claims = self.verify_signed(token)?;
        if now >= claims.exp + self.leeway {
            return Err("The access token has expired.");
        }
        // Instances' clocks differ by fractions of a second, which whole-second `iat`s turn into
        // a second; only a token from well in the future is suspicious.
        if claims.iat > now + self.leeway + MAX_IAT_SKEW {
            return Err("The access token was issued in the future.");
        }
        Ok(claims)
    }

    /// Everything [`verify`](Self::verify) checks except time: for revoking a token whose
    /// session should end even though the token itself has expired.
    ///
    /// Decodes each part once: `jsonwebtoken::decode` parses the header a second time and the
    /// claims twice (once for its own validation), which was most of the bearer guard's cost.
    /// The order of checks is the same: header, key, signature, then claims.
    pub fn verify_signed(&self, token: &str) -> Result<AccessClaims, &'static str> {
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
        if header.alg != key.algorithm {
            return Err("The access token uses an unexpected algorithm.");
        }
        match jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key.key, key.algorithm) {
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
        Ok(claims)
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
