//! Sessions (token families): one per login, ended by logout, reuse, password change, disable
//! or expiry. Ending one also writes the revocation feed other instances poll.

use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::RunQueryDsl;

use super::{for_each_backend, RevocationStore};
use crate::db::schema::sessions;
use crate::db::{Id, Reuse};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
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
}

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

#[allow(async_fn_in_trait)]
pub trait SessionStore {
    async fn insert_session(&mut self, session: &NewSession<'_>) -> QueryResult<()>;
    async fn find_session(&mut self, id: Id) -> QueryResult<Option<Session>>;
    async fn touch_session(&mut self, id: Id, now: i64) -> QueryResult<()>;
    /// Sessions of a user that still live at `now`, newest first.
    async fn live_sessions(&mut self, user_id: Id, now: i64, refresh_ttl: i64) -> QueryResult<Vec<Session>>;
    /// Ends one session if it has not ended yet; returns whether this call ended it.
    async fn end_session(&mut self, id: Id, ending: Ending<'_>) -> QueryResult<bool>;
    /// Ends every session of a user except `keep`; returns the ids it ended.
    async fn end_user_sessions(&mut self, user_id: Id, keep: Option<Id>, ending: Ending<'_>) -> QueryResult<Vec<Id>>;
    /// Deletes sessions (and by cascade their tokens) that ended, or expired absolutely or by
    /// inactivity, before `cutoff`.
    async fn delete_old_sessions(&mut self, cutoff: i64, refresh_ttl: i64) -> QueryResult<usize>;
}

for_each_backend! {
impl SessionStore {
    async fn insert_session(&mut self, session: &NewSession<'_>) -> QueryResult<()> {
        Reuse(diesel::insert_into(sessions::table).values(session)).execute(self).await.map(|_| ())
    }

    async fn find_session(&mut self, id: Id) -> QueryResult<Option<Session>> {
        sessions::table.find(id).select(Session::as_select()).get_result(self).await.optional()
    }

    async fn touch_session(&mut self, id: Id, now: i64) -> QueryResult<()> {
        Reuse(diesel::update(sessions::table.find(id)).set(sessions::last_used_at.eq(now))).execute(self).await.map(|_| ())
    }

    async fn live_sessions(&mut self, user_id: Id, now: i64, refresh_ttl: i64) -> QueryResult<Vec<Session>> {
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::ended_at.is_null())
            .filter(sessions::expires_at.gt(now))
            .filter(sessions::last_used_at.gt(now - refresh_ttl))
            .order((sessions::created_at.desc(), sessions::id))
            .select(Session::as_select())
            .load(self)
            .await
    }

    async fn end_session(&mut self, id: Id, ending: Ending<'_>) -> QueryResult<bool> {
        let ended: Option<Id> = Reuse(
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
        Ok(ended)
    }

    async fn delete_old_sessions(&mut self, cutoff: i64, refresh_ttl: i64) -> QueryResult<usize> {
        diesel::delete(
            sessions::table.filter(
                sessions::ended_at
                    .lt(cutoff)
                    .or(sessions::expires_at.lt(cutoff))
                    .or(sessions::last_used_at.lt(cutoff - refresh_ttl)),
            ),
        )
        .execute(self)
        .await
    }
}
}
