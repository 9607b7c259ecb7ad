//! The role-change feed: for each user whose roles changed within the last access-token
//! lifetime, the roles held after the change. Every instance polls it into memory so that access
//! tokens naming a role the user no longer holds are refused without a database read per request.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::role_changes;
use crate::db::Id;

/// A user's roles after their latest change. `version` orders changes of one user, also across
/// instances and across a housekeeping deletion (it starts from the change time in ms).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = role_changes, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct RoleChange {
    pub user_id: Id,
    pub version: i64,
    pub changed_at: i64,
    /// JSON array of role names.
    pub roles: String,
    pub expires_at: i64,
}

#[allow(async_fn_in_trait)]
pub trait RoleChangeStore {
    /// Records that `user` now holds `roles` (a JSON array) as of `now`, until `until`; returns
    /// the row written. Call inside the transaction that changes the roles, under the admin-set
    /// lock, so that two changes of one user cannot interleave.
    async fn record_role_change(&mut self, user: Id, roles: &str, now: i64, until: i64) -> QueryResult<RoleChange>;
    /// Changes recorded at or after `since`.
    async fn role_changes_since(&mut self, since: i64) -> QueryResult<Vec<RoleChange>>;
    async fn delete_expired_role_changes(&mut self, now: i64) -> QueryResult<usize>;
}

for_each_backend! {
impl RoleChangeStore {
    async fn record_role_change(&mut self, user: Id, roles: &str, now: i64, until: i64) -> QueryResult<RoleChange> {
        let previous: Option<i64> = role_changes::table
            .find(user)
            .select(role_changes::version)
            .get_result(self)
            .await
            .optional()?;
        let row = RoleChange {
            user_id: user,
            version: previous.map_or(now.saturating_mul(1000), |v| (v + 1).max(now.saturating_mul(1000))),
            changed_at: now,
            roles: roles.to_owned(),
            expires_at: until,
        };
        diesel::insert_into(role_changes::table)
            .values((
                role_changes::user_id.eq(row.user_id),
                role_changes::version.eq(row.version),
                role_changes::changed_at.eq(row.changed_at),
                role_changes::roles.eq(&row.roles),
                role_changes::expires_at.eq(row.expires_at),
            ))
            .on_conflict(role_changes::user_id)
            .do_update()
            .set((
                role_changes::version.eq(row.version),
                role_changes::changed_at.eq(row.changed_at),
                role_changes::roles.eq(&row.roles),
                role_changes::expires_at.eq(row.expires_at),
            ))
            .execute(self)
            .await?;
        Ok(row)
    }

    async fn role_changes_since(&mut self, since: i64) -> QueryResult<Vec<RoleChange>> {
        role_changes::table
            .filter(role_changes::changed_at.ge(since))
            .select(RoleChange::as_select())
            .load(self)
            .await
    }

    async fn delete_expired_role_changes(&mut self, now: i64) -> QueryResult<usize> {
        diesel::delete(role_changes::table.filter(role_changes::expires_at.lt(now))).execute(self).await
    }
}
}
