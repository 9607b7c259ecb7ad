//! A passkey assertion as the second factor of something other than a login: the password
//! reset (contract v3, "Password reset order"). The ceremony is one of
//! `POST /auth/passkeys/login` with the account's email (user verification required), so the
//! proof is as strong as a passwordless sign-in; the caller counts a refused assertion on the
//! account's second-factor counter and records an accepted one in the transaction that acts on it.

use webauthn_rs_core::proto::{AuthenticationState, PublicKeyCredential};

use super::{credential_of, dead_ceremony, PasskeyUse, Purpose};
use crate::auth::Auth;
use crate::db::DbConn;
use crate::error::ApiResult;
use crate::models::User;

/// What an assertion turned out to be.
pub(in crate::auth) enum Assertion {
    /// It verified: record the use (conditional on the counter) where it is acted on.
    Verified(PasskeyUse),
    /// Another origin or relying party, a bad signature, a counter that went back, a passkey
    /// of another account or none at all.
    Refused,
}

impl Auth {
    /// Checks `credential` against the sign-in ceremony `ceremony_id` for `user`. 400
    /// `invalid_grant` when the ceremony is unknown, used, expired, of another purpose or
    /// started for another account (taking it spends it either way).
    pub(in crate::auth) async fn check_assertion_for(
        &self,
        conn: &mut DbConn,
        user: &User,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
    ) -> ApiResult<Assertion> {
        let rp = self.relying_party()?;
        let (ceremony, state) = self.take_ceremony::<AuthenticationState>(conn, ceremony_id, Purpose::SignIn).await?;
        // A discoverable ceremony (started without an email) names no account; the passkey
        // must still be the user's.
        if ceremony.user_id.is_some_and(|id| id != user.id) {
            return Err(dead_ceremony());
        }
        let Some(row) = self.answering_passkey(conn, credential, Some(user.id)).await? else {
            return Ok(Assertion::Refused);
        };
        match rp.authenticate_single_credential(credential, &state, &credential_of(&row)?) {
            Ok(result) => Ok(Assertion::Verified(PasskeyUse::of(&row, &result)?)),
            Err(_) => Ok(Assertion::Refused),
        }
    }
}
