//! Recovery codes: ten random one-time codes shown once at enrolment, stored as SHA-256 digests
//! (80 random bits each, so a fast digest is as good as a slow hash).

use rand::Rng;

use crate::auth::secrets::hash_token;

pub const COUNT: usize = 10;
/// Base32 characters per code: 16 × 5 = 80 bits.
const LENGTH: usize = 16;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A new set: the codes to show (`xxxx-xxxx-xxxx-xxxx`) and their stored digests.
pub fn generate() -> (Vec<String>, Vec<String>) {
    let mut rng = rand::rngs::OsRng;
    let codes: Vec<String> = (0..COUNT)
        .map(|_| {
            let chars: Vec<char> = (0..LENGTH).map(|_| ALPHABET[rng.gen_range(0..32)] as char).collect();
            chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
        })
        .collect();
    let hashes = codes.iter().filter_map(|c| digest(c)).collect();
    (codes, hashes)
}

/// The stored digest of a presented code, ignoring case, spaces and dashes; `None` when it
/// cannot be a recovery code.
pub fn digest(code: &str) -> Option<String> {
    let normalized: String =
        code.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect();
    let valid = normalized.len() == LENGTH && normalized.bytes().all(|b| ALPHABET.contains(&b));
    valid.then(|| hash_token(&normalized))
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_distinct_and_their_digest_ignores_formatting() {
        let (codes, hashes) = super::generate();
        assert_eq!(codes.len(), super::COUNT);
        assert_eq!(hashes.len(), super::COUNT);
        assert_eq!(super::digest(&codes[0].to_uppercase().replace('-', " ")).as_ref(), Some(&hashes[0]));
        assert_eq!(super::digest("123456"), None);
        let unique: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(unique.len(), super::COUNT);
    }
}
