//! The verified-token cache, for Portcullis's key ring and a resource server's trust alike.
//!
//! An Ed25519 verification costs ~45 µs against ~2 µs for HS256, and a client presents the same
//! access token on every request for its lifetime; so the outcome of a signature check is kept,
//! keyed by the exact token string. Time (expiry, a retired key's end) is still checked on every
//! use ([`check_time`](fn@super::check_time)), and the refusal rule runs after it. The cache is
//! bounded (emptied when full) and its owner empties it when the keys change: the lock order is
//! the cache's, then the keys' (see [`VerifiedTokens::insert`]), so an owner replaces its keys
//! and releases their lock before it empties the cache.

use std::collections::HashMap;
use std::sync::RwLock;

use super::claims::AccessClaims;

/// Verified tokens kept at most (a few MB).
pub const VERIFIED_CAPACITY: usize = 4096;

/// A verified token's claims and the time its key stops verifying (a retired key's end).
pub type Verified<I> = (AccessClaims<I>, Option<i64>);

/// Tokens whose signature and claims verified with the keys in force, by token string.
#[derive(Debug)]
pub struct VerifiedTokens<I> {
    entries: RwLock<HashMap<Box<str>, Verified<I>>>,
}

impl<I> Default for VerifiedTokens<I> {
    fn default() -> Self {
        VerifiedTokens { entries: RwLock::default() }
    }
}

impl<I: Clone> VerifiedTokens<I> {
    /// What `token` verified to, if it did since the cache was last emptied.
    pub fn get(&self, token: &str) -> Option<Verified<I>> {
        self.entries.read().ok().and_then(|entries| entries.get(token).cloned())
    }

    /// Keeps what `token` verified to, unless `keys_unchanged` says the keys it was verified with
    /// are no longer in force (asked under the cache's lock: keys replaced and the cache emptied
    /// while the token was being verified must not let it back in); empties the cache first when
    /// it is full.
    pub fn insert(
        &self,
        token: &str,
        claims: AccessClaims<I>,
        until: Option<i64>,
        keys_unchanged: impl FnOnce() -> bool,
    ) {
        if let Ok(mut entries) = self.entries.write() {
            if !keys_unchanged() {
                return;
            }
            if entries.len() >= VERIFIED_CAPACITY {
                entries.clear();
            }
            entries.insert(token.into(), (claims, until));
        }
    }

    /// Forgets every token: a key may have left the set, so each must be verified again.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |entries| entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str) -> AccessClaims {
        AccessClaims {
            iss: "p".into(),
            aud: "p".into(),
            sub: "u1".into(),
            jti: jti.into(),
            iat: 0,
            exp: 1,
            nbf: None,
            sid: Some("s1".into()),
            roles: Some(vec![]),
            client_id: None,
            scope: None,
            amr: vec![],
        }
    }

    #[test]
    fn a_kept_token_is_found_until_the_cache_is_cleared_and_one_of_replaced_keys_is_not_kept() {
        let cache = VerifiedTokens::default();
        cache.insert("t1", claims("j1"), Some(9), || true);
        cache.insert("t2", claims("j2"), None, || false);
        assert_eq!(cache.get("t1"), Some((claims("j1"), Some(9))));
        assert_eq!(cache.get("t2"), None);
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_is_emptied_before_it_takes_another_token() {
        let cache = VerifiedTokens::default();
        for n in 0..VERIFIED_CAPACITY {
            cache.insert(&n.to_string(), claims("j"), None, || true);
        }
        assert_eq!(cache.len(), VERIFIED_CAPACITY);
        cache.insert("one more", claims("j"), None, || true);
        assert_eq!((cache.len(), cache.get("0")), (1, None));
    }
}
