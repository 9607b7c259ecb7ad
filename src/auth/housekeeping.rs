//! Housekeeping: deletes what can no longer matter, so tables do not grow without bound.
//!
//! - refresh tokens past their expiry (they can no longer be exchanged);
//! - sessions ended, or expired, more than `retention` ago (their tokens go with them);
//! - revocation-feed and role-change-feed rows once every access token they concern has expired;
//! - throttle counters whose window is long over and that lock nothing.

use std::time::Duration;

use rocket_db_pools::Pool;

use crate::clock::Clock;
use crate::config::AuthConfig;
use crate::db::DbPool;
use crate::models::{RefreshTokenStore, RevocationStore, RoleChangeStore, SessionStore, ThrottleStore};

/// How many rows one pass deleted, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub refresh_tokens: usize,
    pub sessions: usize,
    pub revocations: usize,
    pub throttles: usize,
}

/// One pass of housekeeping at the clock's current time.
pub async fn run_once(pool: &DbPool, clock: &Clock, config: &AuthConfig) -> Result<Swept, String> {
    let now = clock.now();
    let retention = config.retention as i64;
    let refresh_ttl = config.refresh_ttl as i64;
    let throttle_window = config.throttle_account_window.max(config.throttle_address_window) as i64;
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    crate::write_tx!(conn, |c| {
        Ok::<_, diesel::result::Error>(Swept {
            refresh_tokens: c.delete_dead_refresh_tokens(now).await?,
            sessions: c.delete_old_sessions(now - retention, refresh_ttl).await?,
            revocations: c.delete_expired_revocations(now).await? + c.delete_expired_role_changes(now).await?,
            throttles: c.delete_stale_throttles(now - throttle_window, now).await?,
        })
    })
    .map_err(|e| e.to_string())
}

/// Runs [`run_once`] every `housekeeping_interval` seconds until `shutdown` resolves.
pub async fn run_periodically(
    pool: DbPool,
    clock: Clock,
    config: AuthConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut ticker = tokio::time::interval(Duration::from_secs(config.housekeeping_interval));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        match run_once(&pool, &clock, &config).await {
            Ok(swept) => rocket::debug!("housekeeping: {swept:?}"),
            Err(e) => rocket::warn!("housekeeping failed: {e}"),
        }
    }
}
