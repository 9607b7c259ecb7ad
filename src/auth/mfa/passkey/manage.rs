//! Adding, listing and removing an account's passkeys. Adding and removing need the account's
//! password or a TOTP (or recovery) code again: a stolen access token alone cannot plant a
//! passkey that outlives it, nor remove the owner's.

use serde_json::json;
use uuid::Uuid;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, COSEAlgorithm, CreationChallengeResponse, RegisterPublicKeyCredential,
    RegistrationState, ResidentKeyRequirement,
};

use super::{b64, credential_of, dead_ceremony, policy, Purpose, MAX_PASSKEYS};
use crate::auth::audit::audit_event;
use crate::auth::guards::{self, RequestOrigin};
use crate::auth::mfa::enrol::RecoveryCodes;
use crate::auth::mfa::methods::has_second_factor;
use crate::auth::mfa::{claim, counter, recovery};
use crate::auth::throttle::ThrottleKeys;
use crate::auth::Auth;
use crate::db::{DbConn, DbPool, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{AuditStore, MfaStore, PasskeyRow, PasskeyStore, User, UserStore};

/// How the caller proves again that they hold the account.
#[derive(Clone, Copy)]
pub enum Reauth<'a> {
    Password(&'a str),
    /// A TOTP code or a recovery code.
    Code(&'a str),
}

/// Longest passkey name, in characters.
const NAME_MAX: usize = 64;

/// A passkey's name as given, trimmed: 1 to 64 characters without control characters, else 422
/// `invalid_request` naming `name`. The hosted page checks it before the ceremony starts too.
pub fn passkey_name(name: &str) -> ApiResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field("name: 1 to 64 characters, no control characters"));
    }
    Ok(name)
}

fn too_many() -> ApiError {
    ApiError::conflict("This account already holds 10 passkeys; remove one first.")
}

fn already_registered() -> ApiError {
    ApiError::conflict("This passkey is already registered.")
}

fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
}

impl Auth {
    /// Re-authentication of a passkey change: the password (throttled like logins) or a code
    /// (counted by the second-factor counter). A locked second factor answers 429 first.
    async fn reauthenticate_for_passkeys(
        &self,
        pool: &DbPool,
        me: &guards::User,
        how: Reauth<'_>,
        client: &RequestOrigin,
    ) -> ApiResult<User> {
        counter::check(&mut pool.conn().await?, me.user_id, self.clock.now()).await?;
        let code = match how {
            Reauth::Password(password) => return Ok(self.reauthenticate(pool, me.user_id, password, client).await?.0),
            Reauth::Code(code) => code,
        };
        let mut owned = pool.conn().await?;
        let conn = &mut owned;
        let user = crate::db::with_conn!(conn, |c| c.find_user(me.user_id).await)?
            .ok_or_else(|| ApiError::invalid_token("The account of this access token no longer exists."))?;
        let codes = self.codes_of(conn, &user).await?;
        let now = self.clock.now();
        let keys = ThrottleKeys::new(&user.email, client.ip.as_deref());
        let attempt = counter::reserve(conn, user.id, now).await?;
        let recovery_used = audit_event("recovery_code_used", now, Some(user.id), client, json!({"for": "passkeys"}));
        let accepted = match codes.parse(code, now) {
            None => false,
            Some(factor) => crate::db::write_tx!(conn, |c| {
                if !claim(c, &codes, &factor, &recovery_used).await? {
                    return Ok(false);
                }
                attempt.clear(c).await?;
                Ok::<_, ApiError>(true)
            })?,
        };
        if !accepted {
            return Err(self.second_factor_failed(conn, &user, &keys, client, "passkeys").await?);
        }
        Ok(user)
    }

    /// `POST /auth/passkeys/register`: after re-authentication, the creation options of a new
    /// passkey and the `ceremony_id` that finishes it.
    pub async fn start_passkey_registration(
        &self,
        pool: &DbPool,
        me: &guards::User,
        how: Reauth<'_>,
        client: &RequestOrigin,
    ) -> ApiResult<(String, CreationChallengeResponse)> {
        let rp = self.relying_party()?;
        let user = self.reauthenticate_for_passkeys(pool, me, how, client).await?;
        let mut owned = pool.conn().await?;
        let conn = &mut owned;
        let existing = crate::db::with_conn!(conn, |c| c.list_passkeys(user.id).await)?;
        if existing.len() >= MAX_PASSKEYS as usize {
            return Err(too_many());
        }
        let candidate = Uuid::new_v4().to_string();
        let handle = crate::db::write_tx!(conn, |c| c.passkey_handle(user.id, &candidate).await)?;
        let handle = Uuid::parse_str(&handle).map_err(ApiError::internal)?;
        let exclude =
            existing.iter().map(|row| credential_of(row).map(|c| c.cred_id)).collect::<ApiResult<Vec<_>>>()?;
        let builder = rp
            .new_challenge_register_builder(handle.as_bytes(), &user.email, &user.email)
            .map_err(ApiError::internal)?
            .attestation(AttestationConveyancePreference::None)
            .credential_algorithms(vec![COSEAlgorithm::ES256, COSEAlgorithm::EDDSA, COSEAlgorithm::RS256])
            .require_resident_key(false)
            .authenticator_attachment(None)
            .user_verification_policy(policy(false))
            .reject_synchronised_authenticators(false)
            .exclude_credentials(Some(exclude))
            .hints(None)
            .extensions(None);
        let (mut options, state) = rp.generate_challenge_register(builder).map_err(ApiError::internal)?;
        // Discoverable when the authenticator can (sign-in without an email), never demanded:
        // security keys have little room for resident credentials.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Preferred);
        }
        let ceremony_id = self.open_ceremony(conn, Purpose::Register, Some(user.id), None, &state).await?;
        Ok((ceremony_id, options))
    }

    /// `POST /auth/passkeys/register/finish`: verifies the authenticator's answer against the
    /// caller's ceremony and stores the passkey.
    pub async fn finish_passkey_registration(
        &self,
        conn: &mut DbConn,
        me: &guards::User,
        ceremony_id: &str,
        name: &str,
        credential: &RegisterPublicKeyCredential,
        client: &RequestOrigin,
    ) -> ApiResult<(PasskeyRow, Option<RecoveryCodes>)> {
        let rp = self.relying_party()?;
        let name = passkey_name(name)?;
        let (ceremony, state) = self.take_ceremony::<RegistrationState>(conn, ceremony_id, Purpose::Register).await?;
        if ceremony.user_id != Some(me.user_id) {
            return Err(dead_ceremony());
        }
        let verified = match rp.register_credential(credential, &state, None) {
            Ok(verified) => verified,
            // webauthn-rs refuses an id of the ceremony's exclude list (this account's own
            // passkeys) before anything else: that is the conflict the contract names.
            Err(_) if self.is_registered(conn, &credential.raw_id).await? => return Err(already_registered()),
            Err(e) => {
                return Err(ApiError::new(
                    rocket::http::Status::Unauthorized,
                    crate::error::ErrorCode::InvalidCredentials,
                    format!("The passkey was not accepted: {e}"),
                ))
            }
        };
        let now = self.clock.now();
        let row = PasskeyRow {
            id: Id::new(),
            user_id: me.user_id,
            credential_id: b64(&verified.cred_id),
            name: name.to_owned(),
            credential: serde_json::to_string(&verified).map_err(ApiError::internal)?,
            sign_count: i64::from(verified.counter),
            created_at: now,
            last_used_at: None,
        };
        let audit =
            audit_event("passkey_added", now, Some(me.user_id), client, json!({"passkey_id": row.id, "name": name}));
        let (codes, hashes) = recovery::generate();
        let added = crate::db::write_tx!(conn, |c| {
            // The count's conditional update locks the account row: of concurrent first
            // passkeys one sees a count of 1, and a TOTP confirmation waits or is seen.
            if !c.add_passkey(&row, MAX_PASSKEYS).await? {
                return Ok(None);
            }
            c.insert_audit(&audit).await?;
            // The account's first second factor issues its recovery codes (contract v3, "Second
            // factors"); a TOTP confirmation issued them already.
            let first = c.find_user(me.user_id).await?.is_some_and(|u| !u.mfa_enabled && u.passkey_count == 1);
            if first {
                c.replace_recovery_codes(me.user_id, &hashes).await?;
            }
            Ok::<_, diesel::result::Error>(Some(first))
        });
        match added {
            Ok(Some(first)) => Ok((row, first.then_some(RecoveryCodes { recovery_codes: codes }))),
            Ok(None) => Err(too_many()),
            Err(e) if is_unique_violation(&e) => Err(already_registered()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a passkey with the credential id `raw_id` is registered (to any account).
    async fn is_registered(&self, conn: &mut DbConn, raw_id: &[u8]) -> ApiResult<bool> {
        let id = b64(raw_id);
        Ok(crate::db::with_conn!(conn, |c| c.find_passkey(&id).await)?.is_some())
    }

    /// `GET /auth/passkeys`: the caller's passkeys, oldest first.
    pub async fn list_passkeys(&self, conn: &mut DbConn, me: &guards::User) -> ApiResult<Vec<PasskeyRow>> {
        Ok(crate::db::with_conn!(conn, |c| c.list_passkeys(me.user_id).await)?)
    }

    /// `DELETE /auth/passkeys/<id>`: after re-authentication; 404 for a passkey the caller does
    /// not hold.
    pub async fn remove_passkey(
        &self,
        pool: &DbPool,
        me: &guards::User,
        id: Id,
        how: Reauth<'_>,
        client: &RequestOrigin,
    ) -> ApiResult<()> {
        self.reauthenticate_for_passkeys(pool, me, how, client).await?;
        let now = self.clock.now();
        let audit = audit_event("passkey_removed", now, Some(me.user_id), client, json!({"passkey_id": id}));
        let removed = crate::db::write_tx!(&mut pool.conn().await?, |c| {
            if !c.delete_passkey(me.user_id, id).await? {
                return Ok(false);
            }
            // The last second factor gone: its recovery codes go with it.
            if !c.find_user(me.user_id).await?.is_some_and(|u| has_second_factor(&u)) {
                c.delete_mfa(me.user_id).await?;
            }
            c.insert_audit(&audit).await?;
            Ok::<_, diesel::result::Error>(true)
        })?;
        if removed {
            Ok(())
        } else {
            Err(ApiError::not_found("No such passkey."))
        }
    }
}
