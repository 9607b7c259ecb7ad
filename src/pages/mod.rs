//! The hosted pages: server-rendered HTML on one layout (`templates/base.html` and its
//! stylesheet), labelled fields, a CSRF token in every form ([`csrf`]), no JavaScript but the
//! passkey script below. Sign-in, consent, logout, the account page and the forms behind mail
//! links; they call `auth` as the routes do.
//!
//! Every page sends `Content-Security-Policy` (nothing but this origin's stylesheet and forms, no
//! framing), `X-Content-Type-Options: nosniff`, `Cache-Control: no-store` and
//! `Referrer-Policy: no-referrer` (the token in the address must not leak to another site).
//!
//! The one script, `/pages/passkeys.js` ([`signin_passkey`]), runs only on the pages with passkey
//! buttons (sign-in, code step, the account page and its sign-in, the reset-password form), whose
//! CSP adds [`SCRIPT_CSP`] ([`Scripted`]): this origin's script file and `fetch` to this origin,
//! never inline code.

pub mod account;
pub mod authorize;
pub mod browser_cookie;
pub mod consent;
pub mod csrf;
pub mod logout;
pub mod mail_links;
pub mod signin;
pub mod signin_passkey;

use std::io::Cursor;

use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder};
use rocket::{get, Request, Response};

/// An HTML page with the pages' security headers.
pub struct Html {
    pub status: Status,
    pub body: String,
}

impl Html {
    pub fn ok(body: String) -> Html {
        Html { status: Status::Ok, body }
    }
}

/// What the CSP of a page with passkey buttons adds: this origin's script file (no inline code,
/// no `eval`) and its calls to this origin's passkey endpoints.
pub const SCRIPT_CSP: &str = "script-src 'self'; connect-src 'self'; ";

/// The `Content-Security-Policy` of a hosted page: nothing but this origin's stylesheet and
/// forms, no framing; `scripts` adds [`SCRIPT_CSP`], `form_action` a source its forms may lead to.
pub fn content_security_policy(scripts: bool, form_action: &str) -> String {
    let scripts = if scripts { SCRIPT_CSP } else { "" };
    let form_action = if form_action.is_empty() { String::new() } else { format!(" {form_action}") };
    format!(
        "default-src 'none'; style-src 'self'; {scripts}form-action 'self'{form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Headers of every hosted page, beside its [`content_security_policy`].
const HEADERS: &[(&str, &str)] =
    &[("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")];

impl<'r> Responder<'r, 'static> for Html {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response.status(self.status).header(ContentType::HTML).sized_body(self.body.len(), Cursor::new(self.body));
        response.raw_header("Content-Security-Policy", content_security_policy(false, ""));
        for (name, value) in HEADERS {
            response.raw_header(*name, *value);
        }
        response.ok()
    }
}

/// A page with passkey buttons: [`Html`] whose CSP lets it run `/pages/passkeys.js`.
pub struct Scripted(pub Html);

impl<'r> Responder<'r, 'static> for Scripted {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let mut response = self.0.respond_to(request)?;
        response.set_raw_header("Content-Security-Policy", content_security_policy(true, ""));
        Ok(response)
    }
}

/// A 303 to `location` after a successful POST, with the pages' headers.
pub struct SeeOther(pub String);

impl<'r> Responder<'r, 'static> for SeeOther {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response.status(Status::SeeOther).raw_header("Location", self.0);
        response.raw_header("Content-Security-Policy", content_security_policy(false, ""));
        for (name, value) in HEADERS {
            response.raw_header(*name, *value);
        }
        response.ok()
    }
}

/// The pages' stylesheet.
#[get("/pages/style.css")]
fn style() -> (ContentType, &'static str) {
    (ContentType::CSS, include_str!("../../templates/style.css"))
}

pub fn routes() -> Vec<rocket::Route> {
    let mut routes = rocket::routes![style];
    routes.extend(mail_links::routes());
    routes.extend(account::routes());
    routes.extend(authorize::routes());
    routes.extend(signin::routes());
    routes.extend(signin_passkey::routes());
    routes.extend(consent::routes());
    routes.extend(logout::routes());
    routes
}
