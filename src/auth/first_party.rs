//! Who may use the endpoints about the caller's own account (contract, "Who may use which
//! endpoint"). A user's session belongs to a client (the token's `client_id`): Portcullis itself
//! (`portcullis`), a first-party client, or a third-party one, which the user let act for them
//! only within what the consent page showed. A third-party session may read who the user is
//! (`GET /users/me`, `/oauth/userinfo`) and end itself (`POST /auth/logout`,
//! `DELETE /auth/sessions/<its own id>`); those handlers take [`User`]. Every other own-account
//! handler (sessions, logout-all, password, email, MFA, passkeys, consents) takes
//! [`FirstPartyUser`], which answers a third-party session 403 `insufficient_permissions` — so a
//! new own-account endpoint is closed to third parties by taking it, not by a check of its own.
//!
//! Whether a registered client is first-party is read from its row at each such request (one
//! primary-key read, only for tokens of registered clients' sessions): a change of
//! `first_party` applies at once, and a token says nothing it could keep saying after it.

use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};
use rocket_db_pools::Database;

use crate::auth::guards::User;
use crate::auth::Auth;
use crate::db::{Db, DbConn, Id};
use crate::error::{reject, ApiError, ApiResult};
use crate::models::{ClientStore, FIRST_PARTY_CLIENT};

/// A user in a session of Portcullis itself or of a first-party client: proof for the
/// own-account endpoints third-party clients may not use.
#[derive(Debug, Clone)]
pub struct FirstPartyUser(pub User);

impl std::ops::Deref for FirstPartyUser {
    type Target = User;
    fn deref(&self) -> &User {
        &self.0
    }
}

/// The 403 of a third-party session at an own-account endpoint.
fn third_party() -> ApiError {
    ApiError::forbidden("Sessions of third-party clients may not use this endpoint of the account.")
}

/// The registered client `user`'s session belongs to, as its token names it; `None` for
/// Portcullis's own sessions (and tokens from before clients were recorded, which name none).
fn registered_client(user: &User) -> Option<&str> {
    user.client_id.as_deref().filter(|c| *c != FIRST_PARTY_CLIENT)
}

impl Auth {
    /// Whether `user`'s session belongs to Portcullis or a first-party client. Tokens issued
    /// before clients were recorded (no `client_id`) are Portcullis's own.
    pub async fn is_first_party(&self, conn: &mut DbConn, user: &User) -> ApiResult<bool> {
        let Some(client_id) = registered_client(user) else { return Ok(true) };
        let Ok(client_id) = client_id.parse::<Id>() else { return Ok(false) };
        let found = crate::db::with_conn!(conn, |c| c.find_client(client_id).await)?;
        Ok(found.is_some_and(|(client, _)| client.settings.first_party))
    }

    /// 403 `insufficient_permissions` unless `user`'s session is first-party.
    pub async fn require_first_party(&self, conn: &mut DbConn, user: &User) -> ApiResult<()> {
        if self.is_first_party(conn, user).await? {
            Ok(())
        } else {
            Err(third_party())
        }
    }
}

/// The guard's check; Portcullis's own sessions need no database connection.
async fn first_party(req: &Request<'_>, user: &User) -> ApiResult<()> {
    if registered_client(user).is_none() {
        return Ok(());
    }
    let auth = req.rocket().state::<Auth>().ok_or_else(|| ApiError::internal("auth state is not managed"))?;
    let db = Db::fetch(req.rocket()).ok_or_else(|| ApiError::internal("the database is not attached"))?;
    auth.require_first_party(&mut db.conn().await?, user).await
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for FirstPartyUser {
    type Error = ApiError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ApiError> {
        let user = match User::from_request(req).await {
            Outcome::Success(user) => user,
            Outcome::Error(e) => return Outcome::Error(e),
            Outcome::Forward(f) => return Outcome::Forward(f),
        };
        match first_party(req, &user).await {
            Ok(()) => Outcome::Success(FirstPartyUser(user)),
            Err(e) => Outcome::Error((reject(req, e.clone()), e)),
        }
    }
}
