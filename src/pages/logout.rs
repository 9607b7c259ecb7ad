//! `GET` and `POST /oauth/logout` (OpenID Connect RP-Initiated Logout 1.0; `auth::browser::logout`
//! validates and decides, this file renders): the confirmation page, the signed-out page, the
//! error page of a request that cannot be used, or the redirect to the client's registered
//! `post_logout_redirect_uri` with `state`.
//!
//! A POST carrying the confirmation form's fields (`csrf`, `request`) is the person's
//! confirmation, accepted only with the form's CSRF token (bound to this browser, its browser
//! session and the carried request, `csrf::bound_token`); any other POST is a relying party's
//! request sent as a form (§2 allows GET and POST), handled like a GET.

use askama::Template;
use rocket::http::{CookieJar, Status};
use rocket::{get, post, State};

use super::authorize::{csp_source, render, FormPage, RawQuery};
use super::signin::forged;
use super::{browser_cookie, csrf, Html, SeeOther};
use crate::auth::browser::logout::{Confirmation, LogoutStep, ValidLogout};
use crate::auth::browser::logout_params::LogoutParams;
use crate::auth::browser::BrowserSession;
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};

const LOGOUT_FORM: &str = "logout";

#[derive(Template)]
#[template(path = "logout.html")]
struct ConfirmPage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    csrf: &'a str,
    request: &'a str,
    client: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "done.html")]
struct DonePage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    heading: &'a str,
    message: &'a str,
}

/// What `/oauth/logout` answers.
#[derive(rocket::Responder)]
pub enum LogoutAnswer {
    Confirm(FormPage),
    Page(Html),
    Redirect(SeeOther),
}

fn done_page(auth: &Auth, status: Status, heading: &str, message: &str) -> LogoutAnswer {
    let site = auth.config.display_name();
    let body = render(&DonePage { site: &site, error: None, heading, message });
    LogoutAnswer::Page(Html { status, body })
}

fn confirm_page(
    auth: &Auth,
    jar: &CookieJar<'_>,
    request: &ValidLogout,
    session: &BrowserSession,
    error: Option<&ApiError>,
) -> LogoutAnswer {
    let carried = request.params.to_urlencoded();
    let csrf = csrf::bound_token(auth, jar, Some(session.id), LOGOUT_FORM, &carried);
    let site = auth.config.display_name();
    let error_text = error.map(|e| e.description().to_owned());
    let body = render(&ConfirmPage {
        site: &site,
        error: error_text.as_deref(),
        csrf: &csrf,
        request: &carried,
        client: request.client_name.as_deref(),
    });
    let html = Html { status: error.map_or(Status::Ok, |e| e.status), body };
    // The confirmation's 303 goes to the post_logout_redirect_uri: CSP form-action covers it.
    let form_action = request.redirect_uri.as_deref().map(csp_source).unwrap_or_default();
    LogoutAnswer::Confirm(FormPage { html, form_action, scripts: false })
}

/// The confirmation form's fields, when a POST carries them.
struct Confirming {
    csrf: String,
    request: String,
}

async fn logout(
    auth: &Auth,
    db: &Db,
    jar: &CookieJar<'_>,
    origin: &RequestOrigin,
    raw: &str,
    posted: bool,
    confirming: Option<Confirming>,
) -> ApiResult<LogoutAnswer> {
    let raw = confirming.as_ref().map_or(raw, |c| c.request.as_str());
    let mut conn = db.conn().await?;
    let request = match auth.validate_logout(&mut conn, LogoutParams::from_urlencoded(raw)).await? {
        Ok(request) => request,
        Err(description) => {
            return Ok(done_page(auth, Status::BadRequest, "This sign-out request cannot be used", &description))
        }
    };
    let session = browser_cookie::current(auth, db, jar).await?;
    let confirmation = match (&confirming, &session) {
        (Some(form), Some(session)) => {
            if !csrf::bound_matches(auth, jar, Some(session.id), LOGOUT_FORM, &form.request, &form.csrf) {
                return Ok(confirm_page(auth, jar, &request, session, Some(&forged())));
            }
            Confirmation::Given
        }
        _ => Confirmation::NotAsked,
    };
    match auth.log_out(&mut conn, &request, session, confirmation, origin).await? {
        LogoutStep::Confirm(session) => Ok(confirm_page(auth, jar, &request, &session, None)),
        LogoutStep::SignedOut(_) => {
            browser_cookie::clear_session(auth, jar);
            Ok(match (request.redirect(), posted) {
                (Some(url), _) => LogoutAnswer::Redirect(SeeOther(url)),
                // A successful POST answers 303 (contract): to the GET that shows the page.
                (None, true) => LogoutAnswer::Redirect(SeeOther("/oauth/logout".to_owned())),
                (None, false) => done_page(auth, Status::Ok, "You are signed out", "You can close this page."),
            })
        }
    }
}

/// The end-session endpoint (RP-Initiated Logout §2), announced as `end_session_endpoint`.
#[get("/oauth/logout")]
async fn logout_get(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    origin: RequestOrigin,
    query: RawQuery,
) -> ApiResult<LogoutAnswer> {
    logout(auth, db, jar, &origin, &query.0, false, None).await
}

/// The same by form POST, and the confirmation form's POST.
#[post("/oauth/logout", data = "<body>")]
async fn logout_post(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    origin: RequestOrigin,
    query: RawQuery,
    body: String,
) -> ApiResult<LogoutAnswer> {
    let (mut csrf, mut request) = (None, None);
    for (name, value) in form_urlencoded::parse(body.as_bytes()) {
        match name.as_ref() {
            "csrf" => csrf = Some(value.into_owned()),
            "request" => request = Some(value.into_owned()),
            _ => {}
        }
    }
    let confirming = (csrf.is_some() || request.is_some())
        .then(|| Confirming { csrf: csrf.unwrap_or_default(), request: request.unwrap_or_default() });
    let raw = if body.trim().is_empty() { &query.0 } else { &body };
    logout(auth, db, jar, &origin, raw, true, confirming).await
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![logout_get, logout_post]
}
