//! The resource server's source: the fairing's [`Trust`] (JWKS and change feed).

use rocket::{Orbit, Rocket};

use super::{Identity, Source};
use crate::core::{AccessClaims, VerifyError};
use crate::error::AuthError;
use crate::trust::Trust;

/// A resource server reads ids as strings; its guards ask the fairing's [`Trust`].
impl Identity for String {
    type Source = Trust;
}

#[rocket::async_trait]
impl Source<String> for Trust {
    type Error = AuthError;

    fn of(rocket: &Rocket<Orbit>) -> Result<&Self, AuthError> {
        rocket.state::<Trust>().ok_or_else(|| AuthError::unavailable("The Portcullis fairing is not attached."))
    }

    /// The signature and claims first (a forged token is 401 whatever the feed's state); then
    /// 503 while the feed is staler than `max_staleness`, since what the guard knows of ended
    /// sessions and removed roles can no longer be vouched for. A token signed with a key the
    /// guard has not seen, while the JWKS cannot be fetched, is 503 too: it may well be valid.
    async fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let claims = match Trust::verify(self, token).await {
            Ok(claims) => claims,
            Err(VerifyError::UnknownKey) if self.keys_unreachable() => {
                return Err(AuthError::unavailable("Portcullis's signing keys cannot be fetched now; try again later."))
            }
            Err(e) => return Err(AuthError::invalid_token(e.description())),
        };
        if !self.fresh_enough() {
            return Err(AuthError::unavailable("The authorization state is too old to trust; try again later."));
        }
        Ok(claims)
    }

    fn refusal(&self, claims: &AccessClaims) -> Option<&'static str> {
        self.changes().refusal(claims)
    }

    fn grants(&self, roles: &[String], permission: &str) -> bool {
        self.changes().roles_grant(roles, permission)
    }
}
