//! Encryption at rest of secrets the service must be able to read back (generated signing keys,
//! the refresh-token key, TOTP secrets, ID-token keys and outbox links): XChaCha20-Poly1305 under the key-encryption key,
//! `auth.key_encryption_key` or, with SQLite and none configured, the generated key file
//! (`crate::auth::keys::kek_file`); `crate::auth::keys::sealing` chooses and checks it at start-up.
//!
//! Without a KEK (PostgreSQL with none configured), values are stored encoded but in clear, so
//! read access to the database is enough to forge tokens (docs/services.md, "Keys at rest"). With one, a
//! database dump alone is not: the KEK lives in configuration, the environment
//! (`ROCKET_AUTH={key_encryption_key="..."}`) or the key file, never in the database.
//!
//! Stored forms: `plain:<base64>` or `xc20p1:<base64 of 24-byte nonce || ciphertext+tag>`. The
//! prefix lets a value written before a KEK was configured still be read (and re-encrypted).

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::XChaCha20Poly1305;
use sha2::{Digest, Sha256};

use crate::config::Secret;

const PLAIN: &str = "plain:";
const SEALED: &str = "xc20p1:";
/// Domain separation for deriving the AEAD key from the configured string.
const KDF_LABEL: &[u8] = b"portcullis key-encryption key v1\0";

/// Seals and opens secrets kept in the database. `Debug` never shows the key.
#[derive(Clone)]
pub struct AtRest {
    cipher: Option<XChaCha20Poly1305>,
}

impl std::fmt::Debug for AtRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtRest").field("encrypting", &self.is_encrypting()).finish()
    }
}

impl AtRest {
    /// Encrypts with `kek` when given; stores in clear otherwise. The AEAD key is SHA-256 of a
    /// label and the configured string (which config validation requires to be >= 32 bytes).
    pub fn new(kek: Option<&Secret>) -> AtRest {
        let cipher = kek.map(|kek| {
            let key = Sha256::new().chain_update(KDF_LABEL).chain_update(kek.expose().as_bytes()).finalize();
            XChaCha20Poly1305::new(&key)
        });
        AtRest { cipher }
    }

    /// Whether values are encrypted (a KEK is configured).
    pub fn is_encrypting(&self) -> bool {
        self.cipher.is_some()
    }

    /// The stored form of `plaintext`.
    pub fn encrypt_at_rest(&self, plaintext: &[u8]) -> String {
        let Some(cipher) = &self.cipher else { return format!("{PLAIN}{}", STANDARD_NO_PAD.encode(plaintext)) };
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption with a fresh nonce cannot fail for inputs of this size.
        let sealed = cipher.encrypt(&nonce, plaintext).expect("XChaCha20-Poly1305 encryption");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED}{}", STANDARD_NO_PAD.encode(bytes))
    }

    /// The plaintext of a stored value. Fails when the value is encrypted and no KEK (or a
    /// different one) is configured, or when it is corrupt.
    pub fn decrypt_at_rest(&self, stored: &str) -> Result<Vec<u8>, String> {
        if let Some(encoded) = stored.strip_prefix(PLAIN) {
            return STANDARD_NO_PAD.decode(encoded).map_err(|_| "a stored value is corrupt".to_string());
        }
        let encoded = stored.strip_prefix(SEALED).ok_or("a stored value has an unknown format")?;
        let cipher = self.cipher.as_ref().ok_or(
            "a stored key is encrypted but auth.key_encryption_key is not configured; configure the key it was \
             encrypted with",
        )?;
        let bytes = STANDARD_NO_PAD.decode(encoded).map_err(|_| "a stored value is corrupt".to_string())?;
        if bytes.len() < 24 {
            return Err("a stored value is corrupt".into());
        }
        let (nonce, sealed) = bytes.split_at(24);
        cipher.decrypt(nonce.into(), sealed).map_err(|_| {
            "a stored key cannot be decrypted with auth.key_encryption_key: it was encrypted with another key, or \
             altered"
                .to_string()
        })
    }

    /// Whether `stored` is in clear (to re-encrypt it once a KEK is configured).
    pub fn is_plain(stored: &str) -> bool {
        stored.starts_with(PLAIN)
    }

    /// Whether `stored` is encrypted.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key() {
        let kek = Secret::new("an example key-encryption key of enough length");
        let sealed = AtRest::new(Some(&kek)).encrypt_at_rest(b"seed");
        assert!(sealed.starts_with(SEALED));
        assert_eq!(AtRest::new(Some(&kek)).decrypt_at_rest(&sealed).unwrap(), b"seed");
        let other = Secret::new("another key-encryption key of enough length!!");
        assert!(AtRest::new(Some(&other)).decrypt_at_rest(&sealed).is_err());
        assert!(AtRest::new(None).decrypt_at_rest(&sealed).unwrap_err().contains("auth.key_encryption_key"));
    }

    #[test]
    fn clear_values_are_read_with_or_without_a_key() {
        let plain = AtRest::new(None).encrypt_at_rest(b"seed");
        let kek = Secret::new("an example key-encryption key of enough length");
        assert_eq!(AtRest::new(Some(&kek)).decrypt_at_rest(&plain).unwrap(), b"seed");
    }
}
