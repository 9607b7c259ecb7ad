//! argon2id password hashing off the async workers, with bounded concurrency.
//!
//! Hashes run on tokio's blocking pool, at a lower CPU priority, behind a semaphore of about one
//! permit per core, so a flood of logins queues here instead of starving token-authenticated
//! requests. An unknown
//! account is verified against a dummy hash so that it costs the same as a wrong password.

use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version, ARGON2ID_IDENT};
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::auth::startup::StartupError;
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

/// Lowers the calling thread's CPU priority (nice 10), once per thread.
///
/// Hashing is meant to use whatever CPU is left: at normal priority a login flood on two cores
/// pushed the p99 of token-authenticated requests past 20 ms. Niced, the workers serving those
/// requests win the CPU when they need it, and hashes still use every idle cycle. Only the
/// blocking pool's threads are niced; what else runs there is background work too.
fn lower_priority() {
    thread_local!(static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    LOWERED.with(|lowered| {
        if !lowered.replace(true) {
            // SAFETY: gettid and setpriority only read their arguments. On Linux the nice value
            // is per thread, and PRIO_PROCESS with a thread id names that thread. A failure
            // leaves the priority as it was.
            #[cfg(target_os = "linux")]
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, 10);
            }
        }
    });
}

/// Hashes and verifies passwords with the configured argon2id parameters.
#[derive(Clone)]
pub struct PasswordHasherPool {
    params: Params,
    permits: Arc<Semaphore>,
    areas: Arc<WorkAreas>,
    dummy_hash: Arc<String>,
}

impl std::fmt::Debug for PasswordHasherPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasherPool").field("params", &self.params).finish_non_exhaustive()
    }
}

/// Reusable argon2 work areas (one `m_cost` KiB buffer each), so that hashing does not
/// allocate and free 19 MiB per login: with allocations that large, glibc keeps freed blocks
/// per thread and the blocking pool's many threads would pile them up.
#[derive(Debug)]
struct WorkAreas {
    blocks: usize,
    free: Mutex<Vec<Vec<Block>>>,
}

impl WorkAreas {
    fn with<T>(&self, blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
        let reusable = blocks == self.blocks;
        let pooled = if reusable { self.free.lock().ok().and_then(|mut free| free.pop()) } else { None };
        let mut area = pooled.unwrap_or_else(|| vec![Block::new(); blocks]);
        let result = work(&mut area);
        if reusable {
            if let Ok(mut free) = self.free.lock() {
                free.push(area);
            }
        }
        result
    }
}

fn compute(argon: &Argon2<'_>, areas: &WorkAreas, password: &str, salt: &[u8], out: &mut [u8]) -> Result<(), String> {
    areas
        .with(argon.params().block_count(), |area| {
            argon.hash_password_into_with_memory(password.as_bytes(), salt, out, area)
        })
        .map_err(|e| e.to_string())
}

fn hash_blocking(params: &Params, areas: &WorkAreas, password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone()), areas, password, &salt, &mut out)?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

fn verify_blocking(params: &Params, areas: &WorkAreas, password: &str, stored: &str) -> Verdict {
    let Ok(parsed) = PasswordHash::new(stored) else { return Verdict::Mismatch };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return Verdict::Mismatch };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else { return Verdict::Mismatch };
    let Ok(version) = parsed.version.map(Version::try_from).transpose() else { return Verdict::Mismatch };
    let Ok(stored_params) = Params::try_from(&parsed) else { return Verdict::Mismatch };
    let argon = Argon2::new(algorithm, version.unwrap_or_default(), stored_params.clone());
    let mut out = vec![0u8; expected.len()];
    if compute(&argon, areas, password, salt, &mut out).is_err() {
        return Verdict::Mismatch;
    }
    // `Output` compares in constant time.
    if Output::new(&out).ok().as_ref() != Some(expected) {
        return Verdict::Mismatch;
    }
    let current = algorithm == Algorithm::Argon2id
        && stored_params.m_cost() == params.m_cost()
        && stored_params.t_cost() == params.t_cost()
        && stored_params.p_cost() == params.p_cost();
    if current {
        Verdict::Match
    } else {
        Verdict::MatchNeedsRehash
    }
}

impl PasswordHasherPool {
    /// Builds the pool and computes its dummy hash (one hash of work, off the async workers).
    pub async fn new(config: &AuthConfig) -> Result<Self, StartupError> {
        let params = Params::new(config.argon2_memory_kib, config.argon2_iterations, config.argon2_parallelism, None)
            .map_err(|e| StartupError::config("auth.argon2_memory_kib", e))?;
        let areas = Arc::new(WorkAreas { blocks: params.block_count(), free: Mutex::new(vec![]) });
        let (for_dummy, areas_for_dummy) = (params.clone(), areas.clone());
        let dummy_hash = tokio::task::spawn_blocking(move || {
            hash_blocking(&for_dummy, &areas_for_dummy, "portcullis-dummy-password")
        })
        .await
        .map_err(|e| StartupError::Hasher(e.to_string()))?
        .map_err(StartupError::Hasher)?;
        Ok(PasswordHasherPool {
            params,
            permits: Arc::new(Semaphore::new(config.hash_permits())),
            areas,
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&Params, &WorkAreas) -> T + Send + 'static) -> T {
        // The semaphore is never closed, so acquiring cannot fail.
        let queued = crate::ops::metrics::hash_queued();
        let _permit = self.permits.acquire().await;
        drop(queued);
        let (params, areas) = (self.params.clone(), self.areas.clone());
        match tokio::task::spawn_blocking(move || {
            lower_priority();
            work(&params, &areas)
        })
        .await
        {
            Ok(value) => value,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// A PHC-format argon2id hash of `password` with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, String> {
        let password = password.to_owned();
        self.run(move |params, areas| hash_blocking(params, areas, &password)).await
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no account,
    /// so both cases take the same time.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Verdict {
        let password = password.to_owned();
        let (stored, real) = match stored {
            Some(hash) => (hash.to_owned(), true),
            None => (self.dummy_hash.as_str().to_owned(), false),
        };
        let verdict = self.run(move |params, areas| verify_blocking(params, areas, &password, &stored)).await;
        if real {
            verdict
        } else {
            Verdict::Mismatch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn hashing_threads_run_at_a_lower_priority_and_only_they_do() {
        // SAFETY: getpriority only reads its arguments.
        let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t) };
        let before = nice();
        let inside = std::thread::spawn(move || {
            lower_priority();
            lower_priority();
            nice()
        })
        .join()
        .unwrap();
        assert_eq!(inside, (before + 10).min(19));
        assert_eq!(nice(), before, "the calling thread keeps its priority");
    }

    fn areas(params: &Params) -> WorkAreas {
        WorkAreas { blocks: params.block_count(), free: Mutex::new(vec![]) }
    }

    #[test]
    fn hashes_are_standard_phc_strings_that_verify_and_reuse_one_work_area() {
        let params = Params::new(256, 1, 1, None).unwrap();
        let areas = areas(&params);
        let hash = hash_blocking(&params, &areas, "correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{hash}");
        assert_eq!(verify_blocking(&params, &areas, "correct horse", &hash), Verdict::Match);
        assert_eq!(verify_blocking(&params, &areas, "wrong horse", &hash), Verdict::Mismatch);
        assert_eq!(areas.free.lock().unwrap().len(), 1);
        // The argon2 crate's own verifier agrees with ours.
        use argon2::PasswordVerifier;
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
    }

    #[test]
    fn a_hash_with_other_parameters_verifies_and_asks_for_a_rehash() {
        let old = Params::new(128, 1, 1, None).unwrap();
        let hash = hash_blocking(&old, &areas(&old), "correct horse").unwrap();
        let current = Params::new(256, 2, 1, None).unwrap();
        assert_eq!(verify_blocking(&current, &areas(&current), "correct horse", &hash), Verdict::MatchNeedsRehash);
        assert_eq!(verify_blocking(&current, &areas(&current), "not it", &hash), Verdict::Mismatch);
    }
}
