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

use rocket::form::{Form, FromForm};
use rocket::http::{ContentType, CookieJar};
use rocket::serde::json::Json;
use rocket::{get, post, State};
use serde_json::Value;
use webauthn_rs_core::proto::PublicKeyCredential;

use super::authorize::{validated, Answer};
use super::signin::{code_page, continue_request, forged, page, sign_in_expired, CODE_PASSKEY_FORM, PASSKEY_FORM};
use super::{browser_cookie, csrf};
use crate::auth::guards::RequestOrigin;
use crate::auth::mfa::passkey::public_key_options;
use crate::auth::Auth;
use crate::db::Db;
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

/// The assertion of a form, or 400 `invalid_request` naming `credential`.
fn credential_of(field: &str) -> ApiResult<PublicKeyCredential> {
    serde_json::from_str(field).map_err(|e| ApiError::bad_request(format!("credential: {e}")))
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
    let request = match validated(auth, db, form.request).await? {
        Ok(request) => request,
        Err(answer) => return Ok(answer),
    };
    let current = browser_cookie::current(auth, db, jar).await?.map(|s| s.id);
    if !csrf::bound_matches(auth, jar, current, PASSKEY_FORM, form.request, form.csrf) {
        return Ok(Answer::Page(page(auth, jar, &request, current, "", Some(&forged()))));
    }
    let signed_in = match credential_of(form.credential) {
        Ok(credential) => auth.browser_passkey_sign_in(db, form.ceremony_id, &credential, current, &client).await,
        Err(e) => Err(e),
    };
    match signed_in {
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
    let current = browser_cookie::current(auth, db, jar).await?.map(|s| s.id);
    if !csrf::bound_matches(auth, jar, current, CODE_PASSKEY_FORM, form.request, form.csrf) {
        return Err(forged());
    }
    let Some(mfa_token) = browser_cookie::mfa(auth, jar) else {
        return Err(sign_in_expired());
    };
    let (ceremony_id, options) = auth.start_passkey_second_step(db, &mfa_token).await?;
    let public_key = public_key_options(options)?;
    Ok(Json(serde_json::json!({"ceremony_id": ceremony_id, "publicKey": public_key})))
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
    let request = match validated(auth, db, form.request).await? {
        Ok(request) => request,
        Err(answer) => return Ok(answer),
    };
    let current = browser_cookie::current(auth, db, jar).await?.map(|s| s.id);
    if !csrf::bound_matches(auth, jar, current, CODE_PASSKEY_FORM, form.request, form.csrf) {
        return Ok(Answer::Page(code_page(auth, jar, &request, current, Some(&forged()))));
    }
    let Some(mfa_token) = browser_cookie::mfa(auth, jar) else {
        return Ok(Answer::Page(page(auth, jar, &request, current, "", Some(&sign_in_expired()))));
    };
    let verified = match credential_of(form.credential) {
        Ok(credential) => {
            auth.browser_second_factor_passkey(db, &mfa_token, form.ceremony_id, &credential, current, &client).await
        }
        Err(e) => Err(e),
    };
    match verified {
        Ok(started) => {
            browser_cookie::clear_mfa(auth, jar);
            continue_request(auth, db, jar, request, started).await
        }
        // The mfa_token is spent, expired or out of attempts: the password again (as with a code).
        Err(e) if e.code == ErrorCode::InvalidGrant && e.status == rocket::http::Status::Unauthorized => {
            browser_cookie::clear_mfa(auth, jar);
            Ok(Answer::Page(page(auth, jar, &request, current, "", Some(&e))))
        }
        Err(e) => Ok(Answer::Page(code_page(auth, jar, &request, current, Some(&e)))),
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![script, sign_in, second_step_start, second_step]
}
