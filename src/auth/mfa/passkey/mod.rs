//! Passkeys (WebAuthn Level 2) with webauthn-rs's verification engine (`webauthn-rs-core`):
//! registration and management ([`manage`]), passwordless sign-in and the second step of a
//! password login ([`signin`]). docs/passkeys.md says what is checked and why.
//!
//! Every ceremony's state lives in `webauthn_ceremonies` under the SHA-256 of its
//! `ceremony_id`, so any instance finishes what another started; it is taken (deleted) by the one
//! request that finishes it, within [`CEREMONY_TTL`] seconds. User verification: required for
//! passwordless sign-in; "preferred" at registration and as a second factor, so a key without a
//! PIN still works after a password, while one that verified its user at registration must do so
//! again (webauthn-rs's rule).

pub mod manage;
pub mod proof;
pub mod signin;

use std::time::Duration;

use rocket::http::Status;
use serde::de::DeserializeOwned;
use serde::Serialize;
use webauthn_rs_core::proto::{Credential, UserVerificationPolicy};
use webauthn_rs_core::WebauthnCore;

use crate::auth::secrets::{hash_token, OpaqueToken};
use crate::auth::Auth;
use crate::db::{DbConn, Id};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::models::{Ceremony, PasskeyRow, PasskeyStore};

/// Passkeys one account may hold.
pub const MAX_PASSKEYS: i32 = 10;
/// How long a ceremony lives, in seconds.
pub const CEREMONY_TTL: i64 = 300;
/// `amr` of a passwordless sign-in (RFC 8176: hardware key, user presence/verification, MFA).
pub const AMR_PASSWORDLESS: &str = "hwk user mfa";
/// `amr` of a password login completed with a passkey.
pub const AMR_PASSWORD_AND_PASSKEY: &str = "pwd hwk mfa";

/// What a ceremony is for; a ceremony finishes only at the endpoint of its purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Register,
    SignIn,
    SecondStep,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SignIn => "sign_in",
            Purpose::SecondStep => "second_step",
        }
    }
}

/// 400 `invalid_grant`: the ceremony is unknown, used, expired or of another purpose.
/// The options of a ceremony as the contract's `publicKey` holds them (WebAuthn Level 3 JSON):
/// webauthn-rs serialises them wrapped in `{"publicKey": ...}`, which the API and the hosted
/// pages both answer unwrapped.
pub fn public_key_options(options: impl Serialize) -> ApiResult<serde_json::Value> {
    let mut wrapper = serde_json::to_value(options).map_err(ApiError::internal)?;
    Ok(wrapper.get_mut("publicKey").map(serde_json::Value::take).unwrap_or_default())
}

pub fn dead_ceremony() -> ApiError {
    ApiError::new(
        Status::BadRequest,
        ErrorCode::InvalidGrant,
        "The ceremony is unknown, used or expired; start a new one.",
    )
}

/// 401 `invalid_credentials`: the passkey's answer did not verify.
pub fn refused() -> ApiError {
    ApiError::new(Status::Unauthorized, ErrorCode::InvalidCredentials, "The passkey was not accepted.")
}

/// A user-verification policy by its use.
pub(super) fn policy(passwordless: bool) -> UserVerificationPolicy {
    if passwordless {
        UserVerificationPolicy::Required
    } else {
        UserVerificationPolicy::Preferred
    }
}

impl Auth {
    /// The relying party of the configuration; 503 `unavailable` naming the key when passkeys
    /// cannot work (an IP address as relying party id).
    pub(super) fn relying_party(&self) -> ApiResult<WebauthnCore> {
        let rp = self.config.relying_party().map_err(|(key, problem)| {
            ApiError::new(
                Status::ServiceUnavailable,
                ErrorCode::Unavailable,
                format!("Passkeys are off: {key} {problem}"),
            )
        })?;
        let name = self.config.display_name();
        Ok(WebauthnCore::new_unsafe_experts_only(
            &name,
            &rp.id,
            rp.origins,
            Duration::from_secs(CEREMONY_TTL as u64),
            Some(false),
            Some(false),
        ))
    }

    /// Stores `state` as a new ceremony and returns its `ceremony_id`.
    pub(super) async fn open_ceremony(
        &self,
        conn: &mut DbConn,
        purpose: Purpose,
        user_id: Option<Id>,
        mfa_token_hash: Option<String>,
        state: &impl Serialize,
    ) -> ApiResult<String> {
        let now = self.clock.now();
        let token = OpaqueToken::generate();
        let ceremony = Ceremony {
            id_hash: token.hash().to_owned(),
            purpose: purpose.as_str().to_owned(),
            user_id,
            mfa_token_hash,
            state: serde_json::to_string(state).map_err(ApiError::internal)?,
            expires_at: now + CEREMONY_TTL,
        };
        crate::db::write_tx!(conn, |c| c.insert_ceremony(&ceremony, now).await)?;
        Ok(token.into_plaintext())
    }

    /// Takes (deletes) the ceremony `ceremony_id` of `purpose`: of concurrent finishes exactly
    /// one gets it. Its state is parsed as `T`.
    pub(super) async fn take_ceremony<T: DeserializeOwned>(
        &self,
        conn: &mut DbConn,
        ceremony_id: &str,
        purpose: Purpose,
    ) -> ApiResult<(Ceremony, T)> {
        let now = self.clock.now();
        let hash = hash_token(ceremony_id);
        let taken = crate::db::write_tx!(conn, |c| c.take_ceremony(&hash, now).await)?;
        let ceremony = taken.filter(|c| c.purpose == purpose.as_str()).ok_or_else(dead_ceremony)?;
        let state = serde_json::from_str(&ceremony.state).map_err(ApiError::internal)?;
        Ok((ceremony, state))
    }
}

/// The stored credential of a passkey row.
pub(super) fn credential_of(row: &PasskeyRow) -> ApiResult<Credential> {
    serde_json::from_str(&row.credential).map_err(ApiError::internal)
}

/// base64url without padding, as credential ids are stored.
pub(super) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A verified use of a passkey, to record in the transaction that acts on it: its counter and
/// flags from the assertion.
pub(in crate::auth) struct PasskeyUse {
    id: Id,
    /// The counter the check read; the record is conditional on it still being there.
    seen: i64,
    count: i64,
    credential: String,
}

impl PasskeyUse {
    pub(super) fn of(row: &PasskeyRow, result: &webauthn_rs_core::proto::AuthenticationResult) -> ApiResult<Self> {
        let mut credential = credential_of(row)?;
        credential.counter = credential.counter.max(result.counter());
        credential.backup_state = result.backup_state();
        credential.backup_eligible |= result.backup_eligible();
        let json = serde_json::to_string(&credential).map_err(ApiError::internal)?;
        Ok(PasskeyUse { id: row.id, seen: row.sign_count, count: i64::from(credential.counter), credential: json })
    }

    /// Records the use; `false` when another use of the same counter value won (a replay or a
    /// clone racing this one).
    pub async fn record<C: PasskeyStore>(&self, c: &mut C, now: i64) -> diesel::QueryResult<bool> {
        c.record_passkey_use(self.id, self.seen, self.count, &self.credential, now).await
    }
}

/// Records a verified use of `row` in its own transaction (see [`PasskeyUse::record`]).
pub(super) async fn record_use(
    conn: &mut DbConn,
    row: &PasskeyRow,
    result: &webauthn_rs_core::proto::AuthenticationResult,
    now: i64,
) -> ApiResult<bool> {
    let used = PasskeyUse::of(row, result)?;
    Ok(crate::db::write_tx!(conn, |c| used.record(c, now).await)?)
}
