//! The pages behind mail links: `GET` shows a form and changes nothing (mail scanners follow
//! links), `POST` spends the token through the same `auth` functions as the JSON endpoints and
//! answers 303 to a page saying it is done, or the form again with the status the API would give.
//!
//! The reset form takes the second factor as a code or, through `/pages/passkeys.js`, a passkey:
//! the assertion of a `POST /auth/passkeys/login` ceremony (contract v3, "Password reset order";
//! the ceremony names no account, so the discoverable passkeys of the browser are offered, and
//! `Auth::reset_password` checks that the one chosen is the account's).

use askama::Template;
use rocket::form::{Form, FromForm};
use rocket::http::{CookieJar, Status};
use rocket::{get, post, State};
use webauthn_rs_core::proto::PublicKeyCredential;

use super::signin_passkey::credential_of;
use super::{csrf, Html, Scripted, SeeOther};
use crate::auth::guards::RequestOrigin;
use crate::auth::mfa::Presented;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    csrf: &'a str,
    token: &'a str,
}

#[derive(Template)]
#[template(path = "confirm_link.html")]
struct ConfirmPage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    csrf: &'a str,
    token: &'a str,
    page: &'a str,
    heading: &'a str,
    explanation: &'a str,
    button: &'a str,
}

#[derive(Template)]
#[template(path = "done.html")]
struct DonePage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    heading: &'a str,
    message: &'a str,
}

/// The form a mail link leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Reset,
    Verify,
    Confirm,
}

impl Link {
    fn page(self) -> &'static str {
        match self {
            Link::Reset => crate::mail::MailKind::Reset.page(),
            Link::Verify => crate::mail::MailKind::Verify.page(),
            Link::Confirm => crate::mail::MailKind::Change.page(),
        }
    }

    /// Heading, explanation and button of the confirmation forms; heading and message when done.
    fn words(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Link::Reset => (
                "Password changed",
                "",
                "",
                "Your password was changed and every sign-in ended. Sign in with the new password.",
            ),
            Link::Verify => (
                "Confirm your email address",
                "Confirm that this address belongs to your account.",
                "Confirm",
                "Your email address is verified.",
            ),
            Link::Confirm => (
                "Confirm your new email address",
                "Confirm the move of your account to this address.",
                "Confirm",
                "Your account now uses its new email address.",
            ),
        }
    }
}

fn render(template: &impl Template) -> String {
    template
        .render()
        .unwrap_or_else(|_| "<!doctype html><title>Error</title><p>The page could not be shown.</p>".into())
}

/// A mail link's form: the reset form runs the passkey script, the others nothing.
#[derive(rocket::Responder)]
enum LinkPage {
    Scripted(Scripted),
    Plain(Html),
}

fn form(auth: &Auth, jar: &CookieJar<'_>, link: Link, token: &str, error: Option<&ApiError>) -> LinkPage {
    let site = auth.config.display_name();
    let csrf = csrf::token(jar, auth.config.issuer.starts_with("https://"));
    let message = error.map(|e| e.description().to_owned());
    let error_text = message.as_deref();
    let body = match link {
        Link::Reset => render(&ResetPage { site: &site, error: error_text, csrf: &csrf, token }),
        _ => {
            let (heading, explanation, button, _) = link.words();
            render(&ConfirmPage {
                site: &site,
                error: error_text,
                csrf: &csrf,
                token,
                page: link.page(),
                heading,
                explanation,
                button,
            })
        }
    };
    let html = Html { status: error.map_or(Status::Ok, |e| e.status), body };
    if link == Link::Reset {
        LinkPage::Scripted(Scripted(html))
    } else {
        LinkPage::Plain(html)
    }
}

fn show(auth: &Auth, jar: &CookieJar<'_>, link: Link, token: Option<&str>) -> LinkPage {
    let missing = ApiError::bad_request("The link is incomplete: open the whole link from the mail.");
    let unavailable = (!auth.mail.is_on()).then(crate::mail::not_configured);
    match (token, unavailable) {
        (_, Some(e)) => form(auth, jar, link, "", Some(&e)),
        (Some(token), None) if !token.is_empty() => form(auth, jar, link, token, None),
        _ => form(auth, jar, link, "", Some(&missing)),
    }
}

fn forged() -> ApiError {
    ApiError::forbidden("The form expired or did not come from this site; open the link from the mail again.")
}

#[derive(FromForm)]
struct ResetForm<'r> {
    csrf: &'r str,
    token: &'r str,
    new_password: &'r str,
    code: Option<&'r str>,
    /// A passkey instead of the code: the ceremony and `JSON.stringify(credential.toJSON())`.
    ceremony_id: Option<&'r str>,
    credential: Option<&'r str>,
}

impl ResetForm<'_> {
    /// The second factor given: a passkey when the script filled its fields, else the code.
    fn credential(&self) -> ApiResult<Option<(&str, PublicKeyCredential)>> {
        match (self.ceremony_id.filter(|c| !c.is_empty()), self.credential.filter(|c| !c.is_empty())) {
            (Some(ceremony_id), Some(credential)) => Ok(Some((ceremony_id, credential_of(credential)?))),
            _ => Ok(None),
        }
    }
}

#[derive(FromForm)]
struct TokenForm<'r> {
    csrf: &'r str,
    token: &'r str,
}

/// The form of a password-reset link.
#[get("/reset-password?<token>")]
fn reset_form(auth: &State<Auth>, jar: &CookieJar<'_>, token: Option<&str>) -> LinkPage {
    show(auth, jar, Link::Reset, token)
}

/// Sets the new password (see `POST /auth/password/reset`).
#[post("/reset-password", data = "<form>")]
async fn reset_submit(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    client: RequestOrigin,
    form: Form<ResetForm<'_>>,
) -> Result<SeeOther, LinkPage> {
    if !csrf::matches(jar, form.csrf) {
        return Err(self::form(auth, jar, Link::Reset, form.token, Some(&forged())));
    }
    let passkey = match form.credential() {
        Ok(passkey) => passkey,
        Err(e) => return Err(self::form(auth, jar, Link::Reset, form.token, Some(&e))),
    };
    let factor = match &passkey {
        Some((ceremony_id, credential)) => Some(Presented::Passkey { ceremony_id, credential }),
        None => form.code.filter(|c| !c.trim().is_empty()).map(Presented::Code),
    };
    let outcome = auth.reset_password(db, form.token, form.new_password, factor, &client).await;
    answer(auth, jar, Link::Reset, form.token, outcome)
}

/// The form of an email-verification link.
#[get("/verify-email?<token>")]
fn verify_form(auth: &State<Auth>, jar: &CookieJar<'_>, token: Option<&str>) -> LinkPage {
    show(auth, jar, Link::Verify, token)
}

/// Verifies the address (see `POST /auth/email/verify`).
#[post("/verify-email", data = "<form>")]
async fn verify_submit(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    client: RequestOrigin,
    form: Form<TokenForm<'_>>,
) -> Result<SeeOther, LinkPage> {
    if !csrf::matches(jar, form.csrf) {
        return Err(self::form(auth, jar, Link::Verify, form.token, Some(&forged())));
    }
    answer(auth, jar, Link::Verify, form.token, auth.verify_email(db, form.token, &client).await)
}

/// The form of an email-change link.
#[get("/confirm-email?<token>")]
fn confirm_form(auth: &State<Auth>, jar: &CookieJar<'_>, token: Option<&str>) -> LinkPage {
    show(auth, jar, Link::Confirm, token)
}

/// Confirms the new address (see `POST /auth/email/confirm`).
#[post("/confirm-email", data = "<form>")]
async fn confirm_submit(
    auth: &State<Auth>,
    db: &State<Db>,
    jar: &CookieJar<'_>,
    client: RequestOrigin,
    form: Form<TokenForm<'_>>,
) -> Result<SeeOther, LinkPage> {
    if !csrf::matches(jar, form.csrf) {
        return Err(self::form(auth, jar, Link::Confirm, form.token, Some(&forged())));
    }
    answer(auth, jar, Link::Confirm, form.token, auth.confirm_email_change(db, form.token, &client).await)
}

/// A form's answer (a successful POST answers 303 to its done page; a refusal shows the form again
/// with the status the API would give).
fn answer<T>(
    auth: &Auth,
    jar: &CookieJar<'_>,
    link: Link,
    token: &str,
    outcome: ApiResult<T>,
) -> Result<SeeOther, LinkPage> {
    match outcome {
        Ok(_) => Ok(SeeOther(format!("/pages/done?what={}", link.page()))),
        Err(e) => Err(form(auth, jar, link, token, Some(&e))),
    }
}

/// What a successful mail-link form did.
#[get("/pages/done?<what>")]
fn done(auth: &State<Auth>, what: &str) -> Html {
    let link =
        [Link::Reset, Link::Verify, Link::Confirm].into_iter().find(|l| l.page() == what).unwrap_or(Link::Verify);
    let (heading, _, _, message) = link.words();
    let heading = if link == Link::Reset { heading } else { "Done" };
    let site = auth.config.display_name();
    Html::ok(render(&DonePage { site: &site, error: None, heading, message }))
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![reset_form, reset_submit, verify_form, verify_submit, confirm_form, confirm_submit, done]
}
