//! PKCE (RFC 7636) with the S256 method only: `plain` would let whoever sees the authorization
//! request (its URL travels through the browser) redeem the code, so it is refused everywhere.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only `code_challenge_method` accepted.
pub const S256: &str = "S256";

/// Whether `verifier` is a well-formed `code_verifier` (RFC 7636 §4.1): 43 to 128 characters of
/// `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `challenge` can be an S256 `code_challenge`: the base64url encoding (no padding) of a
/// SHA-256 digest, so exactly 43 characters of the base64url alphabet.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && URL_SAFE_NO_PAD.decode(challenge).is_ok_and(|d| d.len() == 32)
}

/// `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))` (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The server's check (RFC 7636 §4.6): a well-formed verifier whose S256 transform equals the
/// stored challenge, compared in constant time.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    is_verifier(verifier) && bool::from(s256_challenge(verifier).as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_appendix_b_verifier_transforms_to_its_challenge() {
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
        assert!(is_verifier(VERIFIER));
        assert!(is_s256_challenge(CHALLENGE));
        assert!(verify(VERIFIER, CHALLENGE));
    }

    #[test]
    fn a_verifier_differing_by_one_character_or_sent_as_the_challenge_fails() {
        let other = VERIFIER.replacen('d', "e", 1);
        assert!(!verify(&other, CHALLENGE));
        // `plain`: the challenge itself presented as verifier.
        assert!(!verify(CHALLENGE, CHALLENGE));
    }

    #[test]
    fn malformed_verifiers_and_challenges_are_refused() {
        assert!(!is_verifier(&VERIFIER[..42]), "too short");
        assert!(!is_verifier(&"a".repeat(129)), "too long");
        assert!(is_verifier(&"a~b.c_d-".repeat(16)));
        assert!(!is_verifier(&format!("{}+", &VERIFIER[..43])), "outside the alphabet");
        assert!(!is_s256_challenge("plain-challenge"));
        assert!(!is_s256_challenge(&format!("{}=", &CHALLENGE[..42])));
        // A verifier outside the grammar never verifies, even against its own transform.
        let bad = "short";
        assert!(!verify(bad, &s256_challenge(bad)));
    }
}
