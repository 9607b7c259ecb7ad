//! Sessions (token families): one per login, ended by logout, reuse, password change, disable
//! or expiry. Ending one also writes the revocation feed other instances poll.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

pub use super::session_row::{
    Advance, CodeSessionOrigin, Ending, NewSession, Session, SessionFamily, FIRST_PARTY_CLIENT,
};
use super::user::fold_roles;
use super::{for_each_backend, RevocationStore, User};
use crate::db::schema::{authorization_codes, mfa_challenges, sessions, user_roles, users};
use crate::db::{Id, StatementCache};

/// Adds the ids of `more` not in `ids` yet, up to `limit` in all.
fn merge_ids(ids: &mut Vec<Id>, more: Vec<Id>, limit: i64) {
    let mut seen: std::collections::HashSet<Id> = ids.iter().copied().collect();
    for id in more {
        if ids.len() as i64 >= limit {
            break;
        }
        if seen.insert(id) {
            ids.push(id);
        }
    }
}

/// A user's sessions that live at `now`: not ended, not expired, used within `refresh_ttl` (the
/// one definition of "live" for the cap's count, its eviction list and the session listing).
macro_rules! live_of {
    ($user_id:expr, $now:expr, $refresh_ttl:expr) => {
        sessions::table
            .filter(sessions::user_id.eq($user_id))
            .filter(sessions::ended_at.is_null())
            .filter(sessions::expires_at.gt($now))
            .filter(sessions::last_used_at.gt($now - $refresh_ttl))
    };
}

/// Deletes the unredeemed authorization codes that the browser sessions `ended` issued (contract,
/// "Browser sessions": ending one voids its pending codes), in the transaction that ends them, so
/// every path that ends sessions does it.
macro_rules! void_codes_of {
    ($conn:expr, $ended:expr) => {
        async {
            let ended: &[Id] = $ended;
            if ended.is_empty() {
                return Ok::<usize, diesel::result::Error>(0);
            }
            diesel::delete(
                authorization_codes::table
                    .filter(authorization_codes::browser_session_id.eq_any(ended))
                    .filter(authorization_codes::redeemed_at.is_null()),
            )
            .execute($conn)
            .await
        }
    };
}

#[allow(async_fn_in_trait)]
pub trait SessionStore {
    async fn insert_session(&mut self, session: &NewSession<'_>) -> QueryResult<()>;
    /// Inserts a session started by an authorization code, with where that code came from.
    async fn insert_code_session(&mut self, session: &NewSession<'_>, origin: CodeSessionOrigin) -> QueryResult<()>;
    async fn find_session(&mut self, id: Id) -> QueryResult<Option<Session>>;
    async fn touch_session(&mut self, id: Id, now: i64) -> QueryResult<()>;
    /// The session with its user and the user's role names, in one query.
    async fn find_session_family(&mut self, id: Id) -> QueryResult<Option<SessionFamily>>;
    /// Moves a live session from generation `from` to `from + 1`; `false` when another
    /// exchange got there first (or the session ended): the caller re-reads the session.
    async fn advance_session(&mut self, id: Id, step: Advance) -> QueryResult<bool>;
    /// How many of a user's sessions live at `now` (the live-session cap's count).
    async fn count_live_sessions(&mut self, user_id: Id, now: i64, refresh_ttl: i64) -> QueryResult<i64>;
    /// Ids of the `limit` least recently used of a user's sessions that live at `now`, least
    /// recently used first.
    async fn live_sessions_lru(&mut self, user_id: Id, now: i64, refresh_ttl: i64, limit: i64) -> QueryResult<Vec<Id>>;
    /// Takes the user's row lock (PostgreSQL; SQLite has one writer anyway) so that concurrent
    /// logins of one user count its live sessions one after the other.
    async fn lock_user_sessions(&mut self, user_id: Id) -> QueryResult<()>;
    /// [`lock_user_sessions`](Self::lock_user_sessions) for a sign-in about to start a session:
    /// raises the account's `session_bound` by one in the same statement and returns it
    /// (`None`: no such account). See `auth::session::cap`.
    async fn lock_user_for_session(&mut self, user_id: Id) -> QueryResult<Option<i64>>;
    /// Sets the account's `session_bound` to `live`, its exact number of live sessions.
    async fn set_session_bound(&mut self, user_id: Id, live: i64) -> QueryResult<()>;
    /// Sessions of a user that still live at `now`, newest first: `limit` of them after `offset`.
    async fn live_sessions(
        &mut self,
        user_id: Id,
        now: i64,
        refresh_ttl: i64,
        window: (i64, i64),
    ) -> QueryResult<Vec<Session>>;
    /// Ends one session if it has not ended yet; returns whether this call ended it.
    async fn end_session(&mut self, id: Id, ending: Ending<'_>) -> QueryResult<bool>;
    /// Ends every session of a user except `keep`, and the user's pending `mfa_token`s (a login
    /// started before a password change, disabling or logout-all must not complete); returns the
    /// ids of the sessions it ended.
    async fn end_user_sessions(&mut self, user_id: Id, keep: Option<Id>, ending: Ending<'_>) -> QueryResult<Vec<Id>>;
    /// Ends every live session of the client `client_id` (it was deleted), or only those of
    /// `user` (who revoked the client's consent); returns their ids.
    async fn end_client_sessions(
        &mut self,
        client_id: &str,
        user: Option<Id>,
        ending: Ending<'_>,
    ) -> QueryResult<Vec<Id>>;
    /// Ids of the sessions not yet ended that the codes of the browser session `browser_session_id`
    /// started (RP-initiated logout ends them with it, each through [`end_session`](Self::end_session)).
    async fn sessions_started_by(&mut self, browser_session_id: Id) -> QueryResult<Vec<Id>>;
    /// Deletes up to `limit` sessions (and by cascade their tokens) that ended, or reached their
    /// absolute expiry, before `cutoff`. A session idle past `refresh_ttl` is dead at once but
    /// kept until then: finding it earlier would need an index on `last_used_at`, which every
    /// refresh would rewrite.
    async fn delete_old_sessions(&mut self, cutoff: i64, limit: i64) -> QueryResult<usize>;
}

for_each_backend! {
impl SessionStore {
    async fn insert_session(&mut self, session: &NewSession<'_>) -> QueryResult<()> {
        StatementCache(diesel::insert_into(sessions::table).values(session)).execute(self).await.map(|_| ())
    }

    async fn insert_code_session(&mut self, session: &NewSession<'_>, origin: CodeSessionOrigin) -> QueryResult<()> {
        // Cached like `insert_session`: prepared afresh, it was parsed on every code exchange.
        StatementCache(diesel::insert_into(sessions::table).values((session, origin))).execute(self).await.map(|_| ())
    }

    async fn find_session(&mut self, id: Id) -> QueryResult<Option<Session>> {
        sessions::table.find(id).select(Session::as_select()).get_result(self).await.optional()
    }

    async fn touch_session(&mut self, id: Id, now: i64) -> QueryResult<()> {
        StatementCache(diesel::update(sessions::table.find(id)).set(sessions::last_used_at.eq(now))).execute(self).await.map(|_| ())
    }

    async fn find_session_family(&mut self, id: Id) -> QueryResult<Option<SessionFamily>> {
        let rows: Vec<(Session, User, Option<String>)> = sessions::table
            .inner_join(users::table.left_join(user_roles::table))
            .filter(sessions::id.eq(id))
            .select((Session::as_select(), User::as_select(), user_roles::role_name.nullable()))
            .order(user_roles::role_name)
            .load(self)
            .await?;
        let rows = rows.into_iter().map(|(session, user, role)| ((session, user), role));
        Ok(fold_roles(rows).map(|((session, user), roles)| SessionFamily { session, user, roles }))
    }

    async fn advance_session(&mut self, id: Id, step: Advance) -> QueryResult<bool> {
        StatementCache(
            diesel::update(
                sessions::table
                    .find(id)
                    .filter(sessions::generation.eq(step.from))
                    .filter(sessions::ended_at.is_null()),
            )
            .set((
                sessions::generation.eq(step.from + 1),
                sessions::rotated_at.eq(step.at.0),
                sessions::burst_generation.eq(step.burst_generation),
                sessions::burst_at.eq(step.burst_at.0),
                sessions::last_used_at.eq(step.last_used_at.0),
            )),
        )
        .execute(self)
        .await
        .map(|n| n == 1)
    }

    async fn count_live_sessions(&mut self, user_id: Id, now: i64, refresh_ttl: i64) -> QueryResult<i64> {
        live_of!(user_id, now, refresh_ttl)
            .count()
            .get_result(self)
            .await
    }

    async fn live_sessions_lru(&mut self, user_id: Id, now: i64, refresh_ttl: i64, limit: i64) -> QueryResult<Vec<Id>> {
        live_of!(user_id, now, refresh_ttl)
            .order((sessions::last_used_at.asc(), sessions::created_at.asc(), sessions::id))
            .limit(limit)
            .select(sessions::id)
            .load(self)
            .await
    }

    async fn lock_user_sessions(&mut self, user_id: Id) -> QueryResult<()> {
        StatementCache(diesel::update(users::table.find(user_id)).set(users::updated_at.eq(users::updated_at)))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn lock_user_for_session(&mut self, user_id: Id) -> QueryResult<Option<i64>> {
        StatementCache(
            diesel::update(users::table.find(user_id))
                .set(users::session_bound.eq(users::session_bound + 1))
                .returning(users::session_bound),
        )
        .get_result(self)
        .await
        .optional()
    }

    async fn set_session_bound(&mut self, user_id: Id, live: i64) -> QueryResult<()> {
        StatementCache(diesel::update(users::table.find(user_id)).set(users::session_bound.eq(live)))
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn live_sessions(
        &mut self,
        user_id: Id,
        now: i64,
        refresh_ttl: i64,
        (limit, offset): (i64, i64),
    ) -> QueryResult<Vec<Session>> {
        live_of!(user_id, now, refresh_ttl)
            .order((sessions::created_at.desc(), sessions::id))
            .limit(limit)
            .offset(offset)
            .select(Session::as_select())
            .load(self)
            .await
    }

    async fn end_session(&mut self, id: Id, ending: Ending<'_>) -> QueryResult<bool> {
        let ended: Option<Id> = StatementCache(
            diesel::update(sessions::table.find(id).filter(sessions::ended_at.is_null()))
                .set((sessions::ended_at.eq(ending.now), sessions::end_reason.eq(ending.reason)))
                .returning(sessions::user_id),
        )
        .get_result(self)
            .await
            .optional()?;
        match ended {
            Some(user_id) => {
                self.insert_revocation(id, user_id, ending.now, ending.revoke_until).await?;
                void_codes_of!(self, &[id]).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn end_user_sessions(&mut self, user_id: Id, keep: Option<Id>, ending: Ending<'_>) -> QueryResult<Vec<Id>> {
        let mut query = diesel::update(sessions::table)
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::ended_at.is_null())
            .into_boxed();
        if let Some(keep) = keep {
            query = query.filter(sessions::id.ne(keep));
        }
        let ended: Vec<Id> = query
            .set((sessions::ended_at.eq(ending.now), sessions::end_reason.eq(ending.reason)))
            .returning(sessions::id)
            .get_results(self)
            .await?;
        for id in &ended {
            self.insert_revocation(*id, user_id, ending.now, ending.revoke_until).await?;
        }
        void_codes_of!(self, &ended).await?;
        diesel::delete(mfa_challenges::table.filter(mfa_challenges::user_id.eq(user_id))).execute(self).await?;
        Ok(ended)
    }

    async fn end_client_sessions(&mut self, client_id: &str, user: Option<Id>, ending: Ending<'_>) -> QueryResult<Vec<Id>> {
        let mut query = diesel::update(sessions::table)
            .filter(sessions::client_id.eq(client_id))
            .filter(sessions::ended_at.is_null())
            .into_boxed();
        if let Some(user) = user {
            query = query.filter(sessions::user_id.eq(user));
        }
        let ended: Vec<(Id, Id)> = query
            .set((sessions::ended_at.eq(ending.now), sessions::end_reason.eq(ending.reason)))
            .returning((sessions::id, sessions::user_id))
            .get_results(self)
            .await?;
        for (id, user_id) in &ended {
            self.insert_revocation(*id, *user_id, ending.now, ending.revoke_until).await?;
        }
        Ok(ended.into_iter().map(|(id, _)| id).collect())
    }

    async fn sessions_started_by(&mut self, browser_session_id: Id) -> QueryResult<Vec<Id>> {
        sessions::table
            .filter(sessions::browser_session_id.eq(browser_session_id))
            .filter(sessions::ended_at.is_null())
            .select(sessions::id)
            .load(self)
            .await
    }

    async fn delete_old_sessions(&mut self, cutoff: i64, limit: i64) -> QueryResult<usize> {
        // Two range scans, one per index, rather than one OR: SQLite plans the OR as a scan of
        // every session, which at a million live sessions held the writer for a whole scan.
        let mut ids: Vec<Id> = sessions::table
            .filter(sessions::ended_at.lt(cutoff))
            .select(sessions::id)
            .limit(limit)
            .load(self)
            .await?;
        if (ids.len() as i64) < limit {
            let expired: Vec<Id> =
                sessions::table.filter(sessions::expires_at.lt(cutoff)).select(sessions::id).limit(limit).load(self).await?;
            merge_ids(&mut ids, expired, limit);
        }
        if ids.is_empty() {
            return Ok(0);
        }
        diesel::delete(sessions::table.filter(sessions::id.eq_any(ids))).execute(self).await
    }
}
}
