//! The revocation feed: one row per ended session, read by every instance's poller and
//! deleted once no access token of that session can still be valid.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::revoked_sessions;
use crate::db::Id;

#[allow(async_fn_in_trait)]
pub trait RevocationStore {
    async fn insert_revocation(&mut self, session_id: Id, user_id: Id, now: i64, until: i64) -> QueryResult<()>;
    /// `(session id, expires_at)` of revocations made at or after `since`.
    async fn revocations_since(&mut self, since: i64) -> QueryResult<Vec<(Id, i64)>>;
    /// Deletes up to `limit` rows whose sessions' access tokens have all expired.
    async fn delete_expired_revocations(&mut self, now: i64, limit: i64) -> QueryResult<usize>;
    /// The change feed's view: `(session id, user id, revoked_at, expires_at)` of revocations made
    /// at or after `since` (a deleted client's row has its id in both id columns).
    async fn revocation_rows_since(&mut self, since: i64) -> QueryResult<Vec<(Id, Id, i64, i64)>>;
}

for_each_backend! {
impl RevocationStore {
    async fn insert_revocation(&mut self, session_id: Id, user_id: Id, now: i64, until: i64) -> QueryResult<()> {
        diesel::insert_into(revoked_sessions::table)
            .values((
                revoked_sessions::session_id.eq(session_id),
                revoked_sessions::user_id.eq(user_id),
                revoked_sessions::revoked_at.eq(now),
                revoked_sessions::expires_at.eq(until),
            ))
            .on_conflict_do_nothing()
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn revocations_since(&mut self, since: i64) -> QueryResult<Vec<(Id, i64)>> {
        revoked_sessions::table
            .filter(revoked_sessions::revoked_at.ge(since))
            .select((revoked_sessions::session_id, revoked_sessions::expires_at))
            .load(self)
            .await
    }

    async fn delete_expired_revocations(&mut self, now: i64, limit: i64) -> QueryResult<usize> {
        let batch = revoked_sessions::table
            .filter(revoked_sessions::expires_at.lt(now))
            .select(revoked_sessions::session_id)
            .limit(limit);
        // Ids first, then delete them: diesel cannot delete from a table filtered by a subquery on
        // itself, and the batch bounds the statement either way.
        let ids: Vec<Id> = batch.load(self).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        diesel::delete(revoked_sessions::table.filter(revoked_sessions::session_id.eq_any(ids))).execute(self).await
    }

    async fn revocation_rows_since(&mut self, since: i64) -> QueryResult<Vec<(Id, Id, i64, i64)>> {
        revoked_sessions::table
            .filter(revoked_sessions::revoked_at.ge(since))
            .select((
                revoked_sessions::session_id,
                revoked_sessions::user_id,
                revoked_sessions::revoked_at,
                revoked_sessions::expires_at,
            ))
            .load(self)
            .await
    }
}
}
