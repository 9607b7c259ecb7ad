//! The signing and verifying keys in force, swapped as a whole when keys rotate, and the cache of
//! verified tokens (the verification core's [`VerifiedTokens`], the one resource servers use:
//! time is checked on every call, the cache is emptied when the keys change).

use std::sync::{Arc, RwLock};

use portcullis_rocket::core::VerifiedTokens;

use crate::auth::keys::tokens::{AccessClaims, TokenKeys};
use crate::db::Id;

/// The current [`TokenKeys`], replaced when keys rotate (see `auth::signing`). Readers take a
/// cheap `Arc` clone under a read lock; the guard's hot path holds the lock only for that.
pub struct KeyRing {
    current: RwLock<Arc<TokenKeys>>,
    verified: VerifiedTokens<Id>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.current().fmt(f)
    }
}

impl KeyRing {
    pub fn new(keys: TokenKeys) -> KeyRing {
        KeyRing { current: RwLock::new(Arc::new(keys)), verified: VerifiedTokens::default() }
    }

    /// The keys in force now.
    pub fn current(&self) -> Arc<TokenKeys> {
        match self.current.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `keys` in force.
    pub fn replace(&self, keys: TokenKeys) {
        let keys = Arc::new(keys);
        match self.current.write() {
            Ok(mut current) => *current = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
        // After the keys' lock is released: the cache's lock comes first (`VerifiedTokens::insert`).
        self.verified.clear();
    }

    /// [`TokenKeys::verify`], with the signature check of a token seen before skipped.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, &'static str> {
        let keys = self.current();
        if let Some((claims, until)) = self.verified.get(token) {
            keys.check_time(&claims, until, now)?;
            return Ok(claims);
        }
        let (claims, until) = keys.verify_signed_with(token)?;
        keys.check_time(&claims, until, now)?;
        self.verified.insert(token, claims.clone(), until, || Arc::ptr_eq(&self.current(), &keys));
        Ok(claims)
    }

    pub fn verify_signed(&self, token: &str) -> Result<AccessClaims, &'static str> {
        self.current().verify_signed(token)
    }

    pub fn sign(&self, claims: &AccessClaims) -> Result<String, String> {
        self.current().sign(claims)
    }

    pub fn ttl(&self) -> i64 {
        self.current().ttl()
    }

    pub fn jwks(&self, now: i64) -> serde_json::Value {
        self.current().jwks(now)
    }
}
