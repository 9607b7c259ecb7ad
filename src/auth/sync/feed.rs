//! The change feed for resource servers (`GET /feed/changes`): what a service that verifies
//! Portcullis tokens itself must know to refuse them as Portcullis does — ended sessions, deleted
//! clients, client tokens cut off by a secret rotation or a revocation, per-user role changes and
//! the role → permission table.
//!
//! Design: the feed reads the same tables every instance polls (`revoked_sessions`,
//! `client_token_cutoffs`, `role_changes`, the roles version), so it works behind any instance. Their rows carry whole
//! seconds and a late commit can land a row stamped a little in the past, so a cursor cannot be
//! "rows after time t" alone: it is the time of the read (seconds, times `FP_SPAN`) plus a
//! fingerprint of everything in the window `[read - OVERLAP, now]`. The next request re-reads
//! that window; the answer is held (long-poll) while the fingerprint is unchanged, and once it
//! changes, every row of the window is sent again. Applying a row twice is harmless (sets keyed by
//! id, role changes ordered by version), so a reconnect with the last cursor loses nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use rocket_db_pools::Pool;
use sha2::{Digest, Sha256};

use crate::auth::Auth;
use crate::db::{DbPool, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{ClientCutoff, ClientCutoffStore, RevocationStore, RoleChange, RoleChangeStore, RoleStore};

/// How far back a cursor's window reaches before its read time, in seconds: covers commits that
/// land after the time they wrote, and instances' clocks a little apart.
const OVERLAP: i64 = 5;
/// A cursor is `read_time * FP_SPAN + fingerprint % FP_SPAN`.
const FP_SPAN: i64 = 1_000_000;
/// The longest a request may wait for a change, in seconds.
pub const MAX_WAIT: u64 = 55;

/// One answer of the feed (its HTTP shape, with what each part means to a resource server, is
/// `routes::feed::Changes`).
#[derive(Debug)]
pub struct FeedAnswer {
    pub cursor: i64,
    /// The answer is the whole state (no or an unusable cursor was given).
    pub snapshot: bool,
    /// Ended sessions with the time their access tokens run out: (session id, until).
    pub ended_sessions: Vec<(Id, i64)>,
    /// Deleted service clients with the time their tokens run out: (client id, until).
    pub deleted_clients: Vec<(Id, i64)>,
    pub client_cutoffs: Vec<ClientCutoff>,
    pub role_changes: Vec<RolesChanged>,
    /// Role name → permissions, the whole table.
    pub roles: BTreeMap<String, Vec<String>>,
    /// The access-token lifetime in seconds.
    pub access_ttl: u64,
}

/// A user's roles changed: tokens naming another role are refused until `until`.
#[derive(Debug)]
pub struct RolesChanged {
    pub user_id: Id,
    /// Orders changes of one user.
    pub version: i64,
    pub roles: Vec<String>,
    pub until: i64,
}

/// The rows of one window and the roles version.
struct Read {
    revocations: Vec<(Id, Id, i64, i64)>,
    /// Each cutoff with the time it last changed.
    cutoffs: Vec<(ClientCutoff, i64)>,
    role_changes: Vec<RoleChange>,
    version: Option<String>,
}

impl Read {
    async fn load(pool: &DbPool, since: i64, now: i64) -> Result<Read, String> {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        let mut revocations =
            crate::db::with_conn!(conn, |c| c.revocation_rows_since(since).await).map_err(|e| e.to_string())?;
        let mut cutoffs =
            crate::db::with_conn!(conn, |c| c.client_cutoffs_since(since).await).map_err(|e| e.to_string())?;
        let mut role_changes =
            crate::db::with_conn!(conn, |c| c.role_changes_since(since).await).map_err(|e| e.to_string())?;
        let version = crate::db::with_conn!(conn, |c| c.roles_version().await).map_err(|e| e.to_string())?;
        revocations.retain(|row| row.3 >= now);
        cutoffs.retain(|(cutoff, _)| cutoff.expires_at >= now);
        role_changes.retain(|row| row.expires_at >= now);
        revocations.sort_unstable_by_key(|row| row.0);
        cutoffs.sort_unstable_by_key(|(cutoff, _)| cutoff.client_id);
        role_changes.sort_unstable_by_key(|row| row.user_id);
        Ok(Read { revocations, cutoffs, role_changes, version })
    }

    /// A digest of the rows stamped at or after `since`, and of the roles version.
    fn fingerprint(&self, since: i64) -> i64 {
        let mut digest = Sha256::new();
        for (session, _, at, until) in self.revocations.iter().filter(|row| row.2 >= since) {
            digest.update(format!("r{session}{at}{until};"));
        }
        for (cutoff, _) in self.cutoffs.iter().filter(|row| row.1 >= since) {
            digest.update(format!("k{}{}{};", cutoff.client_id, cutoff.revoked_through, cutoff.expires_at));
        }
        for change in self.role_changes.iter().filter(|row| row.changed_at >= since) {
            digest.update(format!("c{}{};", change.user_id, change.version));
        }
        digest.update(format!("v{:?}", self.version));
        let bytes: [u8; 8] = digest.finalize()[..8].try_into().unwrap_or_default();
        (u64::from_be_bytes(bytes) % FP_SPAN as u64) as i64
    }
}

impl Auth {
    /// The feed's answer to `cursor`: a snapshot without one, else the window it names once it
    /// changed, or after `wait` with nothing new. Database errors are 503 `unavailable`.
    pub async fn change_feed(&self, pool: &DbPool, cursor: Option<i64>, wait: Duration) -> ApiResult<FeedAnswer> {
        let now = self.clock.now();
        let given = cursor.filter(|c| *c > 0 && c / FP_SPAN <= now);
        let since = given.map_or(i64::MIN, |c| c / FP_SPAN - OVERLAP);
        let deadline = tokio::time::Instant::now() + wait;
        let poll = Duration::from_millis(self.config.revocation_poll_ms);
        // Woken by a change on this instance, or on PostgreSQL by another's notification; the poll
        // interval stays the fallback.
        let mut woken = self.sync_wake.subscribe();
        let (mut read, mut read_at) = (Read::load(pool, since, now).await.map_err(ApiError::unavailable)?, now);
        if let Some(cursor) = given {
            while read.fingerprint(since) == cursor % FP_SPAN && tokio::time::Instant::now() < deadline {
                let nap = tokio::time::sleep(poll.min(deadline - tokio::time::Instant::now()));
                tokio::select! {
                    _ = nap => {}
                    _ = woken.changed() => {}
                }
                read_at = self.clock.now();
                read = Read::load(pool, since, read_at).await.map_err(ApiError::unavailable)?;
            }
        }
        let cursor = read_at * FP_SPAN + read.fingerprint(read_at - OVERLAP);
        let roles = self.role_table(pool).await?;
        let (clients, sessions): (Vec<_>, Vec<_>) = read.revocations.into_iter().partition(|row| row.0 == row.1);
        Ok(FeedAnswer {
            cursor,
            snapshot: given.is_none(),
            ended_sessions: sessions.into_iter().map(|(sid, _, _, until)| (sid, until)).collect(),
            deleted_clients: clients.into_iter().map(|(client_id, _, _, until)| (client_id, until)).collect(),
            client_cutoffs: read.cutoffs.into_iter().map(|(cutoff, _)| cutoff).collect(),
            role_changes: read
                .role_changes
                .into_iter()
                .map(|c| RolesChanged {
                    user_id: c.user_id,
                    version: c.version,
                    roles: serde_json::from_str(&c.roles).unwrap_or_default(),
                    until: c.expires_at,
                })
                .collect(),
            roles,
            access_ttl: self.config.access_ttl,
        })
    }

    /// Role name → permissions as stored; `admin` with every permission there is.
    async fn role_table(&self, pool: &DbPool) -> ApiResult<BTreeMap<String, Vec<String>>> {
        let mut conn = pool.get().await.map_err(ApiError::unavailable)?;
        let roles = crate::db::with_conn!(conn, |c| c.all_roles().await).map_err(ApiError::unavailable)?;
        let mut table: BTreeMap<String, Vec<String>> =
            roles.into_iter().map(|r| (r.name, r.permissions.into_iter().collect())).collect();
        table.insert(crate::auth::permissions::ADMIN_ROLE.into(), self.scopes_supported());
        Ok(table)
    }
}
