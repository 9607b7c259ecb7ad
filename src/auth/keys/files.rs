//! Signing keys from configuration: Ed25519 (EdDSA) key pairs read from PEM files. Generated
//! keys kept in the database are `auth::signing`'s.
//!
//! With EdDSA keys configured, tokens are signed with the active key and verified against every
//! configured key (and the HS256 key), so keys rotate without logging anyone out: add the new
//! key, make it active, and drop the old one once its tokens have expired. The public keys are
//! published as a JWKS (RFC 7517, OKP keys of RFC 8037).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey as EdSigningKey, VerifyingKey as EdVerifyingKey};
use rand::RngCore;
use serde_json::{json, Value};

use crate::auth::keys::tokens::{hs256_kid, SigningKey, TokenKeys, VerifyingKey};
use crate::auth::startup::StartupError;
use crate::config::AuthConfig;

pub use crate::config::EdKeyConfig;

/// A loaded Ed25519 key: its verifier, and its signer when the private half is known.
struct EdKey {
    kid: String,
    public: EdVerifyingKey,
    private: Option<EdSigningKey>,
}

fn load(index: usize, entry: &EdKeyConfig) -> Result<EdKey, StartupError> {
    let key = |field: &str| format!("auth.eddsa_keys[{index}].{field}");
    let read = |field: &str, path: &str| {
        std::fs::read_to_string(path)
            .map_err(|e| StartupError::config(key(field), format!("cannot read {path:?}: {e}")))
    };
    match (&entry.private_key, &entry.public_key) {
        (Some(path), _) => {
            let pem = read("private_key", path)?;
            let signing = EdSigningKey::from_pkcs8_pem(&pem).map_err(|e| {
                StartupError::config(key("private_key"), format!("not a PKCS#8 Ed25519 private key: {e}"))
            })?;
            Ok(EdKey { kid: entry.kid.clone(), public: signing.verifying_key(), private: Some(signing) })
        }
        (None, Some(path)) => {
            let pem = read("public_key", path)?;
            let public = EdVerifyingKey::from_public_key_pem(&pem)
                .map_err(|e| StartupError::config(key("public_key"), format!("not an Ed25519 public key: {e}")))?;
            Ok(EdKey { kid: entry.kid.clone(), public, private: None })
        }
        (None, None) => Err(StartupError::config(key("kid"), "give private_key or public_key")),
    }
}

/// The JWK of an Ed25519 public key.
pub(crate) fn jwk(kid: &str, public: &EdVerifyingKey) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(public.as_bytes()), "kid": kid, "alg": "EdDSA", "use": "sig"})
}

/// Builds the key set from `auth.eddsa_keys` (the configured HS256 `secret`, if any, still
/// verifies).
pub fn token_keys(config: &AuthConfig) -> Result<TokenKeys, StartupError> {
    let keys = config.eddsa_keys.iter().enumerate().map(|(i, e)| load(i, e)).collect::<Result<Vec<_>, _>>()?;
    let active_kid = config.active_kid.clone().unwrap_or_else(|| keys[0].kid.clone());
    let active = keys.iter().find(|k| k.kid == active_kid).ok_or_else(|| {
        StartupError::config("auth.active_kid", format!("no key with kid {active_kid:?} in auth.eddsa_keys"))
    })?;
    let private = active.private.clone().ok_or_else(|| {
        StartupError::config("auth.active_kid", format!("key {active_kid:?} has no private_key to sign with"))
    })?;
    let signer = SigningKey::ed25519(active_kid, private);
    let mut verifiers: Vec<(String, VerifyingKey)> =
        keys.iter().map(|k| (k.kid.clone(), VerifyingKey::ed25519(k.public, None))).collect();
    if let Some(secret) = &config.secret {
        let secret = secret.expose().as_bytes();
        verifiers.push((hs256_kid(secret), VerifyingKey::hs256(secret, None)));
    }
    let jwks = keys.iter().map(|k| (jwk(&k.kid, &k.public), None)).collect();
    Ok(TokenKeys::new(signer, verifiers, config).with_jwks(jwks))
}

/// Writes a new Ed25519 key pair as `<dir>/<kid>.pem` (PKCS#8, private, mode 0600) and
/// `<dir>/<kid>.pub.pem`; returns both paths.
pub fn generate(dir: &Path, kid: &str) -> Result<(String, String), String> {
    if kid.is_empty() || !kid.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err("--kid: use letters, digits, '-', '_' and '.'".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let signing = EdSigningKey::from_bytes(&seed);
    let private_pem = signing.to_pkcs8_pem(Default::default()).map_err(|e| e.to_string())?;
    let public_pem = signing.verifying_key().to_public_key_pem(Default::default()).map_err(|e| e.to_string())?;
    let private_path = dir.join(format!("{kid}.pem"));
    let public_path = dir.join(format!("{kid}.pub.pem"));
    if private_path.exists() {
        return Err(format!("{private_path:?} exists; choose another --kid"));
    }
    write_private(&private_path, private_pem.as_bytes())?;
    std::fs::write(&public_path, public_pem.as_bytes()).map_err(|e| format!("cannot write {public_path:?}: {e}"))?;
    Ok((private_path.display().to_string(), public_path.display().to_string()))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| format!("cannot write {path:?}: {e}"))?;
    file.write_all(bytes).map_err(|e| format!("cannot write {path:?}: {e}"))
}
