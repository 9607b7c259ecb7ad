//! Passkeys on the hosted sign-in (issue 25): the page's script (`/pages/passkeys.js`, the only
//! JavaScript of the pages) runs the WebAuthn ceremony and posts its result as a form here, so
//! the browser follows the answer like any form's: the browser session's cookie and a 303 that
//! continues the authorization request, or the page again with the API's refusal.
//!
//! - `POST /signin/passkey` (sign-in page): the ceremony of `POST /auth/passkeys/login` and the
//!   assertion, finished by `Auth::browser_passkey_sign_in` — the checks of
//!   `/auth/passkeys/login/finish` (`Auth::passkey_sign_in_step`), then a browser session.
//! - `POST /signin/mfa/passkey/start` and `POST /signin/mfa/passkey` (code page): the passkey as
//!   the second step after the password, with the `mfa_token` the password step left in its
//!   cookie (`Auth::start_passkey_second_step`, then `Auth::browser_second_factor_passkey`, the
//!   checks of `/auth/mfa/verify`).
//!
//! Every form is CSRF-checked like the password form (a token bound to this browser, its browser
//! session, the form and the request), and the request is validated again.
//!
//! The account page's own sign-in (`pages::account::signin`) has the same two passkey forms; both
//! pages finish them with [`passkey_sign_in`], [`second_step_options`] and [`second_step_passkey`].

use rocket::form::{Form, FromForm};
use rocket::http::{ContentType, CookieJar};
use rocket::serde::json::Json;
use rocket::{get, post, State};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::authorize::{posted, Answer, Posted};
use super::signin::{code_page, continue_request, forged, page, sign_in_expired, CODE_PASSKEY_FORM, PASSKEY_FORM};
use super::{browser_cookie, csrf};
use crate::auth::browser::start::StartedBrowserSession;
use crate::auth::guards::RequestOrigin;
use crate::auth::mfa::passkey::public_key_options;
use crate::auth::Auth;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult, ErrorCode};

/// The hosted pages' one script.
#[get("/pages/passkeys.js")]
fn script() -> (ContentType, &'static str) {
    (ContentType::JavaScript, include_str!("../../templates/passkeys.js"))
}

/// The form the script submits once the authenticator answered.
#[derive(FromForm)]
struct PasskeyForm<'r> {
    csrf: &'r str,
    request: &'r str,
    ceremony_id: &'r str,
    /// `JSON.stringify(credential.toJSON())`.
    credential: &'r str,
}

/// The credential of a form's `credential` field (an assertion, or a new passkey on the account
/// page), or 400 `invalid_request` naming `credential`.
pub(super) fn credential_of<T: DeserializeOwned>(field: &str) -> ApiResult<T> {
    serde_json::from_str(field).map_err(|e| ApiError::bad_request(format!("credential: {e}")))
}

/// A sign-in page's passkey (the form's CSRF token checked): the ceremony of
/// `POST /auth/passkeys/login` and the assertion, then a browser session replacing `current`.
pub(super) async fn passkey_sign_in(
    auth: &Auth,
    db: &Db,
    ceremony_id: &str,
    credential: &str,
    current: Option<Id>,
    client: &RequestOrigin,
) -> ApiResult<StartedBrowserSession> {
    let credential = credential_of(credential)?;
    auth.browser_passkey_sign_in(db, ceremony_id, &credential, current, client).await
}

/// A code step's passkey, started: when `csrf` is this browser's token of the passkey form `form`
/// (and `request`), `{"ceremony_id","publicKey"}` as `POST /auth/mfa/passkey` answers for the
/// `mfa_token` in this browser's cookie; refusals are the API's JSON errors.
pub(super) async fn second_step_options(
    auth: &Auth,
    db: &Db,
    jar: &CookieJar<'_>,
    form: &str,
    request: &str,
    csrf: &str,
) -> ApiResult<Json<Value>> {
    let current = browser_cookie::current(auth, db, jar).await?.map(|s| s.id);
    if !csrf::bound_matches(auth, jar, current, form, request, csrf) {
        return Err(forged());
    }
    let Some(mfa_token) = browser_cookie::mfa(auth, jar) else {
        return Err(sign_in_expired());
    };
    let (ceremony_id, options) = auth.start_passkey_second_step(db, &mfa_token).await?;
    let public_key = public_key_options(options)?;
    Ok(Json(serde_json::json!({"ceremony_id": ceremony_id, "publicKey": public_key})))
}

/// A code step's passkey (the form's CSRF token checked): the `mfa_token` in this browser's
/// cookie, the ceremony started for it and the assertion, then a browser session replacing
/// `current`; the cookie goes once the step succeeded.
pub(super) async fn second_step_passkey(
    auth: &Auth,
    db: &Db,
    jar: &CookieJar<'_>,
    ceremony_id: &str,
    credential: &str,
    current: Option<Id>,
    client: &RequestOrigin,
) -> ApiResult<StartedBrowserSession> {
    let mfa_token = browser_cookie::mfa(auth, jar).ok_or_else(sign_in_expired)?;
    let credential = credential_of(credential)?;
    let started = auth.browser_second_factor_passkey(db, &mfa_token, ceremony_id, &credential, current, client).await?;
    browser_cookie::clear_mfa(auth, jar);
    Ok(started)
}

/// Whether a code step's refusal means the password again: the `mfa_token` is gone, spent,
/// expired or out of attempts (401 `invalid_grant`; a dead ceremony is 400 and keeps the step).
pub(super) fn password_again(e: &ApiError) -> bool {
    e.code == ErrorCode::InvalidGrant && e.status == rocket::http::Status::Unauthorized
}

/// The sign-in page's passkey.
#[post("/signin/passkey", data = "<form>")]
async fn sign_in(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    client: RequestOrigin,
    form: Form<PasskeyForm<'_>>,
) -> ApiResult<Answer> {
    let fields = (PASSKEY_FORM, form.request, form.csrf);
    let Posted { request, session: current } =
        match posted(auth, db, jar, fields, |r, s, e| page(auth, jar, r, s, "", Some(e))).await? {
            Ok(posted) => posted,
            Err(answer) => return Ok(answer),
        };
    match passkey_sign_in(auth, db, form.ceremony_id, form.credential, current, &client).await {
        Ok(started) => continue_request(auth, db, jar, request, started).await,
        Err(e) => Ok(Answer::Page(page(auth, jar, &request, current, "", Some(&e)))),
    }
}

#[derive(FromForm)]
struct StartForm<'r> {
    csrf: &'r str,
    request: &'r str,
}

/// The code page's passkey, started: `{"ceremony_id","publicKey"}` as `POST /auth/mfa/passkey`
/// answers, for the `mfa_token` in this browser's cookie; refusals are the API's JSON errors.
#[post("/signin/mfa/passkey/start", data = "<form>")]
async fn second_step_start(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    form: Form<StartForm<'_>>,
) -> ApiResult<Json<Value>> {
    second_step_options(auth, db, jar, CODE_PASSKEY_FORM, form.request, form.csrf).await
}

/// The code page's passkey, finished.
#[post("/signin/mfa/passkey", data = "<form>")]
async fn second_step(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    client: RequestOrigin,
    form: Form<PasskeyForm<'_>>,
) -> ApiResult<Answer> {
    let fields = (CODE_PASSKEY_FORM, form.request, form.csrf);
    let Posted { request, session: current } =
        match posted(auth, db, jar, fields, |r, s, e| code_page(auth, jar, r, s, Some(e))).await? {
            Ok(posted) => posted,
            Err(answer) => return Ok(answer),
        };
    match second_step_passkey(auth, db, jar, form.ceremony_id, form.credential, current, &client).await {
        Ok(started) => continue_request(auth, db, jar, request, started).await,
        // The password again (as with a code).
        Err(e) if password_again(&e) => {
            browser_cookie::clear_mfa(auth, jar);
            Ok(Answer::Page(page(auth, jar, &request, current, "", Some(&e))))
        }
        Err(e) => Ok(Answer::Page(code_page(auth, jar, &request, current, Some(&e)))),
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![script, sign_in, second_step_start, second_step]
}
