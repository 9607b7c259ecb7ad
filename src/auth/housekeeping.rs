//! Housekeeping: deletes what can no longer matter, so tables do not grow without bound.
//!
//! - refresh tokens of the older format past their expiry (they can no longer be exchanged);
//! - sessions ended, or past their absolute expiry, more than `retention` ago (their tokens go
//!   with them; a session idle past `refresh_ttl` waits for its absolute expiry);
//! - revocation-feed and role-change-feed rows once every access token they concern has expired;
//! - audit events older than `audit_retention`;
//! - throttle counters whose window is long over and that lock nothing;
//! - authorization codes a day after they expired (kept that long so that a replayed code still
//!   finds the session its first redemption started).
//!
//! Deletions run in batches, each its own write transaction, and the task yields between them:
//! on SQLite the one writer is never held for a whole backlog, so logins, refreshes and logouts
//! interleave with a large pass. A batch holds at most `housekeeping_batch` rows, and fewer when
//! its write transaction, commit included, takes longer than [`BATCH_BUDGET`] (rows of a large
//! table with several indexes cost far more than rows of a small one): the size halves while
//! batches run over the budget and grows back while they run well under it. On SQLite each
//! batch's pages are then copied back from the WAL before the next batch (see
//! [`WriterLock::settle`](crate::db::WriterLock::settle)), and the writer stays free for at
//! least as long as the batch held it, so a pass never takes more than half of the writer's time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket_db_pools::Pool;

use crate::clock::Clock;
use crate::config::AuthConfig;
use crate::db::{DbConn, DbPool};
use crate::models::{
    AuditStore, AuthorizationCodeStore, RefreshTokenStore, RevocationStore, RoleChangeStore, SessionStore,
    ThrottleStore,
};

/// How many rows one pass deleted, per table, and in how many write transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub refresh_tokens: usize,
    pub sessions: usize,
    pub revocations: usize,
    pub audit_events: usize,
    pub throttles: usize,
    pub authorization_codes: usize,
    /// Write transactions the pass ran (batches that deleted something).
    pub batches: usize,
}

/// How long one batch's write transaction should take, commit included (on SQLite: how long it
/// holds the one writer).
pub const BATCH_BUDGET: Duration = Duration::from_millis(15);
/// The smallest batch the size adapts down to.
const MIN_BATCH: usize = 16;

/// Which table a batch deletes from.
#[derive(Debug, Clone, Copy)]
enum Table {
    RefreshTokens,
    Sessions,
    Revocations,
    AuditEvents,
    Throttles,
    AuthorizationCodes,
}

/// How long an expired authorization code is kept (see the module comment).
const CODE_RETENTION: i64 = 86_400;

/// Deletes up to `limit` rows from `table` in its own write transaction; returns the rows
/// deleted.
async fn delete_batch(
    conn: &mut DbConn,
    table: Table,
    now: i64,
    limit: usize,
    config: &AuthConfig,
) -> Result<usize, String> {
    let limit = limit as i64;
    let retention = config.retention as i64;
    let audit_cutoff = now - config.audit_retention as i64;
    let throttle_window = config.throttle_account_window.max(config.throttle_address_window) as i64;
    // The second-factor counters share the table but keep their own, fixed window.
    let second_factor = (crate::auth::mfa::counter::KEY_PREFIX, now - crate::auth::mfa::counter::WINDOW);
    crate::db::write_tx!(conn, |c| match table {
        Table::RefreshTokens => c.delete_dead_refresh_tokens(now, limit).await,
        Table::Sessions => c.delete_old_sessions(now - retention, limit).await,
        Table::Revocations => c.delete_expired_revocations(now, limit).await,
        Table::AuditEvents => c.delete_old_audit(audit_cutoff, limit).await,
        Table::Throttles => c.delete_stale_throttles(now - throttle_window, second_factor, now, limit).await,
        Table::AuthorizationCodes => c.delete_expired_codes(now - CODE_RETENTION, limit).await,
    })
    .map_err(|e| e.to_string())
}

/// One pass of housekeeping at the clock's current time.
pub async fn run_once(pool: &DbPool, clock: &Clock, config: &AuthConfig) -> Result<Swept, String> {
    let now = clock.now();
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let mut swept = Swept::default();
    // Tokens before sessions, so a session's cascade rarely has tokens left to take with it.
    let most = (config.housekeeping_batch as usize).max(1);
    let mut limit = most;
    let tables = [
        Table::RefreshTokens,
        Table::Sessions,
        Table::Revocations,
        Table::AuditEvents,
        Table::Throttles,
        Table::AuthorizationCodes,
    ];
    for table in tables {
        loop {
            let started = Instant::now();
            let deleted = delete_batch(&mut conn, table, now, limit, config).await?;
            // The whole write transaction, its commit included (under load another writer's body
            // may run the commit of the batch this one joined; it is part of this batch's cost).
            let took = started.elapsed();
            if deleted == 0 {
                break;
            }
            swept.batches += 1;
            *match table {
                Table::RefreshTokens => &mut swept.refresh_tokens,
                Table::Sessions => &mut swept.sessions,
                Table::Revocations => &mut swept.revocations,
                Table::AuditEvents => &mut swept.audit_events,
                Table::Throttles => &mut swept.throttles,
                Table::AuthorizationCodes => &mut swept.authorization_codes,
            } += deleted;
            if deleted < limit {
                break;
            }
            if took > BATCH_BUDGET {
                limit = (limit / 2).max(MIN_BATCH.min(most));
            } else if took < BATCH_BUDGET / 3 {
                limit = (limit + limit / 2 + 1).min(most);
            }
            // On SQLite every deleted session rewrites about two pages at random places of its
            // two UUID-keyed indexes, so a batch leaves hundreds of pages in the WAL. Copy them
            // back now, off the writer: left to the background checkpointer they piled up faster
            // than it copied them and were copied back under the writer's turn when the WAL
            // restarted (stalls of 50-400 ms, the refresh p99 of a large pass).
            let settling = Instant::now();
            if let DbConn::Sqlite(sqlite) = &conn {
                sqlite.writer().settle().await;
            }
            // Let queued writers take their turn, and leave the writer free for at least as long
            // as the batch held it (the copy-back counts): at most half of the writer's time goes
            // to housekeeping.
            tokio::time::sleep(took.saturating_sub(settling.elapsed())).await;
        }
    }
    // At most one row per user whose roles changed within an access-token lifetime: one batch.
    swept.revocations +=
        crate::db::write_tx!(conn, |c| c.delete_expired_role_changes(now).await).map_err(|e| e.to_string())?;
    Ok(swept)
}

/// Runs [`run_once`] every `housekeeping_interval` seconds until `shutdown` resolves, counting
/// finished passes in `passes`.
pub async fn run_periodically(
    pool: DbPool,
    clock: Clock,
    config: AuthConfig,
    passes: Arc<AtomicU64>,
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
        passes.fetch_add(1, Ordering::Release);
    }
}
