//! Enrolment and its undoing: a pending secret (password re-entered), confirmation by a first
//! code (recovery codes issued, other sessions ended), disabling, new recovery codes, and the
//! administrator's reset.
//!
//! Every change that depends on the MFA flag starts its transaction with a conditional update of
//! that flag on the account row (`switch_mfa`), so that concurrent enrolments, confirmations and
//! disablings of one account take turns and each sees the others' outcome.

use serde_json::json;

use super::{claim, counter, recovery, secret, totp, wrong_code, Factor, Rejected};
use crate::auth::audit::{audit_by, audit_event};
use crate::auth::delegation;
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::permissions::{Permission, UsersWrite};
use crate::auth::Auth;
use crate::db::{DbConn, DbPool, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{AdminLock, AuditStore, MfaStore, PasskeyStore, SessionStore, UserStore};

/// A new pending secret (`POST /auth/mfa/totp`; its HTTP shape is
/// `routes::views::TotpEnrolmentView`): as text and as the URI a QR code encodes. `Debug` leaves
/// both out.
pub struct TotpEnrolment {
    /// RFC 4648 base32, no padding.
    pub secret: String,
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrolment").finish_non_exhaustive()
    }
}

/// Ten one-time recovery codes, shown once (HTTP shape: `routes::views::RecoveryCodesView`).
/// `Debug` leaves them out.
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryCodes").finish_non_exhaustive()
    }
}

/// How long an enrolment stays pending before its first code, in seconds.
const PENDING_TTL: i64 = 600;

fn already_on() -> ApiError {
    ApiError::conflict("Multi-factor authentication is already on; turn it off first to enrol another authenticator.")
}

impl Auth {
    /// `POST /auth/mfa/totp`: a new pending secret, replacing a pending one.
    pub async fn enrol_totp(
        &self,
        pool: &DbPool,
        me: &guards::User,
        password: &str,
        client: &RequestOrigin,
    ) -> ApiResult<TotpEnrolment> {
        let (user, _) = self.reauthenticate(pool, me.user_id, password, client).await?;
        let raw = totp::generate_secret();
        let sealed = secret::seal(&self.at_rest, &raw);
        let now = self.clock.now();
        crate::db::write_tx!(&mut pool.conn().await?, |c| {
            // Locks the account row while MFA stays off: an active secret is never replaced.
            if !c.switch_mfa(user.id, false, false, now).await? {
                return Err(already_on());
            }
            c.replace_totp(user.id, &sealed, now).await?;
            Ok::<_, ApiError>(())
        })?;
        let otpauth_uri = totp::otpauth_uri(&self.config.display_name(), &user.email, &raw);
        Ok(TotpEnrolment { secret: totp::base32(&raw), otpauth_uri })
    }

    /// `POST /auth/mfa/totp/confirm`: the first code turns MFA on, issues recovery codes and
    /// ends every other session of the user.
    pub async fn confirm_totp(
        &self,
        conn: &mut DbConn,
        me: &guards::User,
        code: &str,
        client: &RequestOrigin,
    ) -> ApiResult<RecoveryCodes> {
        let (user, row) = crate::db::with_conn!(conn, |c| {
            let user = c.find_user(me.user_id).await?;
            Ok::<_, diesel::result::Error>((user, c.find_totp(me.user_id).await?))
        })?;
        let user = user.ok_or_else(|| ApiError::invalid_token("The account of this access token no longer exists."))?;
        let now = self.clock.now();
        counter::check(conn, user.id, now).await?;
        if user.mfa_enabled {
            return Err(already_on());
        }
        let row = row
            .filter(|row| now - row.created_at < PENDING_TTL)
            .ok_or_else(|| ApiError::conflict("No enrolment is pending; start one at POST /auth/mfa/totp."))?;
        let raw = secret::open(&self.at_rest, &row.secret).map_err(ApiError::internal)?;
        let attempt = counter::reserve(conn, user.id, now).await?;
        let step = totp::matching_step(&raw, code.trim(), now).ok_or_else(wrong_code)?;
        let (codes, hashes) = recovery::generate();
        let ending = self.ending("mfa_enabled");
        let ended = crate::db::write_tx!(conn, |c| {
            if !c.switch_mfa(user.id, false, true, ending.now).await? {
                return Err(Rejected::Other(already_on()));
            }
            if !c.claim_totp_step(user.id, &row.secret, step).await? {
                return Err(Rejected::WrongCode);
            }
            attempt.clear(c).await?;
            c.replace_recovery_codes(user.id, &hashes).await?;
            let ended = c.end_user_sessions(user.id, Some(me.session_id), ending).await?;
            let audit =
                audit_event("mfa_enabled", ending.now, Some(user.id), client, json!({"sessions_ended": ended.len()}));
            c.insert_audit(&audit).await?;
            Ok(ended)
        });
        let ended = match ended {
            Ok(ended) => ended,
            // A replayed code stays counted.
            Err(Rejected::WrongCode) => return Err(wrong_code()),
            Err(Rejected::Other(not_judged)) => {
                attempt.give_back(conn).await?;
                return Err(not_judged);
            }
        };
        self.revoke_locally(&ended, &ending);
        Ok(RecoveryCodes { recovery_codes: codes })
    }

    /// Checks the password and a code (TOTP or recovery) of an account with MFA on, then runs
    /// `change` in the transaction that accepts the code. A locked second factor answers 429
    /// before the password is looked at; the password is checked (and throttled) before the
    /// code; a wrong code counts in the second-factor counter and as a failed login.
    async fn with_second_factor(
        &self,
        pool: &DbPool,
        me: &guards::User,
        password: &str,
        code: &str,
        client: &RequestOrigin,
        change: Change<'_>,
    ) -> ApiResult<()> {
        counter::check(&mut pool.conn().await?, me.user_id, self.clock.now()).await?;
        let (user, keys) = self.reauthenticate(pool, me.user_id, password, client).await?;
        let mut owned = pool.conn().await?;
        let conn = &mut owned;
        let (row, raw) = self.active_totp(conn, &user).await?;
        let now = self.clock.now();
        let attempt = counter::reserve(conn, user.id, now).await?;
        let recovery_used =
            audit_event("recovery_code_used", now, Some(user.id), client, json!({"for": change.event()}));
        let audit = audit_event(change.event(), now, Some(user.id), client, json!({}));
        let accepted = match Factor::parse(&raw, code, now) {
            None => Ok(false),
            Some(factor) => crate::db::write_tx!(conn, |c| {
                if !c.switch_mfa(user.id, true, true, now).await? {
                    return Err(crate::auth::mfa::not_on());
                }
                if !claim(c, &row, &factor, &recovery_used).await? {
                    return Ok(false);
                }
                attempt.clear(c).await?;
                match &change {
                    Change::Disable => {
                        c.switch_mfa(user.id, true, false, now).await?;
                        c.delete_mfa(user.id).await?;
                    }
                    Change::NewRecoveryCodes(hashes) => c.replace_recovery_codes(user.id, hashes).await?,
                }
                c.insert_audit(&audit).await?;
                Ok::<_, ApiError>(true)
            }),
        };
        match accepted {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.second_factor_failed(conn, &user, &keys, client, change.event()).await?),
            Err(not_judged) => {
                attempt.give_back(conn).await?;
                Err(not_judged)
            }
        }
    }

    /// `DELETE /auth/mfa/totp`: MFA off, with the password and a code or recovery code.
    pub async fn disable_totp(
        &self,
        pool: &DbPool,
        me: &guards::User,
        password: &str,
        code: &str,
        client: &RequestOrigin,
    ) -> ApiResult<()> {
        self.with_second_factor(pool, me, password, code, client, Change::Disable).await
    }

    /// `POST /auth/mfa/recovery-codes`: a new set of ten; the old set stops working.
    pub async fn new_recovery_codes(
        &self,
        pool: &DbPool,
        me: &guards::User,
        password: &str,
        code: &str,
        client: &RequestOrigin,
    ) -> ApiResult<RecoveryCodes> {
        let (codes, hashes) = recovery::generate();
        self.with_second_factor(pool, me, password, code, client, Change::NewRecoveryCodes(&hashes)).await?;
        Ok(RecoveryCodes { recovery_codes: codes })
    }

    /// `DELETE /admin/users/<id>/mfa`: MFA off for `target` and every session of it ended;
    /// 404 for an unknown user. Like every action on an account it needs every permission the
    /// account holds, and `admin` for an admin's (`auth::delegation::account_action`).
    pub async fn reset_mfa(
        &self,
        conn: &mut DbConn,
        actor: &guards::Caller,
        target: Id,
        client: &RequestOrigin,
    ) -> ApiResult<()> {
        let everything = self.scopes_supported();
        let ending = self.ending("mfa_reset");
        let outcome = crate::db::write_tx!(conn, |c| {
            c.lock_admin_set().await?;
            c.find_user(target).await?.ok_or_else(|| ApiError::not_found("No such user."))?;
            let attempt = json!({"action": "reset_mfa"});
            if let Err(refused) =
                delegation::account_action(c, actor, target, UsersWrite::NAME, &[], &everything, attempt).await?
            {
                return Ok(Err(refused));
            }
            c.switch_mfa(target, true, false, ending.now).await?;
            c.delete_mfa(target).await?;
            c.delete_passkeys(target).await?;
            let ended = c.end_user_sessions(target, None, ending).await?;
            let detail = json!({"sessions_ended": ended.len()});
            c.insert_audit(&audit_by("mfa_reset", ending.now, Some(target), Some(*actor.id()), client, detail)).await?;
            Ok::<_, ApiError>(Ok(ended))
        })?;
        let ended = match outcome {
            Ok(ended) => ended,
            Err(refused) => return Err(self.refuse_account_action(conn, actor, target, client, refused).await),
        };
        self.revoke_locally(&ended, &ending);
        Ok(())
    }
}

/// What a password and second factor authorise.
enum Change<'a> {
    Disable,
    /// The digests of the new set.
    NewRecoveryCodes(&'a [String]),
}

impl Change<'_> {
    /// The audit event of the change.
    fn event(&self) -> &'static str {
        match self {
            Change::Disable => "mfa_disabled",
            Change::NewRecoveryCodes(_) => "recovery_codes_regenerated",
        }
    }
}
