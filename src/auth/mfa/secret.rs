//! The TOTP secret at rest: the one place that turns a secret into its stored form and back.
//!
//! With `auth.key_encryption_key` configured the secret is sealed by [`AtRest`] (the AEAD of the
//! signing keys); without one it is stored tagged `plain:` (base32). [`open`] reads both, so rows
//! written before a KEK was configured keep working.

use crate::auth::keys::kek::AtRest;
use crate::auth::mfa::totp;

const PLAIN: &str = "plain:";

/// The stored form of `secret`.
pub fn seal(at_rest: &AtRest, secret: &[u8]) -> String {
    if at_rest.is_encrypting() {
        return at_rest.encrypt_at_rest(secret);
    }
    format!("{PLAIN}{}", totp::base32(secret))
}

/// The secret of a stored form; an error names what is wrong (never the secret).
pub fn open(at_rest: &AtRest, stored: &str) -> Result<Vec<u8>, String> {
    match stored.strip_prefix(PLAIN) {
        Some(encoded) => totp::from_base32(encoded).ok_or_else(|| "a stored TOTP secret is not base32".to_owned()),
        None => at_rest.decrypt_at_rest(stored).map_err(|e| format!("a stored TOTP secret: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use crate::auth::keys::kek::AtRest;

    #[test]
    fn a_sealed_secret_opens_to_itself() {
        let secret = crate::auth::mfa::totp::generate_secret();
        let clear = AtRest::new(None);
        assert_eq!(super::open(&clear, &super::seal(&clear, &secret)).unwrap(), secret);
        assert!(super::open(&clear, "aead:xyz").is_err());
        let kek = crate::config::Secret::new("a key-encryption key for the unit test, 32+ bytes");
        let sealed_with = AtRest::new(Some(&kek));
        let sealed = super::seal(&sealed_with, &secret);
        assert!(!sealed.starts_with("plain:"), "encrypted with a KEK");
        assert_eq!(super::open(&sealed_with, &sealed).unwrap(), secret);
        assert!(super::open(&clear, &sealed).is_err(), "not without the KEK");
    }
}
