//! The account page, `/account` (contract "(v3) Browser sign-in", hosted pages): what a person
//! signed in to this browser sees of their account and changes there, without JavaScript except
//! for adding a passkey ([`passkey_add`]: `navigator.credentials.create()` has no form).
//!
//! `GET /account` shows every section; each section is a form POSTing to its own route
//! (`sessions`, `password`, `email`, `totp`, `consents`, `passkeys`), carrying the CSRF token of
//! this browser session ([`signed_in`]). Every action is the `auth` function of the matching API
//! endpoint, with its rules and throttling: nothing is decided here. Success answers 303 back to
//! `/account` with a one-time notice (a flash cookie naming one of [`Notice`]'s fixed texts, so
//! nobody can make the page say something else); a refusal shows the page again with the status
//! the API would give and its description. Without a browser session: 303 to the sign-in page,
//! which comes back here.

mod codes;
pub mod consents;
pub mod credentials;
pub mod passkey_add;
pub mod passkeys;
pub mod sessions;
pub mod signed_in;
pub mod signin;
pub mod totp;
mod view;

use rocket::request::FlashMessage;
use rocket::response::Flash;
use rocket::{get, Responder, State};

use super::{Html, Scripted, SeeOther};
use crate::auth::Auth;
use crate::db::Db;
use crate::error::ApiError;
pub use signed_in::SignedIn;

/// Where a browser without a session is sent: the account's sign-in ([`signin`]), which returns
/// to `/account`.
pub const SIGN_IN: &str = "/account/signin";

/// The one-time notices of a successful form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    SessionEnded,
    PasswordChanged,
    EmailChangeRequested,
    TotpDisabled,
    ConsentRevoked,
    PasskeyRemoved,
    PasskeyAdded,
}

impl Notice {
    const ALL: [Notice; 7] = [
        Notice::SessionEnded,
        Notice::PasswordChanged,
        Notice::EmailChangeRequested,
        Notice::TotpDisabled,
        Notice::ConsentRevoked,
        Notice::PasskeyRemoved,
        Notice::PasskeyAdded,
    ];

    fn key(self) -> &'static str {
        match self {
            Notice::SessionEnded => "session-ended",
            Notice::PasswordChanged => "password-changed",
            Notice::EmailChangeRequested => "email-change",
            Notice::TotpDisabled => "totp-off",
            Notice::ConsentRevoked => "consent-revoked",
            Notice::PasskeyRemoved => "passkey-removed",
            Notice::PasskeyAdded => "passkey-added",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Notice::SessionEnded => "The session has ended.",
            Notice::PasswordChanged => "Your password was changed; your other sessions have ended.",
            Notice::EmailChangeRequested => {
                "A confirmation link was sent to the new address; the change takes effect when you open it."
            }
            Notice::TotpDisabled => "Two-step sign-in with an authenticator app is off.",
            Notice::ConsentRevoked => "Access revoked; that application's sessions have ended.",
            Notice::PasskeyRemoved => "The passkey was removed.",
            Notice::PasskeyAdded => "The passkey was added.",
        }
    }

    fn from_key(key: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|n| n.key() == key)
    }
}

/// A form's answer: 303 to `/account` with a notice on success, the account page again with the
/// API's status on a refusal, another page (one that shows a secret once), or 303 to the sign-in
/// page without a browser session.
#[derive(Responder)]
pub enum Answer {
    Done(Flash<SeeOther>),
    Account(Scripted),
    Page(Html),
    SignIn(SeeOther),
}

/// Success: 303 to `/account`, with `notice` shown there once.
pub fn done(notice: Notice) -> Answer {
    Answer::Done(Flash::new(SeeOther("/account".into()), "notice", notice.key()))
}

/// A form's refusal: the account page again with `error`'s status and description.
pub async fn refused(auth: &Auth, db: &Db, me: &SignedIn, error: ApiError) -> Answer {
    Answer::Account(Scripted(view::page(auth, db, me, None, Some(&error)).await))
}

/// What every account form's POST checks first, in this order and in one place: a browser
/// session (else 303 to the sign-in page), then the form's CSRF token, bound to that session
/// (else the account page again, 403). Nothing is read or done before both pass.
pub async fn posted(auth: &Auth, db: &Db, me: Option<SignedIn>, csrf: &str) -> Result<SignedIn, Answer> {
    let Some(me) = me else { return Err(signed_out()) };
    if !me.csrf_matches(csrf) {
        return Err(refused(auth, db, &me, forged()).await);
    }
    Ok(me)
}

/// A form without a browser session: to the sign-in page (nothing was done).
pub fn signed_out() -> Answer {
    Answer::SignIn(SeeOther(SIGN_IN.into()))
}

/// A form whose CSRF token is missing or not this browser session's: 403, nothing done.
pub fn forged() -> ApiError {
    ApiError::forbidden("The form expired or did not come from this site; reload the account page and try again.")
}

/// The account page.
#[get("/account")]
async fn account(
    auth: &State<Auth>,
    db: &State<Db>,
    me: Option<SignedIn>,
    flash: Option<FlashMessage<'_>>,
) -> Result<Scripted, SeeOther> {
    let Some(me) = me else { return Err(SeeOther(SIGN_IN.into())) };
    let notice = flash.filter(|f| f.kind() == "notice").and_then(|f| Notice::from_key(f.message()));
    Ok(Scripted(view::page(auth, db, &me, notice.map(Notice::text), None).await))
}

pub fn routes() -> Vec<rocket::Route> {
    let mut routes = rocket::routes![account];
    for more in [
        signin::routes(),
        sessions::routes(),
        credentials::routes(),
        totp::routes(),
        consents::routes(),
        passkeys::routes(),
        passkey_add::routes(),
    ] {
        routes.extend(more);
    }
    routes
}
