//! The in-memory cutoffs of client access tokens: per client, the last `iat` whose tokens are
//! refused (see `models::client_cutoff`). Rotating a client's secret cuts off the tokens issued
//! under the old one, and a client revoking one of its access tokens (RFC 7009 §2.1 allows the
//! revocation of related tokens) cuts off that one and every earlier one.
//!
//! Tokens carry `iat` in whole seconds, so a cutoff refuses every token of its second; the
//! client-credentials grant therefore stamps a token issued in that second (after the change)
//! with the next second as `iat` ([`ClientCutoffs::issued_at`]), so no token minted after a
//! rotation is refused and none minted before it survives.
//!
//! Cutoffs made here apply at once; those made on other instances arrive through the poller
//! ([`super::poller`]), like ended sessions. An entry is dropped once every token it refuses has
//! expired.

use std::collections::HashMap;
use std::sync::RwLock;

use rocket_db_pools::Pool;

use crate::db::{DbPool, Id};
use crate::models::{ClientCutoff, ClientCutoffStore};

/// Client id → (last refused `iat`, when every token it refuses has expired).
#[derive(Debug, Default)]
pub struct ClientCutoffs {
    entries: RwLock<HashMap<Id, (i64, i64)>>,
}

impl ClientCutoffs {
    /// Whether a token of `client` issued at `iat` must be refused (fails closed).
    pub fn refuses(&self, client: Id, iat: i64) -> bool {
        match self.entries.read() {
            Ok(entries) => entries.get(&client).is_some_and(|(through, _)| iat <= *through),
            Err(_) => true,
        }
    }

    /// The `iat` for a token of `client` issued `now`: `now`, or the second after its cutoff
    /// when the cutoff is in this very second.
    pub fn issued_at(&self, client: Id, now: i64) -> i64 {
        let through = self.entries.read().ok().and_then(|e| e.get(&client).map(|(through, _)| *through));
        through.map_or(now, |through| now.max(through + 1))
    }

    /// Records a cutoff (only ever raising what is known).
    pub fn raise(&self, cutoff: ClientCutoff) {
        if let Ok(mut entries) = self.entries.write() {
            let slot = entries.entry(cutoff.client_id).or_insert((cutoff.revoked_through, cutoff.expires_at));
            *slot = (slot.0.max(cutoff.revoked_through), slot.1.max(cutoff.expires_at));
        }
    }

    /// Forgets cutoffs whose tokens have all expired.
    pub fn prune(&self, now: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, (_, until)| *until >= now);
        }
    }

    /// Reads cutoffs changed since `since`; returns how many rows it read.
    pub async fn load_since(&self, pool: &DbPool, since: i64) -> Result<usize, String> {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        let rows = crate::db::with_conn!(conn, |c| c.client_cutoffs_since(since).await).map_err(|e| e.to_string())?;
        for cutoff in &rows {
            self.raise(*cutoff);
        }
        Ok(rows.len())
    }
}

impl crate::auth::Auth {
    /// Makes this instance refuse the cut-off tokens at once (after the commit), and answers the
    /// change feed's long polls.
    pub fn cut_off_locally(&self, cutoff: ClientCutoff) {
        self.client_cutoffs.raise(cutoff);
        self.sync_wake.wake();
    }

    /// Brings the stored cutoff of `client` into memory before a token is issued to it, so a
    /// token issued here in the second of a rotation made on another instance (not yet polled)
    /// is stamped past it too.
    pub async fn learn_client_cutoff(&self, conn: &mut crate::db::DbConn, client: Id) -> crate::error::ApiResult<()> {
        if let Some(cutoff) = crate::db::with_conn!(conn, |c| c.client_cutoff(client).await)? {
            self.client_cutoffs.raise(cutoff);
        }
        Ok(())
    }

    /// RFC 7009 for a client's own access token: `revoker` (authenticated) revokes `token` when
    /// it is a live access token issued to `revoker`, with every earlier one (see the module
    /// comment). Returns whether `token` is a client's access token at all (then there is no
    /// session to end); another client's token is left alone.
    pub async fn revoke_client_token(
        &self,
        conn: &mut crate::db::DbConn,
        revoker: Id,
        token: &str,
    ) -> crate::error::ApiResult<bool> {
        let now = self.clock.now();
        let Ok(claims) = self.keys.verify(token, now) else { return Ok(false) };
        let Some(crate::auth::keys::tokens::Subject::Client { client_id, .. }) = claims.subject() else {
            return Ok(false);
        };
        if *client_id != revoker {
            return Ok(true);
        }
        let cutoff =
            ClientCutoff { client_id: revoker, revoked_through: claims.iat, expires_at: self.revoke_until(now) };
        let stored = crate::db::write_tx!(conn, |c| c.raise_client_cutoff(cutoff, now).await)?;
        self.cut_off_locally(stored);
        Ok(true)
    }
}
