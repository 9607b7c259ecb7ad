//! Opaque refresh tokens: 256 random bits, URL-safe, stored only as a SHA-256 digest.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A freshly minted refresh token: the plaintext for the client and the digest for storage.
/// `Debug` shows only the digest.
pub struct OpaqueToken {
    plaintext: String,
    hash: String,
}

impl OpaqueToken {
    pub fn generate() -> OpaqueToken {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let plaintext = URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash_token(&plaintext);
        OpaqueToken { plaintext, hash }
    }

    /// What the database keeps.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn into_plaintext(self) -> String {
        self.plaintext
    }
}

impl std::fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpaqueToken").field("hash", &self.hash).finish_non_exhaustive()
    }
}

/// The stored form of a presented token: lower-case hex SHA-256.
pub fn hash_token(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(HEX[usize::from(byte >> 4)] as char);
        hex.push(HEX[usize::from(byte & 0xf)] as char);
    }
    hex
}

/// 256 random bits, URL-safe base64: the refresh-token MAC key ([`crate::auth::session::chain`]).
pub fn random_mac_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stored_form_is_lower_case_hex_sha256() {
        assert_eq!(super::hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
