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
use crate::models::{BrowserSessionStore, UserStore, FIRST_PARTY_CLIENT};
use crate::pages::browser_cookie;

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
    auth.page_tag("account-csrf", &[id.to_string().as_bytes()])
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

/// The signed-in user of this browser's live browser session, if any (a disabled account has
/// none: disabling ends its sessions).
async fn lookup(auth: &Auth, db: &Db, jar: &CookieJar<'_>) -> ApiResult<Option<guards::User>> {
    let Some(session) = browser_cookie::current(auth, db, jar).await? else { return Ok(None) };
    let mut conn = db.conn().await?;
    let found = crate::db::with_conn!(&mut conn, |c| c.find_user_with_roles(session.user_id).await)?;
    let Some((user, roles)) = found.filter(|(user, _)| !user.disabled) else { return Ok(None) };
    Ok(Some(guards::User {
        user_id: user.id,
        session_id: session.id,
        roles,
        scope: None,
        amr: session.amr.split_whitespace().map(str::to_owned).collect(),
        // No access token: the session was found live for this request.
        expires_at: auth.clock.now(),
        client_id: Some(FIRST_PARTY_CLIENT.to_owned()),
    }))
}

/// Clears this browser's session cookie (its session has ended).
pub fn forget(auth: &Auth, jar: &CookieJar<'_>) {
    browser_cookie::clear_session(auth, jar);
}

/// Which of `ids` are browser sessions (for the session list).
pub async fn browser_sessions_among(auth: &Auth, conn: &mut DbConn, ids: &[Id]) -> ApiResult<Vec<Id>> {
    let _ = auth;
    Ok(crate::db::with_conn!(conn, |c| c.browser_session_ids(ids).await)?)
}
