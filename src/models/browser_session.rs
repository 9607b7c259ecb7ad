//! Browser sessions (docs/browser-sign-in.md): a `sessions` row of `portcullis` plus a row here
//! holding the digest of the cookie's token and `auth_time`. Ending the `sessions` row (any of
//! the existing paths) ends the browser session; the row here only marks it and finds it.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::{for_each_backend, Session};
use crate::db::schema::{browser_sessions, sessions};
use crate::db::Id;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = browser_sessions, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct BrowserSessionRow {
    pub session_id: Id,
    /// SHA-256 of the cookie's token (`auth::secrets::hash_token`); never the token.
    pub token_hash: String,
    /// When the password or second factor was last presented (OpenID Connect Core §2).
    pub auth_time: i64,
}

#[allow(async_fn_in_trait)]
pub trait BrowserSessionStore {
    async fn insert_browser_session(&mut self, row: &BrowserSessionRow) -> QueryResult<()>;
    /// The browser session whose cookie token hashes to `token_hash`, with its `sessions` row
    /// (ended or not: the caller judges whether it lives).
    async fn find_browser_session(&mut self, token_hash: &str) -> QueryResult<Option<(BrowserSessionRow, Session)>>;
    /// Which of `ids` are browser sessions (for the session list).
    async fn browser_session_ids(&mut self, ids: &[Id]) -> QueryResult<Vec<Id>>;
}

for_each_backend! {
impl BrowserSessionStore {
    async fn insert_browser_session(&mut self, row: &BrowserSessionRow) -> QueryResult<()> {
        diesel::insert_into(browser_sessions::table).values(row).execute(self).await.map(|_| ())
    }

    async fn find_browser_session(&mut self, token_hash: &str) -> QueryResult<Option<(BrowserSessionRow, Session)>> {
        browser_sessions::table
            .inner_join(sessions::table)
            .filter(browser_sessions::token_hash.eq(token_hash))
            .select((BrowserSessionRow::as_select(), Session::as_select()))
            .get_result(self)
            .await
            .optional()
    }

    async fn browser_session_ids(&mut self, ids: &[Id]) -> QueryResult<Vec<Id>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        browser_sessions::table
            .filter(browser_sessions::session_id.eq_any(ids))
            .select(browser_sessions::session_id)
            .load(self)
            .await
    }
}
}
