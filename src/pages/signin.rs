//! The hosted sign-in: the email-and-password page of an authorization request, then the code
//! page when the account has a second factor. Both POSTs run the API's own functions
//! (`Auth::browser_sign_in`, `Auth::browser_second_factor`), so a refusal is the API's: the page
//! again with its status (401, 403, 429, ...) and words. Success starts the browser session
//! (cookie) and continues the request: 303 to the client, or to the consent page.

use askama::Template;
use rocket::form::{Form, FromForm};
use rocket::http::{CookieJar, Status};
use rocket::{get, post, State};

use super::authorize::{csp_source, posted, render, validated, Answer, FormPage, Posted, RawQuery};
use super::{browser_cookie, csrf, Html, SeeOther};
use crate::auth::browser::sign_in::BrowserSignIn;
use crate::auth::browser::start::StartedBrowserSession;
use crate::auth::guards::RequestOrigin;
use crate::auth::oidc::authorize::ValidRequest;
use crate::auth::oidc::authorize_decide::{Decision, Freshness};
use crate::auth::Auth;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult, ErrorCode};

const SIGN_IN_FORM: &str = "signin";
const CODE_FORM: &str = "signin_mfa";
/// The sign-in page's passkey form (`POST /signin/passkey`).
pub const PASSKEY_FORM: &str = "signin_passkey";
/// The code page's passkey form (`/signin/mfa/passkey`).
pub const CODE_PASSKEY_FORM: &str = "signin_mfa_passkey";

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    csrf: &'a str,
    passkey_csrf: &'a str,
    request: &'a str,
    client: &'a str,
    email: &'a str,
}

#[derive(Template)]
#[template(path = "mfa_step.html")]
struct CodePage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    csrf: &'a str,
    passkey_csrf: &'a str,
    request: &'a str,
    client: &'a str,
}

/// A page of `request` with the status of `error` (the API's), 200 without one; it runs the
/// passkey script.
fn with_status(request: &ValidRequest, body: String, error: Option<&ApiError>) -> FormPage {
    let html = Html { status: error.map_or(Status::Ok, |e| e.status), body };
    FormPage { html, form_action: csp_source(&request.redirect_uri), scripts: true }
}

/// The sign-in page of `request`, its form bound to the browser's `session` (if any).
pub fn page(
    auth: &Auth,
    jar: &CookieJar<'_>,
    request: &ValidRequest,
    session: Option<Id>,
    email: &str,
    error: Option<&ApiError>,
) -> FormPage {
    let carried = request.params.to_urlencoded(false);
    let csrf = csrf::bound_token(auth, jar, session, SIGN_IN_FORM, &carried);
    let passkey_csrf = csrf::bound_token(auth, jar, session, PASSKEY_FORM, &carried);
    let site = auth.config.display_name();
    let error_text = error.map(|e| e.description().to_owned());
    let body = render(&SignInPage {
        site: &site,
        error: error_text.as_deref(),
        csrf: &csrf,
        passkey_csrf: &passkey_csrf,
        request: &carried,
        client: &request.client.name,
        email,
    });
    with_status(request, body, error)
}

pub fn code_page(
    auth: &Auth,
    jar: &CookieJar<'_>,
    request: &ValidRequest,
    session: Option<Id>,
    error: Option<&ApiError>,
) -> FormPage {
    let carried = request.params.to_urlencoded(false);
    let csrf = csrf::bound_token(auth, jar, session, CODE_FORM, &carried);
    let passkey_csrf = csrf::bound_token(auth, jar, session, CODE_PASSKEY_FORM, &carried);
    let site = auth.config.display_name();
    let error_text = error.map(|e| e.description().to_owned());
    let body = render(&CodePage {
        site: &site,
        error: error_text.as_deref(),
        csrf: &csrf,
        passkey_csrf: &passkey_csrf,
        request: &carried,
        client: &request.client.name,
    });
    with_status(request, body, error)
}

/// 401 `invalid_grant` for a code step whose `mfa_token` cookie is gone (it outlived the
/// token's life): the person signs in again.
pub fn sign_in_expired() -> ApiError {
    ApiError::invalid_grant("The sign-in took too long; please sign in again.")
}

/// 403 for a form whose CSRF token does not fit this browser, session, form and request.
pub fn forged() -> ApiError {
    ApiError::forbidden("The form expired or did not come from this site; please try again.")
}

/// After a sign-in: the cookie, then the request continued as decided for the new session.
pub(super) async fn continue_request(
    auth: &Auth,
    db: &Db,
    jar: &CookieJar<'_>,
    request: ValidRequest,
    started: StartedBrowserSession,
) -> ApiResult<Answer> {
    browser_cookie::set_session(auth, jar, &started.token);
    let carried = request.params.to_urlencoded(true);
    let mut conn = db.conn().await?;
    Ok(match auth.decide_authorize(&mut conn, request, Some(started.session), Freshness::JustSignedIn).await? {
        Decision::Redirect(url) => Answer::Redirect(SeeOther(url)),
        // The consent page is a page of the request: shown by its GET (prompt=login satisfied).
        other @ (Decision::Consent(..) | Decision::SignIn(_)) => {
            drop(other);
            Answer::Redirect(SeeOther(format!("/oauth/authorize?{carried}")))
        }
    })
}

#[derive(FromForm)]
struct SignInForm<'r> {
    csrf: &'r str,
    request: &'r str,
    email: &'r str,
    password: &'r str,
}

/// The sign-in form's POST (the order of checks of `POST /auth/login`).
#[post("/signin", data = "<form>")]
async fn sign_in(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    client: RequestOrigin,
    form: Form<SignInForm<'_>>,
) -> ApiResult<Answer> {
    let fields = (SIGN_IN_FORM, form.request, form.csrf);
    let Posted { request, session: current } =
        match posted(auth, db, jar, fields, |r, s, e| page(auth, jar, r, s, form.email, Some(e))).await? {
            Ok(posted) => posted,
            Err(answer) => return Ok(answer),
        };
    match auth.browser_sign_in(db, form.email, form.password, current, &client).await {
        Ok(BrowserSignIn::Started(started)) => continue_request(auth, db, jar, request, started).await,
        Ok(BrowserSignIn::SecondFactor { mfa_token }) => {
            browser_cookie::set_mfa(auth, jar, &mfa_token);
            let carried = request.params.to_urlencoded(false);
            Ok(Answer::Redirect(SeeOther(format!("/signin/mfa?{carried}"))))
        }
        Err(e) => Ok(Answer::Page(page(auth, jar, &request, current, form.email, Some(&e)))),
    }
}

/// The code page (after a correct password on an account with a second factor).
#[get("/signin/mfa")]
async fn code_form(auth: &State<Auth>, db: &State<Db>, jar: &CookieJar<'_>, query: RawQuery) -> ApiResult<Answer> {
    let request = match validated(auth, db, &query.0).await? {
        Ok(request) => request,
        Err(answer) => return Ok(answer),
    };
    let current = browser_cookie::current(auth, db, jar).await?.map(|s| s.id);
    if browser_cookie::mfa(auth, jar).is_none() {
        return Ok(Answer::Page(page(auth, jar, &request, current, "", None)));
    }
    Ok(Answer::Page(code_page(auth, jar, &request, current, None)))
}

#[derive(FromForm)]
struct CodeForm<'r> {
    csrf: &'r str,
    request: &'r str,
    code: &'r str,
}

/// The code page's POST (the checks of `POST /auth/mfa/verify`, the same second-factor counter).
#[post("/signin/mfa", data = "<form>")]
async fn code_submit(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    client: RequestOrigin,
    form: Form<CodeForm<'_>>,
) -> ApiResult<Answer> {
    let fields = (CODE_FORM, form.request, form.csrf);
    let Posted { request, session: current } =
        match posted(auth, db, jar, fields, |r, s, e| code_page(auth, jar, r, s, Some(e))).await? {
            Ok(posted) => posted,
            Err(answer) => return Ok(answer),
        };
    let Some(mfa_token) = browser_cookie::mfa(auth, jar) else {
        return Ok(Answer::Page(page(auth, jar, &request, current, "", Some(&sign_in_expired()))));
    };
    match auth.browser_second_factor(db, &mfa_token, form.code.trim(), current, &client).await {
        Ok(started) => {
            browser_cookie::clear_mfa(auth, jar);
            continue_request(auth, db, jar, request, started).await
        }
        // The mfa_token is spent, expired or out of attempts: the password again.
        Err(e) if e.code == ErrorCode::InvalidGrant => {
            browser_cookie::clear_mfa(auth, jar);
            Ok(Answer::Page(page(auth, jar, &request, current, "", Some(&e))))
        }
        Err(e) => Ok(Answer::Page(code_page(auth, jar, &request, current, Some(&e)))),
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![sign_in, code_form, code_submit]
}
