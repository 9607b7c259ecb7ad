//! Which second factors an account has, and what a presented one is checked against: the
//! `mfa_methods` of every `mfa_required` answer (docs/passkeys.md, "Second factors"), and the
//! codes a TOTP or passkey account completes a step with.
//!
//! One place decides whether an account has a second factor at all ([`has_second_factor`]):
//! the password login, the password grant and the password reset all ask it, so none of them
//! lets a passkey-only account through on its password alone.

use serde::Serialize;

use super::{not_on, recovery, secret, totp, Factor};
use crate::auth::Auth;
use crate::config::Secret;
use crate::db::{Db, DbConn, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{MfaStore, TotpRow, User, UserStore};

/// A kind of second factor an account can complete a sign-in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaMethod {
    Totp,
    Passkey,
    RecoveryCode,
}

impl MfaMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            MfaMethod::Totp => "totp",
            MfaMethod::Passkey => "passkey",
            MfaMethod::RecoveryCode => "recovery_code",
        }
    }
}

/// The 403 `mfa_required` answer of every sign-in path and of the password reset: the
/// account's `methods`, and the `mfa_token` of the second step when there is one.
pub fn mfa_required(description: &'static str, mfa_token: Option<Secret>, methods: &[MfaMethod]) -> ApiError {
    ApiError::mfa_required(description, mfa_token).with_mfa_methods(methods.iter().map(|m| m.as_str()))
}

/// Whether a correct password is only the first step for `user`: TOTP is on or a passkey is
/// registered.
pub fn has_second_factor(user: &User) -> bool {
    user.mfa_enabled || user.passkey_count > 0
}

/// What a presented code is checked against: the TOTP secret when TOTP is on, and the
/// account's recovery codes (which a first passkey issues too).
pub(in crate::auth) struct Codes {
    pub user_id: Id,
    /// The active TOTP row and its opened secret.
    pub totp: Option<(TotpRow, Vec<u8>)>,
}

impl Codes {
    /// What `code` is at `now`: a TOTP code of the window (when TOTP is on), or what may be a
    /// recovery code; `None` when it is neither.
    pub fn parse(&self, code: &str, now: i64) -> Option<Factor> {
        let code = code.trim();
        if let Some((_, raw)) = &self.totp {
            if let Some(step) = totp::matching_step(raw, code, now) {
                return Some(Factor::Totp(step));
            }
        }
        recovery::digest(code).map(Factor::Recovery)
    }
}

impl Auth {
    /// The second factors `user` has now, in a stable order; empty without any.
    pub async fn mfa_methods(&self, conn: &mut DbConn, user: &User) -> ApiResult<Vec<MfaMethod>> {
        let codes = crate::db::with_conn!(conn, |c| c.count_recovery_codes(user.id).await)?;
        let methods = [
            (user.mfa_enabled, MfaMethod::Totp),
            (user.passkey_count > 0, MfaMethod::Passkey),
            (has_second_factor(user) && codes > 0, MfaMethod::RecoveryCode),
        ];
        Ok(methods.into_iter().filter_map(|(has, method)| has.then_some(method)).collect())
    }

    /// The second factors of the account `user_id` (none when it no longer exists).
    pub async fn mfa_methods_of(&self, db: &Db, user_id: Id) -> ApiResult<Vec<MfaMethod>> {
        let mut conn = db.conn().await?;
        match crate::db::with_conn!(&mut conn, |c| c.find_user(user_id).await)? {
            Some(user) => self.mfa_methods(&mut conn, &user).await,
            None => Ok(vec![]),
        }
    }

    /// The codes `user` may present: 409 `conflict` when the account has no second factor.
    pub(in crate::auth) async fn codes_of(&self, conn: &mut DbConn, user: &User) -> ApiResult<Codes> {
        if user.mfa_enabled {
            let row = crate::db::with_conn!(conn, |c| c.find_totp(user.id).await)?.ok_or_else(not_on)?;
            let raw = secret::open(&self.at_rest, &row.secret).map_err(ApiError::internal)?;
            return Ok(Codes { user_id: user.id, totp: Some((row, raw)) });
        }
        if user.passkey_count > 0 {
            return Ok(Codes { user_id: user.id, totp: None });
        }
        Err(not_on())
    }
}
