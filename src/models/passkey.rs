//! Passkeys (WebAuthn): each account's credentials, its random WebAuthn user handle, and the
//! ceremonies in progress.
//!
//! The "works once" rules are conditional writes whose row count says who won, as in
//! `models::mfa`: a ceremony is taken by the one `DELETE` that removes it; a use of a credential
//! is recorded by the one `UPDATE` that finds the counter it read; the cap of passkeys is the
//! `UPDATE` of `users.passkey_count` that finds it below the cap.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::{passkey_handles, passkeys, users, webauthn_ceremonies};
use crate::db::Id;

/// A registered credential. `credential` is webauthn-rs's `Credential` as JSON: public data.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = passkeys, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct PasskeyRow {
    pub id: Id,
    pub user_id: Id,
    /// The credential id, base64url without padding.
    pub credential_id: String,
    pub name: String,
    pub credential: String,
    pub sign_count: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A ceremony in progress. `Debug` leaves the state out: it holds the challenge.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webauthn_ceremonies, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Ceremony {
    /// SHA-256 of the `ceremony_id` handed out.
    pub id_hash: String,
    pub purpose: String,
    pub user_id: Option<Id>,
    /// SHA-256 of the `mfa_token` a second-step ceremony completes.
    pub mfa_token_hash: Option<String>,
    pub state: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for Ceremony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ceremony").field("purpose", &self.purpose).field("user_id", &self.user_id).finish()
    }
}

#[allow(async_fn_in_trait)]
pub trait PasskeyStore {
    /// The account's WebAuthn user handle, storing `candidate` if it has none yet.
    async fn passkey_handle(&mut self, user_id: Id, candidate: &str) -> QueryResult<String>;
    /// The account a user handle belongs to.
    async fn user_of_handle(&mut self, handle: &str) -> QueryResult<Option<Id>>;
    async fn list_passkeys(&mut self, user_id: Id) -> QueryResult<Vec<PasskeyRow>>;
    async fn find_passkey(&mut self, credential_id: &str) -> QueryResult<Option<PasskeyRow>>;
    /// Adds `row` while the account holds fewer than `max`; `false` at the cap. A credential id
    /// already registered fails with a unique violation.
    async fn add_passkey(&mut self, row: &PasskeyRow, max: i32) -> QueryResult<bool>;
    /// Deletes one passkey of `user_id`; `true` for the one caller that did.
    async fn delete_passkey(&mut self, user_id: Id, id: Id) -> QueryResult<bool>;
    /// Deletes every passkey of the account (an administrator's MFA reset).
    async fn delete_passkeys(&mut self, user_id: Id) -> QueryResult<()>;
    /// Records a use: stores `credential` and `sign_count` if the counter is still `seen`;
    /// `true` for the one caller that did.
    async fn record_passkey_use(
        &mut self,
        id: Id,
        seen: i64,
        sign_count: i64,
        credential: &str,
        now: i64,
    ) -> QueryResult<bool>;
    /// Stores a ceremony and deletes expired ones.
    async fn insert_ceremony(&mut self, ceremony: &Ceremony, now: i64) -> QueryResult<()>;
    /// Deletes and returns the ceremony if it is live at `now`: single use.
    async fn take_ceremony(&mut self, id_hash: &str, now: i64) -> QueryResult<Option<Ceremony>>;
}

for_each_backend! {
impl PasskeyStore {
    async fn passkey_handle(&mut self, user_id: Id, candidate: &str) -> QueryResult<String> {
        let existing = passkey_handles::table.find(user_id).select(passkey_handles::handle).get_result(self).await.optional()?;
        if let Some(handle) = existing {
            return Ok(handle);
        }
        diesel::insert_into(passkey_handles::table)
            .values((passkey_handles::user_id.eq(user_id), passkey_handles::handle.eq(candidate)))
            .on_conflict_do_nothing()
            .execute(self)
            .await?;
        passkey_handles::table.find(user_id).select(passkey_handles::handle).get_result(self).await
    }

    async fn user_of_handle(&mut self, handle: &str) -> QueryResult<Option<Id>> {
        passkey_handles::table
            .filter(passkey_handles::handle.eq(handle))
            .select(passkey_handles::user_id)
            .get_result(self)
            .await
            .optional()
    }

    async fn list_passkeys(&mut self, user_id: Id) -> QueryResult<Vec<PasskeyRow>> {
        passkeys::table
            .filter(passkeys::user_id.eq(user_id))
            .order((passkeys::created_at.asc(), passkeys::id.asc()))
            .select(PasskeyRow::as_select())
            .load(self)
            .await
    }

    async fn find_passkey(&mut self, credential_id: &str) -> QueryResult<Option<PasskeyRow>> {
        passkeys::table
            .filter(passkeys::credential_id.eq(credential_id))
            .select(PasskeyRow::as_select())
            .get_result(self)
            .await
            .optional()
    }

    async fn add_passkey(&mut self, row: &PasskeyRow, max: i32) -> QueryResult<bool> {
        let counted = diesel::update(users::table.find(row.user_id).filter(users::passkey_count.lt(max)))
            .set(users::passkey_count.eq(users::passkey_count + 1))
            .execute(self)
            .await?;
        if counted != 1 {
            return Ok(false);
        }
        diesel::insert_into(passkeys::table).values(row).execute(self).await.map(|_| true)
    }

    async fn delete_passkey(&mut self, user_id: Id, id: Id) -> QueryResult<bool> {
        let deleted = diesel::delete(passkeys::table.find(id).filter(passkeys::user_id.eq(user_id))).execute(self).await?;
        if deleted == 1 {
            diesel::update(users::table.find(user_id))
                .set(users::passkey_count.eq(users::passkey_count - 1))
                .execute(self)
                .await?;
        }
        Ok(deleted == 1)
    }

    async fn delete_passkeys(&mut self, user_id: Id) -> QueryResult<()> {
        diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id))).execute(self).await?;
        diesel::update(users::table.find(user_id)).set(users::passkey_count.eq(0)).execute(self).await.map(|_| ())
    }

    async fn record_passkey_use(
        &mut self,
        id: Id,
        seen: i64,
        sign_count: i64,
        credential: &str,
        now: i64,
    ) -> QueryResult<bool> {
        diesel::update(passkeys::table.find(id).filter(passkeys::sign_count.eq(seen)))
            .set((
                passkeys::sign_count.eq(sign_count),
                passkeys::credential.eq(credential),
                passkeys::last_used_at.eq(Some(now)),
            ))
            .execute(self)
            .await
            .map(|n| n == 1)
    }

    async fn insert_ceremony(&mut self, ceremony: &Ceremony, now: i64) -> QueryResult<()> {
        diesel::delete(webauthn_ceremonies::table.filter(webauthn_ceremonies::expires_at.le(now))).execute(self).await?;
        diesel::insert_into(webauthn_ceremonies::table).values(ceremony).execute(self).await.map(|_| ())
    }

    async fn take_ceremony(&mut self, id_hash: &str, now: i64) -> QueryResult<Option<Ceremony>> {
        let found = webauthn_ceremonies::table
            .find(id_hash)
            .select(Ceremony::as_select())
            .get_result(self)
            .await
            .optional()?;
        let Some(ceremony) = found else { return Ok(None) };
        let deleted = diesel::delete(webauthn_ceremonies::table.find(id_hash)).execute(self).await?;
        Ok((deleted == 1 && ceremony.expires_at > now).then_some(ceremony))
    }
}
}
