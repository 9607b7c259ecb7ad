//! The keys that sign ID tokens, kept in the database like the generated access-token key
//! ([`crate::auth::keys::signing`]) but in a table of their own (`id_token_keys`), so that they
//! exist whatever signs access tokens — `auth.secret` (HS256) and `auth.eddsa_keys` included.
//!
//! Each generation is one RSA key of [`RSA_BITS`] bits (RS256, the algorithm every OpenID
//! provider must offer, OpenID Connect Core §15.1) and one dedicated Ed25519 key (EdDSA, for
//! clients whose `id_token_signed_response_alg` asks for it). A dedicated Ed25519 key rather than
//! the access-token key: that one does not exist under HS256 or may live in files, and an ID
//! token and an access token are never signed by the same key. The first generation is made on
//! first start (off the request path: an RSA key takes a moment), `portcullis keys rotate` adds the
//! next and retires the previous one, which stays in the JWKS until every ID token it signed has
//! expired ([`retired_key_until`]: ID tokens live `access_ttl`); then its row is deleted. Private
//! halves are sealed under the key-encryption key like every key ([`crate::auth::keys::sealing`]).

use std::sync::{Arc, Mutex, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use rocket_db_pools::Pool;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::key_set::{published_jwk, IdSigner, IdTokenAlg, IdTokenKeySet};
use crate::auth::keys::kek::AtRest;
use crate::auth::keys::signing::retired_key_until;
use crate::auth::startup::{StartupError, StorageStep};
use crate::config::AuthConfig;
use crate::db::DbPool;
use crate::models::{IdTokenKeyStore, StoredIdTokenKey};

/// The size of generated RSA keys: 2048 bits, the floor of RFC 7518 §3.3.
pub const RSA_BITS: usize = 2048;

/// The ID-token keys in force, reloaded from the database (the poller calls [`reload`]).
///
/// [`reload`]: IdTokenKeys::reload
pub struct IdTokenKeys {
    current: RwLock<Arc<IdTokenKeySet>>,
    config: AuthConfig,
    at_rest: AtRest,
    /// What the set was built from, to rebuild only on a change.
    loaded: Mutex<String>,
}

impl std::fmt::Debug for IdTokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.current().fmt(f)
    }
}

impl IdTokenKeys {
    /// Loads (on first start, first generates) the ID-token keys. Errors stop start-up.
    pub async fn start(config: &AuthConfig, at_rest: &AtRest, pool: &DbPool, now: i64) -> Result<Self, StartupError> {
        ensure_generated(pool, at_rest, now).await?;
        let keys = IdTokenKeys {
            current: RwLock::new(Arc::new(IdTokenKeySet::empty())),
            config: config.clone(),
            at_rest: at_rest.clone(),
            loaded: Mutex::new(String::new()),
        };
        keys.reload(pool, now).await?;
        Ok(keys)
    }

    /// The keys in force now.
    pub fn current(&self) -> Arc<IdTokenKeySet> {
        match self.current.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rebuilds the set when the table changed (a rotation, a retired key's time running out);
    /// deletes the keys no ID token can need any more. Returns whether it rebuilt.
    pub async fn reload(&self, pool: &DbPool, now: i64) -> Result<bool, StartupError> {
        let mut conn = pool.get().await.map_err(StartupError::database)?;
        let rows = crate::db::with_conn!(conn, |c| c.id_token_keys().await)
            .map_err(StartupError::storage(StorageStep::ReadSigningKeys))?;
        let span = retired_key_until(&self.config, 0);
        if rows.iter().any(|k| k.retired_at.is_some_and(|r| now >= r + span)) {
            crate::db::write_tx!(conn, |c| c.delete_id_token_keys_retired_before(now - span + 1).await)
                .map_err(StartupError::storage(StorageStep::DeleteRetiredKeys))?;
        }
        let live: Vec<&StoredIdTokenKey> =
            rows.iter().filter(|k| k.retired_at.is_none_or(|r| now < retired_key_until(&self.config, r))).collect();
        let fingerprint = format!("{:?}", live.iter().map(|k| (&k.kid, k.retired_at)).collect::<Vec<_>>());
        if self.loaded.lock().map(|l| *l == fingerprint).unwrap_or(false) {
            return Ok(false);
        }
        let set = self.build(&live)?;
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        if let Ok(mut loaded) = self.loaded.lock() {
            *loaded = fingerprint;
        }
        Ok(true)
    }

    /// The newest unretired key of each algorithm signs; every live key is published.
    fn build(&self, live: &[&StoredIdTokenKey]) -> Result<IdTokenKeySet, StartupError> {
        let mut signers = vec![];
        let mut jwks = vec![];
        for key in live {
            let corrupt = || StartupError::Stored(format!("ID-token key {} is corrupt", key.kid));
            let alg = IdTokenAlg::parse(&key.algorithm).ok_or_else(corrupt)?;
            let public: Value = serde_json::from_str(&key.public_jwk).map_err(|_| corrupt())?;
            let until = key.retired_at.map(|r| retired_key_until(&self.config, r));
            jwks.push((published_jwk(&public, &key.kid, alg), until));
            if key.retired_at.is_none() && !signers.iter().any(|(_, s): &(String, IdSigner)| same_alg(s, alg)) {
                let private = self
                    .at_rest
                    .decrypt_at_rest(&key.private_key)
                    .map_err(|e| StartupError::Stored(format!("ID-token key {}: {e}", key.kid)))?;
                let (signer, derived) = open_private(alg, &private).ok_or_else(corrupt)?;
                if derived != public {
                    let reason = format!("ID-token key {}: the private and public halves do not match", key.kid);
                    return Err(StartupError::Stored(reason));
                }
                signers.push((key.kid.clone(), signer));
            }
        }
        if IdTokenAlg::ALL.iter().any(|alg| !signers.iter().any(|(_, s)| same_alg(s, *alg))) {
            return Err(StartupError::Stored("no active ID-token key of each algorithm in the database".into()));
        }
        Ok(IdTokenKeySet::new(signers, jwks))
    }
}

fn same_alg(signer: &IdSigner, alg: IdTokenAlg) -> bool {
    matches!((signer, alg), (IdSigner::Rs256(_), IdTokenAlg::Rs256) | (IdSigner::EdDsa(_), IdTokenAlg::EdDsa))
}

/// The public JWK (without `kid`, `alg`, `use`) of an RSA key.
fn rsa_public_jwk(key: &RsaPrivateKey) -> Value {
    json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()), "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())})
}

/// The public JWK of an Ed25519 key (RFC 8037 §2).
fn ed25519_public_jwk(key: &ed25519_dalek::SigningKey) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())})
}

/// The signer of a stored private key (PKCS#1 DER, or an Ed25519 seed) and its public JWK; `None`
/// when the key does not parse (AWS-LC also refuses RSA keys it deems weak or malformed).
fn open_private(alg: IdTokenAlg, private: &[u8]) -> Option<(IdSigner, Value)> {
    match alg {
        IdTokenAlg::Rs256 => {
            // AWS-LC takes the PKCS#1 DER as stored (RFC 8017 Appendix A.1.2); rsa still derives
            // the public JWK, as at generation, so the published key stays byte for byte the same.
            let key = RsaPrivateKey::from_pkcs1_der(private).ok()?;
            let public = rsa_public_jwk(&key);
            let signer = aws_lc_rs::signature::RsaKeyPair::from_der(private).ok()?;
            Some((IdSigner::Rs256(Box::new(signer)), public))
        }
        IdTokenAlg::EdDsa => {
            let seed: [u8; 32] = private.try_into().ok()?;
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            let public = ed25519_public_jwk(&key);
            Some((IdSigner::EdDsa(Box::new(key)), public))
        }
    }
}

/// The kid of a public JWK: its algorithm and a digest prefix of the JWK (unique, reveals nothing).
fn kid_of(alg: IdTokenAlg, public: &Value) -> String {
    let digest = Sha256::digest(public.to_string().as_bytes());
    format!("id-{}-{}", alg.as_str().to_ascii_lowercase(), &URL_SAFE_NO_PAD.encode(digest)[..16])
}

/// A new generation: an RSA key (generated on a blocking thread: it takes a while) and an
/// Ed25519 key, their private halves stored as `at_rest` encodes them. RS256 first, the order
/// every writer inserts in.
pub async fn new_generation(at_rest: &AtRest, generation: i64, now: i64) -> Result<Vec<StoredIdTokenKey>, String> {
    let rsa = tokio::task::spawn_blocking(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS))
        .await
        .map_err(|e| format!("cannot generate the RSA ID-token key: {e}"))?
        .map_err(|e| format!("cannot generate the RSA ID-token key: {e}"))?;
    let der = rsa.to_pkcs1_der().map_err(|e| format!("cannot encode the RSA ID-token key: {e}"))?;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let ed = ed25519_dalek::SigningKey::from_bytes(&seed);
    let stored = |alg: IdTokenAlg, public: Value, private: &[u8]| StoredIdTokenKey {
        kid: kid_of(alg, &public),
        generation,
        algorithm: alg.as_str().into(),
        private_key: at_rest.encrypt_at_rest(private),
        public_jwk: public.to_string(),
        created_at: now,
        retired_at: None,
    };
    Ok(vec![
        stored(IdTokenAlg::Rs256, rsa_public_jwk(&rsa), der.as_bytes()),
        stored(IdTokenAlg::EdDsa, ed25519_public_jwk(&ed), &seed),
    ])
}

/// Generates the first generation unless there is one (concurrent first starts agree: the
/// generation is unique per algorithm).
pub async fn ensure_generated(pool: &DbPool, at_rest: &AtRest, now: i64) -> Result<(), StartupError> {
    let mut conn = pool.get().await.map_err(StartupError::database)?;
    let rows = crate::db::with_conn!(conn, |c| c.id_token_keys().await)
        .map_err(StartupError::storage(StorageStep::ReadSigningKeys))?;
    if rows.is_empty() {
        // No connection is held while the RSA key is generated.
        drop(conn);
        let keys = new_generation(at_rest, 1, now).await.map_err(StartupError::Stored)?;
        let mut conn = pool.get().await.map_err(StartupError::database)?;
        crate::db::write_tx!(conn, |c| c.insert_id_token_keys(&keys).await)
            .map_err(StartupError::storage(StorageStep::StoreSigningKey))?;
    }
    Ok(())
}

/// Makes a newly generated generation the active one (`portcullis keys rotate`); the previous
/// one is retired now. Returns the new kids. `at_rest` comes from
/// [`crate::auth::keys::sealing::prepare`], so nothing is written in clear beside sealed keys.
pub async fn rotate(pool: &DbPool, at_rest: &AtRest, now: i64) -> Result<Vec<String>, String> {
    ensure_generated(pool, at_rest, now).await?;
    let mut conn = pool.get().await.map_err(|e| format!("databases.main: {e}"))?;
    let rows = crate::db::with_conn!(conn, |c| c.id_token_keys().await).map_err(|e| e.to_string())?;
    drop(conn);
    let generation = rows.first().map_or(1, |k| k.generation + 1);
    let keys = new_generation(at_rest, generation, now).await?;
    let mut conn = pool.get().await.map_err(|e| format!("databases.main: {e}"))?;
    let inserted = crate::db::write_tx!(conn, |c| {
        let inserted = c.insert_id_token_keys(&keys).await?;
        if inserted {
            c.retire_id_token_keys_before(generation, now).await?;
        }
        Ok::<_, diesel::result::Error>(inserted)
    })
    .map_err(|e| e.to_string())?;
    if !inserted {
        return Err("another rotation ran at the same time; the ID-token keys it generated are active".into());
    }
    Ok(keys.into_iter().map(|k| k.kid).collect())
}

/// A key set of one freshly generated generation, held in memory only (unit tests).
#[cfg(test)]
pub(crate) async fn generated_for_tests(config: &AuthConfig) -> IdTokenKeySet {
    let at_rest = AtRest::new(None);
    let rows = new_generation(&at_rest, 1, 0).await.expect("a generation");
    let keys = IdTokenKeys {
        current: RwLock::new(Arc::new(IdTokenKeySet::empty())),
        config: config.clone(),
        at_rest,
        loaded: Mutex::new(String::new()),
    };
    keys.build(&rows.iter().collect::<Vec<_>>()).expect("the generation loads")
}
