//! The in-memory set of ended sessions that bearer checks consult without touching the database.
//!
//! Sessions ended on this instance are added at once ([`RevokedSessions::insert`]); those ended
//! on other instances arrive through [`poll_feed`], which reads the `revoked_sessions` feed every
//! `revocation_poll_ms`, and at once when [`FeedWake`] is signalled (on PostgreSQL by a
//! `NOTIFY` from the feed's triggers, see [`crate::db::notify`]). An entry is dropped once every access token of its session has
//! expired, so the set holds at most the sessions ended within one access-token lifetime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use rocket_db_pools::Pool;

use super::permissions::RoleTable;
use super::role_changes::RoleChanges;
use crate::clock::Clock;
use crate::db::{DbPool, Id};
use crate::models::RevocationStore;

/// Ended sessions whose access tokens may still be unexpired, with the time they can be forgotten.
#[derive(Debug, Default)]
pub struct RevokedSessions {
    entries: RwLock<HashMap<Id, i64>>,
}

/// Wakes the feed poller early. A signal carries no data: the poller reads every feed table as
/// on a tick, so a new feed table needs nothing here. Signals while a poll runs coalesce into
/// one more poll.
#[derive(Debug)]
pub struct FeedWake {
    notify: tokio::sync::Notify,
    signals: AtomicU64,
    /// Bumped with every signal, for any number of waiters (the change feed's long polls).
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for FeedWake {
    fn default() -> Self {
        FeedWake { notify: Default::default(), signals: Default::default(), changes: tokio::sync::watch::channel(0).0 }
    }
}

impl FeedWake {
    /// Asks the poller to read the feed now, and wakes every long poll of the change feed.
    pub fn wake(&self) {
        self.signals.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every later [`wake`](Self::wake).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// How many change-feed long polls are waiting now (for tests and diagnostics).
    pub fn waiting(&self) -> usize {
        self.changes.receiver_count()
    }

    /// How many times the poller was woken early (for tests and diagnostics).
    pub fn signals(&self) -> u64 {
        self.signals.load(Ordering::Relaxed)
    }
}

/// How far back each poll looks, in seconds: it covers transactions that committed a little
/// after the time they wrote, and clocks a little apart between instances.
const POLL_OVERLAP: i64 = 5;

impl RevokedSessions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether access tokens of this session must be rejected.
    pub fn contains(&self, session: Id) -> bool {
        self.entries.read().map(|e| e.contains_key(&session)).unwrap_or(true)
    }

    /// Records that `session` ended; tokens of it expire by `until`.
    pub fn insert(&self, session: Id, until: i64) {
        if let Ok(mut entries) = self.entries.write() {
            let slot = entries.entry(session).or_insert(until);
            *slot = (*slot).max(until);
        }
    }

    /// Forgets sessions whose access tokens have all expired.
    pub fn prune(&self, now: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, until| *until >= now);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads revocations made since `since` from the feed; returns how many rows it read.
    pub async fn load_since(&self, pool: &DbPool, since: i64) -> Result<usize, String> {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        let rows = crate::with_conn!(conn, |c| c.revocations_since(since).await).map_err(|e| e.to_string())?;
        for (session, until) in &rows {
            self.insert(*session, *until);
        }
        Ok(rows.len())
    }
}

/// The in-memory views [`poll_feed`] keeps current, and what wakes it early.
#[derive(Debug, Clone)]
pub struct Feeds {
    pub revoked: std::sync::Arc<RevokedSessions>,
    pub role_changes: std::sync::Arc<RoleChanges>,
    pub roles: std::sync::Arc<RoleTable>,
    pub wake: std::sync::Arc<FeedWake>,
    /// Reloaded each round too, so rotations and expiries of retired keys reach this instance.
    pub signing: std::sync::Arc<super::signing::Signing>,
}

/// Polls the feed until `shutdown` resolves, every `interval` and whenever `wake` is signalled.
/// The first read loads every revocation still in the feed, so a new instance knows sessions
/// ended before it started. Each round also reloads the role table when another instance
/// changed a role.
pub async fn poll_feed(
    feeds: Feeds,
    pool: DbPool,
    clock: Clock,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let Feeds { revoked: set, role_changes, roles, wake, signing } = feeds;
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
        let read = match set.load_since(&pool, since).await {
            Ok(_) => role_changes.load_since(&pool, since).await,
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
        if let Err(e) = roles.refresh(&pool, false).await {
            rocket::warn!("role table refresh failed: {e}");
        }
        if let Err(e) = signing.reload(&pool, clock.now()).await {
            rocket::warn!("signing key reload failed: {e}");
        }
    }
}
