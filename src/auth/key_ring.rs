//! The signing and verifying keys in force, swapped as a whole when keys rotate.

use std::sync::{Arc, RwLock};

use super::tokens::{AccessClaims, TokenKeys};

/// The current [`TokenKeys`], replaced when keys rotate (see `auth::signing`). Readers take a
/// cheap `Arc` clone under a read lock; the guard's hot path holds the lock only for that.
pub struct KeyRing {
    current: RwLock<Arc<TokenKeys>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.current().fmt(f)
    }
}

impl KeyRing {
    pub fn new(keys: TokenKeys) -> KeyRing {
        KeyRing { current: RwLock::new(Arc::new(keys)) }
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
    }

    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, &'static str> {
        self.current().verify(token, now)
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
