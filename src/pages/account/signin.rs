//! Signing in to the account page itself. The hosted sign-in (`/signin`) belongs to an
//! authorization request of a client; the account page has none, so this is its own entry,
//! running the very same steps (`Auth::browser_sign_in`, then `Auth::browser_second_factor` when
//! the account has a second factor: `/auth/login`'s checks, throttling and answers) and the same
//! cookies (`pages::browser_cookie`), then returning to `/account`.
//!
//! Its passkey forms are the hosted sign-in's (`pages::signin_passkey`, finished by the same
//! functions): **Sign in with a passkey** (`POST /account/signin/passkey`, the ceremony of
//! `POST /auth/passkeys/login`) and, on the code step, **Use a passkey instead**
//! (`POST /account/signin/mfa/passkey/start`, then `POST /account/signin/mfa/passkey`).

use askama::Template;
use rocket::form::{Form, FromForm};
use rocket::http::{CookieJar, Status};
use rocket::serde::json::Json;
use rocket::{get, post, State};
use serde_json::Value;

use crate::auth::browser::sign_in::BrowserSignIn;
use crate::auth::browser::start::StartedBrowserSession;
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::pages::signin::forged;
use crate::pages::signin_passkey::{passkey_sign_in, password_again, second_step_options, second_step_passkey};
use crate::pages::{browser_cookie, csrf, Html, Scripted, SeeOther};

const SIGN_IN_FORM: &str = "account_signin";
const CODE_FORM: &str = "account_signin_mfa";
const PASSKEY_FORM: &str = "account_signin_passkey";
const CODE_PASSKEY_FORM: &str = "account_signin_mfa_passkey";

#[derive(Template)]
#[template(path = "account_signin.html")]
struct SignInPage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    csrf: &'a str,
    /// The token of the step's passkey form.
    passkey_csrf: &'a str,
    /// The code step (after a correct password on an account with a second factor).
    code_step: bool,
    email: &'a str,
}

#[derive(rocket::Responder)]
enum Answer {
    Page(Scripted),
    Redirect(SeeOther),
}

fn page(
    auth: &Auth,
    jar: &CookieJar<'_>,
    current: Option<Id>,
    code_step: bool,
    email: &str,
    error: Option<&ApiError>,
) -> Answer {
    let (form, passkey_form) = if code_step { (CODE_FORM, CODE_PASSKEY_FORM) } else { (SIGN_IN_FORM, PASSKEY_FORM) };
    let csrf = csrf::bound_token(auth, jar, current, form, "");
    let passkey_csrf = csrf::bound_token(auth, jar, current, passkey_form, "");
    let site = auth.config.display_name();
    let error_text = error.map(|e| e.description());
    let body =
        SignInPage { site: &site, error: error_text, csrf: &csrf, passkey_csrf: &passkey_csrf, code_step, email }
            .render()
            .unwrap_or_else(|_| "<!doctype html><title>Error</title><p>The page could not be shown.</p>".into());
    Answer::Page(Scripted(Html { status: error.map_or(Status::Ok, |e| e.status), body }))
}

async fn current(auth: &Auth, db: &Db, jar: &CookieJar<'_>) -> Result<Option<Id>, ApiError> {
    Ok(browser_cookie::current(auth, db, jar).await?.map(|s| s.id))
}

/// The sign-in form of the account page.
#[get("/account/signin")]
async fn form(auth: &State<Auth>, db: &State<Db>, jar: &CookieJar<'_>) -> Answer {
    match current(auth, db, jar).await {
        Ok(Some(_)) => Answer::Redirect(SeeOther("/account".into())),
        Ok(None) => page(auth, jar, None, false, "", None),
        Err(e) => page(auth, jar, None, false, "", Some(&e)),
    }
}

#[derive(FromForm)]
struct SignInForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    email: &'r str,
    password: &'r str,
}

/// The password step: 303 to `/account` (or to the code step), or the form with the API's status.
#[post("/account/signin", data = "<form>")]
async fn sign_in(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    client: RequestOrigin,
    form: Form<SignInForm<'_>>,
) -> Answer {
    let current = match current(auth, db, jar).await {
        Ok(current) => current,
        Err(e) => return page(auth, jar, None, false, form.email, Some(&e)),
    };
    if !csrf::bound_matches(auth, jar, current, SIGN_IN_FORM, "", form.csrf) {
        return page(auth, jar, current, false, form.email, Some(&forged()));
    }
    match auth.browser_sign_in(db, form.email, form.password, current, &client).await {
        Ok(BrowserSignIn::Started(started)) => signed_in(auth, jar, &started),
        Ok(BrowserSignIn::SecondFactor { mfa_token }) => {
            browser_cookie::set_mfa(auth, jar, &mfa_token);
            Answer::Redirect(SeeOther("/account/signin/mfa".into()))
        }
        Err(e) => page(auth, jar, current, false, form.email, Some(&e)),
    }
}

/// The code step's form.
#[get("/account/signin/mfa")]
async fn code_form(auth: &State<Auth>, db: &State<Db>, jar: &CookieJar<'_>) -> Answer {
    let current = current(auth, db, jar).await.ok().flatten();
    let code_step = browser_cookie::mfa(auth, jar).is_some();
    page(auth, jar, current, code_step, "", None)
}

#[derive(FromForm)]
struct CodeForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    code: &'r str,
}

/// The code step: the checks of `POST /auth/mfa/verify` (the same per-account counter).
#[post("/account/signin/mfa", data = "<form>")]
async fn code_submit(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    client: RequestOrigin,
    form: Form<CodeForm<'_>>,
) -> Answer {
    let current = current(auth, db, jar).await.ok().flatten();
    if !csrf::bound_matches(auth, jar, current, CODE_FORM, "", form.csrf) {
        return page(auth, jar, current, true, "", Some(&forged()));
    }
    let Some(mfa_token) = browser_cookie::mfa(auth, jar) else {
        return page(auth, jar, current, false, "", Some(&crate::pages::signin::sign_in_expired()));
    };
    match auth.browser_second_factor(db, &mfa_token, form.code.trim(), current, &client).await {
        Ok(started) => {
            browser_cookie::clear_mfa(auth, jar);
            signed_in(auth, jar, &started)
        }
        // The mfa_token is spent, expired or out of attempts: the password again.
        Err(e) if e.code == ErrorCode::InvalidGrant => {
            browser_cookie::clear_mfa(auth, jar);
            page(auth, jar, current, false, "", Some(&e))
        }
        Err(e) => page(auth, jar, current, true, "", Some(&e)),
    }
}

/// After a sign-in: the cookie of the new browser session, and back to `/account`.
fn signed_in(auth: &Auth, jar: &CookieJar<'_>, started: &StartedBrowserSession) -> Answer {
    browser_cookie::set_session(auth, jar, &started.token);
    Answer::Redirect(SeeOther("/account".into()))
}

#[derive(FromForm)]
struct PasskeyForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    #[field(default = "")]
    ceremony_id: &'r str,
    /// `JSON.stringify(credential.toJSON())`.
    #[field(default = "")]
    credential: &'r str,
}

/// Sign in with a passkey: the checks of `POST /auth/passkeys/login/finish`.
#[post("/account/signin/passkey", data = "<form>")]
async fn passkey(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    client: RequestOrigin,
    form: Form<PasskeyForm<'_>>,
) -> Answer {
    let current = match current(auth, db, jar).await {
        Ok(current) => current,
        Err(e) => return page(auth, jar, None, false, "", Some(&e)),
    };
    if !csrf::bound_matches(auth, jar, current, PASSKEY_FORM, "", form.csrf) {
        return page(auth, jar, current, false, "", Some(&forged()));
    }
    match passkey_sign_in(auth, db, form.ceremony_id, form.credential, current, &client).await {
        Ok(started) => signed_in(auth, jar, &started),
        Err(e) => page(auth, jar, current, false, "", Some(&e)),
    }
}

#[derive(FromForm)]
struct StartForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
}

/// The code step's passkey, started: the options of `POST /auth/mfa/passkey` (JSON).
#[post("/account/signin/mfa/passkey/start", data = "<form>")]
async fn code_passkey_start(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    form: Form<StartForm<'_>>,
) -> ApiResult<Json<Value>> {
    second_step_options(auth, db, jar, CODE_PASSKEY_FORM, "", form.csrf).await
}

/// The code step's passkey, finished: the checks of `POST /auth/mfa/verify`.
#[post("/account/signin/mfa/passkey", data = "<form>")]
async fn code_passkey(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    client: RequestOrigin,
    form: Form<PasskeyForm<'_>>,
) -> Answer {
    let current = current(auth, db, jar).await.ok().flatten();
    if !csrf::bound_matches(auth, jar, current, CODE_PASSKEY_FORM, "", form.csrf) {
        return page(auth, jar, current, true, "", Some(&forged()));
    }
    match second_step_passkey(auth, db, jar, form.ceremony_id, form.credential, current, &client).await {
        Ok(started) => signed_in(auth, jar, &started),
        Err(e) if password_again(&e) => {
            browser_cookie::clear_mfa(auth, jar);
            page(auth, jar, current, false, "", Some(&e))
        }
        Err(e) => page(auth, jar, current, true, "", Some(&e)),
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![form, sign_in, code_form, code_submit, passkey, code_passkey_start, code_passkey]
}
