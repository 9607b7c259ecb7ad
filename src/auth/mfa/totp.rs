//! TOTP codes (RFC 6238) with `totp-rs`: SHA-1, 6 digits, 30-second steps, the adjacent step on
//! either side accepted. Time is the service clock's, so tests can compute codes at fixed steps.
//!
//! Which step a code matched matters: the caller records it (`MfaStore::claim_totp_step`) so
//! that the code, and any older one, is refused afterwards.

use rand::RngCore;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

pub const DIGITS: usize = 6;
pub const PERIOD: i64 = 30;
/// 160 bits, the HMAC-SHA-1 block the RFC 4226 reference uses.
const SECRET_BYTES: usize = 20;

/// A fresh random secret.
pub fn generate_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// The secret as authenticator apps take it: RFC 4648 base32 without padding.
pub fn base32(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

/// Decodes [`base32`]'s output.
pub fn from_base32(encoded: &str) -> Option<Vec<u8>> {
    Secret::Encoded(encoded.to_owned()).to_bytes().ok()
}

fn totp(secret: &[u8]) -> TOTP {
    // `new_unchecked`: our secrets are always 160 bits; the label fields are not used here.
    TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 1, PERIOD as u64, secret.to_vec())
}

/// The 30-second step `now` falls in.
pub fn step_at(now: i64) -> i64 {
    now.div_euclid(PERIOD)
}

/// The code of `step`.
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    totp(secret).generate((step.max(0) * PERIOD) as u64)
}

/// The step among the one of `now` and its two neighbours whose code is `code`, the latest if
/// several are. Every candidate is computed and compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    let mut found = None;
    for step in [current - 1, current, current + 1] {
        let candidate = code_at_step(secret, step);
        if bool::from(candidate.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `@` (kept readable in the
/// account name, as authenticator apps expect).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// `otpauth://totp/<name>:<email>?secret=...&issuer=<name>&algorithm=SHA1&digits=6&period=30`:
/// what a QR code for an authenticator app encodes. `name` is what the app shows beside the code:
/// `auth.display_name`, not the issuer URL (apps show the `issuer` parameter as it is).
pub fn otpauth_uri(name: &str, email: &str, secret: &[u8]) -> String {
    let issuer = encode(name);
    format!(
        "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={PERIOD}",
        encode(email),
        base32(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (the last 6 of the 8 digits).
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [(59, "287082"), (1_111_111_109, "081804"), (2_000_000_000, "279037")] {
            assert_eq!(code_at_step(secret, step_at(time)), code);
        }
    }

    #[test]
    fn the_adjacent_steps_match_and_two_steps_away_does_not() {
        let secret = generate_secret();
        let now = 1_800_000_015;
        let step = step_at(now);
        for offset in [-1, 0, 1] {
            assert_eq!(matching_step(&secret, &code_at_step(&secret, step + offset), now), Some(step + offset));
        }
        for offset in [-2, 2] {
            let code = code_at_step(&secret, step + offset);
            let expected_collision = [-1, 0, 1].iter().any(|o| code_at_step(&secret, step + o) == code);
            assert_eq!(matching_step(&secret, &code, now).is_some(), expected_collision);
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "12345x", now), None);
    }

    #[test]
    fn the_uri_names_issuer_account_and_parameters() {
        let uri = otpauth_uri("Example Auth", "alice+1@example.com", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Example%20Auth:alice%2B1@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Example%20Auth&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap(), b"12345678901234567890");
    }
}
