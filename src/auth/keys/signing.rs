//! Which keys sign and verify access tokens, and their rotation.
//!
//! - `auth.secret` configured: HS256 with it (the JWKS is empty).
//! - `auth.eddsa_keys` configured: those key files (`auth::keys`).
//! - Neither (the default): Ed25519 keys generated into the `signing_keys` table, shared by every
//!   instance. The newest generation signs; `portcullis keys rotate` adds a generation and retires
//!   the previous key, which keeps verifying and stays in the JWKS until every token it signed
//!   has expired ([`retired_key_until`]); then its row, private half included, is deleted.
//!   Instances reload the table every poll interval (in the feed poller,
//!   [`crate::auth::sync::poller::run`]), so a rotation reaches them without a restart.
//!
//! A database from version 1 holds a generated HS256 key (setting `hs256_secret`). It keeps
//! verifying, unpublished, until the tokens signed before the upgrade have expired; the upgrade
//! time is recorded once (setting `hs256_retired_at`) so every instance agrees on it; once those
//! tokens have expired the key itself is deleted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::SigningKey as EdSigningKey;
use rand::RngCore;
use rocket_db_pools::Pool;

use crate::auth::keys::files::{jwk, token_keys};
use crate::auth::keys::kek::AtRest;
use crate::auth::keys::ring::KeyRing;
use crate::auth::keys::tokens::{hs256_kid, SigningKey, TokenKeys, VerifyingKey};
use crate::auth::startup::{StartupError, StorageStep};
use crate::config::AuthConfig;
use crate::db::DbPool;
use crate::models::{SettingStore, SigningKeyStore, StoredKey};

/// The v1 setting holding a generated HS256 key.
const LEGACY_SECRET: &str = "hs256_secret";
/// When this database stopped signing with [`LEGACY_SECRET`].
const LEGACY_RETIRED_AT: &str = "hs256_retired_at";
/// Time allowed for every instance to pick up a rotation (and stop signing with the old key).
const PICKUP_MARGIN: i64 = 60;

/// Until when a key retired at `retired_at` verifies: its last token's expiry, plus leeway and
/// the time instances take to notice the rotation.
pub fn retired_key_until(config: &AuthConfig, retired_at: i64) -> i64 {
    retired_at + config.access_ttl as i64 + config.leeway as i64 + PICKUP_MARGIN
}

/// Whether keys come from the database (nothing configured).
fn generated(config: &AuthConfig) -> bool {
    config.secret.is_none() && config.eddsa_keys.is_empty()
}

/// The v1 generated HS256 key and when it stopped signing.
struct Legacy {
    secret: String,
    retired_at: i64,
}

/// The keys in force, reloaded from the database when they are generated ones.
pub struct Signing {
    pub ring: Arc<KeyRing>,
    config: AuthConfig,
    at_rest: AtRest,
    legacy: Option<Legacy>,
    /// Whether this instance deleted the expired [`LEGACY_SECRET`] (it stays in memory, unused).
    legacy_deleted: AtomicBool,
    /// What the ring was built from, to rebuild only on a change.
    loaded: Mutex<String>,
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing").field("ring", &self.ring).finish_non_exhaustive()
    }
}

impl Signing {
    /// Loads (and, by default, first generates) the signing keys. Errors stop start-up.
    pub async fn start(
        config: &AuthConfig,
        at_rest: &AtRest,
        pool: &DbPool,
        now: i64,
    ) -> Result<Signing, StartupError> {
        let mut conn = pool.get().await.map_err(StartupError::database)?;
        let secret = crate::db::with_conn!(conn, |c| c.setting(LEGACY_SECRET).await)
            .map_err(StartupError::storage(StorageStep::ReadSettings))?;
        let legacy = match (secret, &config.secret) {
            (Some(secret), None) => {
                let now = now.to_string();
                let retired = crate::db::write_tx!(conn, |c| c.setting_or_insert(LEGACY_RETIRED_AT, &now).await)
                    .map_err(StartupError::storage(StorageStep::ReadSettings))?;
                let retired_at = retired
                    .parse::<i64>()
                    .map_err(|_| StartupError::Stored(format!("setting {LEGACY_RETIRED_AT} is corrupt")))?;
                Some(Legacy { secret, retired_at })
            }
            _ => None,
        };
        drop(conn);
        if generated(config) {
            ensure_generated(pool, at_rest, now).await?;
        }
        let initial = match &config.secret {
            Some(secret) => TokenKeys::hs256(secret.expose().as_bytes(), config),
            None => TokenKeys::hs256(&[0; 32], config),
        };
        let signing = Signing {
            ring: Arc::new(KeyRing::new(initial)),
            config: config.clone(),
            at_rest: at_rest.clone(),
            legacy,
            legacy_deleted: AtomicBool::new(false),
            loaded: Mutex::new(String::new()),
        };
        signing.reload(pool, now).await?;
        Ok(signing)
    }

    /// Rebuilds the key ring when what it is built from changed (a rotation, a retired key's
    /// time running out). Returns whether it rebuilt.
    /// Its errors are start-up's (the first load is); the poller logs later ones.
    pub async fn reload(&self, pool: &DbPool, now: i64) -> Result<bool, StartupError> {
        let rows = if generated(&self.config) {
            let mut conn = pool
                .get()
                .await
                .map_err(|e| StartupError::Storage { step: StorageStep::ReadSigningKeys, cause: e.to_string() })?;
            let rows = crate::db::with_conn!(conn, |c| c.signing_keys().await)
                .map_err(StartupError::storage(StorageStep::ReadSigningKeys))?;
            // A retired key whose tokens have all expired is needed neither to verify nor in
            // the JWKS: its private half goes (with the row), so no copy of the database made
            // from now on holds it.
            let span = retired_key_until(&self.config, 0);
            if rows.iter().any(|k| k.retired_at.is_some_and(|r| now >= r + span)) {
                crate::db::write_tx!(conn, |c| c.delete_signing_keys_retired_before(now - span + 1).await)
                    .map_err(StartupError::storage(StorageStep::DeleteRetiredKeys))?;
            }
            rows
        } else {
            vec![]
        };
        let live: Vec<&StoredKey> =
            rows.iter().filter(|k| k.retired_at.is_none_or(|r| now < retired_key_until(&self.config, r))).collect();
        let legacy = self.legacy.as_ref().filter(|l| now < retired_key_until(&self.config, l.retired_at));
        if self.legacy.is_some() && legacy.is_none() && !self.legacy_deleted.swap(true, Ordering::Relaxed) {
            let mut conn = pool.get().await.map_err(StartupError::database)?;
            crate::db::write_tx!(conn, |c| c.delete_setting(LEGACY_SECRET).await)
                .map_err(StartupError::storage(StorageStep::DeleteRetiredKeys))?;
        }
        let fingerprint =
            format!("{}|{:?}", legacy.is_some(), live.iter().map(|k| (&k.kid, k.retired_at)).collect::<Vec<_>>());
        if self.loaded.lock().map(|l| *l == fingerprint).unwrap_or(false) {
            return Ok(false);
        }
        let mut keys = match (&self.config.secret, self.config.eddsa_keys.is_empty()) {
            (_, false) => token_keys(&self.config)?,
            (Some(secret), true) => TokenKeys::hs256(secret.expose().as_bytes(), &self.config),
            (None, true) => self.generated_keys(&live)?,
        };
        if let Some(legacy) = legacy {
            let until = retired_key_until(&self.config, legacy.retired_at);
            let verifier = VerifyingKey::hs256(legacy.secret.as_bytes(), Some(until));
            keys = keys.with_verifier(hs256_kid(legacy.secret.as_bytes()), verifier);
        }
        self.ring.replace(keys);
        if let Ok(mut loaded) = self.loaded.lock() {
            *loaded = fingerprint;
        }
        Ok(true)
    }

    /// Keys from the table: the newest live key signs, all of them verify and are published.
    fn generated_keys(&self, live: &[&StoredKey]) -> Result<TokenKeys, StartupError> {
        let active = live
            .first()
            .filter(|k| k.retired_at.is_none())
            .ok_or_else(|| StartupError::Stored("no active signing key in the database".into()))?;
        let seed = self
            .at_rest
            .decrypt_at_rest(&active.private_key)
            .map_err(|e| StartupError::Stored(format!("signing key {}: {e}", active.kid)))?;
        let corrupt = |kid: &str| StartupError::Stored(format!("signing key {kid} is corrupt"));
        let seed: [u8; 32] = seed.try_into().map_err(|_| corrupt(&active.kid))?;
        let signing = EdSigningKey::from_bytes(&seed);
        if URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes()) != active.public_key {
            let reason = format!("signing key {}: the private and public halves do not match", active.kid);
            return Err(StartupError::Stored(reason));
        }
        let signer = SigningKey::ed25519(active.kid.clone(), signing);
        let mut verifiers = vec![];
        let mut jwks = vec![];
        for key in live {
            let public = URL_SAFE_NO_PAD.decode(&key.public_key).map_err(|_| corrupt(&key.kid))?;
            let public = ed25519_dalek::VerifyingKey::try_from(public.as_slice()).map_err(|_| corrupt(&key.kid))?;
            let until = key.retired_at.map(|r| retired_key_until(&self.config, r));
            verifiers.push((key.kid.clone(), VerifyingKey::ed25519(public, until)));
            jwks.push((jwk(&key.kid, &public), until));
        }
        Ok(TokenKeys::new(signer, verifiers, &self.config).with_jwks(jwks))
    }
}

/// A new Ed25519 key of `generation`, its seed stored as `at_rest` encodes it.
fn new_key(at_rest: &AtRest, generation: i64, now: i64) -> StoredKey {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let signing = EdSigningKey::from_bytes(&seed);
    let public_key = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
    // The kid names the key by a digest prefix of its public half: unique, and reveals nothing.
    let kid = format!("ed25519-{}", &public_key[..16]);
    StoredKey {
        kid,
        generation,
        algorithm: "EdDSA".into(),
        private_key: at_rest.encrypt_at_rest(&seed),
        public_key,
        created_at: now,
        retired_at: None,
    }
}

/// Generates the first key unless there is one (concurrent first starts agree: generation 1 is
/// unique). Keys found in clear were sealed before ([`crate::auth::keys::sealing`]).
async fn ensure_generated(pool: &DbPool, at_rest: &AtRest, now: i64) -> Result<(), StartupError> {
    let mut conn = pool.get().await.map_err(StartupError::database)?;
    let rows = crate::db::with_conn!(conn, |c| c.signing_keys().await)
        .map_err(StartupError::storage(StorageStep::ReadSigningKeys))?;
    if rows.is_empty() {
        let key = new_key(at_rest, 1, now);
        crate::db::write_tx!(conn, |c| c.insert_signing_key(&key).await)
            .map_err(StartupError::storage(StorageStep::StoreSigningKey))?;
    }
    Ok(())
}

/// Makes a newly generated key the active one (`portcullis keys rotate`); the previous key is
/// retired now. Returns the new key's kid. `at_rest` comes from
/// [`crate::auth::keys::sealing::prepare`], which refuses to go on without the key that opens
/// the sealed keys: a rotation never writes a key in clear beside sealed ones.
pub async fn rotate(pool: &DbPool, at_rest: &AtRest, now: i64) -> Result<String, String> {
    ensure_generated(pool, at_rest, now).await?;
    let mut conn = pool.get().await.map_err(|e| format!("databases.main: {e}"))?;
    let rows = crate::db::with_conn!(conn, |c| c.signing_keys().await).map_err(|e| e.to_string())?;
    let generation = rows.first().map_or(1, |k| k.generation + 1);
    let key = new_key(at_rest, generation, now);
    let inserted = crate::db::write_tx!(conn, |c| {
        let inserted = c.insert_signing_key(&key).await?;
        if inserted {
            c.retire_signing_keys_before(generation, now).await?;
        }
        Ok::<_, diesel::result::Error>(inserted)
    })
    .map_err(|e| e.to_string())?;
    if !inserted {
        return Err("another rotation ran at the same time; the key it generated is active".into());
    }
    Ok(key.kid)
}
