//! argon2id password hashing off the async workers, with bounded concurrency.
//!
//! Hashes run on tokio's blocking pool behind a semaphore of about one permit per core, so a
//! flood of logins queues here instead of starving token-authenticated requests. An unknown
//! account is verified against a dummy hash so that it costs the same as a wrong password.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

use crate::config::AuthConfig;

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password, or no such account.
    Mismatch,
    /// Right password, stored with the configured parameters.
    Match,
    /// Right password, but stored with other parameters: store a fresh hash.
    MatchNeedsRehash,
}

/// Hashes and verifies passwords with the configured argon2id parameters.
#[derive(Clone)]
pub struct PasswordHasherPool {
    params: Params,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<String>,
}

impl std::fmt::Debug for PasswordHasherPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasherPool").field("params", &self.params).finish_non_exhaustive()
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, String> {
    argon2(params).hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| e.to_string())
}

fn verify_blocking(params: &Params, password: &str, stored: &str) -> Verdict {
    let Ok(parsed) = PasswordHash::new(stored) else { return Verdict::Mismatch };
    if argon2(params).verify_password(password.as_bytes(), &parsed).is_err() {
        return Verdict::Mismatch;
    }
    let current = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() == params.m_cost() && p.t_cost() == params.t_cost() && p.p_cost() == params.p_cost()
        });
    if current {
        Verdict::Match
    } else {
        Verdict::MatchNeedsRehash
    }
}

impl PasswordHasherPool {
    /// Builds the pool and computes its dummy hash (one hash of work, off the async workers).
    pub async fn new(config: &AuthConfig) -> Result<Self, String> {
        let params = Params::new(config.argon2_memory_kib, config.argon2_iterations, config.argon2_parallelism, None)
            .map_err(|e| format!("auth.argon2_memory_kib: {e}"))?;
        let for_dummy = params.clone();
        let dummy_hash = tokio::task::spawn_blocking(move || hash_blocking(&for_dummy, "portcullis-dummy-password"))
            .await
            .map_err(|e| e.to_string())??;
        Ok(PasswordHasherPool {
            params,
            permits: Arc::new(Semaphore::new(config.hash_permits())),
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&Params) -> T + Send + 'static) -> T {
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self.permits.acquire().await;
        let params = self.params.clone();
        match tokio::task::spawn_blocking(move || work(&params)).await {
            Ok(value) => value,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// A PHC-format argon2id hash of `password` with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, String> {
        let password = password.to_owned();
        self.run(move |params| hash_blocking(params, &password)).await
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no account,
    /// so both cases take the same time.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Verdict {
        let password = password.to_owned();
        let (stored, real) = match stored {
            Some(hash) => (hash.to_owned(), true),
            None => (self.dummy_hash.as_str().to_owned(), false),
        };
        let verdict = self.run(move |params| verify_blocking(params, &password, &stored)).await;
        if real {
            verdict
        } else {
            Verdict::Mismatch
        }
    }
}
