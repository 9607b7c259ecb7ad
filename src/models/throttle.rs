//! Failed-login counters per account and per client address, shared by every instance.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::for_each_backend;
use crate::db::schema::login_throttle;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = login_throttle, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Throttle {
    pub key: String,
    pub failures: i32,
    pub window_start: i64,
    pub locked_until: i64,
}

#[allow(async_fn_in_trait)]
pub trait ThrottleStore {
    async fn find_throttles(&mut self, keys: &[String]) -> QueryResult<Vec<Throttle>>;
    async fn save_throttle(&mut self, throttle: &Throttle) -> QueryResult<()>;
    /// Creates the counter if missing and locks its row until the transaction ends (PostgreSQL;
    /// SQLite's single writer already serialises).
    async fn lock_throttle(&mut self, key: &str, now: i64) -> QueryResult<()>;
    async fn clear_throttle(&mut self, key: &str) -> QueryResult<()>;
    /// Deletes every counter whose key starts with `prefix` (which holds no `LIKE` wildcard).
    async fn clear_throttles_starting(&mut self, prefix: &str) -> QueryResult<()>;
    /// Takes one attempt back from a counter, deleting it at zero.
    async fn uncount_throttle(&mut self, key: &str) -> QueryResult<()>;
    /// Puts the lock back to `before` if it is still the one set at `set`.
    async fn restore_throttle_lock(&mut self, key: &str, set: i64, before: i64) -> QueryResult<()>;
    /// Deletes up to `limit` counters whose window started before `cutoff` (for keys starting
    /// with `other.0`: before `other.1`) and that are not locked at `now`.
    async fn delete_stale_throttles(
        &mut self,
        cutoff: i64,
        other: (&str, i64),
        now: i64,
        limit: i64,
    ) -> QueryResult<usize>;
}

for_each_backend! {
impl ThrottleStore {
    async fn find_throttles(&mut self, keys: &[String]) -> QueryResult<Vec<Throttle>> {
        login_throttle::table.filter(login_throttle::key.eq_any(keys)).select(Throttle::as_select()).load(self).await
    }

    async fn save_throttle(&mut self, t: &Throttle) -> QueryResult<()> {
        let values = (
            login_throttle::key.eq(&t.key),
            login_throttle::failures.eq(t.failures),
            login_throttle::window_start.eq(t.window_start),
            login_throttle::locked_until.eq(t.locked_until),
        );
        diesel::insert_into(login_throttle::table)
            .values(values)
            .on_conflict(login_throttle::key)
            .do_update()
            .set((
                login_throttle::failures.eq(t.failures),
                login_throttle::window_start.eq(t.window_start),
                login_throttle::locked_until.eq(t.locked_until),
            ))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn lock_throttle(&mut self, key: &str, now: i64) -> QueryResult<()> {
        diesel::insert_into(login_throttle::table)
            .values((
                login_throttle::key.eq(key),
                login_throttle::failures.eq(0),
                login_throttle::window_start.eq(now),
                login_throttle::locked_until.eq(0i64),
            ))
            .on_conflict(login_throttle::key)
            .do_update()
            .set(login_throttle::failures.eq(login_throttle::failures))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn clear_throttle(&mut self, key: &str) -> QueryResult<()> {
        diesel::delete(login_throttle::table.find(key)).execute(self).await.map(|_| ())
    }

    async fn clear_throttles_starting(&mut self, prefix: &str) -> QueryResult<()> {
        let pattern = format!("{prefix}%");
        diesel::delete(login_throttle::table.filter(login_throttle::key.like(pattern))).execute(self).await.map(|_| ())
    }

    async fn restore_throttle_lock(&mut self, key: &str, set: i64, before: i64) -> QueryResult<()> {
        diesel::update(login_throttle::table.find(key).filter(login_throttle::locked_until.eq(set)))
            .set(login_throttle::locked_until.eq(before))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn uncount_throttle(&mut self, key: &str) -> QueryResult<()> {
        diesel::update(login_throttle::table.find(key))
            .set(login_throttle::failures.eq(login_throttle::failures - 1))
            .execute(self)
            .await?;
        diesel::delete(login_throttle::table.find(key).filter(login_throttle::failures.le(0)))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn delete_stale_throttles(&mut self, cutoff: i64, other: (&str, i64), now: i64, limit: i64) -> QueryResult<usize> {
        let pattern = format!("{}%", other.0);
        // Keys first (through login_throttle_window_idx), then delete them: diesel cannot delete
        // from a table filtered by a limited subquery on itself, and the limit bounds the batch.
        let keys: Vec<String> = login_throttle::table
            .filter(login_throttle::window_start.lt(cutoff.max(other.1)))
            .filter(
                login_throttle::key.not_like(&pattern).and(login_throttle::window_start.lt(cutoff))
                    .or(login_throttle::key.like(&pattern).and(login_throttle::window_start.lt(other.1))),
            )
            .filter(login_throttle::locked_until.lt(now))
            .select(login_throttle::key)
            .limit(limit)
            .load(self)
            .await?;
        if keys.is_empty() {
            return Ok(0);
        }
        // The conditions again: a counter a login touched since the read stays.
        diesel::delete(
            login_throttle::table
                .filter(login_throttle::key.eq_any(keys))
                .filter(
                    login_throttle::key.not_like(&pattern).and(login_throttle::window_start.lt(cutoff))
                        .or(login_throttle::key.like(&pattern).and(login_throttle::window_start.lt(other.1))),
                )
                .filter(login_throttle::locked_until.lt(now)),
        )
        .execute(self)
        .await
    }
}
}
