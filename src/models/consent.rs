//! Consents (`consents`): what a user approved for a third-party client, one row per user and
//! client holding the scope values approved so far.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::{clients, consents};
use crate::db::Id;

/// A consent with the client's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub client_id: Id,
    pub client_name: String,
    /// Space-separated scope values.
    pub scope: String,
    pub granted_at: i64,
}

#[allow(async_fn_in_trait)]
pub trait ConsentStore {
    /// The scope `user_id` approved for `client_id`, if any.
    async fn consent_scope(&mut self, user_id: Id, client_id: Id) -> QueryResult<Option<String>>;
    /// Records the approval of `scope` (the union with what was approved before, computed by the
    /// caller) at `now`.
    async fn upsert_consent(&mut self, user_id: Id, client_id: Id, scope: &str, now: i64) -> QueryResult<()>;
    /// The user's consents, oldest first.
    async fn user_consents(&mut self, user_id: Id) -> QueryResult<Vec<Consent>>;
    /// Deletes the consent; returns whether there was one.
    async fn delete_consent(&mut self, user_id: Id, client_id: Id) -> QueryResult<bool>;
}

for_each_backend! {
impl ConsentStore {
    async fn consent_scope(&mut self, user_id: Id, client_id: Id) -> QueryResult<Option<String>> {
        consents::table.find((user_id, client_id)).select(consents::scope).get_result(self).await.optional()
    }

    async fn upsert_consent(&mut self, user_id: Id, client_id: Id, scope: &str, now: i64) -> QueryResult<()> {
        diesel::insert_into(consents::table)
            .values((
                consents::user_id.eq(user_id),
                consents::client_id.eq(client_id),
                consents::scope.eq(scope),
                consents::granted_at.eq(now),
            ))
            .on_conflict((consents::user_id, consents::client_id))
            .do_update()
            .set((consents::scope.eq(scope), consents::granted_at.eq(now)))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn user_consents(&mut self, user_id: Id) -> QueryResult<Vec<Consent>> {
        let rows: Vec<(Id, String, String, i64)> = consents::table
            .inner_join(clients::table)
            .filter(consents::user_id.eq(user_id))
            .order((consents::granted_at, consents::client_id))
            .select((consents::client_id, clients::name, consents::scope, consents::granted_at))
            .load(self)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(client_id, client_name, scope, granted_at)| Consent { client_id, client_name, scope, granted_at })
            .collect())
    }

    async fn delete_consent(&mut self, user_id: Id, client_id: Id) -> QueryResult<bool> {
        diesel::delete(consents::table.find((user_id, client_id))).execute(self).await.map(|n| n == 1)
    }
}
}
