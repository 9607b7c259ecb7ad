//! The consent page (OpenID Connect Core §3.1.2.4) for third-party clients: names the client and
//! lists what it asks for in plain words. Allow remembers the approval (per user, client and
//! scope, `Auth::grant_consent`) and redirects the code; Deny redirects `access_denied` and
//! remembers nothing. The form is bound to the browser session that saw it.

use askama::Template;
use rocket::form::{Form, FromForm};
use rocket::http::CookieJar;
use rocket::{post, State};

use super::authorize::{csp_source, render, validated, Answer, FormPage};
use super::signin::forged;
use super::{browser_cookie, csrf, Html, SeeOther};
use crate::auth::browser::BrowserSession;
use crate::auth::guards::RequestOrigin;
use crate::auth::oidc::authorize::ValidRequest;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};

const CONSENT_FORM: &str = "consent";

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    csrf: &'a str,
    request: &'a str,
    client: &'a str,
    items: Vec<String>,
}

/// What a scope value lets the client do, in plain words.
fn plain_words(value: &str) -> String {
    let fixed = match value {
        "openid" => "Know who you are on this service (your account id)",
        "email" => "See your email address",
        "profile" => "See your basic profile",
        "offline_access" => "Keep access while you are away",
        "users:read" => "List and read user accounts",
        "users:write" => "Change user accounts: roles, disable, delete",
        "roles:read" => "List roles",
        "roles:write" => "Create, change and delete roles",
        "sessions:read" => "List any user's sessions",
        "sessions:revoke" => "End any user's sessions",
        "audit:read" => "Read the audit log",
        "clients:read" => "List service clients",
        "clients:write" => "Create, re-key and delete service clients",
        "metrics:read" => "Read the service's metrics",
        "tokens:introspect" => "Inspect any token",
        "feed:read" => "Follow the change feed",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_owned();
    }
    match value.split_once(':') {
        Some((resource, action)) => format!("{} {resource} (permission {value})", capitalised(action)),
        None => value.to_owned(),
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn render_page(
    auth: &Auth,
    jar: &CookieJar<'_>,
    request: &ValidRequest,
    session: &BrowserSession,
    error: Option<&ApiError>,
) -> FormPage {
    let carried = request.params.to_urlencoded(false);
    let csrf = csrf::bound_token(auth, jar, Some(session.id), CONSENT_FORM, &carried);
    let site = auth.config.display_name();
    let mut items: Vec<String> = request.scope.split_whitespace().map(plain_words).collect();
    if items.is_empty() {
        items.push("Sign you in (nothing else)".to_owned());
    }
    let error_text = error.map(|e| e.description().to_owned());
    let body = render(&ConsentPage {
        site: &site,
        error: error_text.as_deref(),
        csrf: &csrf,
        request: &carried,
        client: &request.client.name,
        items,
    });
    let status = error.map_or(rocket::http::Status::Ok, |e| e.status);
    FormPage { html: Html { status, body }, form_action: csp_source(&request.redirect_uri), scripts: false }
}

/// The consent page of `request` for the browser's `session`.
pub fn page(auth: &Auth, jar: &CookieJar<'_>, request: &ValidRequest, session: &BrowserSession) -> FormPage {
    render_page(auth, jar, request, session, None)
}

#[derive(FromForm)]
struct ConsentForm<'r> {
    csrf: &'r str,
    request: &'r str,
    decision: &'r str,
}

/// Allow or Deny.
#[post("/consent", data = "<form>")]
async fn decide(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    origin: RequestOrigin,
    form: Form<ConsentForm<'_>>,
) -> ApiResult<Answer> {
    let request = match validated(auth, db, form.request).await? {
        Ok(request) => request,
        Err(answer) => return Ok(answer),
    };
    // No browser session (it ended meanwhile): the request starts over, at the sign-in page.
    let Some(session) = browser_cookie::current(auth, db, jar).await? else {
        return Ok(Answer::Redirect(SeeOther(format!("/oauth/authorize?{}", request.params.to_urlencoded(false)))));
    };
    if !csrf::bound_matches(auth, jar, Some(session.id), CONSENT_FORM, form.request, form.csrf) {
        return Ok(Answer::Page(render_page(auth, jar, &request, &session, Some(&forged()))));
    }
    let mut conn = db.conn().await?;
    let url = match form.decision {
        "approve" => auth.approve_authorize(&mut conn, &request, &session, &origin).await?,
        _ => auth.deny_authorize(&request),
    };
    Ok(Answer::Redirect(SeeOther(url)))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![decide]
}
