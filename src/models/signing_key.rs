//! Generated signing keys (`signing_keys`): the newest generation signs, retired ones verify
//! until their last token has expired. The private half is stored as `auth::kek` encodes it.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::{settings, signing_keys};

/// One stored key. `Debug` leaves the private half out.
#[derive(Clone, Queryable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct StoredKey {
    pub kid: String,
    pub generation: i64,
    pub algorithm: String,
    /// The private key as stored (encrypted when a key-encryption key is configured).
    pub private_key: String,
    /// The raw public key, URL-safe base64 (the JWK `x`).
    pub public_key: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("generation", &self.generation)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

#[allow(async_fn_in_trait)]
pub trait SigningKeyStore {
    /// Every stored key, newest generation first.
    async fn signing_keys(&mut self) -> QueryResult<Vec<StoredKey>>;
    /// Inserts `key` unless its generation exists already (another instance won the race);
    /// returns whether it was inserted.
    async fn insert_signing_key(&mut self, key: &StoredKey) -> QueryResult<bool>;
    /// Marks every key older than `generation` that is not retired yet as retired at `now`.
    async fn retire_signing_keys_before(&mut self, generation: i64, now: i64) -> QueryResult<usize>;
    /// Replaces the stored private key of `kid` if it is still `expected` (sealing a key found
    /// in clear: another instance may have done it); returns whether it did.
    async fn reseal_private_key(&mut self, kid: &str, expected: &str, private_key: &str) -> QueryResult<bool>;
    /// Deletes the keys retired before `cutoff` (no token they signed can still be valid);
    /// returns how many.
    async fn delete_signing_keys_retired_before(&mut self, cutoff: i64) -> QueryResult<usize>;
    /// A setting's value, if set.
    async fn setting(&mut self, name: &str) -> QueryResult<Option<String>>;
}

for_each_backend! {
impl SigningKeyStore {
    async fn signing_keys(&mut self) -> QueryResult<Vec<StoredKey>> {
        signing_keys::table.order(signing_keys::generation.desc()).load(self).await
    }

    async fn insert_signing_key(&mut self, key: &StoredKey) -> QueryResult<bool> {
        let inserted = diesel::insert_into(signing_keys::table)
            .values(key)
            .on_conflict_do_nothing()
            .execute(self)
            .await?;
        Ok(inserted == 1)
    }

    async fn retire_signing_keys_before(&mut self, generation: i64, now: i64) -> QueryResult<usize> {
        diesel::update(
            signing_keys::table
                .filter(signing_keys::generation.lt(generation))
                .filter(signing_keys::retired_at.is_null()),
        )
        .set(signing_keys::retired_at.eq(now))
        .execute(self)
        .await
    }

    async fn reseal_private_key(&mut self, kid: &str, expected: &str, private_key: &str) -> QueryResult<bool> {
        diesel::update(signing_keys::table.find(kid).filter(signing_keys::private_key.eq(expected)))
            .set(signing_keys::private_key.eq(private_key))
            .execute(self)
            .await
            .map(|n| n == 1)
    }

    async fn delete_signing_keys_retired_before(&mut self, cutoff: i64) -> QueryResult<usize> {
        diesel::delete(signing_keys::table.filter(signing_keys::retired_at.lt(cutoff))).execute(self).await
    }

    async fn setting(&mut self, name: &str) -> QueryResult<Option<String>> {
        settings::table.find(name).select(settings::value).get_result(self).await.optional()
    }
}
}
