//! Refresh-token rotation (RFC 9700 §4.14.2: one use per token, reuse ends the family) over
//! constant storage per session; the rules are listed in docs/sessions.md, "Tokens and sessions".
//!
//! A refresh token names its session and generation under a MAC ([`crate::auth::session::chain`]); the session
//! row keeps the current generation and when the previous ones were exchanged. Presenting
//! generation `p` of a session at generation `g`:
//! - `p == g`: the exchange. The row moves to `g + 1` with a conditional UPDATE, so of several
//!   concurrent exchanges exactly one moves it (PostgreSQL: the others wait on the row lock and
//!   match nothing; SQLite: one writer). The answer is the token of `g + 1`.
//! - `p < g`, exchanged within `reuse_grace`: a replay (concurrent tabs). It is answered with the
//!   token of `g` — for `p = g - 1` exactly the successor the first exchange produced, for an
//!   older `p` the newest token of the one chain — never a new chain, so a thief's replay is caught at the next exchange of either party.
//! - `p < g` otherwise: reuse. The session ends, whatever `p` is (the very first token included).
//!
//! When `p` was exchanged is known exactly for `g - 1` (`rotated_at`) and for the start of the
//! current run of exchanges less than `reuse_grace` apart (`burst_*`); a generation in between
//! whose exchange time is not known to be within the grace interval counts as reuse. A replay
//! writes nothing. Exchange times are kept in milliseconds: in whole seconds, a replay up to a
//! second after the grace interval ended could still pass.
//!
//! On PostgreSQL the plain exchange is first tried as one statement (`models::session_pg`); only
//! what it does not cover runs the transaction below.
//!
//! Tokens of the older format (random, hashed in `refresh_tokens`) are exchanged once more by
//! their row and answered with the session's current token of the new format.

use serde_json::json;

use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::secrets::hash_token;
use crate::auth::session::binding::{self, Refresher};
use crate::auth::session::chain::ChainToken;
use crate::auth::session::issued::IssuedTokens;
use crate::auth::session::scope::Scope;
use crate::auth::Auth;
use crate::clock::{UnixMillis, UnixSeconds};
use crate::db::{DbConn, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::session_pg;
use crate::models::{
    Advance, AuditStore, ClientStore, Ending, RefreshTokenStore, Session, SessionFamily, SessionStore,
};

/// What a presented generation means for its session at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Exchange(Advance),
    Replay,
    Reuse,
    /// A generation the server never minted: impossible without the key, answered as unknown.
    Unknown,
}

/// `grace_ms` in milliseconds, like the session's `rotated_at` and `burst_at`.
pub(super) fn judge(session: &Session, presented: i64, now: UnixMillis, grace_ms: i64) -> Verdict {
    let (rotated_at, burst_at) = (session.rotated_at.map(UnixMillis), session.burst_at.map(UnixMillis));
    let current = session.generation;
    if presented > current {
        return Verdict::Unknown;
    }
    if presented == current {
        // A run of exchanges continues while each follows the previous one within the grace
        // interval; otherwise this exchange starts a new one.
        let (burst_generation, burst_at) = match (rotated_at, burst_at) {
            (Some(rotated), Some(at)) if now.within(rotated, grace_ms) => (session.burst_generation, at),
            _ => (current, now),
        };
        return Verdict::Exchange(Advance {
            from: current,
            at: now,
            burst_generation,
            burst_at,
            last_used_at: UnixSeconds(session.last_used_at).max(now.seconds()),
        });
    }
    let within = |at: Option<UnixMillis>| at.is_some_and(|at| now.within(at, grace_ms));
    let replay = grace_ms > 0
        && ((presented == current - 1 && within(rotated_at))
            || (presented >= session.burst_generation && within(burst_at)));
    if replay {
        Verdict::Replay
    } else {
        Verdict::Reuse
    }
}

/// The outcome of an exchange's transaction. Not boxed: one lives per request, briefly.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// Answer with the token of `generation`.
    Issue { session: Session, roles: Vec<String>, generation: i64 },
    /// Reuse ended this session.
    Reused(Id),
}

/// Also the answer to a refresher the session is not bound to ([`binding`]): the answer never
/// tells a real token from a made-up one.
fn unknown() -> ApiError {
    ApiError::invalid_grant("The refresh token is unknown, used, expired or revoked.")
}

/// Ends the session for reuse and audits it, in the caller's transaction.
async fn end_for_reuse<C: SessionStore + AuditStore>(
    c: &mut C,
    session: &Session,
    ending: Ending<'_>,
    client: &RequestOrigin,
) -> Result<Step, ApiError> {
    c.end_session(session.id, ending).await?;
    let event = audit_event(
        "refresh_reuse_detected",
        ending.now,
        Some(session.user_id),
        client,
        json!({"session_id": session.id}),
    );
    c.insert_audit(&event).await?;
    Ok(Step::Reused(session.id))
}

/// The exchange of a token of the current format (once, grace for replays, reuse ends the
/// session), in one write transaction.
async fn exchange<C: SessionStore + AuditStore + ClientStore>(
    c: &mut C,
    (token, refresher): (ChainToken, Refresher<'_>),
    (now_ms, grace_ms): (UnixMillis, i64),
    refresh_ttl: i64,
    ending: Ending<'_>,
    client: &RequestOrigin,
) -> Result<Step, ApiError> {
    let now = ending.now;
    let SessionFamily { mut session, user, roles } = c.find_session_family(token.session).await?.ok_or_else(unknown)?;
    if !binding::may_exchange(c, &session, refresher).await? {
        return Err(unknown());
    }
    if user.disabled {
        return Err(ApiError::account_disabled());
    }
    loop {
        if !session.is_live(now, refresh_ttl) {
            return Err(unknown());
        }
        match judge(&session, token.generation, now_ms, grace_ms) {
            Verdict::Exchange(step) => {
                if c.advance_session(session.id, step).await? {
                    session.generation = step.from + 1;
                    session.last_used_at = step.last_used_at.0;
                    let generation = session.generation;
                    return Ok(Step::Issue { session, roles, generation });
                }
                // A concurrent exchange of the same token committed first: judge again
                // against what it wrote (a replay or reuse now).
                session = c.find_session(session.id).await?.ok_or_else(unknown)?;
                if session.generation == token.generation {
                    return Err(unknown());
                }
            }
            Verdict::Replay => {
                let generation = session.generation;
                return Ok(Step::Issue { session, roles, generation });
            }
            Verdict::Reuse => return end_for_reuse(c, &session, ending, client).await,
            Verdict::Unknown => return Err(unknown()),
        }
    }
}

/// The same rules for a token of the older random format: its row is spent as before, and the
/// answer is the session's current token of the new format.
async fn exchange_legacy<C: SessionStore + AuditStore + RefreshTokenStore + ClientStore>(
    c: &mut C,
    (hash, refresher): (&str, Refresher<'_>),
    grace: i64,
    refresh_ttl: i64,
    ending: Ending<'_>,
    client: &RequestOrigin,
) -> Result<Step, ApiError> {
    let now = ending.now;
    let (token, session, user, roles) = c.find_refresh_family(hash).await?.ok_or_else(unknown)?;
    if !binding::may_exchange(c, &session, refresher).await? {
        return Err(unknown());
    }
    if user.disabled {
        return Err(ApiError::account_disabled());
    }
    if !session.is_live(now, refresh_ttl) || token.expires_at <= now {
        return Err(unknown());
    }
    let spent_at = match token.spent_at {
        None if c.spend_refresh_token(token.id, now).await? => None,
        // Lost a race to a concurrent exchange that has just committed.
        None => Some(now),
        Some(at) => Some(at),
    };
    match spent_at {
        Some(at) if grace == 0 || now - at > grace => end_for_reuse(c, &session, ending, client).await,
        Some(_) => {
            let generation = session.generation;
            Ok(Step::Issue { session, roles, generation })
        }
        None => {
            let mut session = session;
            if now > session.last_used_at {
                c.touch_session(session.id, now).await?;
                session.last_used_at = now;
            }
            let generation = session.generation;
            Ok(Step::Issue { session, roles, generation })
        }
    }
}

impl Auth {
    /// `POST /auth/refresh` and the refresh-token grant: exchanges a refresh token once (RFC
    /// 9700 §4.14.2) for `refresher`, if its session is bound to it ([`binding`]), its access
    /// token for `resource` when given ([`crate::auth::session::audience`]) and down-scoped to
    /// `scope` when given ([`crate::auth::session::scope`]).
    pub async fn refresh(
        &self,
        conn: &mut DbConn,
        presented: &str,
        resource: Option<&str>,
        scope: Option<&str>,
        refresher: Refresher<'_>,
        client: &RequestOrigin,
    ) -> ApiResult<IssuedTokens> {
        let scope = Scope::parse(scope)?;
        self.check_resource(resource)?;
        self.check_binding(conn, presented, resource).await?;
        self.check_refresh_scope(conn, presented, scope.as_ref()).await?;
        let grace = self.config.reuse_grace as i64;
        let refresh_ttl = self.config.refresh_ttl as i64;
        // One reading of the clock: seconds for the session's lifetimes, milliseconds for the grace.
        let now_ms = self.clock.now_millis();
        let ending = self.ending_at("refresh_reuse", now_ms.seconds().0);
        let timing = (now_ms, grace * 1000);
        let step = match self.chain.open(presented) {
            Some(token) => {
                // PostgreSQL: the plain case in one round trip; everything else in a transaction.
                let moved = match conn {
                    DbConn::Pg(pg) => {
                        let (id, from, bound) = (token.session, token.generation, refresher.plain_client());
                        session_pg::advance_in_one_statement(pg, (id, from, bound), timing, refresh_ttl).await?
                    }
                    DbConn::Sqlite(_) => None,
                };
                match moved {
                    Some((session, roles)) => {
                        let generation = session.generation;
                        Step::Issue { session, roles, generation }
                    }
                    None => {
                        let presented = (token, refresher);
                        crate::db::write_tx!(conn, |c| exchange(c, presented, timing, refresh_ttl, ending, client)
                            .await)?
                    }
                }
            }
            None => {
                let hash = hash_token(presented);
                let presented = (hash.as_str(), refresher);
                crate::db::write_tx!(conn, |c| exchange_legacy(c, presented, grace, refresh_ttl, ending, client).await)?
            }
        };
        match step {
            Step::Issue { mut session, roles, generation } => {
                // An unbound session may name a resource at a refresh: for this access token only.
                session.resource = session.resource.or_else(|| resource.map(str::to_owned));
                // A narrower scope, checked before the exchange: for this access token only.
                session.scope = scope.as_ref().map(Scope::to_claim).or(session.scope);
                let refresh = self.chain.mint(session.id, generation);
                let expires = (session.last_used_at + refresh_ttl).min(session.expires_at);
                self.token_response(&session, session.user_id, roles, refresh, expires, ending.now)
            }
            Step::Reused(session) => {
                crate::ops::metrics::reuse_detected();
                self.revoke_locally(&[session], &ending);
                Err(ApiError::invalid_grant("The refresh token was already used; the session has ended."))
            }
        }
    }
}

#[cfg(test)]
mod tests;
