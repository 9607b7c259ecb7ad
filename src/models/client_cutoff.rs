//! Client access tokens revoked by time (`client_token_cutoffs`): per client, the last `iat`
//! whose tokens are refused, read by every instance like the revocation feed.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::client_token_cutoffs;
use crate::db::Id;

/// A client's cutoff: its access tokens issued at or before `revoked_through` (Unix seconds)
/// are refused until `expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCutoff {
    pub client_id: Id,
    pub revoked_through: i64,
    pub expires_at: i64,
}

#[allow(async_fn_in_trait)]
pub trait ClientCutoffStore {
    /// Raises the client's cutoff to `cutoff.revoked_through` (a lower one changes nothing but
    /// the expiry, which only grows); returns the cutoff now stored.
    async fn raise_client_cutoff(&mut self, cutoff: ClientCutoff, now: i64) -> QueryResult<ClientCutoff>;
    /// The stored cutoff of `client`, if any.
    async fn client_cutoff(&mut self, client: Id) -> QueryResult<Option<ClientCutoff>>;
    /// Cutoffs changed at or after `since`, each with the time it last changed.
    async fn client_cutoffs_since(&mut self, since: i64) -> QueryResult<Vec<(ClientCutoff, i64)>>;
}

for_each_backend! {
impl ClientCutoffStore {
    async fn raise_client_cutoff(&mut self, cutoff: ClientCutoff, now: i64) -> QueryResult<ClientCutoff> {
        let raised = match self.client_cutoff(cutoff.client_id).await? {
            Some(stored) => ClientCutoff {
                client_id: cutoff.client_id,
                revoked_through: stored.revoked_through.max(cutoff.revoked_through),
                expires_at: stored.expires_at.max(cutoff.expires_at),
            },
            None => cutoff,
        };
        diesel::insert_into(client_token_cutoffs::table)
            .values((
                client_token_cutoffs::client_id.eq(raised.client_id),
                client_token_cutoffs::revoked_through.eq(raised.revoked_through),
                client_token_cutoffs::changed_at.eq(now),
                client_token_cutoffs::expires_at.eq(raised.expires_at),
            ))
            .on_conflict(client_token_cutoffs::client_id)
            .do_update()
            .set((
                client_token_cutoffs::revoked_through.eq(raised.revoked_through),
                client_token_cutoffs::changed_at.eq(now),
                client_token_cutoffs::expires_at.eq(raised.expires_at),
            ))
            .execute(self)
            .await?;
        Ok(raised)
    }

    async fn client_cutoff(&mut self, client: Id) -> QueryResult<Option<ClientCutoff>> {
        let row: Option<(Id, i64, i64)> = client_token_cutoffs::table
            .find(client)
            .select((
                client_token_cutoffs::client_id,
                client_token_cutoffs::revoked_through,
                client_token_cutoffs::expires_at,
            ))
            .get_result(self)
            .await
            .optional()?;
        Ok(row.map(|(client_id, revoked_through, expires_at)| ClientCutoff { client_id, revoked_through, expires_at }))
    }

    async fn client_cutoffs_since(&mut self, since: i64) -> QueryResult<Vec<(ClientCutoff, i64)>> {
        let rows: Vec<(Id, i64, i64, i64)> = client_token_cutoffs::table
            .filter(client_token_cutoffs::changed_at.ge(since))
            .select((
                client_token_cutoffs::client_id,
                client_token_cutoffs::revoked_through,
                client_token_cutoffs::expires_at,
                client_token_cutoffs::changed_at,
            ))
            .load(self)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(client_id, revoked_through, expires_at, changed_at)| {
                (ClientCutoff { client_id, revoked_through, expires_at }, changed_at)
            })
            .collect())
    }
}
}
