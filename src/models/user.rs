//! Accounts: `users` and their role assignments in `user_roles`.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::{user_roles, users};
use crate::db::Id;

/// An account row. Its `Debug` leaves out the password hash.
#[derive(Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct User {
    pub id: Id,
    pub email: String,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Whether a confirmed TOTP second factor is required at login.
    pub mfa_enabled: bool,
    /// Whether the address was proven by a mail link (or the account made by an operator).
    pub email_verified: bool,
    /// How many passkeys the account holds (at most 10); any makes its MFA on.
    pub passkey_count: i32,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("disabled", &self.disabled)
            .field("mfa_enabled", &self.mfa_enabled)
            .field("email_verified", &self.email_verified)
            .field("passkey_count", &self.passkey_count)
            .finish()
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: Id,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub email_verified: bool,
}

/// Folds the rows of a left join on `user_roles` (one per role, or one without a role) into the
/// joined row and its role names, in the order of the rows.
pub(super) fn fold_roles<T>(rows: impl IntoIterator<Item = (T, Option<String>)>) -> Option<(T, Vec<String>)> {
    let mut rows = rows.into_iter();
    let (row, first) = rows.next()?;
    Some((row, first.into_iter().chain(rows.filter_map(|(_, role)| role)).collect()))
}

#[allow(async_fn_in_trait)]
pub trait UserStore {
    /// Inserts the account and its roles; a duplicate email is a unique violation.
    async fn insert_user(&mut self, user: &NewUser<'_>, roles: &[String]) -> QueryResult<()>;
    async fn find_user(&mut self, id: Id) -> QueryResult<Option<User>>;
    /// `email` must already be normalised (trimmed, lower case).
    async fn find_user_by_email(&mut self, email: &str) -> QueryResult<Option<User>>;
    /// Role names of a user, sorted.
    async fn user_role_names(&mut self, id: Id) -> QueryResult<Vec<String>>;
    /// The account and its role names (sorted), in one query.
    async fn find_user_with_roles(&mut self, id: Id) -> QueryResult<Option<(User, Vec<String>)>>;
    /// Replaces the user's roles.
    async fn set_user_roles(&mut self, id: Id, roles: &[String]) -> QueryResult<()>;
    async fn set_password_hash(&mut self, id: Id, hash: &str, now: i64) -> QueryResult<()>;
    async fn set_disabled(&mut self, id: Id, disabled: bool, now: i64) -> QueryResult<usize>;
    /// Marks the address verified while it is still `email`; `false` when it changed meanwhile.
    async fn set_email_verified(&mut self, id: Id, email: &str, now: i64) -> QueryResult<bool>;
    /// Moves the account to `email` (verified); a taken address is a unique violation.
    async fn set_email(&mut self, id: Id, email: &str, now: i64) -> QueryResult<usize>;
    async fn delete_user(&mut self, id: Id) -> QueryResult<usize>;
    /// A page of users whose email contains `email` (lower case), oldest first, and the total.
    async fn list_users(&mut self, email: Option<&str>, limit: i64, offset: i64) -> QueryResult<(Vec<User>, i64)>;
    /// `(user, role)` pairs for the given users.
    async fn roles_of_users(&mut self, ids: &[Id]) -> QueryResult<Vec<(Id, String)>>;
    /// Enabled accounts holding the `admin` role.
    async fn active_admins(&mut self) -> QueryResult<Vec<Id>>;
}

/// A `LIKE` pattern matching `text` anywhere, with `%`, `_` and `\\` taken literally.
fn contains_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

for_each_backend! {
impl UserStore {
    async fn insert_user(&mut self, user: &NewUser<'_>, roles: &[String]) -> QueryResult<()> {
        diesel::insert_into(users::table).values(user).execute(self).await?;
        self.set_user_roles(user.id, roles).await
    }

    async fn find_user(&mut self, id: Id) -> QueryResult<Option<User>> {
        users::table.find(id).select(User::as_select()).get_result(self).await.optional()
    }

    async fn find_user_by_email(&mut self, email: &str) -> QueryResult<Option<User>> {
        users::table.filter(users::email.eq(email)).select(User::as_select()).get_result(self).await.optional()
    }

    async fn user_role_names(&mut self, id: Id) -> QueryResult<Vec<String>> {
        user_roles::table
            .filter(user_roles::user_id.eq(id))
            .select(user_roles::role_name)
            .order(user_roles::role_name)
            .load(self)
            .await
    }

    async fn find_user_with_roles(&mut self, id: Id) -> QueryResult<Option<(User, Vec<String>)>> {
        let rows: Vec<(User, Option<String>)> = users::table
            .left_join(user_roles::table)
            .filter(users::id.eq(id))
            .select((User::as_select(), user_roles::role_name.nullable()))
            .order(user_roles::role_name)
            .load(self)
            .await?;
        Ok(fold_roles(rows))
    }

    async fn set_user_roles(&mut self, id: Id, roles: &[String]) -> QueryResult<()> {
        diesel::delete(user_roles::table.filter(user_roles::user_id.eq(id))).execute(self).await?;
        // Row by row: multi-row inserts do not compile for the SQLite wrapper.
        for role in roles {
            diesel::insert_into(user_roles::table)
                .values((user_roles::user_id.eq(id), user_roles::role_name.eq(role)))
                .execute(self)
                .await?;
        }
        Ok(())
    }

    async fn set_password_hash(&mut self, id: Id, hash: &str, now: i64) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn set_disabled(&mut self, id: Id, disabled: bool, now: i64) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
            .execute(self)
            .await
    }

    async fn set_email_verified(&mut self, id: Id, email: &str, now: i64) -> QueryResult<bool> {
        diesel::update(users::table.find(id).filter(users::email.eq(email)))
            .set((users::email_verified.eq(true), users::updated_at.eq(now)))
            .execute(self)
            .await
            .map(|n| n == 1)
    }

    async fn set_email(&mut self, id: Id, email: &str, now: i64) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set((users::email.eq(email), users::email_verified.eq(true), users::updated_at.eq(now)))
            .execute(self)
            .await
    }

    async fn delete_user(&mut self, id: Id) -> QueryResult<usize> {
        diesel::delete(users::table.find(id)).execute(self).await
    }

    async fn list_users(&mut self, email: Option<&str>, limit: i64, offset: i64) -> QueryResult<(Vec<User>, i64)> {
        let filtered = || {
            let mut query = users::table.into_boxed();
            if let Some(email) = email {
                query = query.filter(users::email.like(contains_pattern(email)).escape('\\'));
            }
            query
        };
        let total = filtered().count().get_result(self).await?;
        let page = filtered()
            .select(User::as_select())
            .order((users::created_at, users::id))
            .limit(limit)
            .offset(offset)
            .load(self)
            .await?;
        Ok((page, total))
    }

    async fn roles_of_users(&mut self, ids: &[Id]) -> QueryResult<Vec<(Id, String)>> {
        user_roles::table
            .filter(user_roles::user_id.eq_any(ids))
            .select((user_roles::user_id, user_roles::role_name))
            .order(user_roles::role_name)
            .load(self)
            .await
    }

    async fn active_admins(&mut self) -> QueryResult<Vec<Id>> {
        user_roles::table
            .inner_join(users::table)
            .filter(user_roles::role_name.eq("admin"))
            .filter(users::disabled.eq(false))
            .select(users::id)
            .load(self)
            .await
    }
}
}

/// Serialises changes that could remove the last active admin.
#[allow(async_fn_in_trait)]
pub trait AdminLock {
    /// Call first inside a write transaction that may demote, disable or delete an admin.
    async fn lock_admin_set(&mut self) -> QueryResult<()>;
}

impl AdminLock for super::SqliteConn {
    async fn lock_admin_set(&mut self) -> QueryResult<()> {
        // `BEGIN IMMEDIATE` already serialises every writer on SQLite.
        Ok(())
    }
}

/// Key of the transaction-scoped advisory lock taken around admin-set changes.
const ADMIN_SET_LOCK: i64 = 0x706f_7274_6164;

impl AdminLock for super::PgConn {
    async fn lock_admin_set(&mut self) -> QueryResult<()> {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({ADMIN_SET_LOCK})")).execute(self).await.map(|_| ())
    }
}
