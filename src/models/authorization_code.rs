//! Authorization codes (`authorization_codes`): stored by the SHA-256 digest of the code, and
//! redeemed once by one conditional UPDATE (see [`AuthorizationCodeStore::redeem_code`]).

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::{authorization_codes, users};
use crate::db::{Id, StatementCache};

/// A code as stored: what the authorization request decided, waiting for the token request.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub client_id: Id,
    pub redirect_uri: String,
    /// The S256 `code_challenge` of the request (RFC 7636 §4.2).
    pub code_challenge: String,
    /// The granted scope, space-separated.
    pub scope: String,
    pub nonce: Option<String>,
    pub resource: Option<String>,
    pub user_id: Id,
    /// When the user authenticated (OpenID Connect Core §2 `auth_time`).
    pub auth_time: i64,
    /// How the user authenticated (RFC 8176), space-separated.
    pub amr: String,
    /// The browser session the code was issued in.
    pub browser_session_id: Id,
    pub created_at: i64,
    pub expires_at: i64,
    pub redeemed_at: Option<i64>,
    /// The session the redemption started.
    pub session_id: Option<Id>,
}

/// What the token request presents with a code: each must match the stored request.
#[derive(Debug, Clone, Copy)]
pub struct CodeBinding<'a> {
    pub client_id: Id,
    pub redirect_uri: &'a str,
    /// The S256 challenge computed from the presented `code_verifier`.
    pub code_challenge: &'a str,
}

/// The outcome of [`AuthorizationCodeStore::redeem_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// This call redeemed the code; the row as it now is.
    Redeemed(AuthorizationCode),
    /// The code was redeemed before: the session that redemption started (RFC 6749 §4.1.2).
    Replayed { user_id: Id, session_id: Option<Id> },
    /// Expired, or presented by another client, with another `redirect_uri` or verifier: not
    /// redeemed, and not spent.
    Refused(AuthorizationCode),
    /// No such code.
    Unknown,
}

#[allow(async_fn_in_trait)]
pub trait AuthorizationCodeStore {
    async fn insert_code(&mut self, code: &AuthorizationCode) -> QueryResult<()>;
    /// Redeems the code of `code_hash` if it is unredeemed, unexpired at `now` and bound to
    /// `binding`, recording `session_id` as the session it starts: one conditional UPDATE, so of
    /// concurrent redemptions exactly one succeeds. Run it in the transaction that inserts that
    /// session, so a replay that ends the session always finds it.
    async fn redeem_code(
        &mut self,
        code_hash: &str,
        binding: CodeBinding<'_>,
        now: i64,
        session_id: Id,
    ) -> QueryResult<CodeRedemption>;
    /// Takes the session lock of the user a code was issued for, whatever the code's state, as
    /// [`SessionStore::lock_user_for_session`](super::SessionStore) does (the exchange is about
    /// to start a session), and returns that user and its raised `session_bound` (`None`: no
    /// such code). Run before [`redeem_code`](Self::redeem_code) so that the exchange takes the
    /// user's lock first, in the order every path that ends sessions takes its locks. One
    /// statement: reading the owner and then locking it were two round trips.
    async fn lock_code_owner(&mut self, code_hash: &str) -> QueryResult<Option<(Id, i64)>>;
    /// Deletes the unredeemed codes of a browser session (it ended); returns how many.
    async fn void_browser_session_codes(&mut self, browser_session_id: Id) -> QueryResult<usize>;
    /// Deletes up to `limit` codes that expired before `cutoff`; returns how many.
    async fn delete_expired_codes(&mut self, cutoff: i64, limit: i64) -> QueryResult<usize>;
}

for_each_backend! {
impl AuthorizationCodeStore {
    async fn insert_code(&mut self, code: &AuthorizationCode) -> QueryResult<()> {
        // Cached (`StatementCache`): one text per set of absent optional values.
        StatementCache(diesel::insert_into(authorization_codes::table).values(code)).execute(self).await.map(|_| ())
    }

    async fn redeem_code(
        &mut self,
        code_hash: &str,
        binding: CodeBinding<'_>,
        now: i64,
        session_id: Id,
    ) -> QueryResult<CodeRedemption> {
        // Cached (`StatementCache`, one text): prepared afresh, it was parsed on every exchange.
        let redeemed = StatementCache(diesel::update(
            authorization_codes::table
                .find(code_hash)
                .filter(authorization_codes::redeemed_at.is_null())
                .filter(authorization_codes::expires_at.gt(now))
                .filter(authorization_codes::client_id.eq(binding.client_id))
                .filter(authorization_codes::redirect_uri.eq(binding.redirect_uri))
                .filter(authorization_codes::code_challenge.eq(binding.code_challenge)),
        )
        .set((authorization_codes::redeemed_at.eq(now), authorization_codes::session_id.eq(session_id)))
        .returning(AuthorizationCode::as_returning()))
        .get_result(self)
        .await
        .optional()?;
        if let Some(code) = redeemed {
            return Ok(CodeRedemption::Redeemed(code));
        }
        let found = authorization_codes::table
            .find(code_hash)
            .select(AuthorizationCode::as_select())
            .get_result(self)
            .await
            .optional()?;
        Ok(match found {
            None => CodeRedemption::Unknown,
            Some(code) if code.redeemed_at.is_some() => {
                CodeRedemption::Replayed { user_id: code.user_id, session_id: code.session_id }
            }
            Some(code) => CodeRedemption::Refused(code),
        })
    }

    async fn lock_code_owner(&mut self, code_hash: &str) -> QueryResult<Option<(Id, i64)>> {
        let owner = authorization_codes::table.find(code_hash).select(authorization_codes::user_id).single_value();
        StatementCache(
            diesel::update(users::table.filter(users::id.nullable().eq(owner)))
                .set(users::session_bound.eq(users::session_bound + 1))
                .returning((users::id, users::session_bound)),
        )
        .get_result(self)
        .await
        .optional()
    }

    async fn void_browser_session_codes(&mut self, browser_session_id: Id) -> QueryResult<usize> {
        diesel::delete(
            authorization_codes::table
                .filter(authorization_codes::browser_session_id.eq(browser_session_id))
                .filter(authorization_codes::redeemed_at.is_null()),
        )
        .execute(self)
        .await
    }

    async fn delete_expired_codes(&mut self, cutoff: i64, limit: i64) -> QueryResult<usize> {
        let hashes: Vec<String> = authorization_codes::table
            .filter(authorization_codes::expires_at.lt(cutoff))
            .select(authorization_codes::code_hash)
            .limit(limit)
            .load(self)
            .await?;
        if hashes.is_empty() {
            return Ok(0);
        }
        diesel::delete(authorization_codes::table.filter(authorization_codes::code_hash.eq_any(hashes)))
            .execute(self)
            .await
    }
}
}
