//! `mail_tokens`: the digests of tokens sent in mail links (password reset, address verification,
//! address change). A token is spent by one conditional `UPDATE` ([`MailTokenStore::spend_mail_token`]),
//! so of simultaneous uses exactly one succeeds, on either backend.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::mail_tokens;
use crate::db::Id;

/// A token row; the token itself is never stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mail_tokens, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct MailToken {
    pub token_hash: String,
    pub user_id: Id,
    pub kind: String,
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = mail_tokens)]
pub struct NewMailToken<'a> {
    pub token_hash: &'a str,
    pub user_id: Id,
    pub kind: &'a str,
    pub email: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

#[allow(async_fn_in_trait)]
pub trait MailTokenStore {
    /// Voids the user's unused tokens of `kind`, then stores the new one.
    async fn replace_mail_token(&mut self, token: &NewMailToken<'_>) -> QueryResult<()>;
    /// The live (unused, unexpired) token of `kind` with this digest.
    async fn live_mail_token(&mut self, hash: &str, kind: &str, now: i64) -> QueryResult<Option<MailToken>>;
    /// Spends the token if it is still live: `true` for the one caller that spent it.
    async fn spend_mail_token(&mut self, hash: &str, kind: &str, now: i64) -> QueryResult<bool>;
    /// Deletes the user's unused tokens of `kind` (a password change voids pending resets).
    async fn void_mail_tokens(&mut self, user_id: Id, kind: &str) -> QueryResult<usize>;
    /// Deletes up to `limit` tokens that expired before `cutoff`.
    async fn delete_expired_mail_tokens(&mut self, cutoff: i64, limit: i64) -> QueryResult<usize>;
}

for_each_backend! {
impl MailTokenStore {
    async fn replace_mail_token(&mut self, token: &NewMailToken<'_>) -> QueryResult<()> {
        self.void_mail_tokens(token.user_id, token.kind).await?;
        diesel::insert_into(mail_tokens::table).values(token).execute(self).await.map(|_| ())
    }

    async fn live_mail_token(&mut self, hash: &str, kind: &str, now: i64) -> QueryResult<Option<MailToken>> {
        mail_tokens::table
            .find(hash)
            .filter(mail_tokens::kind.eq(kind))
            .filter(mail_tokens::used_at.is_null())
            .filter(mail_tokens::expires_at.gt(now))
            .select(MailToken::as_select())
            .get_result(self)
            .await
            .optional()
    }

    async fn spend_mail_token(&mut self, hash: &str, kind: &str, now: i64) -> QueryResult<bool> {
        diesel::update(
            mail_tokens::table
                .find(hash)
                .filter(mail_tokens::kind.eq(kind))
                .filter(mail_tokens::used_at.is_null())
                .filter(mail_tokens::expires_at.gt(now)),
        )
        .set(mail_tokens::used_at.eq(now))
        .execute(self)
        .await
        .map(|n| n == 1)
    }

    async fn void_mail_tokens(&mut self, user_id: Id, kind: &str) -> QueryResult<usize> {
        diesel::delete(
            mail_tokens::table
                .filter(mail_tokens::user_id.eq(user_id))
                .filter(mail_tokens::kind.eq(kind))
                .filter(mail_tokens::used_at.is_null()),
        )
        .execute(self)
        .await
    }

    async fn delete_expired_mail_tokens(&mut self, cutoff: i64, limit: i64) -> QueryResult<usize> {
        let hashes: Vec<String> = mail_tokens::table
            .filter(mail_tokens::expires_at.lt(cutoff))
            .select(mail_tokens::token_hash)
            .limit(limit)
            .load(self)
            .await?;
        if hashes.is_empty() {
            return Ok(0);
        }
        diesel::delete(mail_tokens::table.filter(mail_tokens::token_hash.eq_any(hashes))).execute(self).await
    }
}
}
