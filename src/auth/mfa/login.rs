//! The two-step login: a correct password on an account with MFA on yields a single-use
//! `mfa_token` (5 minutes, at most 5 codes, stored as a SHA-256 digest, bound to the account and
//! to the `resource` the password step named), and `POST /auth/mfa/verify` trades it and a code
//! for the session, whose tokens are for that resource.
//!
//! The `mfa_token` is opaque and lives in its own table: it is never an access or refresh token.
//! Wrong codes count in the account's second-factor counter (see [`super::counter`]), which a
//! correct password does not clear, so new `mfa_token`s do not buy an attacker new guesses; they
//! count toward the account's login throttling too.

use serde_json::json;

use super::{claim, counter, Factor, AMR_MFA};
use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::secrets::{hash_token, OpaqueToken};
use crate::auth::session::issued::IssuedTokens;
use crate::auth::session::login::Started;
use crate::auth::session::scope::Scope;
use crate::auth::throttle::{self, ThrottleKeys};
use crate::auth::Auth;
use crate::config::Secret;
use crate::db::{DbConn, DbPool};
use crate::error::{ApiError, ApiResult};
use crate::models::{AuditStore, MfaChallenge, MfaStore, User, UserStore, FIRST_PARTY_CLIENT};

/// How long an `mfa_token` lives, in seconds.
const CHALLENGE_TTL: i64 = 300;
/// Codes one `mfa_token` may be tried with.
pub(super) const MAX_ATTEMPTS: i32 = 5;

/// What the code of a second step turned out to be. A wrong code is not an error of the
/// transaction that checks it: nothing was claimed, and the caller counts the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeCheck {
    Accepted,
    Wrong,
}

pub(super) fn dead() -> ApiError {
    ApiError::invalid_grant("The mfa_token is unknown, used, expired, or has had too many wrong codes; log in again.")
}

impl Auth {
    /// After a correct password: `None` when the account has no MFA; otherwise the new
    /// `mfa_token` of the second step, which keeps the `scope` the login asked for.
    pub(in crate::auth) async fn mfa_gate(
        &self,
        conn: &mut DbConn,
        user: &User,
        resource: Option<&str>,
        scope: Option<&Scope>,
        client: &RequestOrigin,
        now: i64,
    ) -> ApiResult<Option<Secret>> {
        if !user.mfa_enabled && user.passkey_count == 0 {
            return Ok(None);
        }
        let token = OpaqueToken::generate();
        let challenge = MfaChallenge {
            token_hash: token.hash().to_owned(),
            user_id: user.id,
            attempts: 0,
            expires_at: now + CHALLENGE_TTL,
            resource: resource.map(str::to_owned),
            scope: scope.map(Scope::to_claim),
        };
        let event = audit_event("mfa_challenged", now, Some(user.id), client, json!({}));
        crate::db::write_tx!(conn, |c| {
            c.insert_challenge(&challenge, now).await?;
            c.insert_audit(&event).await
        })?;
        Ok(Some(Secret::new(token.into_plaintext())))
    }

    /// `POST /auth/mfa/verify`: the `mfa_token` and a TOTP or recovery code start the session,
    /// whose tokens carry `amr` `["pwd","otp","mfa"]`, with the scope asked for at the password
    /// step. Whether the user holds that scope is judged last, as on every sign-in path: after
    /// the code, which has then been used (400 `invalid_scope`; the login starts over).
    pub async fn verify_mfa(
        &self,
        pool: &DbPool,
        mfa_token: &str,
        code: &str,
        client: &RequestOrigin,
    ) -> ApiResult<IssuedTokens> {
        let (challenge, user, now) = self.second_factor_step(pool, mfa_token, code, client).await?;
        let mut conn = pool.conn().await?;
        // The audience and scope chosen at the password step (RFC 8707): the second step only
        // completes it.
        let scope = challenge.scope.as_deref().map(Scope::stored);
        let started = Started {
            amr: AMR_MFA,
            resource: challenge.resource.as_deref(),
            scope: scope.as_ref(),
            reservation: None,
            client_id: FIRST_PARTY_CLIENT,
        };
        self.start_session(&mut conn, user.id, started, client, now).await
    }

    /// The second step of every sign-in with a password and a TOTP or recovery code (the API's
    /// `POST /auth/mfa/verify`, the hosted sign-in's code page): checks the `mfa_token` and the
    /// code, counting wrong codes in the account's second-factor counter and login throttling,
    /// and spends both. Returns the password step's challenge, the account and the time; the
    /// caller starts the session (amr [`AMR_MFA`]).
    pub(crate) async fn second_factor_step(
        &self,
        pool: &DbPool,
        mfa_token: &str,
        code: &str,
        client: &RequestOrigin,
    ) -> ApiResult<(MfaChallenge, User, i64)> {
        let hash = hash_token(mfa_token);
        let now = self.clock.now();
        let mut owned = pool.conn().await?;
        let conn = &mut owned;
        let challenge = crate::db::with_conn!(conn, |c| c.find_challenge(&hash).await)?.ok_or_else(dead)?;
        let user = crate::db::with_conn!(conn, |c| c.find_user(challenge.user_id).await)?.ok_or_else(dead)?;
        // A locked second factor answers 429 before anything else the token could tell.
        counter::check(conn, user.id, now).await?;
        if challenge.expires_at <= now || challenge.attempts >= MAX_ATTEMPTS {
            return Err(dead());
        }
        if user.disabled {
            return Err(ApiError::account_disabled());
        }
        // MFA turned off or reset since the password step: that login cannot be completed.
        let (row, raw) = self.active_totp(conn, &user).await.map_err(|_| dead())?;
        let keys = ThrottleKeys::new(&user.email, client.ip.as_deref());
        throttle::check(conn, &keys, now).await?;
        let attempt = counter::reserve(conn, user.id, now).await?;
        // One of the token's attempts too, so concurrent guesses cannot exceed them either.
        if !crate::db::write_tx!(conn, |c| c.take_challenge_attempt(&hash, MAX_ATTEMPTS, now).await)? {
            attempt.give_back(conn).await?;
            return Err(dead());
        }
        let recovery_used = audit_event("recovery_code_used", now, Some(user.id), client, json!({"for": "login"}));
        let checked = match Factor::parse(&raw, code, now) {
            None => Ok(CodeCheck::Wrong),
            // Rows are taken in the order every MFA change takes them (secret or recovery code,
            // then challenge), so concurrent transactions on PostgreSQL wait instead of deadlocking.
            Some(factor) => crate::db::write_tx!(conn, |c| {
                if !claim(c, &row, &factor, &recovery_used).await? {
                    return Ok(CodeCheck::Wrong);
                }
                // Single use: of concurrent verifies of one token, one deletes it; the others
                // roll their claim of the code back.
                if !c.consume_challenge(&hash).await? {
                    return Err(dead());
                }
                attempt.clear(c).await?;
                Ok::<_, ApiError>(CodeCheck::Accepted)
            }),
        };
        match checked {
            Ok(CodeCheck::Accepted) => {}
            Ok(CodeCheck::Wrong) => return Err(self.second_factor_failed(conn, &user, &keys, client, "login").await?),
            Err(e) => {
                attempt.give_back(conn).await?;
                return Err(e);
            }
        }
        throttle::clear_account(conn, &keys).await?;
        Ok((challenge, user, now))
    }
}
