//! The audit log: who did what to which account, when and from where. Never secrets.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::audit_events;
use crate::db::{Id, StatementCache};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct AuditEvent {
    pub id: Id,
    pub at: i64,
    pub event: String,
    pub user_id: Option<Id>,
    pub actor_id: Option<Id>,
    pub ip: Option<String>,
    pub detail: String,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent<'a> {
    pub id: Id,
    pub at: i64,
    pub event: &'a str,
    pub user_id: Option<Id>,
    pub actor_id: Option<Id>,
    pub ip: Option<&'a str>,
    /// A small JSON object.
    pub detail: String,
}

/// Filters for listing audit events; newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<Id>,
    pub event: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

#[allow(async_fn_in_trait)]
pub trait AuditStore {
    async fn insert_audit(&mut self, event: &NewAuditEvent<'_>) -> QueryResult<()>;
    /// Inserts `event`, or, when an event with its id exists, replaces that one's `detail` (an
    /// event that counts what it stands for, kept up to date).
    async fn upsert_audit(&mut self, event: &NewAuditEvent<'_>) -> QueryResult<()>;
    async fn list_audit(&mut self, filter: &AuditFilter) -> QueryResult<Vec<AuditEvent>>;
    /// Deletes up to `limit` events recorded before `cutoff` (`auth.audit_retention`).
    async fn delete_old_audit(&mut self, cutoff: i64, limit: i64) -> QueryResult<usize>;
}

for_each_backend! {
impl AuditStore {
    async fn insert_audit(&mut self, event: &NewAuditEvent<'_>) -> QueryResult<()> {
        StatementCache(diesel::insert_into(audit_events::table).values(event)).execute(self).await.map(|_| ())
    }

    async fn upsert_audit(&mut self, event: &NewAuditEvent<'_>) -> QueryResult<()> {
        diesel::insert_into(audit_events::table)
            .values(event)
            .on_conflict(audit_events::id)
            .do_update()
            .set(audit_events::detail.eq(&event.detail))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn list_audit(&mut self, filter: &AuditFilter) -> QueryResult<Vec<AuditEvent>> {
        let mut query = audit_events::table.select(AuditEvent::as_select()).into_boxed();
        if let Some(user_id) = filter.user_id {
            query = query.filter(audit_events::user_id.eq(user_id));
        }
        if let Some(event) = &filter.event {
            query = query.filter(audit_events::event.eq(event.clone()));
        }
        query
            .order((audit_events::at.desc(), audit_events::id.desc()))
            .limit(filter.limit)
            .offset(filter.offset)
            .load(self)
            .await
    }

    async fn delete_old_audit(&mut self, cutoff: i64, limit: i64) -> QueryResult<usize> {
        let batch = audit_events::table.filter(audit_events::at.lt(cutoff)).select(audit_events::id).limit(limit);
        // Ids first, then delete them: diesel cannot delete from a table filtered by a subquery on
        // itself, and the batch bounds the statement either way.
        let ids: Vec<Id> = batch.load(self).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        diesel::delete(audit_events::table.filter(audit_events::id.eq_any(ids))).execute(self).await
    }
}
}
