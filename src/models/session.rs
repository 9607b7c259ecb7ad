//! Sessions (token families): one per login, ended by logout, reuse, password change, disable
//! or expiry. Ending one also writes the revocation feed other instances poll.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::user::fold_roles;
use super::{for_each_backend, RevocationStore, User};
use crate::clock::{UnixMillis, UnixSeconds};
use crate::db::schema::{authorization_codes, mfa_challenges, sessions, user_roles, users};
use crate::db::{Id, StatementCache};

/// A session with its user and that user's role names, read in one query.
#[derive(Debug)]
pub struct SessionFamily {
    pub session: Session,
    pub user: User,
    pub roles: Vec<String>,
}

/// The state an exchange moves a session to: the next generation, exchanged at `at`. The
/// exchange times are milliseconds, the session's lifetimes seconds: the types keep them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    /// The generation being exchanged: the update applies only while it is still current.
    pub from: i64,
    /// When (`rotated_at`).
    pub at: UnixMillis,
    pub burst_generation: i64,
    pub burst_at: UnixMillis,
    pub last_used_at: UnixSeconds,
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Session {
    pub id: Id,
    pub user_id: Id,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// RFC 8176 authentication methods of the login, space-separated (`pwd`, `pwd otp mfa`).
    pub amr: String,
    /// The generation of the one refresh token that may be exchanged next (see `auth::chain`).
    pub generation: i64,
    /// When `generation - 1` was exchanged, in Unix **milliseconds** (the grace interval is
    /// judged to the millisecond); `None` before the first exchange.
    pub rotated_at: Option<i64>,
    /// The first generation of the current run of exchanges less than `reuse_grace` apart...
    pub burst_generation: i64,
    /// ...and when it was exchanged (milliseconds).
    pub burst_at: Option<i64>,
    /// The resource server (one of `auth.resources`, RFC 8707) the session was started for:
    /// every access token of the session is for it alone. `None`: Portcullis's own audience.
    pub resource: Option<String>,
    /// The client the session belongs to (RFC 6749 §6: only it exchanges the refresh token): a
    /// registered client's id, or [`FIRST_PARTY_CLIENT`] for Portcullis's own sign-in.
    pub client_id: String,
    /// The scope the session was granted when it is down-scoped (space-separated; see
    /// `auth::session::scope`); `None`: the user's roles alone decide.
    pub scope: Option<String>,
    /// The browser session whose authorization code started this session (RP-initiated
    /// logout ends it with that one); `None` for sessions started any other way.
    pub browser_session_id: Option<Id>,
    /// When the user authenticated for the code that started this session (OpenID Connect Core
    /// §2 `auth_time`, kept for the ID tokens of its refreshes); `None` without a code.
    pub auth_time: Option<i64>,
}

/// The `client_id` of sessions started first-party: `/auth/login`, the hosted pages, and the
/// password grant without a registered client's credentials.
pub const FIRST_PARTY_CLIENT: &str = "portcullis";

impl Session {
    /// Whether the session still lives at `now`: not ended, within its absolute lifetime, and
    /// used within the last `refresh_ttl` seconds.
    pub fn is_live(&self, now: i64, refresh_ttl: i64) -> bool {
        self.ended_at.is_none() && self.expires_at > now && self.last_used_at + refresh_ttl > now
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub id: Id,
    pub user_id: Id,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub amr: &'a str,
    pub resource: Option<&'a str>,
    pub client_id: &'a str,
    pub scope: Option<&'a str>,
}

/// What a session started by the authorization-code grant records beside [`NewSession`]: inserted
/// with it as one row ([`SessionStore::insert_code_session`]).
#[derive(Debug, Clone, Copy, Insertable)]
#[diesel(table_name = sessions)]
pub struct CodeSessionOrigin {
    pub browser_session_id: Id,
    pub auth_time: i64,
}

/// When ended sessions stop mattering to the revocation set: once every access token issued
/// for them has expired.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    pub now: i64,
    pub reason: &'a str,
    /// `now + access_ttl + leeway`: the revocation feed row lives until then.
    pub revoke_until: i64,
}

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
    /// Ids of a user's sessions that live at `now`, least recently used first.
    async fn live_sessions_lru(&mut self, user_id: Id, now: i64, refresh_ttl: i64) -> QueryResult<Vec<Id>>;
    /// Takes the user's row lock (PostgreSQL; SQLite has one writer anyway) so that concurrent
    /// logins of one user count its live sessions one after the other.
    async fn lock_user_sessions(&mut self, user_id: Id) -> QueryResult<()>;
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
        diesel::insert_into(sessions::table).values((session, origin)).execute(self).await.map(|_| ())
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

    async fn live_sessions_lru(&mut self, user_id: Id, now: i64, refresh_ttl: i64) -> QueryResult<Vec<Id>> {
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::ended_at.is_null())
            .filter(sessions::expires_at.gt(now))
            .filter(sessions::last_used_at.gt(now - refresh_ttl))
            .order((sessions::last_used_at.asc(), sessions::created_at.asc(), sessions::id))
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

    async fn live_sessions(
        &mut self,
        user_id: Id,
        now: i64,
        refresh_ttl: i64,
        (limit, offset): (i64, i64),
    ) -> QueryResult<Vec<Session>> {
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::ended_at.is_null())
            .filter(sessions::expires_at.gt(now))
            .filter(sessions::last_used_at.gt(now - refresh_ttl))
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
