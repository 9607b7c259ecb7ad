//! Refresh tokens of the older random format: only the SHA-256 of each is stored; `spent_at`
//! marks an exchanged one. New sessions write no rows here (see `auth::chain`); these rows are
//! exchanged once more into the new format and deleted by housekeeping when they expire.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use super::user::fold_roles;
use super::{Session, User};
use crate::db::schema::{refresh_tokens, sessions, user_roles, users};
use crate::db::{Id, StatementCache};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct RefreshToken {
    pub id: Id,
    pub session_id: Id,
    pub token_hash: String,
    pub created_at: i64,
    pub spent_at: Option<i64>,
    pub expires_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    pub id: Id,
    pub session_id: Id,
    pub token_hash: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A refresh token with its session, the session's user and that user's role names.
pub type RefreshFamily = (RefreshToken, Session, User, Vec<String>);

#[allow(async_fn_in_trait)]
pub trait RefreshTokenStore {
    async fn insert_refresh_token(&mut self, token: &NewRefreshToken<'_>) -> QueryResult<()>;
    async fn find_refresh_token(&mut self, hash: &str) -> QueryResult<Option<RefreshToken>>;
    /// The token with its session, user and the user's role names, in one query.
    async fn find_refresh_family(&mut self, hash: &str) -> QueryResult<Option<RefreshFamily>>;
    /// Marks the token spent unless it already is; `true` for the one caller that did it.
    async fn spend_refresh_token(&mut self, id: Id, now: i64) -> QueryResult<bool>;
    /// Deletes up to `limit` tokens that expired before `now`: they can no longer be exchanged.
    async fn delete_dead_refresh_tokens(&mut self, now: i64, limit: i64) -> QueryResult<usize>;
}

for_each_backend! {
impl RefreshTokenStore {
    async fn insert_refresh_token(&mut self, token: &NewRefreshToken<'_>) -> QueryResult<()> {
        StatementCache(diesel::insert_into(refresh_tokens::table).values(token)).execute(self).await.map(|_| ())
    }

    async fn find_refresh_token(&mut self, hash: &str) -> QueryResult<Option<RefreshToken>> {
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(hash))
            .select(RefreshToken::as_select())
            .get_result(self)
            .await
            .optional()
    }

    async fn find_refresh_family(&mut self, hash: &str) -> QueryResult<Option<RefreshFamily>> {
        let rows: Vec<(RefreshToken, Session, User, Option<String>)> = refresh_tokens::table
            .inner_join(sessions::table.inner_join(users::table.left_join(user_roles::table)))
            .filter(refresh_tokens::token_hash.eq(hash))
            .select((
                RefreshToken::as_select(),
                Session::as_select(),
                User::as_select(),
                user_roles::role_name.nullable(),
            ))
            .order(user_roles::role_name)
            .load(self)
            .await?;
        let rows = rows.into_iter().map(|(token, session, user, role)| ((token, session, user), role));
        Ok(fold_roles(rows).map(|((token, session, user), roles)| (token, session, user, roles)))
    }

    async fn spend_refresh_token(&mut self, id: Id, now: i64) -> QueryResult<bool> {
        StatementCache(
            diesel::update(refresh_tokens::table.find(id).filter(refresh_tokens::spent_at.is_null()))
                .set(refresh_tokens::spent_at.eq(now)),
        )
        .execute(self)
            .await
            .map(|n| n == 1)
    }

    async fn delete_dead_refresh_tokens(&mut self, now: i64, limit: i64) -> QueryResult<usize> {
        let batch =
            refresh_tokens::table.filter(refresh_tokens::expires_at.lt(now)).select(refresh_tokens::id).limit(limit);
        // Ids first, then delete them: diesel cannot delete from a table filtered by a subquery on
        // itself, and the batch bounds the statement either way.
        let ids: Vec<Id> = batch.load(self).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::id.eq_any(ids))).execute(self).await
    }
}
}
