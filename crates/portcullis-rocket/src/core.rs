//! The verification core: the claims of a Portcullis access token and their checks (EdDSA
//! signature by `kid`, `crit`, `typ`, `iss`, `aud`, `exp`, `iat`), and the role-change rule.
//! Nothing here knows where keys or changes come from; the fairing feeds it from the JWKS and
//! the change feed.

use std::collections::{BTreeSet, HashMap};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

/// A permission as a type, for `Authorized<P>` guards — the same trait for Portcullis's own guards
/// and this crate's; declare one with [`permission!`](crate::permission!).
pub trait Permission: Send + Sync + 'static {
    /// The permission's name as configured in Portcullis (`auth.permissions`), e.g. `reports:read`.
    const NAME: &'static str;
}

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// How far in the future an `iat` may lie, beyond the leeway, before a token is refused.
const MAX_IAT_SKEW: i64 = 60;

/// The claims of a Portcullis access token. A user's token carries `sid` and `roles` (and `amr`
/// once Portcullis records how the user authenticated); a client's carries `client_id` (= `sub`)
/// and `scope`. Claims this crate does not know are ignored.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    /// Authentication methods (RFC 8176), e.g. `["pwd", "otp"]`; empty when the token has none.
    #[serde(default)]
    pub amr: Vec<String>,
}

/// Whom an access token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    User { user_id: &'a str, session_id: &'a str, roles: &'a [String] },
    Client { client_id: &'a str, scope: &'a str },
}

impl AccessClaims {
    /// The token's subject, or `None` when its claims mix the two kinds or lack one's claims.
    pub fn subject(&self) -> Option<Subject<'_>> {
        match (&self.sid, &self.roles, &self.client_id, &self.scope) {
            (Some(session_id), Some(roles), None, None) => {
                Some(Subject::User { user_id: &self.sub, session_id, roles })
            }
            (None, None, Some(client_id), Some(scope)) if *client_id == self.sub => {
                Some(Subject::Client { client_id, scope })
            }
            _ => None,
        }
    }
}

/// Why a token was refused. [`VerifyError::UnknownKey`] tells the caller to refetch the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// No key with the token's `kid`.
    UnknownKey,
    /// Anything else, with a sentence for `error_description`.
    Invalid(&'static str),
}

impl VerifyError {
    pub fn description(&self) -> &'static str {
        match self {
            VerifyError::UnknownKey => "The access token was signed with an unknown key.",
            VerifyError::Invalid(reason) => reason,
        }
    }
}

/// What a token must say to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub issuer: String,
    pub audience: String,
    /// Seconds of clock skew tolerated on `exp`.
    pub leeway: i64,
}

/// Ed25519 public keys by `kid`.
pub type KeySet = HashMap<String, ed25519_dalek::VerifyingKey>;

/// The JOSE header fields verification looks at.
#[derive(Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

/// Verifies an EdDSA access token: header (`alg` EdDSA only, `typ` `at+jwt`, no `crit`), key by
/// `kid`, signature, then `iss`, `aud`, the subject's shape and the time at `now`.
pub fn verify(token: &str, keys: &KeySet, expected: &Expected, now: i64) -> Result<AccessClaims, VerifyError> {
    const MALFORMED: VerifyError = VerifyError::Invalid("The access token is malformed.");
    const INVALID: VerifyError = VerifyError::Invalid("The access token is invalid.");
    let (message, signature) = token.rsplit_once('.').ok_or(MALFORMED)?;
    let (header, payload) = message.split_once('.').ok_or(MALFORMED)?;
    let header: Header =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).map_err(|_| MALFORMED)?).map_err(|_| MALFORMED)?;
    // RFC 7515 §4.1.11: this verifier understands no extension, so any `crit` is refused.
    if header.crit.is_some() {
        return Err(VerifyError::Invalid("The access token names critical header parameters."));
    }
    if !header.typ.is_some_and(|typ| typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)) {
        return Err(VerifyError::Invalid("The token is not an access token."));
    }
    if header.alg != "EdDSA" {
        return Err(VerifyError::Invalid("The access token uses an unexpected algorithm."));
    }
    let kid = header.kid.ok_or(VerifyError::Invalid("The access token has no key id."))?;
    let key = keys.get(&kid).ok_or(VerifyError::UnknownKey)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| INVALID)?;
    let signature = ed25519_dalek::Signature::from_slice(&signature).map_err(|_| INVALID)?;
    if ed25519_dalek::Verifier::verify(key, message.as_bytes(), &signature).is_err() {
        return Err(VerifyError::Invalid("The access token signature is invalid."));
    }
    let claims: AccessClaims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).map_err(|_| INVALID)?).map_err(|_| INVALID)?;
    if claims.iss != expected.issuer {
        return Err(VerifyError::Invalid("The access token has the wrong issuer."));
    }
    if claims.aud != expected.audience {
        return Err(VerifyError::Invalid("The access token has the wrong audience."));
    }
    if claims.subject().is_none() {
        return Err(INVALID);
    }
    check_time(&claims, expected, now)?;
    Ok(claims)
}

/// The time checks of [`verify`] alone (`exp` with the leeway, an `iat` far in the future), for
/// a token whose signature and claims were verified before.
pub fn check_time(claims: &AccessClaims, expected: &Expected, now: i64) -> Result<(), VerifyError> {
    if now >= claims.exp + expected.leeway {
        return Err(VerifyError::Invalid("The access token has expired."));
    }
    if claims.iat > now + expected.leeway + MAX_IAT_SKEW {
        return Err(VerifyError::Invalid("The access token was issued in the future."));
    }
    Ok(())
}

/// The role-change rule, shared with Portcullis's own guard: a user's token naming a role the
/// user no longer holds was issued before the removal and must be refreshed. Tokens naming only
/// current roles pass whatever their `iat` (whole seconds would refuse fresh tokens otherwise).
pub fn names_removed_role(current_roles: &BTreeSet<String>, token_roles: &[String]) -> bool {
    token_roles.iter().any(|role| !current_roles.contains(role))
}

/// Whether any of `roles` grants `permission` through `table` (role → permissions).
pub fn roles_grant(table: &HashMap<String, BTreeSet<String>>, roles: &[String], permission: &str) -> bool {
    roles.iter().any(|role| table.get(role).is_some_and(|perms| perms.contains(permission)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    fn expected() -> Expected {
        Expected { issuer: "portcullis".into(), audience: "portcullis".into(), leeway: 0 }
    }

    fn sign(key: &SigningKey, header: serde_json::Value, claims: serde_json::Value) -> String {
        let message =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(key.sign(message.as_bytes()).to_bytes()))
    }

    fn user_claims(exp: i64) -> serde_json::Value {
        json!({"iss": "portcullis", "aud": "portcullis", "sub": "u1", "jti": "j", "iat": 100, "exp": exp,
            "sid": "s1", "roles": ["user"], "amr": ["pwd"]})
    }

    fn setup() -> (SigningKey, KeySet) {
        let key = SigningKey::from_bytes(&[1; 32]);
        (key.clone(), KeySet::from([("k1".to_owned(), key.verifying_key())]))
    }

    #[test]
    fn a_well_formed_token_verifies_and_says_whose_it_is() {
        let (key, keys) = setup();
        let token = sign(&key, json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"}), user_claims(200));
        let claims = verify(&token, &keys, &expected(), 150).unwrap();
        assert_eq!(claims.subject(), Some(Subject::User { user_id: "u1", session_id: "s1", roles: &["user".into()] }));
        assert_eq!(claims.amr, ["pwd"]);
    }

    #[test]
    fn crit_other_typ_other_alg_unknown_kid_and_expiry_are_refused() {
        let (key, keys) = setup();
        let refused = |header: serde_json::Value, now: i64| {
            verify(&sign(&key, header, user_claims(200)), &keys, &expected(), now)
        };
        let crit = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1", "crit": ["exp"]});
        assert!(matches!(refused(crit, 150), Err(VerifyError::Invalid(_))));
        assert!(refused(json!({"alg": "EdDSA", "typ": "JWT", "kid": "k1"}), 150).is_err());
        assert!(refused(json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}), 150).is_err());
        assert_eq!(refused(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k2"}), 150), Err(VerifyError::UnknownKey));
        let expired = refused(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"}), 200);
        assert_eq!(expired, Err(VerifyError::Invalid("The access token has expired.")));
    }

    #[test]
    fn a_token_naming_a_removed_role_is_stale() {
        let current: BTreeSet<String> = ["user".to_owned()].into();
        assert!(names_removed_role(&current, &["admin".into(), "user".into()]));
        assert!(!names_removed_role(&current, &["user".into()]));
    }
}
