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
//! ([`super::poller`]), like ended sessions, and resource servers learn them from the change feed
//! ([`super::feed`]). An entry is dropped once every token it refuses has
//! expired.

use portcullis_rocket::core::Cutoffs;
use rocket_db_pools::Pool;

use crate::db::{DbPool, Id};
use crate::models::{ClientCutoff, ClientCutoffStore, ClientStore};

/// How many generations of clients creating clients a demotion follows (as far as delegation's
/// creator chain, `auth::delegation`).
const MAX_GENERATIONS: usize = 16;

/// Cuts off the access tokens issued up to `now` to every client `creators` made, and to the
/// clients those made, and so on: the clients of an account that lost permissions (roles taken
/// away, disabled, deleted) keep no token minted under what it held before; their next token is
/// bounded by what it holds now (`Auth::creator_bound`). Call inside the transaction of the
/// demotion and hand the result to [`Auth::cut_off_locally`](crate::auth::Auth::cut_off_locally)
/// after the commit.
pub async fn cut_off_clients_of<C: ClientStore + ClientCutoffStore>(
    c: &mut C,
    creators: &[Id],
    now: i64,
    until: i64,
) -> diesel::QueryResult<Vec<ClientCutoff>> {
    let (mut cut, mut generation) = (vec![], creators.to_vec());
    for _ in 0..MAX_GENERATIONS {
        generation = c.clients_created_by(&generation).await?;
        if generation.is_empty() {
            break;
        }
        for client_id in &generation {
            cut.push(
                c.raise_client_cutoff(
                    ClientCutoff { client_id: *client_id, revoked_through: now, expires_at: until },
                    now,
                )
                .await?,
            );
        }
    }
    Ok(cut)
}

/// Client id → (last refused `iat`, when every token it refuses has expired): the verification
/// core's set, which a resource server fills from the change feed.
#[derive(Debug, Default)]
pub struct ClientCutoffs {
    set: Cutoffs<Id>,
}

impl ClientCutoffs {
    /// Whether a token of `client` issued at `iat` must be refused (fails closed).
    pub fn refuses(&self, client: Id, iat: i64) -> bool {
        self.set.refuses(&client, iat)
    }

    /// The `iat` for a token of `client` issued `now`: `now`, or the second after its cutoff
    /// when the cutoff is in this very second.
    pub fn issued_at(&self, client: Id, now: i64) -> i64 {
        self.set.through(&client).map_or(now, |through| now.max(through + 1))
    }

    /// Records a cutoff (only ever raising what is known).
    pub fn raise(&self, cutoff: ClientCutoff) {
        self.set.raise(cutoff.client_id, cutoff.revoked_through, cutoff.expires_at);
    }

    /// Forgets cutoffs whose tokens have all expired.
    pub fn prune(&self, now: i64) {
        self.set.prune(now);
    }

    /// Reads cutoffs changed since `since`; returns how many rows it read.
    pub async fn load_since(&self, pool: &DbPool, since: i64) -> Result<usize, String> {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        let rows = crate::db::with_conn!(conn, |c| c.client_cutoffs_since(since).await).map_err(|e| e.to_string())?;
        for (cutoff, _) in &rows {
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

    /// [`cut_off_locally`](Self::cut_off_locally) for each of `cutoffs`.
    pub fn cut_all_off_locally(&self, cutoffs: &[ClientCutoff]) {
        for cutoff in cutoffs {
            self.client_cutoffs.raise(*cutoff);
        }
        if !cutoffs.is_empty() {
            self.sync_wake.wake();
        }
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
        // For Portcullis or for one of `auth.resources`: a client's token for a resource server
        // is the one it most needs to revoke there.
        let Ok((claims, _)) = self.verify_issued(token) else { return Ok(false) };
        if claims.exp <= now {
            return Ok(false);
        }
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
