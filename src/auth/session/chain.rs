//! The refresh-token format: a token names its session and generation, bound to them by a MAC
//! under a server key, so the database keeps no token at all and a session's storage does not grow
//! with its exchanges (docs/sessions.md, "Tokens and sessions").
//!
//! `token = base64url(0x02 ‖ session id (16 bytes) ‖ generation (u64 BE) ‖ HMAC-SHA256(key, ‖…))`
//! — 57 bytes, 76 characters. The key is 256 random bits kept in the `settings` table (shared
//! by every instance), so a token is as unguessable as the key and nothing stored recovers it
//! without that key. The successor of generation `g` is always the same token, so a replay inside
//! the grace interval can be answered with the successor the first exchange produced.
//! Tokens minted before this format (43 characters, 256 random bits) are not recognised here:
//! they fall back to the hashed `refresh_tokens` rows.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::db::Id;

const VERSION: u8 = 2;
const BODY: usize = 1 + 16 + 8;
const LEN: usize = BODY + 32;

/// What a well-formed, authentic refresh token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainToken {
    pub session: Id,
    pub generation: i64,
}

/// The MAC key of refresh tokens. `Debug` hides it.
#[derive(Clone)]
pub struct ChainKey(Hmac<Sha256>);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(***)")
    }
}

impl ChainKey {
    pub fn new(key: &[u8]) -> ChainKey {
        ChainKey(Hmac::new_from_slice(key).expect("HMAC takes keys of any length"))
    }

    fn body(session: Id, generation: i64) -> [u8; BODY] {
        let mut body = [0u8; BODY];
        body[0] = VERSION;
        body[1..17].copy_from_slice(session.0.as_bytes());
        body[17..].copy_from_slice(&(generation as u64).to_be_bytes());
        body
    }

    /// The refresh token of `session` at `generation`: the same every time it is asked for.
    pub fn mint(&self, session: Id, generation: i64) -> String {
        let body = Self::body(session, generation);
        let mut mac = self.0.clone();
        mac.update(&body);
        let mut token = Vec::with_capacity(LEN);
        token.extend_from_slice(&body);
        token.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// A MAC under the same key for another `purpose` (the hosted pages' CSRF tokens): the
    /// message starts with `0x00`, the purpose and each part length-prefixed, so it can never be
    /// a refresh-token body (which starts with its version byte) nor another purpose's message.
    pub fn tag(&self, purpose: &str, parts: &[&[u8]]) -> String {
        let mut mac = self.0.clone();
        mac.update(&[0]);
        for part in std::iter::once(purpose.as_bytes()).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The session and generation a token names, when its MAC checks (in constant time);
    /// `None` for anything else, including tokens of the older random format.
    pub fn open(&self, token: &str) -> Option<ChainToken> {
        if token.len() != (LEN * 4).div_ceil(3) {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != LEN || bytes[0] != VERSION {
            return None;
        }
        let mut mac = self.0.clone();
        mac.update(&bytes[..BODY]);
        mac.verify_slice(&bytes[BODY..]).ok()?;
        let session = Id(uuid::Uuid::from_slice(&bytes[1..17]).ok()?);
        let generation = u64::from_be_bytes(bytes[17..BODY].try_into().ok()?);
        Some(ChainToken { session, generation: i64::try_from(generation).ok()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_opens_to_its_session_and_generation_and_is_deterministic() {
        let key = ChainKey::new(b"0123456789abcdef0123456789abcdef");
        let session = Id::new();
        let token = key.mint(session, 7);
        assert_eq!(token.len(), 76);
        assert_eq!(token, key.mint(session, 7));
        assert_ne!(token, key.mint(session, 8));
        assert_eq!(key.open(&token), Some(ChainToken { session, generation: 7 }));
    }

    #[test]
    fn a_token_under_another_key_or_altered_does_not_open() {
        let key = ChainKey::new(b"0123456789abcdef0123456789abcdef");
        let other = ChainKey::new(b"fedcba9876543210fedcba9876543210");
        let token = key.mint(Id::new(), 1);
        assert_eq!(other.open(&token), None);
        let mut altered = token.into_bytes();
        altered[30] = if altered[30] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.open(&String::from_utf8(altered).unwrap()), None);
        assert_eq!(key.open("short"), None);
    }
}
