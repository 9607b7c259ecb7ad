//! ID tokens (OpenID Connect Core 1.0 §2): what the token endpoint answers beside the access
//! token when the granted scope has `openid`, signed with the client's algorithm
//! ([`IdTokenAlg`], RS256 unless its `id_token_signed_response_alg` says EdDSA). They live
//! `access_ttl`, like the access token they come with.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use super::key_set::IdTokenAlg;
use super::scope::scope_has;
use crate::auth::Auth;
use crate::db::Id;

/// The claims of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    /// The account's id, the same for every client (`subject_types_supported: ["public"]`).
    pub sub: Id,
    /// The client the token is for.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// When the user authenticated, kept across refreshes (OpenID Connect Core §12.2).
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// How the user authenticated (RFC 8176).
    pub amr: Vec<String>,
    /// The session the code started (OpenID Connect Front-/Back-Channel Logout's `sid`).
    pub sid: Id,
    /// Binds the ID token to the access token it came with (OpenID Connect Core §3.1.3.6).
    pub at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// The account's email, given when the scope has `email`.
#[derive(Debug, Clone, Copy)]
pub struct EmailClaim<'a> {
    pub email: &'a str,
    pub verified: bool,
}

/// What an ID token says, from the session and the code that started it.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenRequest<'a> {
    pub client_id: &'a str,
    pub user_id: Id,
    pub session_id: Id,
    pub auth_time: i64,
    pub nonce: Option<&'a str>,
    /// Space-separated, as sessions store it.
    pub amr: &'a str,
    /// The granted scope, space-separated.
    pub scope: &'a str,
    /// The access token answered with it.
    pub access_token: &'a str,
    /// The account's email (only used when `scope` has `email`).
    pub email: EmailClaim<'a>,
}

/// `at_hash`: the left half of the hash of the access token's ASCII octets, with the hash of
/// the ID token's algorithm — SHA-256 for RS256 (OpenID Connect Core §3.1.3.6), SHA-512 for
/// EdDSA over Ed25519 (the hash Ed25519 itself uses) — base64url-encoded.
pub fn at_hash(alg: IdTokenAlg, access_token: &str) -> String {
    let digest = match alg {
        IdTokenAlg::Rs256 => Sha256::digest(access_token.as_bytes()).to_vec(),
        IdTokenAlg::EdDsa => Sha512::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

impl IdTokenRequest<'_> {
    /// The claims at `now`, issued by `issuer`, living `ttl` seconds.
    pub fn claims(&self, alg: IdTokenAlg, issuer: &str, ttl: i64, now: i64) -> IdTokenClaims {
        let email = scope_has(self.scope, "email").then_some(self.email);
        IdTokenClaims {
            iss: issuer.to_owned(),
            sub: self.user_id,
            aud: self.client_id.to_owned(),
            exp: now + ttl,
            iat: now,
            auth_time: self.auth_time,
            nonce: self.nonce.map(str::to_owned),
            amr: self.amr.split_whitespace().map(str::to_owned).collect(),
            sid: self.session_id,
            at_hash: at_hash(alg, self.access_token),
            email: email.map(|e| e.email.to_owned()),
            email_verified: email.map(|e| e.verified),
        }
    }
}

impl Auth {
    /// The signed ID token of `request`, with the active key of `alg`.
    pub fn id_token(&self, request: &IdTokenRequest<'_>, alg: IdTokenAlg) -> Result<String, String> {
        let claims = request.claims(alg, &self.config.issuer, self.config.access_ttl as i64, self.clock.now());
        self.id_token_keys.current().sign(alg, &claims)
    }
}
