//! The one verification of an access token, for Portcullis's own guards and for resource
//! servers alike: header (`crit`, `typ`, `kid`, `alg` pinned to the key), signature, `iss`, `aud`,
//! the subject's shape, then time. Where keys come from is the caller's: Portcullis looks them up
//! in its key ring (HS256 or Ed25519, a retired key with the time it stops verifying), a resource
//! server in the JWKS it fetched — both through [`KeyLookup`].

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::claims::AccessClaims;

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// How far in the future an `iat` may lie, beyond the leeway, before a token is refused.
const MAX_IAT_SKEW: i64 = 60;

/// A signature that is not even well-formed for its algorithm (bad base64url, wrong length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undecodable;

/// A key that verifies signatures of one algorithm.
pub trait SignatureKey {
    /// The JOSE `alg` of this key: a token naming another is refused (no algorithm confusion).
    fn alg(&self) -> &str;
    /// Whether `signature` (base64url) signs `message`; `Err` when it cannot be decoded.
    fn verifies(&self, message: &[u8], signature: &str) -> Result<bool, Undecodable>;
    /// A retired key verifies only before this time.
    fn until(&self) -> Option<i64> {
        None
    }
}

/// Keys by `kid`.
pub trait KeyLookup {
    type Key: SignatureKey;
    fn key(&self, kid: &str) -> Option<&Self::Key>;
    /// Whether any key could verify `alg`. A token naming another algorithm is refused before its
    /// `kid` is looked up, so it cannot make a resource server refetch its keys.
    fn accepts(&self, _alg: &str) -> bool {
        true
    }
}

/// Why a token was refused. [`VerifyError::UnknownKey`] tells a resource server to refetch keys.
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
    /// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: i64,
}

/// The JOSE header fields verification looks at; others are ignored. Borrowed: no allocation.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    crit: Option<serde::de::IgnoredAny>,
}

/// Verifies a token at `now`: [`verify_signed`], then [`check_time`].
pub fn verify<I, K>(token: &str, keys: &K, expected: &Expected, now: i64) -> Result<AccessClaims<I>, VerifyError>
where
    I: DeserializeOwned + PartialEq + std::fmt::Display,
    K: KeyLookup + ?Sized,
{
    let (claims, until) = verify_signed(token, keys, expected)?;
    check_time(&claims, until, expected, now)?;
    Ok(claims)
}

/// Everything [`verify`] checks except time (for revoking the session of an expired token, and
/// for caches that check time on every use), also returning until when the key verifies. Each
/// part is decoded once; the order is header, key, signature, then claims.
pub fn verify_signed<I, K>(
    token: &str,
    keys: &K,
    expected: &Expected,
) -> Result<(AccessClaims<I>, Option<i64>), VerifyError>
where
    I: DeserializeOwned + PartialEq + std::fmt::Display,
    K: KeyLookup + ?Sized,
{
    const MALFORMED: VerifyError = VerifyError::Invalid("The access token is malformed.");
    const INVALID: VerifyError = VerifyError::Invalid("The access token is invalid.");
    let (message, signature) = token.rsplit_once('.').ok_or(MALFORMED)?;
    let (header, payload) = message.split_once('.').ok_or(MALFORMED)?;
    let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| MALFORMED)?;
    let header: Header<'_> = serde_json::from_slice(&header).map_err(|_| MALFORMED)?;
    // RFC 7515 §4.1.11: a `crit` header names extensions the recipient must understand; this
    // verifier understands none, so any `crit` is refused.
    if header.crit.is_some() {
        return Err(VerifyError::Invalid(
            "The access token names critical header parameters this server does not understand.",
        ));
    }
    // RFC 9068 §4: "at+jwt" or its media type "application/at+jwt" (RFC 7515 §4.1.9).
    let access_typ = |typ: &str| {
        let typ = typ.get(..12).filter(|p| p.eq_ignore_ascii_case("application/")).map_or(typ, |_| &typ[12..]);
        typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
    };
    if !header.typ.is_some_and(|typ| access_typ(&typ)) {
        return Err(VerifyError::Invalid("The token is not an access token."));
    }
    const UNEXPECTED_ALG: VerifyError = VerifyError::Invalid("The access token uses an unexpected algorithm.");
    if !keys.accepts(&header.alg) {
        return Err(UNEXPECTED_ALG);
    }
    let kid = header.kid.ok_or(VerifyError::Invalid("The access token has no key id."))?;
    let key = keys.key(&kid).ok_or(VerifyError::UnknownKey)?;
    if *header.alg != *key.alg() {
        return Err(UNEXPECTED_ALG);
    }
    match key.verifies(message.as_bytes(), signature) {
        Ok(true) => {}
        Ok(false) => return Err(VerifyError::Invalid("The access token signature is invalid.")),
        Err(Undecodable) => return Err(INVALID),
    }
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| INVALID)?;
    let claims: AccessClaims<I> = serde_json::from_slice(&payload).map_err(|_| INVALID)?;
    if claims.iss != expected.issuer {
        return Err(VerifyError::Invalid("The access token has the wrong issuer."));
    }
    if claims.aud != expected.audience {
        return Err(VerifyError::Invalid("The access token has the wrong audience."));
    }
    if claims.subject().is_none() {
        return Err(INVALID);
    }
    Ok((claims, key.until()))
}

/// The time checks of [`verify`] alone, at `now`: the key's lifetime (`until`, for a retired
/// key), `exp` and `nbf` with the same leeway, and an `iat` far in the future.
pub fn check_time<I>(
    claims: &AccessClaims<I>,
    until: Option<i64>,
    expected: &Expected,
    now: i64,
) -> Result<(), VerifyError> {
    if until.is_some_and(|until| now >= until) {
        return Err(VerifyError::Invalid("The access token was signed with a retired key."));
    }
    if now >= claims.exp + expected.leeway {
        return Err(VerifyError::Invalid("The access token has expired."));
    }
    // RFC 7519 §4.1.5: not to be accepted before `nbf`, with the same allowance for clock skew
    // as `exp` (§4.1.4), so a token is judged alike by every server on one leeway.
    if claims.nbf.is_some_and(|nbf| now + expected.leeway < nbf) {
        return Err(VerifyError::Invalid("The access token is not valid yet."));
    }
    // Instances' clocks differ by fractions of a second, which whole-second `iat`s turn into a
    // second; only a token from well in the future is suspicious.
    if claims.iat > now + expected.leeway + MAX_IAT_SKEW {
        return Err(VerifyError::Invalid("The access token was issued in the future."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{KeySet, Subject};
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
        let claims: AccessClaims = verify(&token, &keys, &expected(), 150).unwrap();
        let (user, session) = ("u1".to_owned(), "s1".to_owned());
        let subject = Subject::User { user_id: &user, session_id: &session, roles: &["user".into()], scope: None };
        assert_eq!(claims.subject(), Some(subject));
        assert_eq!(claims.amr, ["pwd"]);
    }

    #[test]
    fn crit_other_typ_other_alg_unknown_kid_and_expiry_are_refused() {
        let (key, keys) = setup();
        let refused = |header: serde_json::Value, now: i64| {
            verify::<String, _>(&sign(&key, header, user_claims(200)), &keys, &expected(), now)
        };
        let crit = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1", "crit": ["exp"]});
        assert!(matches!(refused(crit, 150), Err(VerifyError::Invalid(_))));
        assert!(refused(json!({"alg": "EdDSA", "typ": "JWT", "kid": "k1"}), 150).is_err());
        assert!(refused(json!({"alg": "EdDSA", "typ": "application/JWT", "kid": "k1"}), 150).is_err());
        let media_type =
            sign(&key, json!({"alg": "EdDSA", "typ": "application/at+jwt", "kid": "k1"}), user_claims(200));
        assert!(verify::<String, _>(&media_type, &keys, &expected(), 150).is_ok(), "RFC 9068 §4: the media type");
        let hs256 = refused(json!({"alg": "HS256", "typ": "at+jwt", "kid": "k2"}), 150);
        assert_eq!(hs256, Err(VerifyError::Invalid("The access token uses an unexpected algorithm.")));
        assert_eq!(refused(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k2"}), 150), Err(VerifyError::UnknownKey));
        let expired = refused(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"}), 200);
        assert_eq!(expired, Err(VerifyError::Invalid("The access token has expired.")));
    }

    #[test]
    fn only_the_expected_audience_is_accepted_as_a_single_string() {
        let (key, keys) = setup();
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"});
        let with_aud = |aud: serde_json::Value| {
            let mut claims = user_claims(200);
            claims["aud"] = aud;
            verify::<String, _>(&sign(&key, header.clone(), claims), &keys, &expected(), 150)
        };
        let wrong = Err(VerifyError::Invalid("The access token has the wrong audience."));
        assert_eq!(with_aud(json!("https://reports.example")), wrong, "a resource server's token");
        assert!(with_aud(json!(["portcullis", "https://reports.example"])).is_err(), "aud is one string");
        assert!(with_aud(json!("portcullis")).is_ok());
    }

    #[test]
    fn a_retired_key_verifies_only_before_its_end() {
        let claims: AccessClaims = serde_json::from_value(user_claims(200)).unwrap();
        assert_eq!(check_time(&claims, Some(160), &expected(), 150), Ok(()));
        let retired = check_time(&claims, Some(160), &expected(), 160);
        assert_eq!(retired, Err(VerifyError::Invalid("The access token was signed with a retired key.")));
    }

    #[test]
    fn a_token_is_refused_before_its_nbf_with_the_leeway_of_exp() {
        let (key, keys) = setup();
        let mut claims = user_claims(200);
        claims["nbf"] = json!(160);
        let token = sign(&key, json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"}), claims);
        let early = verify::<String, _>(&token, &keys, &expected(), 159);
        assert_eq!(early, Err(VerifyError::Invalid("The access token is not valid yet.")));
        assert!(verify::<String, _>(&token, &keys, &expected(), 160).is_ok(), "valid from nbf on");
        let lenient = Expected { leeway: 5, ..expected() };
        assert!(verify::<String, _>(&token, &keys, &lenient, 155).is_ok(), "the leeway of exp applies");
        assert!(verify::<String, _>(&token, &keys, &lenient, 154).is_err());
    }
}
