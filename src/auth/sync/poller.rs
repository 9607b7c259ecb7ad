//! What other instances changed in storage, brought into this instance's memory: ended sessions
//! ([`super::revocation`]), role changes ([`super::role_changes`]), the role table, the signing
//! keys and the ID-token keys. One task per instance reads them every `revocation_poll_ms`, and at once when
//! [`SyncWake`] is signalled.

use std::sync::Arc;
use std::time::Duration;

use super::client_cutoffs::ClientCutoffs;
use super::revocation::RevokedSessions;
use super::role_changes::RoleChanges;
use super::wake::SyncWake;
use crate::auth::keys::signing::Signing;
use crate::auth::oidc::keys::IdTokenKeys;
use crate::auth::permissions::RoleTable;
use crate::clock::Clock;
use crate::db::DbPool;

/// How far back each poll looks, in seconds: it covers transactions that committed a little
/// after the time they wrote, and clocks a little apart between instances.
const POLL_OVERLAP: i64 = 5;

/// The in-memory views [`run`] keeps current, and what wakes it early.
#[derive(Debug, Clone)]
pub struct Views {
    pub revoked: Arc<RevokedSessions>,
    pub client_cutoffs: Arc<ClientCutoffs>,
    pub role_changes: Arc<RoleChanges>,
    pub roles: Arc<RoleTable>,
    pub wake: Arc<SyncWake>,
    /// Reloaded each round too, so rotations and expiries of retired keys reach this instance.
    pub signing: Arc<Signing>,
    pub id_token_keys: Arc<IdTokenKeys>,
}

/// Polls the feed until `shutdown` resolves, every `interval` and whenever `wake` is signalled.
/// The first read loads every revocation still in the feed, so a new instance knows sessions
/// ended before it started. Each round also reloads the role table when another instance
/// changed a role.
pub async fn run(
    views: Views,
    pool: DbPool,
    clock: Clock,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let Views { revoked: set, client_cutoffs, role_changes, roles, wake, signing, id_token_keys } = views;
    tokio::pin!(shutdown);
    let mut since = i64::MIN;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {}
            _ = wake.notify.notified() => {}
        }
        let started = clock.now();
        let read = match super::revocation::load_since(&set, &pool, since).await {
            Ok(_) => super::role_changes::load_since(&role_changes, &pool, since).await,
            Err(e) => Err(e),
        };
        let read = match read {
            Ok(_) => client_cutoffs.load_since(&pool, since).await,
            Err(e) => Err(e),
        };
        match read {
            Ok(_) => {
                since = started - POLL_OVERLAP;
                crate::ops::metrics::feed_read();
            }
            Err(e) => rocket::warn!("revocation feed poll failed: {e}"),
        }
        set.prune(started);
        role_changes.prune(started);
        client_cutoffs.prune(started);
        if let Err(e) = roles.refresh(&pool, false).await {
            rocket::warn!("role table refresh failed: {e}");
        }
        if let Err(e) = signing.reload(&pool, clock.now()).await {
            rocket::warn!("signing key reload failed: {e}");
        }
        if let Err(e) = id_token_keys.reload(&pool, clock.now()).await {
            rocket::warn!("ID-token key reload failed: {e}");
        }
    }
}
