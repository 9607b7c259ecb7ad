//! The hosted sign-in's steps: the password (the very function `/auth/login` runs, so throttling,
//! enumeration safety and the order of checks are the same), then, when the account has one, the
//! second factor (the very function `/auth/mfa/verify` runs: the same `mfa_token`, the same
//! per-account second-factor counter). Each ends by starting a browser session. A passkey signs
//! in without the password through the very checks of `/auth/passkeys/login/finish`
//! (`Auth::passkey_sign_in_step`: the ceremony, the assertion, the login throttle).

use super::start::StartedBrowserSession;
use crate::auth::guards::RequestOrigin;
use crate::auth::mfa::passkey::{AMR_PASSWORDLESS, AMR_PASSWORD_AND_PASSKEY};
use crate::auth::mfa::AMR_MFA;
use crate::auth::session::login::AMR_PASSWORD;
use crate::auth::session::password_step::PasswordStep;
use crate::auth::Auth;
use crate::config::Secret;
use crate::db::{DbPool, Id};
use crate::error::ApiResult;
use webauthn_rs_core::proto::PublicKeyCredential;

/// What the sign-in form's password led to.
#[derive(Debug)]
pub enum BrowserSignIn {
    Started(StartedBrowserSession),
    /// The account has a second factor: the `mfa_token` of the code page (a TOTP or recovery
    /// code, or a passkey).
    SecondFactor {
        mfa_token: Secret,
    },
}

impl Auth {
    /// The sign-in form: `email` and `password`; the browser's current session (`replacing`)
    /// ends when a new one starts.
    pub async fn browser_sign_in(
        &self,
        pool: &DbPool,
        email: &str,
        password: &str,
        replacing: Option<Id>,
        client: &RequestOrigin,
    ) -> ApiResult<BrowserSignIn> {
        match self.password_step(pool, email, password, None, None, client).await? {
            PasswordStep::SecondFactor { mfa_token, .. } => Ok(BrowserSignIn::SecondFactor { mfa_token }),
            PasswordStep::Admitted { user, reservation, .. } => {
                let mut conn = pool.conn().await?;
                let started = self
                    .start_browser_session(&mut conn, user.id, AMR_PASSWORD, Some(&reservation), replacing, client)
                    .await?;
                Ok(BrowserSignIn::Started(started))
            }
        }
    }

    /// The code page: the `mfa_token` of the password step and a TOTP or recovery code.
    pub async fn browser_second_factor(
        &self,
        pool: &DbPool,
        mfa_token: &str,
        code: &str,
        replacing: Option<Id>,
        client: &RequestOrigin,
    ) -> ApiResult<StartedBrowserSession> {
        let (_, user, _) = self.second_factor_step(pool, mfa_token, code, client).await?;
        let mut conn = pool.conn().await?;
        self.start_browser_session(&mut conn, user.id, AMR_MFA, None, replacing, client).await
    }

    /// The sign-in page's passkey: the ceremony `POST /auth/passkeys/login` started and the
    /// authenticator's assertion (user verification required), checked as
    /// `/auth/passkeys/login/finish` checks them; `amr` `hwk user mfa`.
    pub async fn browser_passkey_sign_in(
        &self,
        pool: &DbPool,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
        replacing: Option<Id>,
        client: &RequestOrigin,
    ) -> ApiResult<StartedBrowserSession> {
        let mut conn = pool.conn().await?;
        let (user_id, reservation) = self.passkey_sign_in_step(&mut conn, ceremony_id, credential, client).await?;
        self.start_browser_session(&mut conn, user_id, AMR_PASSWORDLESS, Some(&reservation), replacing, client).await
    }

    /// The code page's passkey: the password step's `mfa_token`, the ceremony started for it and
    /// the assertion, checked as `POST /auth/mfa/verify` checks them; `amr` `pwd hwk mfa`.
    pub async fn browser_second_factor_passkey(
        &self,
        pool: &DbPool,
        mfa_token: &str,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
        replacing: Option<Id>,
        client: &RequestOrigin,
    ) -> ApiResult<StartedBrowserSession> {
        let mut conn = pool.conn().await?;
        let challenge = self.passkey_second_step(&mut conn, mfa_token, ceremony_id, credential, client).await?;
        self.start_browser_session(&mut conn, challenge.user_id, AMR_PASSWORD_AND_PASSKEY, None, replacing, client)
            .await
    }
}
