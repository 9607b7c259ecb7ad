//! `id_token_hint` (OpenID Connect RP-Initiated Logout 1.0 §2, Core §3.1.2.1): an ID token this
//! service issued, presented back to it. It is verified with the ID-token keys of the JWKS (the
//! key its `kid` names, with that key's algorithm) and our issuer; its expiry is NOT checked,
//! because RP-Initiated Logout §2 asks the OP to accept expired hints (a relying party logs out
//! long after its ID token expired). A token whose key has left the JWKS can no longer be
//! verified and is treated like no hint.
//!
//! A hint only identifies: the user (`sub`), the client (`aud`) and the session its code started
//! (`sid`). It is no proof of anything — ID tokens are handed to relying parties and may leak —
//! so logout never ends a session on a hint alone, only the browser session of the cookie.

use jsonwebtoken::{decode, decode_header, jwk::Jwk, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::auth::Auth;
use crate::db::Id;

/// What a verified hint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// The account (`sub`).
    pub user_id: Id,
    /// The client it was issued to (`aud`).
    pub client_id: String,
    /// The session its code started (`sid`), if it names one.
    pub session_id: Option<Id>,
}

#[derive(Deserialize)]
struct HintClaims {
    sub: Id,
    aud: String,
    sid: Option<Id>,
}

impl Auth {
    /// The hint `token` verified (signature with a published ID-token key, `iss`, `typ: JWT`),
    /// or `None` when it is not an ID token of this service.
    pub fn verify_id_token_hint(&self, token: &str) -> Option<IdTokenHint> {
        let header = decode_header(token).ok()?;
        // Access tokens are `at+jwt` and signed by other keys; refuse them outright anyway.
        if header.typ.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("JWT")) {
            return None;
        }
        let kid = header.kid?;
        let jwks = self.id_token_keys.current().jwks(self.clock.now());
        let jwk = jwks.into_iter().find(|k| k["kid"] == kid.as_str())?;
        // The key's own algorithm, never the header's choice (no algorithm confusion).
        let algorithm: Algorithm = jwk["alg"].as_str()?.parse().ok()?;
        let jwk: Jwk = serde_json::from_value(jwk).ok()?;
        if header.alg != algorithm {
            return None;
        }
        let key = DecodingKey::from_jwk(&jwk).ok()?;
        let mut validation = Validation::new(algorithm);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_issuer(&[self.config.issuer.as_str()]);
        validation.set_required_spec_claims(&["iss", "sub", "aud"]);
        let claims = decode::<HintClaims>(token, &key, &validation).ok()?.claims;
        Some(IdTokenHint { user_id: claims.sub, client_id: claims.aud, session_id: claims.sid })
    }
}
