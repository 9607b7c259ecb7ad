//! Signing in to the account page itself. The hosted sign-in (`/signin`) belongs to an
//! authorization request of a client; the account page has none, so this is its own entry,
//! running the very same steps (`Auth::browser_sign_in`, then `Auth::browser_second_factor` when
//! the account has a second factor: `/auth/login`'s checks, throttling and answers) and the same
//! cookies (`pages::browser_cookie`), then returning to `/account`.

use askama::Template;
use rocket::form::{Form, FromForm};
use rocket::http::{CookieJar, Status};
use rocket::{get, post, State};

use crate::auth::browser::sign_in::BrowserSignIn;
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::db::{Db, Id};
use crate::error::{ApiError, ErrorCode};
use crate::pages::{browser_cookie, csrf, Html, SeeOther};

const SIGN_IN_FORM: &str = "account_signin";
const CODE_FORM: &str = "account_signin_mfa";

#[derive(Template)]
#[template(path = "account_signin.html")]
struct SignInPage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    csrf: &'a str,
    /// The code step (after a correct password on an account with a second factor).
    code_step: bool,
    email: &'a str,
}

#[derive(rocket::Responder)]
enum Answer {
    Page(Html),
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
    let form = if code_step { CODE_FORM } else { SIGN_IN_FORM };
    let csrf = csrf::bound_token(auth, jar, current, form, "");
    let site = auth.config.display_name();
    let body = SignInPage { site: &site, error: error.map(|e| e.description()), csrf: &csrf, code_step, email }
        .render()
        .unwrap_or_else(|_| "<!doctype html><title>Error</title><p>The page could not be shown.</p>".into());
    Answer::Page(Html { status: error.map_or(Status::Ok, |e| e.status), body })
}

async fn current(auth: &Auth, db: &Db, jar: &CookieJar<'_>) -> Result<Option<Id>, ApiError> {
    Ok(browser_cookie::current(auth, db, jar).await?.map(|s| s.id))
}

fn forged() -> ApiError {
    ApiError::forbidden("The form expired or did not come from this site; please try again.")
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
        Ok(BrowserSignIn::Started(started)) => {
            browser_cookie::set_session(auth, jar, &started.token);
            Answer::Redirect(SeeOther("/account".into()))
        }
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
            browser_cookie::set_session(auth, jar, &started.token);
            Answer::Redirect(SeeOther("/account".into()))
        }
        // The mfa_token is spent, expired or out of attempts: the password again.
        Err(e) if e.code == ErrorCode::InvalidGrant => {
            browser_cookie::clear_mfa(auth, jar);
            page(auth, jar, current, false, "", Some(&e))
        }
        Err(e) => page(auth, jar, current, true, "", Some(&e)),
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![form, sign_in, code_form, code_submit]
}
