//! Multi-factor authentication with TOTP (RFC 6238) and recovery codes: enrolment
//! ([`enrol`]), the second step of a login ([`login`]), and what they share here. Every check of
//! a code is counted first by the account's second-factor counter ([`counter`]).
//!
//! A code is accepted only by a conditional write in the transaction that acts on it (see
//! `models::mfa`): of two requests presenting one code, on either backend, exactly one wins.

pub mod counter;
pub mod enrol;
pub mod login;
pub mod methods;
pub mod passkey;
pub mod recovery;
pub mod secret;
pub mod totp;

use diesel::result::QueryResult;
use rocket::http::Status;
use serde_json::json;

use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::password::Verdict;
use crate::auth::throttle::{self, ThrottleKeys};
use crate::auth::Auth;
use crate::db::{DbConn, DbPool, Id};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::models::{AuditStore, MfaStore, NewAuditEvent, User, UserStore};
use methods::Codes;

/// `amr` of a session whose login used a password and a TOTP or recovery code (RFC 8176).
pub const AMR_MFA: &str = "pwd otp mfa";

/// A second factor as a request presents it (the password reset takes either).
pub enum Presented<'a> {
    /// A TOTP code or a recovery code.
    Code(&'a str),
    /// An assertion for a ceremony of `POST /auth/passkeys/login`.
    Passkey { ceremony_id: &'a str, credential: &'a webauthn_rs_core::proto::PublicKeyCredential },
}

/// A second factor as presented, before storage has accepted it once.
pub(in crate::auth) enum Factor {
    /// A TOTP code that matched this step.
    Totp(i64),
    /// The digest of what may be one of the user's recovery codes.
    Recovery(String),
}

/// Accepts `factor` for the account of `codes` inside a write transaction: raises the last
/// accepted TOTP step (only upwards, only while the secret is the one checked) or deletes the
/// recovery code, recording `recovery_used` then. `false`: already used, or not one of the
/// user's codes.
pub(in crate::auth) async fn claim<C: MfaStore + AuditStore>(
    c: &mut C,
    codes: &Codes,
    factor: &Factor,
    recovery_used: &NewAuditEvent<'_>,
) -> QueryResult<bool> {
    match (factor, &codes.totp) {
        (Factor::Totp(step), Some((row, _))) => c.claim_totp_step(row.user_id, &row.secret, *step).await,
        (Factor::Totp(_), None) => Ok(false),
        (Factor::Recovery(digest), _) => {
            let used = c.use_recovery_code(codes.user_id, digest).await?;
            if used {
                c.insert_audit(recovery_used).await?;
            }
            Ok(used)
        }
    }
}

/// Why a transaction that judges a code rolled back: the code (counted as a wrong guess), or
/// something else (its attempt is given back to the second-factor counter).
enum Rejected {
    WrongCode,
    Other(ApiError),
}

impl From<diesel::result::Error> for Rejected {
    fn from(e: diesel::result::Error) -> Self {
        Rejected::Other(e.into())
    }
}

/// 401 `invalid_credentials` for a wrong, replayed or malformed code.
fn wrong_code() -> ApiError {
    ApiError::new(Status::Unauthorized, ErrorCode::InvalidCredentials, "The code is incorrect or was already used.")
}

pub(in crate::auth) fn not_on() -> ApiError {
    ApiError::conflict("Multi-factor authentication is not on for this account.")
}

impl Auth {
    /// Checks the caller's password again, throttled like logins; returns the account and its
    /// throttle keys.
    pub(in crate::auth) async fn reauthenticate(
        &self,
        pool: &DbPool,
        user_id: Id,
        password: &str,
        client: &RequestOrigin,
    ) -> ApiResult<(User, ThrottleKeys)> {
        let user_keys = {
            let mut conn = pool.conn().await?;
            let user = crate::db::with_conn!(conn, |c| c.find_user(user_id).await)?
                .ok_or_else(|| ApiError::invalid_token("The account of this access token no longer exists."))?;
            let keys = ThrottleKeys::new(&user.email, client.ip.as_deref());
            let reservation = throttle::reserve(&mut conn, &keys, &self.config, self.clock.now_ms()).await?;
            (user, keys, reservation)
        };
        let (user, keys, reservation) = (user_keys.0, user_keys.1, user_keys.2);
        if self.hasher.verify(password, Some(&user.password_hash)).await == Verdict::Mismatch {
            throttle::failed(&mut pool.conn().await?, &reservation, self.clock.now_ms()).await?;
            return Err(ApiError::invalid_credentials());
        }
        crate::db::write_tx!(pool.conn().await?, |c| throttle::release(c, &reservation).await)?;
        Ok((user, keys))
    }

    /// Records a wrong second factor: one failure toward the account's login throttling and an
    /// `mfa_failed` audit event. Returns the error to answer with.
    pub(in crate::auth) async fn second_factor_failed(
        &self,
        conn: &mut DbConn,
        user: &User,
        keys: &ThrottleKeys,
        client: &RequestOrigin,
        during: &str,
    ) -> ApiResult<ApiError> {
        let now = self.clock.now();
        throttle::record_failure(conn, keys, &self.config, now).await?;
        let event = audit_event("mfa_failed", now, Some(user.id), client, json!({"during": during}));
        crate::db::write_tx!(conn, |c| c.insert_audit(&event).await)?;
        Ok(wrong_code())
    }
}
