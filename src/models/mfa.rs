//! Multi-factor authentication: the TOTP secret and last accepted step per user, the hashed
//! recovery codes, and the pending second steps of logins (`mfa_token`s, stored hashed).
//!
//! Every "works once" rule is a conditional write whose row count says who won: raising
//! `last_step` only upwards, deleting a recovery code or a challenge. On PostgreSQL a concurrent
//! writer waits on the row lock and then re-checks the condition against the committed row; on
//! SQLite the writer's `BEGIN IMMEDIATE` serialises them. Either way exactly one caller sees 1.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::{mfa_challenges, mfa_recovery_codes, mfa_totp, users};
use crate::db::Id;

/// A user's TOTP row: pending while `users.mfa_enabled` is false. `Debug` hides the secret.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = mfa_totp, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct TotpRow {
    pub user_id: Id,
    /// The sealed secret (see `auth::mfa::secret`).
    pub secret: String,
    pub last_step: i64,
    pub created_at: i64,
}

impl std::fmt::Debug for TotpRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRow").field("user_id", &self.user_id).field("last_step", &self.last_step).finish()
    }
}

/// A pending second step of a login.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mfa_challenges, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct MfaChallenge {
    pub token_hash: String,
    pub user_id: Id,
    pub attempts: i32,
    pub expires_at: i64,
    /// The RFC 8707 `resource` named at the password step: the session's audience.
    pub resource: Option<String>,
    /// The scope the login asked for at the password step (already checked for syntax); the
    /// second step starts the session with it.
    pub scope: Option<String>,
}

#[allow(async_fn_in_trait)]
pub trait MfaStore {
    async fn find_totp(&mut self, user_id: Id) -> QueryResult<Option<TotpRow>>;
    /// Every stored TOTP secret, to check and seal them at start-up (`auth::keys::sealing`).
    async fn totp_secrets(&mut self) -> QueryResult<Vec<(Id, String)>>;
    /// Replaces `user_id`'s secret if it is still `expected`; returns whether it did.
    async fn reseal_totp_secret(&mut self, user_id: Id, expected: &str, secret: &str) -> QueryResult<bool>;
    /// Stores a new pending secret, replacing any earlier row of the user.
    async fn replace_totp(&mut self, user_id: Id, secret: &str, now: i64) -> QueryResult<()>;
    /// Raises the user's last accepted step to `step` while the stored secret is still `secret`;
    /// `true` only if the step was lower (the code's one accepted use).
    async fn claim_totp_step(&mut self, user_id: Id, secret: &str, step: i64) -> QueryResult<bool>;
    /// Sets the account's MFA flag to `to` if it is `from`; `true` when it was. On PostgreSQL
    /// this locks the account row, which serialises enrolment, confirmation and disabling.
    async fn switch_mfa(&mut self, user_id: Id, from: bool, to: bool, now: i64) -> QueryResult<bool>;
    /// Deletes the secret and every pending login step of the user (the recovery codes stay).
    async fn delete_totp(&mut self, user_id: Id) -> QueryResult<()>;
    /// Deletes the secret, every recovery code and every pending login step of the user.
    async fn delete_mfa(&mut self, user_id: Id) -> QueryResult<()>;
    /// Replaces the user's recovery codes with `hashes`.
    async fn replace_recovery_codes(&mut self, user_id: Id, hashes: &[String]) -> QueryResult<()>;
    /// How many unused recovery codes the user has.
    async fn count_recovery_codes(&mut self, user_id: Id) -> QueryResult<i64>;
    /// Deletes one unused recovery code; `true` for the one caller that did.
    async fn use_recovery_code(&mut self, user_id: Id, hash: &str) -> QueryResult<bool>;
    /// Stores a challenge and deletes the user's expired ones.
    async fn insert_challenge(&mut self, challenge: &MfaChallenge, now: i64) -> QueryResult<()>;
    async fn find_challenge(&mut self, hash: &str) -> QueryResult<Option<MfaChallenge>>;
    /// Uses one of the challenge's `max` attempts while it is live at `now`; `true` when one
    /// was left. Concurrent guesses cannot exceed `max` together.
    async fn take_challenge_attempt(&mut self, hash: &str, max: i32, now: i64) -> QueryResult<bool>;
    /// Deletes the challenge; `true` for the one caller that did (single use).
    async fn consume_challenge(&mut self, hash: &str) -> QueryResult<bool>;
}

for_each_backend! {
impl MfaStore {
    async fn find_totp(&mut self, user_id: Id) -> QueryResult<Option<TotpRow>> {
        mfa_totp::table.find(user_id).select(TotpRow::as_select()).get_result(self).await.optional()
    }

    async fn totp_secrets(&mut self) -> QueryResult<Vec<(Id, String)>> {
        mfa_totp::table.select((mfa_totp::user_id, mfa_totp::secret)).load(self).await
    }

    async fn reseal_totp_secret(&mut self, user_id: Id, expected: &str, secret: &str) -> QueryResult<bool> {
        diesel::update(mfa_totp::table.find(user_id).filter(mfa_totp::secret.eq(expected)))
            .set(mfa_totp::secret.eq(secret))
            .execute(self)
            .await
            .map(|n| n == 1)
    }

    async fn replace_totp(&mut self, user_id: Id, secret: &str, now: i64) -> QueryResult<()> {
        diesel::delete(mfa_totp::table.find(user_id)).execute(self).await?;
        diesel::insert_into(mfa_totp::table)
            .values((
                mfa_totp::user_id.eq(user_id),
                mfa_totp::secret.eq(secret),
                mfa_totp::last_step.eq(0),
                mfa_totp::created_at.eq(now),
            ))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn claim_totp_step(&mut self, user_id: Id, secret: &str, step: i64) -> QueryResult<bool> {
        diesel::update(
            mfa_totp::table
                .find(user_id)
                .filter(mfa_totp::secret.eq(secret))
                .filter(mfa_totp::last_step.lt(step)),
        )
        .set(mfa_totp::last_step.eq(step))
        .execute(self)
        .await
        .map(|n| n == 1)
    }

    async fn switch_mfa(&mut self, user_id: Id, from: bool, to: bool, now: i64) -> QueryResult<bool> {
        diesel::update(users::table.find(user_id).filter(users::mfa_enabled.eq(from)))
            .set((users::mfa_enabled.eq(to), users::updated_at.eq(now)))
            .execute(self)
            .await
            .map(|n| n == 1)
    }

    async fn delete_totp(&mut self, user_id: Id) -> QueryResult<()> {
        diesel::delete(mfa_totp::table.find(user_id)).execute(self).await?;
        diesel::delete(mfa_challenges::table.filter(mfa_challenges::user_id.eq(user_id))).execute(self).await.map(|_| ())
    }

    async fn delete_mfa(&mut self, user_id: Id) -> QueryResult<()> {
        diesel::delete(mfa_totp::table.find(user_id)).execute(self).await?;
        diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)))
            .execute(self)
            .await?;
        diesel::delete(mfa_challenges::table.filter(mfa_challenges::user_id.eq(user_id))).execute(self).await.map(|_| ())
    }

    async fn replace_recovery_codes(&mut self, user_id: Id, hashes: &[String]) -> QueryResult<()> {
        diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)))
            .execute(self)
            .await?;
        // Row by row: multi-row inserts do not compile for the SQLite wrapper.
        for hash in hashes {
            diesel::insert_into(mfa_recovery_codes::table)
                .values((mfa_recovery_codes::user_id.eq(user_id), mfa_recovery_codes::code_hash.eq(hash)))
                .execute(self)
                .await?;
        }
        Ok(())
    }

    async fn count_recovery_codes(&mut self, user_id: Id) -> QueryResult<i64> {
        mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)).count().get_result(self).await
    }

    async fn use_recovery_code(&mut self, user_id: Id, hash: &str) -> QueryResult<bool> {
        diesel::delete(mfa_recovery_codes::table.find((user_id, hash))).execute(self).await.map(|n| n == 1)
    }

    async fn insert_challenge(&mut self, challenge: &MfaChallenge, now: i64) -> QueryResult<()> {
        diesel::delete(
            mfa_challenges::table
                .filter(mfa_challenges::user_id.eq(challenge.user_id))
                .filter(mfa_challenges::expires_at.le(now)),
        )
        .execute(self)
        .await?;
        diesel::insert_into(mfa_challenges::table)
            .values((
                mfa_challenges::token_hash.eq(&challenge.token_hash),
                mfa_challenges::user_id.eq(challenge.user_id),
                mfa_challenges::attempts.eq(challenge.attempts),
                mfa_challenges::expires_at.eq(challenge.expires_at),
                mfa_challenges::resource.eq(&challenge.resource),
                mfa_challenges::scope.eq(&challenge.scope),
            ))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn find_challenge(&mut self, hash: &str) -> QueryResult<Option<MfaChallenge>> {
        mfa_challenges::table.find(hash).select(MfaChallenge::as_select()).get_result(self).await.optional()
    }

    async fn take_challenge_attempt(&mut self, hash: &str, max: i32, now: i64) -> QueryResult<bool> {
        diesel::update(
            mfa_challenges::table
                .find(hash)
                .filter(mfa_challenges::attempts.lt(max))
                .filter(mfa_challenges::expires_at.gt(now)),
        )
        .set(mfa_challenges::attempts.eq(mfa_challenges::attempts + 1))
        .execute(self)
        .await
        .map(|n| n == 1)
    }

    async fn consume_challenge(&mut self, hash: &str) -> QueryResult<bool> {
        diesel::delete(mfa_challenges::table.find(hash)).execute(self).await.map(|n| n == 1)
    }
}
}
