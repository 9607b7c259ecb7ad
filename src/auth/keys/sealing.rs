//! Keys at rest at start-up (and before `portcullis keys rotate` writes a key): which
//! key-encryption key is in force, a check that it opens every sealed value, then the sealing of
//! values found in clear (from before a key was configured) in one transaction. The check comes
//! before any write, so a mistyped key changes nothing; and nothing is written in clear while
//! sealed values exist, so a forgotten key cannot leave a key in clear beside sealed ones. The
//! rules a deployment gets are in docs/services.md, "Keys at rest".
//!
//! The secrets: the private halves of generated signing keys and ID-token keys, the
//! refresh-token MAC key and the TOTP secrets.

use std::path::PathBuf;

use rocket_db_pools::Pool;

use crate::auth::keys::kek::AtRest;
use crate::auth::keys::kek_file;
use crate::auth::mfa::secret as totp_secret;
use crate::auth::REFRESH_MAC_KEY;
use crate::config::AuthConfig;
use crate::db::{DbPool, Id};
use crate::models::{IdTokenKeyStore, MfaStore, SettingStore, SigningKeyStore};

/// Where a stored secret lives.
#[derive(Debug, Clone)]
enum Place {
    RefreshKey,
    SigningKey(String),
    IdTokenKey(String),
    Totp(Id),
}

impl Place {
    fn describe(&self) -> String {
        match self {
            Place::RefreshKey => "refresh-token key".into(),
            Place::SigningKey(kid) => format!("signing key {kid}"),
            Place::IdTokenKey(kid) => format!("ID-token key {kid}"),
            Place::Totp(user) => format!("TOTP secret of user {user}"),
        }
    }

    /// The plaintext of a value stored in clear (each place has its own clear form).
    fn open_clear(&self, stored: &str) -> Result<Vec<u8>, String> {
        let clear = AtRest::new(None);
        match self {
            // Before the format prefixes, the refresh-token key was stored bare.
            Place::RefreshKey if !AtRest::is_plain(stored) => Ok(stored.as_bytes().to_vec()),
            Place::Totp(_) => totp_secret::open(&clear, stored),
            _ => clear.decrypt_at_rest(stored),
        }
    }
}

/// Which key seals, named the way an operator configures it.
enum Source {
    Configured,
    File(PathBuf),
    Nothing,
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::Configured => "auth.key_encryption_key".into(),
            Source::File(path) => {
                format!("the key file {} (used since auth.key_encryption_key is not configured)", path.display())
            }
            Source::Nothing => "auth.key_encryption_key".into(),
        }
    }
}

/// Every stored secret and where it is.
async fn stored_secrets(pool: &DbPool) -> Result<Vec<(Place, String)>, String> {
    let mut conn = pool.get().await.map_err(|e| format!("databases.main: {e}"))?;
    let (refresh, keys, id_keys, totp) = crate::db::with_conn!(conn, |c| async {
        let refresh = c.setting(REFRESH_MAC_KEY).await?;
        let keys = c.signing_keys().await?;
        let id_keys = c.id_token_keys().await?;
        let totp = c.totp_secrets().await?;
        Ok::<_, diesel::result::Error>((refresh, keys, id_keys, totp))
    }
    .await)
    .map_err(|e| format!("cannot read the stored keys: {e}"))?;
    let refresh = refresh.map(|value| (Place::RefreshKey, value));
    let keys = keys.into_iter().map(|k| (Place::SigningKey(k.kid), k.private_key));
    let id_keys = id_keys.into_iter().map(|k| (Place::IdTokenKey(k.kid), k.private_key));
    let totp = totp.into_iter().map(|(user, secret)| (Place::Totp(user), secret));
    Ok(refresh.into_iter().chain(keys).chain(id_keys).chain(totp).collect())
}

/// The key in force for the database of `pool`, checked against every sealed value; values in
/// clear are sealed under it. Errors stop start-up (and `keys rotate`) having written nothing.
pub async fn prepare(config: &AuthConfig, pool: &DbPool) -> Result<AtRest, String> {
    let stored = stored_secrets(pool).await?;
    let any_sealed = stored.iter().any(|(_, value)| AtRest::is_sealed(value));
    let key_file = pool.sqlite_path().and_then(kek_file::path_for);
    let (source, key) = match (&config.key_encryption_key, key_file) {
        (Some(key), _) => (Source::Configured, Some(key.clone())),
        (None, Some(path)) => match kek_file::read(&path)? {
            Some(key) => (Source::File(path), Some(key)),
            None if any_sealed => {
                return Err(format!(
                    "the database holds sealed keys but its key file {} is missing and auth.key_encryption_key is \
                     not configured: restore the file, or configure the key they were sealed with",
                    path.display()
                ))
            }
            None => {
                let key = kek_file::create(&path)?;
                (Source::File(path), Some(key))
            }
        },
        (None, None) if any_sealed => {
            return Err("the database holds sealed keys but auth.key_encryption_key is not configured; configure \
                        the key they were sealed with"
                .into())
        }
        (None, None) => (Source::Nothing, None),
    };
    let at_rest = AtRest::new(key.as_ref());
    if !at_rest.is_encrypting() {
        if pool.sqlite_path().is_none() {
            rocket::warn!(
                "auth.key_encryption_key is not configured: signing keys, the refresh-token key and TOTP secrets \
                 are stored in clear, so anyone who can read the database can mint tokens (docs/services.md, Keys at rest)"
            );
        }
        return Ok(at_rest);
    }
    for (place, value) in stored.iter().filter(|(_, value)| AtRest::is_sealed(value)) {
        if at_rest.decrypt_at_rest(value).is_err() {
            return Err(format!(
                "{} does not open the stored {}: it is not the key the database was sealed with (or the value was \
                 altered); nothing was changed",
                source.name(),
                place.describe()
            ));
        }
    }
    let mut reseal = vec![];
    for (place, value) in stored.into_iter().filter(|(_, value)| !AtRest::is_sealed(value)) {
        let plaintext = place.open_clear(&value).map_err(|e| format!("the stored {}: {e}", place.describe()))?;
        reseal.push((place, value, at_rest.encrypt_at_rest(&plaintext)));
    }
    if !reseal.is_empty() {
        seal_all(pool, &reseal).await?;
    }
    Ok(at_rest)
}

/// Replaces each clear value by its sealed form in one transaction; a value another instance
/// sealed meanwhile no longer matches and is left alone.
async fn seal_all(pool: &DbPool, reseal: &[(Place, String, String)]) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| format!("databases.main: {e}"))?;
    crate::db::write_tx!(conn, |c| {
        for (place, clear, sealed) in reseal {
            match place {
                Place::RefreshKey => c.replace_setting(REFRESH_MAC_KEY, clear, sealed).await?,
                Place::SigningKey(kid) => _ = c.reseal_private_key(kid, clear, sealed).await?,
                Place::IdTokenKey(kid) => _ = c.reseal_id_token_key(kid, clear, sealed).await?,
                Place::Totp(user) => _ = c.reseal_totp_secret(*user, clear, sealed).await?,
            }
        }
        Ok::<_, diesel::result::Error>(())
    })
    .map_err(|e| format!("cannot seal the keys stored in clear: {e}"))
}
