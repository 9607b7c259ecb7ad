//! The password step every password sign-in shares (`/auth/login`, the password grant, the
//! hosted sign-in form): one function, so throttling, enumeration safety and the order of checks
//! (contract, "Order of checks on every sign-in path") cannot differ between them.

use serde_json::json;

use crate::auth::accounts::normalize_email;
use crate::auth::audit::{audit_event, unknown_account_failure};
use crate::auth::guards::RequestOrigin;
use crate::auth::mfa::methods::MfaMethod;
use crate::auth::password::Verdict;
use crate::auth::session::scope::Scope;
use crate::auth::throttle::{self, Reservation, ThrottleKeys};
use crate::auth::Auth;
use crate::config::Secret;
use crate::db::DbPool;
use crate::error::{ApiError, ApiResult};
use crate::models::{AuditStore, User, UserStore};

/// What a correct password admits to, before any session starts ([`Auth::password_step`]).
#[derive(Debug)]
pub(crate) enum PasswordStep {
    /// The account, the login's throttle reservation (released when the session starts) and
    /// the time of the check.
    Admitted { user: User, reservation: Reservation, now: i64 },
    /// The account has a second factor: the `mfa_token` of the second step.
    /// `methods`: the account's second factors (`mfa_methods` of the answer).
    SecondFactor { mfa_token: Secret, methods: Vec<MfaMethod> },
}

impl Auth {
    /// The password step of every password sign-in (`/auth/login`, the password grant, the
    /// hosted sign-in form), in the contract's order: throttled (429) → wrong credentials (401)
    /// → `account_disabled` → `email_unverified` → `mfa_required` (here: the second step's
    /// `mfa_token`, which keeps `resource` and `scope`). What comes after (a session of the API,
    /// a browser session) is the caller's; it releases the throttle reservation when it starts it.
    pub(crate) async fn password_step(
        &self,
        pool: &DbPool,
        email: &str,
        password: &str,
        resource: Option<&str>,
        scope: Option<&Scope>,
        client: &RequestOrigin,
    ) -> ApiResult<PasswordStep> {
        // A malformed email (too long, NUL, ...) cannot match an account: it is answered exactly
        // as an unknown one, and never reaches storage except as a bounded throttle digest.
        let normalized = normalize_email(email).ok();
        let keys = ThrottleKeys::new(normalized.as_deref().unwrap_or(email), client.ip.as_deref());
        let (reservation, user) = {
            let mut conn = pool.conn().await?;
            let reservation = throttle::reserve(&mut conn, &keys, &self.config, self.clock.now_ms()).await?;
            let user = match &normalized {
                Some(email) => crate::db::with_conn!(conn, |c| c.find_user_by_email(email).await)?,
                None => None,
            };
            (reservation, user)
        };
        let verdict = self.hasher.verify(password, user.as_ref().map(|u| u.password_hash.as_str())).await;
        let mut owned = pool.conn().await?;
        let conn = &mut owned;
        let now = self.clock.now();
        let user = match (user, verdict) {
            (Some(user), Verdict::Match | Verdict::MatchNeedsRehash) => user,
            (user, _) => {
                // One row written in one transaction either way (`unknown_account_failure` says
                // why); unknown emails share their address's row for the throttle window.
                let event = match (&user, reservation.address_window) {
                    (Some(user), _) => Some(audit_event(
                        "login_failed",
                        now,
                        Some(user.id),
                        client,
                        json!({"reason": "wrong_password"}),
                    )),
                    (None, Some(window)) => Some(unknown_account_failure(client, window, now)),
                    (None, None) => None,
                };
                // An account's row has a fresh id (so this inserts it); the window's row of
                // unknown emails is inserted once and counted up after.
                if let Some(event) = event {
                    crate::db::write_tx!(conn, |c| c.upsert_audit(&event).await)?;
                }
                throttle::failed(conn, &reservation, self.clock.now_ms()).await?;
                return Err(ApiError::invalid_credentials());
            }
        };
        if user.disabled {
            let event = audit_event("login_failed", now, Some(user.id), client, json!({"reason": "account_disabled"}));
            crate::db::write_tx!(conn, |c| {
                throttle::release(c, &reservation).await?;
                c.insert_audit(&event).await
            })?;
            return Err(ApiError::account_disabled());
        }
        if self.config.require_verified_email && !user.email_verified {
            return Err(self.refuse_unverified(conn, &user, &reservation, client, now).await?);
        }
        if verdict == Verdict::MatchNeedsRehash {
            let hash = self.hasher.hash(password).await.map_err(ApiError::internal)?;
            crate::db::write_tx!(conn, |c| c.set_password_hash(user.id, &hash, now).await)?;
        }
        // With MFA on, the password was only the first step: the answer is an `mfa_token`.
        // The account's failure counter stays until the second step succeeds.
        if let Some((mfa_token, methods)) = self.mfa_gate(conn, &user, resource, scope, client, now).await? {
            crate::db::write_tx!(conn, |c| throttle::give_back(c, &reservation).await)?;
            return Ok(PasswordStep::SecondFactor { mfa_token, methods });
        }
        Ok(PasswordStep::Admitted { user, reservation, now })
    }
}
