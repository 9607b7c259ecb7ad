//! The rows and values of sessions (token families): what a session is, what starting one
//! writes, and how one ends. The queries are in `session.rs`.

use diesel::prelude::*;

use super::User;
use crate::clock::{UnixMillis, UnixSeconds};
use crate::db::schema::sessions;
use crate::db::Id;

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
