//! `GET` and `POST /oauth/authorize` (RFC 6749 §4.1.1; OpenID Connect Core §3.1.2.1 allows both):
//! validate the request, then show the sign-in page, the consent page, or redirect to the client
//! (`auth::oidc::authorize` and `authorize_decide` decide; this file only renders). The sign-in,
//! code and consent forms (`signin`, `consent`) carry the request and validate it again on POST.

use rocket::http::CookieJar;
use rocket::request::{FromRequest, Outcome};
use rocket::response::{self, Responder};
use rocket::{get, post, Request, State};

use super::{browser_cookie, consent, signin, Html, SeeOther};
use crate::auth::oidc::authorize::{AuthorizeParams, Invalid, ValidRequest};
use crate::auth::oidc::authorize_decide::{Decision, Freshness};
use crate::auth::Auth;
use crate::db::{Db, Id};
use crate::error::{ApiError, ApiResult};

/// A page whose form's successful POST redirects to the client's `redirect_uri`: browsers apply
/// CSP `form-action` to the redirects that follow a form submission (CSP Level 3 §6.3.1), so the
/// redirect URI's origin is allowed beside this one.
pub struct FormPage {
    pub html: Html,
    /// A CSP source expression for the client's redirect URI.
    pub form_action: String,
    /// Whether the page runs the passkey script ([`super::SCRIPT_CSP`]).
    pub scripts: bool,
}

impl<'r> Responder<'r, 'static> for FormPage {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let mut response = self.html.respond_to(request)?;
        let csp = super::content_security_policy(self.scripts, &self.form_action);
        response.set_raw_header("Content-Security-Policy", csp);
        Ok(response)
    }
}

/// What an authorization request or one of its forms answers.
#[derive(rocket::Responder)]
pub enum Answer {
    Page(FormPage),
    Error(Html),
    Redirect(SeeOther),
}

/// The CSP source of `redirect_uri`: its origin for `http(s)`, its scheme for a native app's
/// private-use scheme (RFC 8252 §7.1).
pub fn csp_source(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url.origin().ascii_serialization(),
        Ok(url) => format!("{}:", url.scheme()),
        Err(_) => String::new(),
    }
}

/// A template's HTML (a template that fails to render shows a bare error page).
pub fn render(template: &impl askama::Template) -> String {
    template
        .render()
        .unwrap_or_else(|_| "<!doctype html><title>Error</title><p>The page could not be shown.</p>".into())
}

/// The error page of a request that cannot be redirected (status 400).
fn error_page(auth: &Auth, description: &str) -> Html {
    #[derive(askama::Template)]
    #[template(path = "error.html")]
    struct ErrorPage<'a> {
        site: &'a str,
        error: Option<&'a str>,
    }
    let site = auth.config.display_name();
    let body = render(&ErrorPage { site: &site, error: Some(description) });
    Html { status: rocket::http::Status::BadRequest, body }
}

/// `raw` (a query string or form body) validated: the request, or the answer refusing it.
pub async fn validated(auth: &Auth, db: &Db, raw: &str) -> ApiResult<Result<ValidRequest, Answer>> {
    let mut conn = db.conn().await?;
    Ok(match auth.validate_authorize(&mut conn, AuthorizeParams::from_urlencoded(raw)).await? {
        Ok(request) => Ok(request),
        Err(Invalid::Page(description)) => Err(Answer::Error(error_page(auth, &description))),
        Err(Invalid::Redirect(url)) => Err(Answer::Redirect(SeeOther(url))),
    })
}

/// A hosted sign-in form's POST that passed [`posted`]: the authorization request it carries and
/// the browser session the form was shown to.
pub struct Posted {
    pub request: ValidRequest,
    pub session: Option<Id>,
}

/// What every hosted sign-in POST checks first, in this order and in one place: the carried
/// authorization request, validated again (the client or its redirect URIs may have changed since
/// the page was shown: its error page or redirect), then the form's CSRF token, bound to this
/// browser, its session, the form `form` and the request (docs/browser-sign-in.md, "CSRF"). A
/// token that does not fit answers `refused(request, session, 403 error)`: the form again.
pub async fn posted(
    auth: &Auth,
    db: &Db,
    jar: &CookieJar<'_>,
    (form, carried, csrf): (&str, &str, &str),
    refused: impl FnOnce(&ValidRequest, Option<Id>, &ApiError) -> FormPage,
) -> ApiResult<Result<Posted, Answer>> {
    let request = match validated(auth, db, carried).await? {
        Ok(request) => request,
        Err(answer) => return Ok(Err(answer)),
    };
    let session = browser_cookie::current(auth, db, jar).await?.map(|s| s.id);
    if !super::csrf::bound_matches(auth, jar, session, form, carried, csrf) {
        return Ok(Err(Answer::Page(refused(&request, session, &signin::forged()))));
    }
    Ok(Ok(Posted { request, session }))
}

/// Renders what the request was decided to need.
pub fn answer(auth: &Auth, jar: &CookieJar<'_>, decision: Decision) -> Answer {
    match decision {
        Decision::Redirect(url) => Answer::Redirect(SeeOther(url)),
        Decision::SignIn(request) => Answer::Page(signin::page(auth, jar, &request, None, "", None)),
        Decision::Consent(request, session) => Answer::Page(consent::page(auth, jar, &request, &session)),
    }
}

/// The request's raw query string.
pub struct RawQuery(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RawQuery {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(RawQuery(request.uri().query().map(|q| q.as_str().to_owned()).unwrap_or_default()))
    }
}

async fn authorize(auth: &Auth, db: &Db, jar: &CookieJar<'_>, raw: &str) -> ApiResult<Answer> {
    let request = match validated(auth, db, raw).await? {
        Ok(request) => request,
        Err(answer) => return Ok(answer),
    };
    let session = browser_cookie::current(auth, db, jar).await?;
    let mut conn = db.conn().await?;
    let decision = auth.decide_authorize(&mut conn, request, session.clone(), Freshness::Existing).await?;
    Ok(match decision {
        // With a session (prompt=login, max_age), the form is bound to it.
        Decision::SignIn(request) => Answer::Page(signin::page(auth, jar, &request, session.map(|s| s.id), "", None)),
        other => answer(auth, jar, other),
    })
}

/// The authorization endpoint (RFC 6749 §3.1).
#[get("/oauth/authorize")]
async fn authorize_get(auth: &State<Auth>, db: &State<Db>, jar: &CookieJar<'_>, query: RawQuery) -> ApiResult<Answer> {
    authorize(auth, db, jar, &query.0).await
}

/// The same by form POST (OpenID Connect Core §3.1.2.1); parameters in the query are used when
/// the body has none.
#[post("/oauth/authorize", data = "<body>")]
async fn authorize_post(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    query: RawQuery,
    body: String,
) -> ApiResult<Answer> {
    let raw = if body.trim().is_empty() { &query.0 } else { &body };
    authorize(auth, db, jar, raw).await
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![authorize_get, authorize_post]
}
