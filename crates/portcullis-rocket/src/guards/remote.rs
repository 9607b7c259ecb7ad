//! The resource server's source: the fairing's [`Trust`] (JWKS and change feed).

use rocket::{Orbit, Rocket};

use super::{Identity, Source};
use crate::core::AccessClaims;
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

    /// Refuses every token while the feed is staler than `max_staleness`: what the guard knows of
    /// ended sessions and removed roles can no longer be vouched for.
    async fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        if !self.fresh_enough() {
            return Err(AuthError::unavailable("The authorization state is too old to trust; try again later."));
        }
        Trust::verify(self, token).await.map_err(|e| AuthError::invalid_token(e.description()))
    }

    fn refusal(&self, claims: &AccessClaims) -> Option<&'static str> {
        self.changes().refusal(claims)
    }

    fn grants(&self, roles: &[String], permission: &str) -> bool {
        self.changes().roles_grant(roles, permission)
    }
}
