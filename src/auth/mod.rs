//! Authentication: passwords, access tokens, refresh-token rotation, revocation and the
//! request guards that bridge them to Rocket.
//!
//! [`Auth`] is the managed state everything here shares; [`stage`] builds it at ignite (after
//! the database and its migrations) and starts the background tasks at liftoff.

pub mod accounts;
pub mod audit;
pub mod browser;
pub mod client_auth;
pub mod common_passwords;
pub mod delegation;
pub mod first_party;
pub mod guards;
pub mod housekeeping;
pub mod introspect;
pub mod keys;
mod liftoff;
pub mod mfa;
pub mod oidc;
pub mod password;
pub mod permissions;
pub mod recovery;
pub mod registration_limit;
pub mod secrets;
pub mod session;
pub mod startup;
pub mod sync;
pub mod throttle;
pub mod token_client;

use std::sync::Arc;

use rocket::fairing::AdHoc;
use rocket::{Build, Rocket};
use rocket_db_pools::{Database, Pool};

use crate::clock::Clock;
use crate::config::AuthConfig;
use crate::db::{Db, DbPool, Id};
use crate::models::{Ending, SettingStore};
use keys::kek::AtRest;
use keys::ring::KeyRing;
use keys::signing::Signing;
use oidc::keys::IdTokenKeys;
use password::PasswordHasherPool;
use permissions::RoleTable;
use session::chain;
use startup::{StartupError, StorageStep};
use sync::client_cutoffs::ClientCutoffs;
use sync::revocation::RevokedSessions;
use sync::role_changes::RoleChanges;
use sync::wake::SyncWake;

/// Name of the setting that holds the MAC key of refresh tokens (see [`chain`]).
pub(crate) const REFRESH_MAC_KEY: &str = "refresh_mac_key";

/// Everything the auth flows and guards share.
#[derive(Debug)]
pub struct Auth {
    pub config: AuthConfig,
    pub clock: Clock,
    pub keys: Arc<KeyRing>,
    pub signing: Arc<Signing>,
    /// The keys that sign ID tokens (OpenID Connect), whatever signs access tokens.
    pub id_token_keys: Arc<IdTokenKeys>,
    /// Encryption at rest of secrets the service reads back (`auth.key_encryption_key`).
    pub at_rest: AtRest,
    /// Mints and checks refresh tokens.
    pub chain: chain::ChainKey,
    pub hasher: PasswordHasherPool,
    pub revoked: Arc<RevokedSessions>,
    /// Client access tokens refused by `iat` (secret rotations, RFC 7009 revocations).
    pub client_cutoffs: Arc<ClientCutoffs>,
    /// Users whose roles changed within the last access-token lifetime (see [`role_changes`]).
    pub role_changes: Arc<RoleChanges>,
    /// Wakes the feed poller early (PostgreSQL notifications).
    pub sync_wake: Arc<SyncWake>,
    pub roles: Arc<RoleTable>,
    /// Housekeeping passes the background task has finished (the first runs at start-up): lets
    /// a test start once that pass is over rather than race it.
    pub housekeeping_passes: Arc<std::sync::atomic::AtomicU64>,
    /// Mail (`[mail]`): off until [`ignite`] configures it.
    pub mail: Arc<crate::mail::Mailer>,
}

impl Auth {
    /// How a session ended now for `reason` is recorded: its revocation lasts until every
    /// access token it may have been issued has expired.
    pub fn ending<'a>(&self, reason: &'a str) -> Ending<'a> {
        self.ending_at(reason, self.clock.now())
    }

    /// [`ending`](Self::ending) at `now`, for a caller that has read the clock already.
    pub fn ending_at<'a>(&self, reason: &'a str, now: i64) -> Ending<'a> {
        Ending { now, reason, revoke_until: self.revoke_until(now) }
    }

    /// When a change made at `now` stops mattering: every access token issued before it has expired.
    pub fn revoke_until(&self, now: i64) -> i64 {
        now + self.config.access_ttl as i64 + self.config.leeway as i64 + 1
    }

    /// Whether `name` is a permission roles and clients may hold: built in, or an application
    /// permission of `auth.permissions`.
    pub fn permission_exists(&self, name: &str) -> bool {
        permissions::is_known(name) || self.config.permissions.iter().any(|p| p == name)
    }

    /// Every permission there is: built in, then the application's.
    pub fn scopes_supported(&self) -> Vec<String> {
        let builtin = permissions::CATALOGUE.iter().map(|p| p.to_string());
        builtin.chain(self.config.permissions.iter().filter(|p| !permissions::is_known(p)).cloned()).collect()
    }

    /// Makes this instance reject the sessions' access tokens at once (after the commit).
    pub fn revoke_locally(&self, sessions: &[Id], ending: &Ending<'_>) {
        crate::ops::metrics::sessions_ended(ending.reason, sessions.len());
        for id in sessions {
            self.revoked.insert(*id, ending.revoke_until);
        }
        if !sessions.is_empty() {
            // Long polls of the change feed answer at once.
            self.sync_wake.wake();
        }
    }

    /// Builds the state from configuration, loading or creating the signing key. The
    /// key-encryption key is chosen and checked first, and values in clear sealed under it
    /// ([`keys::sealing`]).
    pub async fn build(config: AuthConfig, clock: Clock, pool: &DbPool) -> Result<Auth, StartupError> {
        let at_rest = keys::sealing::prepare(&config, pool).await.map_err(StartupError::Stored)?;
        let signing = Arc::new(Signing::start(&config, &at_rest, pool, clock.now()).await?);
        let keys = signing.ring.clone();
        let id_token_keys = Arc::new(IdTokenKeys::start(&config, &at_rest, pool, clock.now()).await?);
        let chain = chain_key(&at_rest, pool).await?;
        let hasher = PasswordHasherPool::new(&config).await?;
        // The views the poller keeps current; their loaders report a storage error's text.
        let loading = |cause: String| StartupError::Storage { step: StorageStep::LoadViews, cause };
        let revoked = Arc::new(RevokedSessions::new());
        sync::revocation::load_since(&revoked, pool, i64::MIN).await.map_err(loading)?;
        let client_cutoffs = Arc::new(ClientCutoffs::default());
        client_cutoffs.load_since(pool, i64::MIN).await.map_err(loading)?;
        let role_changes = Arc::new(RoleChanges::default());
        sync::role_changes::load_since(&role_changes, pool, i64::MIN).await.map_err(loading)?;
        let roles = Arc::new(RoleTable::default());
        roles.refresh(pool, true).await.map_err(loading)?;
        let mail = Arc::new(crate::mail::Mailer::off(&config, at_rest.clone()));
        Ok(Auth {
            mail,
            config,
            clock,
            keys,
            signing,
            id_token_keys,
            at_rest,
            chain,
            hasher,
            revoked,
            client_cutoffs,
            role_changes,
            sync_wake: Arc::default(),
            housekeeping_passes: Arc::default(),
            roles,
        })
    }
}

/// The refresh-token MAC key, generated once and kept in the database like the signing keys:
/// sealed under the key-encryption key when there is one (one found in clear was sealed by
/// [`keys::sealing::prepare`]), since with the key and a session row one could mint that
/// session's refresh tokens. A value without a format prefix is a clear key from before sealing.
async fn chain_key(at_rest: &AtRest, pool: &DbPool) -> Result<chain::ChainKey, StartupError> {
    let mut conn = pool.get().await.map_err(StartupError::database)?;
    let candidate = at_rest.encrypt_at_rest(secrets::random_mac_key().as_bytes());
    let stored = crate::db::write_tx!(conn, |c| c.setting_or_insert(REFRESH_MAC_KEY, &candidate).await)
        .map_err(StartupError::storage(StorageStep::LoadRefreshKey))?;
    let legacy = !AtRest::is_plain(&stored) && !AtRest::is_sealed(&stored);
    let key = if legacy {
        stored.clone().into_bytes()
    } else {
        at_rest.decrypt_at_rest(&stored).map_err(|e| StartupError::Stored(format!("the refresh-token key: {e}")))?
    };
    Ok(chain::ChainKey::new(&key))
}

async fn ignite(rocket: Rocket<Build>) -> Result<Rocket<Build>, Rocket<Build>> {
    let config = match AuthConfig::from_figment(rocket.figment()) {
        Ok(config) => config,
        Err(e) => {
            rocket::error!("{e}");
            return Err(rocket);
        }
    };
    let mail = match crate::config::mail::MailSettings::from_figment(rocket.figment(), &config.issuer) {
        Ok(mail) if config.require_verified_email && mail.smtp.is_none() => {
            rocket::error!("invalid configuration: auth.require_verified_email: needs mail (mail.smtp_url)");
            return Err(rocket);
        }
        Ok(mail) => mail,
        Err(e) => {
            rocket::error!("{e}");
            return Err(rocket);
        }
    };
    let clock = rocket.state::<Clock>().cloned().unwrap_or_default();
    let Some(db) = Db::fetch(&rocket) else {
        rocket::error!("the database pool is not initialised");
        return Err(rocket);
    };
    match Auth::build(config, clock, db).await {
        Ok(mut auth) => {
            let (name, at_rest) = (auth.config.display_name(), auth.at_rest.clone());
            match crate::mail::Mailer::new(mail, name, at_rest, &auth.config.issuer) {
                Ok(mailer) => auth.mail = Arc::new(mailer),
                Err(e) => {
                    rocket::error!("invalid configuration: {e}");
                    return Err(rocket);
                }
            }
            Ok(rocket.manage(auth))
        }
        Err(e) => {
            rocket::error!("auth: {e}");
            Err(rocket)
        }
    }
}

/// Builds [`Auth`] at ignite; at liftoff starts the storage poller and housekeeping
/// ([`liftoff`]).
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Authentication", |rocket| async {
        rocket
            .attach(AdHoc::try_on_ignite("Auth state", ignite))
            .attach(AdHoc::on_liftoff("Auth background tasks", |rocket| Box::pin(liftoff::start(rocket))))
    })
}
