//! ID-token signing keys (`id_token_keys`): per generation one RS256 and one EdDSA key; the
//! newest generation signs, retired ones verify until their last ID token has expired. The
//! private half is stored as `auth::keys::kek` encodes it.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::id_token_keys;

/// One stored ID-token key. `Debug` leaves the private half out.
#[derive(Clone, Queryable, Insertable)]
#[diesel(table_name = id_token_keys)]
pub struct StoredIdTokenKey {
    pub kid: String,
    pub generation: i64,
    /// `RS256` or `EdDSA`.
    pub algorithm: String,
    /// The private key as stored (sealed when a key-encryption key is configured): PKCS#1 DER
    /// for RS256, the 32-byte seed for EdDSA.
    pub private_key: String,
    /// The public half as a JWK (JSON, without `kid`, `alg` and `use`).
    pub public_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for StoredIdTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredIdTokenKey")
            .field("kid", &self.kid)
            .field("generation", &self.generation)
            .field("algorithm", &self.algorithm)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

#[allow(async_fn_in_trait)]
pub trait IdTokenKeyStore {
    /// Every stored key, newest generation first.
    async fn id_token_keys(&mut self) -> QueryResult<Vec<StoredIdTokenKey>>;
    /// Inserts the keys of one generation unless that generation exists already (another
    /// instance or rotation won the race); returns whether they were inserted.
    async fn insert_id_token_keys(&mut self, keys: &[StoredIdTokenKey]) -> QueryResult<bool>;
    /// Marks every key older than `generation` that is not retired yet as retired at `now`.
    async fn retire_id_token_keys_before(&mut self, generation: i64, now: i64) -> QueryResult<usize>;
    /// Replaces the stored private key of `kid` if it is still `expected` (sealing a key found
    /// in clear); returns whether it did.
    async fn reseal_id_token_key(&mut self, kid: &str, expected: &str, private_key: &str) -> QueryResult<bool>;
    /// Deletes the keys retired before `cutoff`; returns how many.
    async fn delete_id_token_keys_retired_before(&mut self, cutoff: i64) -> QueryResult<usize>;
}

for_each_backend! {
impl IdTokenKeyStore {
    async fn id_token_keys(&mut self) -> QueryResult<Vec<StoredIdTokenKey>> {
        id_token_keys::table
            .order((id_token_keys::generation.desc(), id_token_keys::algorithm.desc()))
            .load(self)
            .await
    }

    async fn insert_id_token_keys(&mut self, keys: &[StoredIdTokenKey]) -> QueryResult<bool> {
        let Some(first) = keys.first() else { return Ok(false) };
        // The (generation, algorithm) pairs are unique: a generation another writer inserted
        // first leaves this one's rows out, all of them.
        let exists: i64 = id_token_keys::table
            .filter(id_token_keys::generation.eq(first.generation))
            .count()
            .get_result(self)
            .await?;
        if exists > 0 {
            return Ok(false);
        }
        let mut inserted = 0;
        for key in keys {
            inserted +=
                diesel::insert_into(id_token_keys::table).values(key).on_conflict_do_nothing().execute(self).await?;
        }
        Ok(inserted == keys.len())
    }

    async fn retire_id_token_keys_before(&mut self, generation: i64, now: i64) -> QueryResult<usize> {
        diesel::update(
            id_token_keys::table
                .filter(id_token_keys::generation.lt(generation))
                .filter(id_token_keys::retired_at.is_null()),
        )
        .set(id_token_keys::retired_at.eq(now))
        .execute(self)
        .await
    }

    async fn reseal_id_token_key(&mut self, kid: &str, expected: &str, private_key: &str) -> QueryResult<bool> {
        diesel::update(id_token_keys::table.find(kid).filter(id_token_keys::private_key.eq(expected)))
            .set(id_token_keys::private_key.eq(private_key))
            .execute(self)
            .await
            .map(|n| n == 1)
    }

    async fn delete_id_token_keys_retired_before(&mut self, cutoff: i64) -> QueryResult<usize> {
        diesel::delete(id_token_keys::table.filter(id_token_keys::retired_at.lt(cutoff))).execute(self).await
    }
}
}
