//! The TOTP secret at rest: the one place that turns a secret into its stored form and back.
//!
//! For now the stored form is the secret itself, tagged `plain:`; the tag lets a later form
//! (encrypted under `auth.key_encryption_key` with the AEAD used for signing keys) be told apart
//! from rows written before it, which [`open`] keeps reading.

use super::totp;

const PLAIN: &str = "plain:";

/// The stored form of `secret`.
pub fn seal(secret: &[u8]) -> String {
    format!("{PLAIN}{}", totp::base32(secret))
}

/// The secret of a stored form; an error names what is wrong (never the secret).
pub fn open(stored: &str) -> Result<Vec<u8>, String> {
    match stored.strip_prefix(PLAIN) {
        Some(encoded) => totp::from_base32(encoded).ok_or_else(|| "a stored TOTP secret is not base32".to_owned()),
        None => Err("a stored TOTP secret has an unknown form".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sealed_secret_opens_to_itself() {
        let secret = super::totp::generate_secret();
        assert_eq!(super::open(&super::seal(&secret)).unwrap(), secret);
        assert!(super::open("aead:xyz").is_err());
    }
}
