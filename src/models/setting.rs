//! Instance-wide settings kept in the database, such as the generated signing key.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::settings;

#[allow(async_fn_in_trait)]
pub trait SettingStore {
    /// Stores `value` under `name` unless a value is there already, and returns the value that
    /// is stored afterwards: the first writer wins, so concurrent instances agree.
    async fn setting_or_insert(&mut self, name: &str, value: &str) -> QueryResult<String>;
    /// Replaces `name`'s value if it is still `expected` (another instance may have done it).
    async fn replace_setting(&mut self, name: &str, expected: &str, value: &str) -> QueryResult<()>;
    /// Removes `name` (a secret no longer needed).
    async fn delete_setting(&mut self, name: &str) -> QueryResult<()>;
}

for_each_backend! {
impl SettingStore {
    async fn setting_or_insert(&mut self, name: &str, value: &str) -> QueryResult<String> {
        diesel::insert_into(settings::table)
            .values((settings::name.eq(name), settings::value.eq(value)))
            .on_conflict_do_nothing()
            .execute(self)
            .await?;
        settings::table.find(name).select(settings::value).get_result(self).await
    }

    async fn replace_setting(&mut self, name: &str, expected: &str, value: &str) -> QueryResult<()> {
        diesel::update(settings::table.find(name).filter(settings::value.eq(expected)))
            .set(settings::value.eq(value))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn delete_setting(&mut self, name: &str) -> QueryResult<()> {
        diesel::delete(settings::table.find(name)).execute(self).await.map(|_| ())
    }
}
}
