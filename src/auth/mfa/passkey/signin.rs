//! Signing in with a passkey: passwordless (discoverable credentials, or the passkeys of an
//! email), and the second step of a password login (`/auth/mfa/passkey`, `/auth/mfa/verify`).
//!
//! The credential an authenticator answers with is looked up by its id, and must belong to the
//! ceremony's account when the ceremony has one, and to the account its user handle names:
//! a passkey of one account never signs into another. Failed passwordless sign-ins count in
//! the account's login throttle like wrong passwords (`auth::throttle::reserve`, before the
//! check); failed second steps count like wrong codes (the second-factor counter, the
//! `mfa_token`'s attempts and the login throttle, as `POST /auth/mfa/verify` with a code).

use rand::RngCore;
use serde_json::json;
use webauthn_rs_core::fake::{FakePasskeyDistribution, WebauthnFakeCredentialGenerator};
use webauthn_rs_core::proto::{
    AllowCredentials, AuthenticationState, PublicKeyCredential, RequestChallengeResponse, UserVerificationPolicy,
};
use webauthn_rs_core::WebauthnCore;

use super::{b64, credential_of, dead_ceremony, policy, record_use, refused, Purpose};
use super::{AMR_PASSWORDLESS, AMR_PASSWORD_AND_PASSKEY};
use crate::auth::accounts::normalize_email;
use crate::auth::audit::audit_event;
use crate::auth::guards::RequestOrigin;
use crate::auth::mfa::counter;
use crate::auth::mfa::login::{dead, MAX_ATTEMPTS};
use crate::auth::secrets::hash_token;
use crate::auth::session::issued::IssuedTokens;
use crate::auth::session::login::Started;
use crate::auth::session::scope::Scope;
use crate::auth::throttle::{self, ThrottleKeys};
use crate::auth::Auth;
use crate::db::{DbConn, DbPool};
use crate::error::{ApiError, ApiResult};
use crate::models::session::FIRST_PARTY_CLIENT;
use crate::models::{AuditStore, MfaChallenge, MfaStore, PasskeyRow, PasskeyStore, SettingStore, UserStore};

/// The setting holding the key of the decoy credential ids answered for unknown emails.
const DECOY_KEY: &str = "passkey_decoy_key";

/// Request options for `rows` (all of them when empty: discoverable) under `uv`.
fn request_options(
    rp: &WebauthnCore,
    rows: &[PasskeyRow],
    uv: UserVerificationPolicy,
) -> ApiResult<(RequestChallengeResponse, AuthenticationState)> {
    let credentials = rows.iter().map(credential_of).collect::<ApiResult<Vec<_>>>()?;
    let builder = rp
        .new_challenge_authenticate_builder(credentials, Some(uv))
        .map_err(ApiError::internal)?
        .extensions(None)
        .allow_backup_eligible_upgrade(true)
        .hints(None);
    rp.generate_challenge_authenticate(builder).map_err(ApiError::internal)
}

impl Auth {
    /// The same-looking credential ids for an email without passkeys, every time it is asked
    /// for (webauthn-rs's generator under a key kept in the database).
    async fn decoy_credentials(&self, conn: &mut DbConn, email: &str) -> ApiResult<Vec<AllowCredentials>> {
        let mut fresh = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fresh);
        let key = crate::db::write_tx!(conn, |c| c.setting_or_insert(DECOY_KEY, &b64(&fresh)).await)?;
        let generator = WebauthnFakeCredentialGenerator::<FakePasskeyDistribution>::new(key.as_bytes())
            .map_err(ApiError::internal)?;
        // The generator gives some emails no credential at all, an answer a real account with
        // passkeys never gives: the next seed of the same email then, still stable per email.
        let mut seed = email.as_bytes().to_vec();
        let mut ids = generator.generate(&seed).map_err(ApiError::internal)?;
        while ids.is_empty() {
            seed.push(0);
            ids = generator.generate(&seed).map_err(ApiError::internal)?;
        }
        Ok(ids.into_iter().map(|id| AllowCredentials { type_: "public-key".into(), id, transports: None }).collect())
    }

    /// `POST /auth/passkeys/login`: request options for a passwordless sign-in, with user
    /// verification required. Without `email`: any discoverable credential; with one: that
    /// account's passkeys, in the same shape whether or not it exists or has any.
    pub async fn start_passkey_sign_in(
        &self,
        pool: &DbPool,
        email: Option<&str>,
    ) -> ApiResult<(String, RequestChallengeResponse)> {
        let rp = self.relying_party()?;
        let mut owned = pool.conn().await?;
        let conn = &mut owned;
        let normalized = email.and_then(|e| normalize_email(e).ok());
        let (user_id, rows) = match &normalized {
            None => (None, vec![]),
            Some(email) => match crate::db::with_conn!(conn, |c| c.find_user_by_email(email).await)? {
                Some(user) => (Some(user.id), crate::db::with_conn!(conn, |c| c.list_passkeys(user.id).await)?),
                None => (None, vec![]),
            },
        };
        let (mut options, state) = request_options(&rp, &rows, policy(true))?;
        // Decoys keyed by the email as accounts are looked up, so spellings of one address agree.
        if let (Some(email), true) = (normalized.as_deref().or(email), rows.is_empty()) {
            options.public_key.allow_credentials = self.decoy_credentials(conn, email).await?;
        }
        options.mediation = None;
        let ceremony_id = self.open_ceremony(conn, Purpose::SignIn, user_id, None, &state).await?;
        Ok((ceremony_id, options))
    }

    /// The passkey row `credential` names, when it may answer a ceremony of `account`.
    pub(super) async fn answering_passkey(
        &self,
        conn: &mut DbConn,
        credential: &PublicKeyCredential,
        account: Option<crate::db::Id>,
    ) -> ApiResult<Option<PasskeyRow>> {
        let id = b64(&credential.raw_id);
        let Some(row) = crate::db::with_conn!(conn, |c| c.find_passkey(&id).await)? else { return Ok(None) };
        if account.is_some_and(|a| a != row.user_id) {
            return Ok(None);
        }
        if let Some(handle) = &credential.response.user_handle {
            let own = crate::db::with_conn!(conn, |c| c.passkey_handle(row.user_id, "").await)?;
            let own = uuid::Uuid::parse_str(&own).map_err(ApiError::internal)?;
            if handle.as_slice() != own.as_bytes() {
                return Ok(None);
            }
        }
        Ok(Some(row))
    }

    /// `POST /auth/passkeys/login/finish`: a verified assertion with user verification starts
    /// a session with `amr` `["hwk","user","mfa"]`.
    pub async fn finish_passkey_sign_in(
        &self,
        pool: &DbPool,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
        client: &RequestOrigin,
    ) -> ApiResult<IssuedTokens> {
        let mut owned = pool.conn().await?;
        let conn = &mut owned;
        let (user_id, reservation) = self.passkey_sign_in_step(conn, ceremony_id, credential, client).await?;
        let started = Started {
            amr: AMR_PASSWORDLESS,
            resource: None,
            scope: None,
            reservation: Some(&reservation),
            client_id: FIRST_PARTY_CLIENT,
        };
        self.start_session(conn, user_id, started, client, self.clock.now()).await
    }

    /// The passwordless sign-in's checks, shared by `POST /auth/passkeys/login/finish` and the
    /// hosted sign-in's passkey (`Auth::browser_passkey_sign_in`): takes the ceremony, verifies
    /// the assertion, counts it in the login throttle. The account admitted and the throttle
    /// reservation the session's start releases (`amr` [`AMR_PASSWORDLESS`]).
    pub async fn passkey_sign_in_step(
        &self,
        conn: &mut DbConn,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
        client: &RequestOrigin,
    ) -> ApiResult<(crate::db::Id, throttle::Reservation)> {
        let rp = self.relying_party()?;
        let (ceremony, state) = self.take_ceremony::<AuthenticationState>(conn, ceremony_id, Purpose::SignIn).await?;
        let Some(row) = self.answering_passkey(conn, credential, ceremony.user_id).await? else {
            return Err(refused());
        };
        let user = crate::db::with_conn!(conn, |c| c.find_user(row.user_id).await)?.ok_or_else(refused)?;
        let keys = ThrottleKeys::new(&user.email, client.ip.as_deref());
        let now = self.clock.now();
        // Counted as a failure before the signature is looked at, like a password.
        let reservation = throttle::reserve(conn, &keys, &self.config, self.clock.now_ms()).await?;
        let verified = rp.authenticate_single_credential(credential, &state, &credential_of(&row)?);
        let accepted = match &verified {
            Ok(result) => record_use(conn, &row, result, now).await?,
            Err(_) => false,
        };
        if !accepted {
            let reason = verified.err().map_or("counter_raced".to_owned(), |e| e.to_string());
            let event =
                audit_event("login_failed", now, Some(user.id), client, json!({"reason": "passkey", "detail": reason}));
            crate::db::write_tx!(conn, |c| c.insert_audit(&event).await)?;
            throttle::failed(conn, &reservation, self.clock.now_ms()).await?;
            return Err(refused());
        }
        if user.disabled {
            crate::db::write_tx!(conn, |c| throttle::release(c, &reservation).await)?;
            return Err(ApiError::account_disabled());
        }
        let event = audit_event(
            "passkey_login",
            now,
            Some(user.id),
            client,
            json!({"passkey_id": row.id, "step": "passwordless"}),
        );
        crate::db::write_tx!(conn, |c| c.insert_audit(&event).await)?;
        Ok((user.id, reservation))
    }

    /// `POST /auth/mfa/passkey`: request options for the second step of the login whose
    /// `mfa_token` this is (user verification preferred: keys without a PIN work here).
    pub async fn start_passkey_second_step(
        &self,
        pool: &DbPool,
        mfa_token: &str,
    ) -> ApiResult<(String, RequestChallengeResponse)> {
        let rp = self.relying_party()?;
        let hash = hash_token(mfa_token);
        let now = self.clock.now();
        let mut owned = pool.conn().await?;
        let conn = &mut owned;
        let challenge = crate::db::with_conn!(conn, |c| c.find_challenge(&hash).await)?.ok_or_else(dead)?;
        counter::check(conn, challenge.user_id, now).await?;
        if challenge.expires_at <= now || challenge.attempts >= MAX_ATTEMPTS {
            return Err(dead());
        }
        let rows = crate::db::with_conn!(conn, |c| c.list_passkeys(challenge.user_id).await)?;
        if rows.is_empty() {
            return Err(ApiError::conflict("This account has no passkey; complete the login with a code."));
        }
        let (options, state) = request_options(&rp, &rows, policy(false))?;
        let ceremony_id =
            self.open_ceremony(conn, Purpose::SecondStep, Some(challenge.user_id), Some(hash), &state).await?;
        Ok((ceremony_id, options))
    }

    /// `POST /auth/mfa/verify` with a passkey: the `mfa_token`, the ceremony started for it and
    /// the assertion start the session, with `amr` `["pwd","hwk","mfa"]`.
    pub async fn verify_mfa_passkey(
        &self,
        pool: &DbPool,
        mfa_token: &str,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
        client: &RequestOrigin,
    ) -> ApiResult<IssuedTokens> {
        let mut owned = pool.conn().await?;
        let conn = &mut owned;
        let challenge = self.passkey_second_step(conn, mfa_token, ceremony_id, credential, client).await?;
        // The audience and scope chosen at the password step carry through, as with a TOTP code.
        let scope = challenge.scope.as_deref().map(Scope::stored);
        let started = Started {
            amr: AMR_PASSWORD_AND_PASSKEY,
            resource: challenge.resource.as_deref(),
            scope: scope.as_ref(),
            reservation: None,
            client_id: FIRST_PARTY_CLIENT,
        };
        self.start_session(conn, challenge.user_id, started, client, self.clock.now()).await
    }

    /// The passkey second step's checks, shared by `POST /auth/mfa/verify` and the hosted code
    /// page (`Auth::browser_second_factor_passkey`): the `mfa_token` and its attempts, the
    /// ceremony, the assertion, the second-factor counter; spends the `mfa_token`. The password
    /// step's challenge (its account, scope and audience); `amr` [`AMR_PASSWORD_AND_PASSKEY`].
    pub async fn passkey_second_step(
        &self,
        conn: &mut DbConn,
        mfa_token: &str,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
        client: &RequestOrigin,
    ) -> ApiResult<MfaChallenge> {
        let rp = self.relying_party()?;
        let hash = hash_token(mfa_token);
        let now = self.clock.now();
        let challenge = crate::db::with_conn!(conn, |c| c.find_challenge(&hash).await)?.ok_or_else(dead)?;
        let user = crate::db::with_conn!(conn, |c| c.find_user(challenge.user_id).await)?.ok_or_else(dead)?;
        counter::check(conn, user.id, now).await?;
        if challenge.expires_at <= now || challenge.attempts >= MAX_ATTEMPTS {
            return Err(dead());
        }
        if user.disabled {
            return Err(ApiError::account_disabled());
        }
        let keys = ThrottleKeys::new(&user.email, client.ip.as_deref());
        throttle::check(conn, &keys, now).await?;
        let (ceremony, state) =
            self.take_ceremony::<AuthenticationState>(conn, ceremony_id, Purpose::SecondStep).await?;
        if ceremony.mfa_token_hash.as_deref() != Some(hash.as_str()) || ceremony.user_id != Some(user.id) {
            return Err(dead_ceremony());
        }
        let attempt = counter::reserve(conn, user.id, now).await?;
        if !crate::db::write_tx!(conn, |c| c.take_challenge_attempt(&hash, MAX_ATTEMPTS, now).await)? {
            attempt.give_back(conn).await?;
            return Err(dead());
        }
        let row = self.answering_passkey(conn, credential, Some(user.id)).await?;
        let accepted = match &row {
            Some(row) => match rp.authenticate_single_credential(credential, &state, &credential_of(row)?) {
                Ok(result) => record_use(conn, row, &result, now).await?,
                Err(_) => false,
            },
            None => false,
        };
        if !accepted {
            self.second_factor_failed(conn, &user, &keys, client, "login").await?;
            return Err(refused());
        }
        let event = audit_event("passkey_login", now, Some(user.id), client, json!({"step": "second_factor"}));
        crate::db::write_tx!(conn, |c| {
            // Single use of the mfa_token: of concurrent verifies one deletes it.
            if !c.consume_challenge(&hash).await? {
                return Err(dead());
            }
            attempt.clear(c).await?;
            c.insert_audit(&event).await?;
            Ok::<_, ApiError>(())
        })?;
        throttle::clear_account(conn, &keys).await?;
        Ok(challenge)
    }
}
