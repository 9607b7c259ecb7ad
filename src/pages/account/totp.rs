//! The Authenticator app section: TOTP enrolment and disabling through the API's functions
//! (`src/auth/mfa/enrol.rs`; contract "(v2) Multi-factor authentication"), with their
//! re-authentication and per-account throttling.
//!
//! Starting (password) shows the pending secret, once, as text and as a QR code of its
//! `otpauth://` URI rendered here as inline SVG (no image request, nothing for the CSP to allow),
//! with a field for the first code. Confirming shows the ten recovery codes, once. These two
//! answer 200 with the page instead of 303: the secret and the codes are never kept in clear, so
//! no later GET could show them. Disabling (password and code) answers 303 like every other form.

use askama::Template;
use qrcode::render::svg;
use qrcode::QrCode;
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::{post, State};

use super::codes::{self, NewFactor};
use super::{done, forged, posted, refused, signed_out, Answer, Notice, SignedIn};
use crate::auth::guards::RequestOrigin;
use crate::auth::Auth;
use crate::db::Db;
use crate::error::ApiError;
use crate::pages::Html;

#[derive(Template)]
#[template(path = "account_totp.html")]
struct EnrolPage<'a> {
    site: &'a str,
    error: Option<&'a str>,
    csrf: &'a str,
    /// The secret and the QR code's SVG: on the answer to "start" only.
    secret: Option<&'a str>,
    qr_svg: Option<&'a str>,
}

#[derive(FromForm)]
struct PasswordForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    password: &'r str,
}

#[derive(FromForm)]
struct CodeForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    code: &'r str,
}

#[derive(FromForm)]
struct PasswordAndCodeForm<'r> {
    #[field(default = "")]
    csrf: &'r str,
    password: &'r str,
    code: &'r str,
}

/// The `otpauth://` URI as an inline `<svg>` element (no XML declaration), scaled by CSS.
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = QrCode::new(uri.as_bytes()).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .build();
    let start = image.find("<svg")?;
    let labelled = r#"<svg role="img" aria-label="QR code of the authenticator secret" class="qr""#;
    Some(image[start..].replacen("<svg", labelled, 1))
}

fn render(template: &impl Template, status: Status) -> Html {
    let body = template
        .render()
        .unwrap_or_else(|_| "<!doctype html><title>Error</title><p>The page could not be shown.</p>".into());
    Html { status, body }
}

/// Starts enrolment: the pending secret, its QR code and the form of the first code.
#[post("/account/totp", data = "<form>")]
async fn start(
    auth: &State<Auth>,
    db: &State<Db>,
    me: Option<SignedIn>,
    client: RequestOrigin,
    form: Form<PasswordForm<'_>>,
) -> Answer {
    let me = match posted(auth, db, me, form.csrf).await {
        Ok(me) => me,
        Err(answer) => return answer,
    };
    let enrolment = match auth.enrol_totp(db, &me.user, form.password, &client).await {
        Ok(enrolment) => enrolment,
        Err(e) => return refused(auth, db, &me, e).await,
    };
    let site = auth.config.display_name();
    let qr = qr_svg(&enrolment.otpauth_uri);
    let page =
        EnrolPage { site: &site, error: None, csrf: &me.csrf, secret: Some(&enrolment.secret), qr_svg: qr.as_deref() };
    Answer::Page(render(&page, Status::Ok))
}

/// Confirms enrolment with the first code: MFA is on, the other sessions end, and the recovery
/// codes are shown this once. A wrong code shows the code form again (the secret is not shown
/// again: it was shown once).
#[post("/account/totp/confirm", data = "<form>")]
async fn confirm(
    auth: &State<Auth>,
    db: &State<Db>,
    me: Option<SignedIn>,
    client: RequestOrigin,
    form: Form<CodeForm<'_>>,
) -> Answer {
    let Some(me) = me else { return signed_out() };
    let site = auth.config.display_name();
    let again = |e: ApiError| {
        let page = EnrolPage { site: &site, error: Some(e.description()), csrf: &me.csrf, secret: None, qr_svg: None };
        Answer::Page(render(&page, e.status))
    };
    if !me.csrf_matches(form.csrf) {
        return again(forged());
    }
    let confirmed = match db.conn().await {
        Ok(mut conn) => auth.confirm_totp(&mut conn, &me.user, form.code, &client).await,
        Err(e) => Err(e.into()),
    };
    match confirmed {
        Ok(codes) => Answer::Page(codes::page(auth, NewFactor::Totp, &codes.recovery_codes)),
        Err(e) => again(e),
    }
}

/// Turns TOTP off, with the password and a code (or a recovery code), as `DELETE /auth/mfa/totp`.
#[post("/account/totp/disable", data = "<form>")]
async fn disable(
    auth: &State<Auth>,
    db: &State<Db>,
    me: Option<SignedIn>,
    client: RequestOrigin,
    form: Form<PasswordAndCodeForm<'_>>,
) -> Answer {
    let me = match posted(auth, db, me, form.csrf).await {
        Ok(me) => me,
        Err(answer) => return answer,
    };
    match auth.disable_totp(db, &me.user, form.password, form.code, &client).await {
        Ok(()) => done(Notice::TotpDisabled),
        Err(e) => refused(auth, db, &me, e).await,
    }
}

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![start, confirm, disable]
}
